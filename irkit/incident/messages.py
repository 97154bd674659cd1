"""The runbook's stakeholder messages, rendered from the record: Slack's "INCIDENT DETECTED" and
"INCIDENT RESOLVED" (§3, §5) and the status-page incident (§3). A field the record lacks is
named, never invented.

Each message is written twice from the same lines: as Markdown to read and paste (values as they
are, each on its own line) and as the Slack mrkdwn that is posted (values escaped, so a title can
neither page a channel nor plant a link: only the kit's own words are formatted).
"""

from __future__ import annotations

import shlex
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from irkit import escape
from irkit.incident import sla
from irkit.incident.schema import SEVERITY_NAMES, parse_time

MISSING = "(not recorded)"


@dataclass(frozen=True)
class Message:
    """A message ready to paste (Markdown, as in the runbook) or to post (`slack`)."""

    kind: str  # "detected", "resolved", "statuspage"
    markdown: str
    missing: tuple[str, ...] = ()
    payload: dict[str, Any] = field(default_factory=dict)
    slack: str = ""

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        note = f"\n\nNot in the record yet: {', '.join(self.missing)}." if self.missing else ""
        return {
            "text/plain": self.markdown + note,
            # Shown as code: the text to paste, nothing in it rendered.
            "text/markdown": escape.code_fence(self.markdown, "markdown") + note,
        }


@dataclass(frozen=True)
class _Style:
    """How a message's lines are written: the kit's labels in bold, the record's values escaped."""

    bold: Callable[[str], str]
    value: Callable[[Any], str]


_PASTE = _Style(lambda s: f"**{s}**", escape.one_line)
# Slack's mrkdwn bolds with one asterisk.
_SLACK = _Style(lambda s: f"*{s}*", escape.slack)


def _both(kind: str, lines: Callable[[_Style], list[str]], missing: tuple[str, ...]) -> Message:
    return Message(kind, "\n".join(lines(_PASTE)), missing, slack="\n".join(lines(_SLACK)))


def _hhmm(value: datetime | None) -> str:
    return f"{value:%H:%M}" if value else "?"


def _severity(fields: Mapping[str, Any]) -> str:
    s = fields.get("severity")
    return f"{s} - {SEVERITY_NAMES[s]}" if s in SEVERITY_NAMES else MISSING


def _affected(fields: Mapping[str, Any]) -> str:
    users, tenants = fields.get("users_affected"), fields.get("tenants_affected")
    parts = []
    if tenants not in (None, ""):
        parts.append("All tenants" if tenants == "all" else f"{tenants} tenant(s)")
    if users not in (None, ""):
        parts.append(f"estimated {users} active sessions")
    if not parts:
        return MISSING
    return parts[0] if len(parts) == 1 else f"{parts[0]} ({parts[1]})"


def _missing(fields: Mapping[str, Any], names: Sequence[str]) -> tuple[str, ...]:
    return tuple(n for n in names if fields.get(n) in (None, "", []))


def detected(
    fields: Mapping[str, Any], now: datetime, next_update: timedelta = timedelta(minutes=30)
) -> Message:
    started = parse_time(fields.get("detected_at"))
    update_at = now + next_update
    responder = fields.get("responder") or MISSING
    if responder != MISSING and not str(responder).startswith("@"):
        responder = f"@{responder}"

    def lines(style: _Style) -> list[str]:
        b, v = style.bold, style.value
        return [
            f"🚨 {b('INCIDENT DETECTED')} 🚨",
            f"{b('Severity:')} {_severity(fields)}",
            f"{b('Status:')} {v(str(fields.get('status') or 'investigating').capitalize())}",
            f"{b('Impact:')} {v(fields.get('impact') or fields.get('title') or MISSING)}",
            f"{b('Affected:')} {v(_affected(fields))}",
            f"{b('Started:')} {f'{started:%Y-%m-%d %H:%M} UTC' if started else MISSING}",
            f"{b('Responder:')} {v(responder)}",
            "",
            f"{b('Next Update:')} In {round(next_update.total_seconds() / 60)} minutes "
            f"({update_at:%H:%M} UTC)",
        ]

    missing = _missing(fields, ["severity", "impact", "users_affected", "responder"])
    return _both("detected", lines, missing)


