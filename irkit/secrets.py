"""Secrets stay out of everything irkit writes.

Passwords reach irkit only through variables of their own (libpq's PGPASSWORD/PGPASSFILE,
IRKIT_REDIS_PASSWORD, IRKIT_CELERY_BROKER_PASSWORD, IRKIT_SLACK_WEBHOOK, IRKIT_STATUSPAGE_TOKEN),
never through parameters, because papermill writes parameters into the executed notebook, and never
inside a URL (userinfo or query), because a URL is what gets shown and echoed. What irkit shows of a
target is redacted, and every summary, evidence value and error text from a remote service passes
through `redact`, which masks every secret the process holds (in the forms a server or a
serialiser would echo it: percent-encoded, JSON- or HTML-escaped) and whatever looks like a
credential in a URL.
"""

from __future__ import annotations

import functools
import html
import json
import os
import re
import stat
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import parse_qsl, quote, quote_plus, unquote, urlsplit, urlunsplit

from irkit import safefiles

SECRET_ENV = (
    "PGPASSWORD",
    "IRKIT_REDIS_PASSWORD",
    "IRKIT_CELERY_BROKER_PASSWORD",
    "IRKIT_SLACK_WEBHOOK",
    "IRKIT_STATUSPAGE_TOKEN",
    "IRKIT_LISTEN_TOKEN",
    "IRKIT_PAGERDUTY_ROUTING_KEY",
    "IRKIT_SMTP_PASSWORD",
)
URL_ENV = ("IRKIT_REDIS_URL", "IRKIT_CELERY_BROKER_URL", "IRKIT_BASE_URL", "IRKIT_PROMETHEUS_URL")
MASK = "****"
# Values shorter than this would mask ordinary words and numbers; they are not real secrets.
MIN_SECRET = 4
# Other variables whose names say they hold a secret (an SMTP password, a paging key, …). Their
# values must be longer: a flag such as `SOME_TOKEN=yes` is not one.
_SECRET_NAME = re.compile(
    r"PASSWORD|PASSWD|TOKEN|SECRET|WEBHOOK|CREDENTIAL|(^|_)(API|ROUTING)_?KEY$"
)
_MIN_GUESSED = 8

# Query parameters that carry a credential: what redis-py (`password`, `ssl_password`), libpq
# (`password`, `sslpassword`), kombu and HTTP APIs (`token`, `access_token`, `api_key`, `sig`)
# accept, matched on the name with case and separators ignored.
_SECRET_QUERY_PARTS = (
    "pass",
    "pwd",
    "secret",
    "token",
    "credential",
    "apikey",
    "accesskey",
    "privatekey",
    "signature",
    "authorization",
)
_SECRET_QUERY_NAMES = frozenset({"auth", "key", "sig", "pw"})

# In free text: a URL's userinfo password, and a secret-named query parameter's value.
_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^\s/@:?#]*:)([^\s/@?#]+)(@)")
_QUERY_VALUE = re.compile(r"([?&;])([^\s=&;#?]+)=([^\s&;#\"'<>]*)")
# A conninfo or command-line assignment: `password=…`, `--token=…` (not `pass` alone: prose).
_ASSIGNMENT = re.compile(
    r"(?i)(?<![\w?&;-])(-{0,2}[\w-]*(?:password|passwd|secret|token)[\w-]*\s*=\s*)"
    r"('[^']*'|\"[^\"]*\"|[^\s&;,'\"<>]+)"
)

V = TypeVar("V")


def is_secret_name(name: str) -> bool:
    """Whether a URL query parameter (or a setting) of this name carries a credential."""
    plain = re.sub(r"[^a-z0-9]", "", unquote(name).lower())
    return plain in _SECRET_QUERY_NAMES or any(part in plain for part in _SECRET_QUERY_PARTS)


# `user:password@` after a scheme or a slash, in a URL urlsplit cannot read or reads otherwise
# (`redis:/:pw@host`, `redis//:pw@host`, `http://u:pw@[x/`): a client or a later reader may still
# take it for a password, so it counts as one.
_LOOSE_USERINFO = re.compile(r"([:/][^/@\s:?#]*:)([^/@\s?#]+)(@)")


