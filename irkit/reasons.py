"""A failure's reason as one short line for a verdict's summary; the driver's full text stays in
the evidence. libpq, redis-py and httpx explain a refused or dropped connection over several
lines (each address tried, hints, a list of every attempt), and a web app's health endpoint quotes
them: on a terminal or in Slack that is one verdict spread over nine lines."""

from __future__ import annotations

import re

# A summary's reason is cut here: enough for "server closed the connection unexpectedly" with the
# target named before it.
LIMIT = 160

# libpq's wrapping around the reason: which address it tried, and the message's severity.
_LIBPQ_ATTEMPT = re.compile(
    r'(?:connection failed: )?connection to server (?:at|on) "[^"]*"(?: \([^)]*\))?'
    r"(?:, port \d+)? failed: "
)
_SEVERITY = re.compile(r"\b(?:FATAL|ERROR|PANIC):\s+")
# libpq's header over the list of every address it tried; the reason is in the list below it.
_ATTEMPTS_HEADER = re.compile(r"^Multiple connection attempts failed")
_LIST_ITEM = re.compile(r"^- host: .*?: (?=connection failed|connection to server)")


def short(text: str, limit: int = LIMIT) -> str:
    """The first meaningful line of `text`, without libpq's address wrapping, at most `limit`
    characters."""
    lines = [line.strip() for line in str(text).splitlines() if line.strip()]
    if lines and _ATTEMPTS_HEADER.match(lines[0]) and len(lines) > 1:
        lines = lines[1:]
    first = _LIST_ITEM.sub("", lines[0]) if lines else ""
    first = _SEVERITY.sub("", _LIBPQ_ATTEMPT.sub("", first))
    first = " ".join(first.split())
    if len(first) > limit:
        first = first[: limit - 1].rstrip() + "…"
    return first
