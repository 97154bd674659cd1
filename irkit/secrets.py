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
from urllib.parse import quote, unquote, urlsplit, urlunsplit

SECRET_ENV = (
    "PGPASSWORD",
    "IRKIT_REDIS_PASSWORD",
    "IRKIT_CELERY_BROKER_PASSWORD",
    "IRKIT_SLACK_WEBHOOK",
    "IRKIT_STATUSPAGE_TOKEN",
)
URL_ENV = ("IRKIT_REDIS_URL", "IRKIT_CELERY_BROKER_URL", "IRKIT_BASE_URL", "IRKIT_PROMETHEUS_URL")
MASK = "****"

V = TypeVar("V")


def url_password(url: str) -> str | None:
    """The password in a URL, percent-decoded as a client would send it."""
    try:
        password = urlsplit(url).password
    except ValueError:
        return None
    return unquote(password) if password is not None else None


def _with_netloc(url: str, password: str | None) -> str:
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    user = parts.username or ""
    credentials = f"{user}:{password}@" if password is not None else f"{user}@" if user else ""
    netloc = credentials + host + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def redact_url(url: str) -> str:
    """`redis://:s3cret@host:6379/0` → `redis://:****@host:6379/0`."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  (a malformed port raises here)
    except ValueError:
        # Unparseable: mask whatever stands between the scheme and an "@".
        return re.sub(r"://[^/@]*@", f"://{MASK}@", url)
    return url if parts.password is None else _with_netloc(url, MASK)


def without_password(url: str) -> str:
    """The URL with its password taken out (the user name stays)."""
    return url if urlsplit(url).password is None else _with_netloc(url, None)


def with_password(url: str, password: str | None) -> str:
    """The URL a client connects with: the password put in, percent-encoded so that `/`, `@`,
    `#` or `%` in it survive. Never shown: it carries the secret."""
    return url if not password else _with_netloc(url, quote(password, safe=""))


def known_secrets() -> list[str]:
    """The secret values this process could leak: longest first, so that a secret containing
    another one is masked whole."""
    found = {os.environ.get(name, "") for name in SECRET_ENV}
    found.update(url_password(os.environ.get(name, "")) or "" for name in URL_ENV)
    # A driver may echo a password the way it sits in a URL: percent-encoded.
    found.update(quote(s, safe="") for s in list(found))
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