def url_password(url: str) -> str | None:
    """The password in a URL's userinfo, percent-decoded as a client would send it."""
    try:
        password = urlsplit(url).password
    except ValueError:
        password = None
    if password is None and (loose := _LOOSE_USERINFO.search(url)):
        password = loose[2]
    return unquote(password) if password is not None else None


def url_secrets(url: str) -> list[str]:
    """The credentials a URL carries: its userinfo password and the values of secret-named query
    parameters (`?password=…`, `&token=…`), decoded. Empty when it carries none."""
    found = [password] if (password := url_password(url)) is not None else []
    try:
        query = urlsplit(url).query
    except ValueError:
        query = url.partition("?")[2]
    found += [v for k, v in parse_qsl(query, keep_blank_values=True) if is_secret_name(k)]
    return found


def secret_query_names(url: str) -> list[str]:
    """The names of the query parameters that carry a credential, to name them in an error."""
    query = url.partition("?")[2].partition("#")[0]
    return [k for k, _ in parse_qsl(query, keep_blank_values=True) if is_secret_name(k)]


def _with_netloc(url: str, password: str | None) -> str:
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    user = parts.username or ""
    credentials = f"{user}:{password}@" if password is not None else f"{user}@" if user else ""
    netloc = credentials + host + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def _mask_query(text: str) -> str:
    return _QUERY_VALUE.sub(
        lambda m: m[0] if not is_secret_name(m[2]) else m[1] + m[2] + "=" + MASK, text
    )


