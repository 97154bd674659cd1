"""The runbook's stakeholder messages, rendered from the record: Slack's "INCIDENT DETECTED" and
"INCIDENT RESOLVED" (§3, §5) and the status-page incident (§3). A field the record lacks is
named, never invented."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from irkit.incident import sla
from irkit.incident.schema import SEVERITY_NAMES, parse_time

MISSING = "(not recorded)"


@dataclass(frozen=True)
class Message:
    """A message ready to paste (Markdown, as in the runbook) or to post."""

    kind: str  # "detected", "resolved", "statuspage"
    markdown: str
    missing: tuple[str, ...] = ()
    payload: dict[str, Any] = field(default_factory=dict)

    @property
    def slack(self) -> str:
        # Slack's mrkdwn bolds with one asterisk.
        return re.sub(r"\*\*(.+?)\*\*", r"*\1*", self.markdown)

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        note = f"\n\nNot in the record yet: {', '.join(self.missing)}." if self.missing else ""
        return {
            "text/plain": self.markdown + note,
            "text/markdown": f"```markdown\n{self.markdown}\n```{note}",
        }


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
    text = "\n".join(
        [
            "🚨 **INCIDENT DETECTED** 🚨",
            f"**Severity:** {_severity(fields)}",
            f"**Status:** {str(fields.get('status') or 'investigating').capitalize()}",
            f"**Impact:** {fields.get('impact') or fields.get('title') or MISSING}",
            f"**Affected:** {_affected(fields)}",
            f"**Started:** {f'{started:%Y-%m-%d %H:%M} UTC' if started else MISSING}",
            f"**Responder:** {responder}",
            "",
            f"**Next Update:** In {round(next_update.total_seconds() / 60)} minutes "
            f"({update_at:%H:%M} UTC)",
        ]
    )
    missing = _missing(fields, ["severity", "impact", "users_affected", "responder"])
    return Message("detected", text, missing)


def statuspage(fields: Mapping[str, Any]) -> Message:
    """Statuspage.io's "create incident" body (`POST /v1/pages/PAGE_ID/incidents`)."""
    status = fields.get("status") or "investigating"
    # Statuspage's own words for the open states; a mitigated incident is "monitoring" there.
    page_status = {"investigating": "investigating", "mitigated": "monitoring"}.get(
        status, "resolved"
    )
    name = fields.get("title") or MISSING
    body = fields.get("public_message") or (
        f"We are investigating reports of {str(fields.get('impact') or name).rstrip('.').lower()}"
        if page_status == "investigating"
        else f"{fields.get('impact') or name}: {page_status}"
    )
    payload = {"incident": {"name": name, "status": page_status, "body": body}}
    text = "\n".join(
        [
            "curl -X POST https://api.statuspage.io/v1/pages/YOUR_PAGE_ID/incidents \\",
            '  -H "Authorization: OAuth $IRKIT_STATUSPAGE_TOKEN" \\',
            f'  -d "incident[name]={name}" \\',
            f'  -d "incident[status]={page_status}" \\',
            f'  -d "incident[body]={body}"',
        ]
    )
    return Message("statuspage", text, _missing(fields, ["title"]), payload)


def action_item_line(item: Mapping[str, Any]) -> str:
    box = "[x]" if item.get("done") else "[ ]"
    extra = ", ".join(
        f"{k} {item[k]}" for k in ("owner", "due", "priority") if item.get(k) not in (None, "")
    )
    return f"- {box} {item.get('action', MISSING)}" + (f" ({extra})" if extra else "")


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
    lines = [
        "✅ **INCIDENT RESOLVED** ✅",
        f"**Severity:** {_severity(fields)}",
        f"**Status:** {str(fields.get('status') or MISSING).capitalize()}",
        f"**Root Cause:** {fields.get('root_cause') or MISSING}",
        f"**Resolution:** {fields.get('resolution') or MISSING}",
        f"**Duration:** {duration}",
        f"**Affected Users:** {affected}",
        "",
        "**Action Items:**",
        *([action_item_line(i) for i in items] or [f"- {MISSING}"]),
    ]
    missing = _missing(fields, ["root_cause", "resolution", "resolved_at", "action_items"])
    return Message("resolved", "\n".join(lines), missing)
