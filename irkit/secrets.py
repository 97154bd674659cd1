"""Secrets stay out of everything irkit writes.

Passwords reach irkit only through the environment (libpq's PGPASSWORD/PGPASSFILE and irkit's own
variables), never through parameters, because papermill writes parameters into the executed
notebook. What irkit shows of a target is redacted, and every summary and evidence value passes
through `redact` as a last line of defence against a driver that echoes a URL.
"""

from __future__ import annotations

import os
import re
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

SECRET_ENV = (
    "PGPASSWORD",
    "IRKIT_REDIS_PASSWORD",
    "IRKIT_CELERY_BROKER_PASSWORD",
    "IRKIT_SLACK_WEBHOOK",
)
URL_ENV = ("IRKIT_REDIS_URL", "IRKIT_CELERY_BROKER_URL", "IRKIT_BASE_URL", "IRKIT_PROMETHEUS_URL")
MASK = "****"

V = TypeVar("V")


def url_password(url: str) -> str | None:
    try:
        return urlsplit(url).password
    except ValueError:
        return None


def redact_url(url: str) -> str:
    """`redis://:s3cret@host:6379/0` → `redis://:****@host:6379/0`."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  (a malformed port raises here)
    except ValueError:
        # Unparseable: mask whatever stands between the scheme and an "@".
        return re.sub(r"://[^/@]*@", f"://{MASK}@", url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{user}:{MASK}@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def without_password(url: str) -> str:
    """The URL with its password taken out (the user name stays)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = (f"{parts.username}@" if parts.username else "") + host
    if parts.port:
        netloc += f":{parts.port}"
    return urlunsplit(parts._replace(netloc=netloc))


def known_secrets() -> list[str]:
    """The secret values this process could leak: longest first, so that a secret containing
    another one is masked whole."""
    found = {os.environ.get(name, "") for name in SECRET_ENV}
    found.update(url_password(os.environ.get(name, "")) or "" for name in URL_ENV)
    # Very short values would mask ordinary words and numbers; they are not real secrets.
    return sorted((s for s in found if len(s) >= 4), key=len, reverse=True)


def redact(value: V) -> V:
    """Mask every known secret in a string, or in the strings inside a JSON-like value."""
    secrets = known_secrets()
    if not secrets:
        return value
    return _redact(value, secrets)  # type: ignore[no-any-return]


def _redact(value: Any, secrets: list[str]) -> Any:
    if isinstance(value, str):
        for secret in secrets:
            value = value.replace(secret, MASK)
        return value
    if isinstance(value, dict):
        return {k: _redact(v, secrets) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_redact(v, secrets) for v in value]
    return value