def redact_url(url: str) -> str:
    """`redis://:s3cret@host:6379/0?password=x` → `redis://:****@host:6379/0?password=****`."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  (a malformed port raises here)
    except ValueError:
        # Unparseable: mask whatever stands between the scheme and an "@".
        masked = _LOOSE_USERINFO.sub(lambda m: m[1] + MASK + m[3], url)
        return _mask_query(re.sub(r"://[^/@]*@", f"://{MASK}@", masked))
    shown = url if parts.password is None else _with_netloc(url, MASK)
    return _mask_query(_LOOSE_USERINFO.sub(lambda m: m[1] + MASK + m[3], shown))


def with_password(url: str, password: str | None) -> str:
    """The URL a client connects with: the password put in, percent-encoded so that `/`, `@`,
    `#` or `%` in it survive. Never shown: it carries the secret."""
    return url if not password else _with_netloc(url, quote(password, safe=""))


def webhook_parts(url: str) -> list[str]:
    """The secret parts of a webhook URL: its credentials and the path segments that are tokens
    (Slack's `T…/B…/XXXX`), so that a server echoing only the path is masked too. Plain words
    (`services`, `webhooks`) are not secret."""
    try:
        path = urlsplit(url).path
    except ValueError:
        path = url
    tokens = [s for s in unquote(path).split("/") if _looks_like_token(s)]
    joined = "/".join(tokens)
    return [*url_secrets(url), *tokens, *([joined] if len(tokens) > 1 else [])]


def _looks_like_token(segment: str) -> bool:
    word = segment.isalpha() and segment.islower()
    return len(segment) >= 6 and (len(segment) >= 16 or not word)


def echoed_forms(secret: str) -> set[str]:
    """The forms in which a server, a client or a serialiser may echo a secret."""
    forms = {secret, quote(secret, safe=""), quote(secret), quote_plus(secret)}
    for form in list(forms):
        escaped = json.dumps(form)[1:-1]
        forms.update(
            {escaped, escaped.replace("/", "\\/"), json.dumps(form, ensure_ascii=False)[1:-1]}
        )
        forms.add(html.escape(form))
    return forms


def known_secrets() -> list[str]:
    """Every secret value this process holds, in every form it could be echoed in: longest first,
    so that a secret containing another one is masked whole."""
    return list(_known(tuple(sorted(os.environ.items())), _passfile_state()))


@functools.lru_cache(maxsize=8)
def _known(
    environ: tuple[tuple[str, str], ...], passfile: tuple[str, float, int] | None
) -> tuple[str, ...]:
    env = dict(environ)
    found: set[str] = set()
    for name, value in env.items():
        if not value:
            continue
        if name in SECRET_ENV or (_SECRET_NAME.search(name) and len(value) >= _MIN_GUESSED):
            found.add(value)
        if "WEBHOOK" in name:
            found.update(webhook_parts(value))
        if "://" in value:
            found.update(url_secrets(value))
    if passfile is not None:
        found.update(_passfile_passwords(Path(passfile[0])))
    forms = {form for secret in found if len(secret) >= MIN_SECRET for form in echoed_forms(secret)}
    return tuple(sorted((s for s in forms if len(s) >= MIN_SECRET), key=len, reverse=True))


_PASSFILE_MAX = 1 << 20


def _passfile_state() -> tuple[str, float, int] | None:
    """libpq's password file, which holds secrets this process may send (and so leak). Only a
    regular file of a sane size: a FIFO or a device would hang or fill every scrub."""
    path = os.environ.get("PGPASSFILE") or os.path.join(os.path.expanduser("~"), ".pgpass")
    try:
        info = os.stat(path)
    except OSError:
        return None
    if not stat.S_ISREG(info.st_mode) or info.st_size >= _PASSFILE_MAX:
        return None
    return (path, info.st_mtime, info.st_size)


def _passfile_passwords(path: Path) -> list[str]:
    try:
        data = safefiles.read_regular(path, _PASSFILE_MAX, follow_symlinks=True)
    except OSError:
        return []
    lines = data.decode(errors="replace").splitlines()
    found = []
    for line in lines:
        if line.startswith("#"):
            continue
        # host:port:db:user:password, with `\:` and `\\` escaped.
        fields = re.split(r"(?<!\\):", line, maxsplit=4)
        if len(fields) == 5:
            found.append(fields[4].replace("\\:", ":").replace("\\\\", "\\"))
    return found


def redact(value: V) -> V:
    """Mask every known secret, and anything that looks like a credential in a URL or an
    assignment, in a string or in the strings inside a JSON-like value."""
    return _redact(value, _Scrubber.now())  # type: ignore[no-any-return]


def scrub(text: str) -> str:
    """One text, for callers that need a `str` back (an error message from a remote service)."""
    return _Scrubber.now()(text)


class _Scrubber:
    """The secrets held now, and one pattern that finds any of them: every result passes through
    here, and most of its texts hold no secret, so one scan tells which need the masking."""

    def __init__(self, secrets: tuple[str, ...]) -> None:
        self.secrets = secrets
        self.any_of = re.compile("|".join(map(re.escape, secrets))) if secrets else None

    @staticmethod
    def now() -> _Scrubber:
        return _scrubber(_known(tuple(sorted(os.environ.items())), _passfile_state()))

    def __call__(self, text: str) -> str:
        if self.any_of is not None and self.any_of.search(text):
            # One after the other, longest first: where two secrets overlap, both are masked.
            for secret in self.secrets:
                text = text.replace(secret, MASK)
        # The patterns below only where they could match: each costs a scan of the text.
        if "://" in text and "@" in text:
            text = _USERINFO.sub(lambda m: m[1] + MASK + m[3], text)
        if "=" in text:
            text = _mask_query(text)
            lowered = text.lower()
            if "pass" in lowered or "secret" in lowered or "token" in lowered:
                text = _ASSIGNMENT.sub(lambda m: m[1] + MASK, text)
        return text


@functools.lru_cache(maxsize=8)
def _scrubber(secrets: tuple[str, ...]) -> _Scrubber:
    return _Scrubber(secrets)


def _redact(value: Any, scrub: _Scrubber) -> Any:
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, dict):
        return {k: _redact(v, scrub) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_redact(v, scrub) for v in value]
    return value