def statuspage(fields: Mapping[str, Any]) -> Message:
    """Statuspage.io's "create incident" body (`POST /v1/pages/PAGE_ID/incidents`)."""
    status = fields.get("status") or "investigating"
    # Statuspage's own words for the open states; a mitigated incident is "monitoring" there.
    page_status = {"investigating": "investigating", "mitigated": "monitoring"}.get(
        status, "resolved"
    )
    # One line each, as a status page shows them.
    name = escape.one_line(fields.get("title") or MISSING)
    impact = escape.one_line(fields.get("impact") or name)
    body = escape.one_line(fields.get("public_message") or "") or (
        f"We are investigating reports of {impact.rstrip('.').lower()}"
        if page_status == "investigating"
        else f"{impact}: {page_status}"
    )
    payload = {"incident": {"name": name, "status": page_status, "body": body}}
    # A command to paste into a shell: each value quoted for the shell (a title holding `"`,
    # `$(…)` or `;` stays one argument, and runs nothing) and URL-encoded by curl (a `&` in it
    # cannot add another field).
    # Once created there (its id in the record), the same incident is updated.
    incidents = "https://api.statuspage.io/v1/pages/YOUR_PAGE_ID/incidents"
    known = str(fields.get("statuspage_incident_id") or "")
    request = f"PATCH {incidents}/{shlex.quote(known)}" if known else f"POST {incidents}"
    text = "\n".join(
        [
            f"curl -X {request} \\",
            '  -H "Authorization: OAuth $IRKIT_STATUSPAGE_TOKEN" \\',
            f"  --data-urlencode {shlex.quote(f'incident[name]={name}')} \\",
            f"  --data-urlencode {shlex.quote(f'incident[status]={page_status}')} \\",
            f"  --data-urlencode {shlex.quote(f'incident[body]={body}')}",
        ]
    )
    return Message("statuspage", text, _missing(fields, ["title"]), payload)


def action_item_line(item: Mapping[str, Any], style: _Style = _PASTE) -> str:
    box = "[x]" if item.get("done") else "[ ]"
    extra = ", ".join(
        f"{k} {style.value(item[k])}"
        for k in ("owner", "due", "priority")
        if item.get(k) not in (None, "")
    )
    return f"- {box} {style.value(item.get('action', MISSING))}" + (f" ({extra})" if extra else "")


def resolved(fields: Mapping[str, Any]) -> Message:
    detected_at = parse_time(fields.get("detected_at"))
    resolved_at = parse_time(fields.get("resolved_at"))
    ttr = sla.durations(fields)["ttr"]
    duration = (
        f"{round(ttr.total_seconds() / 60)} minutes "
        f"({_hhmm(detected_at)} - {_hhmm(resolved_at)} UTC)"
        if ttr is not None
        else MISSING
    )
    users = fields.get("users_affected")
    affected = f"~{users} concurrent sessions" if users not in (None, "") else MISSING
    items = fields.get("action_items") or []

    def lines(style: _Style) -> list[str]:
        b, v = style.bold, style.value
        return [
            f"✅ {b('INCIDENT RESOLVED')} ✅",
            f"{b('Severity:')} {_severity(fields)}",
            f"{b('Status:')} {v(str(fields.get('status') or MISSING).capitalize())}",
            f"{b('Root Cause:')} {v(fields.get('root_cause') or MISSING)}",
            f"{b('Resolution:')} {v(fields.get('resolution') or MISSING)}",
            f"{b('Duration:')} {duration}",
            f"{b('Affected Users:')} {v(affected)}",
            "",
            b("Action Items:"),
            *([action_item_line(i, style) for i in items] or [f"- {MISSING}"]),
        ]

    missing = _missing(fields, ["root_cause", "resolution", "resolved_at", "action_items"])
    return _both("resolved", lines, missing)
