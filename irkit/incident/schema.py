"""The incident record's fields and their allowed values (design §5), and the id rule (§3.2)."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from irkit.errors import ConfigError

SEVERITIES = ("P0", "P1", "P2", "P3")
SEVERITY_NAMES = {"P0": "Critical", "P1": "High", "P2": "Medium", "P3": "Low"}
CATEGORIES = ("database", "infrastructure", "application", "security")
STATUSES = ("investigating", "mitigated", "resolved", "closed")

# The clocks, in the order an incident passes them.
TIMESTAMPS = (
    "impact_started_at",
    "detected_at",
    "acknowledged_at",
    "mitigated_at",
    "resolved_at",
    "closed_at",
)

FIELDS = (
    "incident_id",
    "title",
    "severity",
    "category",
    "status",
    "drill",
    *TIMESTAMPS,
    "detection_source",
    "impact",
    "users_affected",
    "tenants_affected",
    "root_cause",
    "root_cause_key",
    "resolution",
    "responder",
    "timeline",
    "action_items",
    "lessons",
)

# Written by the postmortem and the messages, beyond design §5's fields.
EXTRA_FIELDS = (
    "summary",
    "revenue_impact",
    "detection_review",
    "follow_up",
    "public_message",
    "drills",
    # "responder" when a person chose the severity: the decision list then only advises.
    "severity_source",
    # Runbook §6: set when a P0 or P1 is resolved.
    "postmortem_due_at",
    # The status page's own id for the incident, once created: later posts update it.
    "statuspage_incident_id",
    # The alert that opened it (`irkit listen`): name, Alertmanager's group key, labels, links.
    "alert",
    # PagerDuty's alert for it (dedup_key = incident id): "triggered", "acknowledged", "resolved".
    "pagerduty",
    # The environment it happened in (`--env NAME` when it was opened).
    "environment",
)
LESSONS = {
    "went_well": "What Went Well",
    "went_wrong": "What Went Wrong",
    "lucky": "Where We Got Lucky",
}
ACTION_PRIORITIES = SEVERITIES

ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,80}")
ROOT_CAUSE_KEY = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")


def check_id(incident_id: str) -> str:
    """An incident id is a folder name: refuse anything that could leave the incidents folder."""
    if not ID_PATTERN.fullmatch(incident_id or ""):
        shown = repr(incident_id) if incident_id else "an empty id"
        raise ConfigError(
            f"{shown} is not a valid incident id: use letters, digits, '.', '_' and '-', "
            "starting with a letter or digit, at most 81 characters (see: irkit incident list)"
        )
    return incident_id


def slug(text: str, limit: int = 40) -> str:
    """`Login page returns 500!` → `login-page-returns-500`: for ids and root-cause keys."""
    words = re.findall(r"[a-z0-9]+", text.lower())
    out = "-".join(words)[:limit].strip("-")
    return out or "incident"


def check_choice(name: str, value: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise ConfigError(f"{name} {value!r} is not one of: {', '.join(allowed)}")
    return value


def parse_time(value: Any) -> datetime | None:
    """A record timestamp as an aware UTC datetime; None for empty or unreadable values (the
    caller reports those rather than guessing)."""
    if isinstance(value, datetime):
        return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)


# Clocks disagree a little: a time this far ahead of ours is still taken as now.
CLOCK_SKEW = timedelta(minutes=5)


def time_in_order(
    name: str, value: str, *, not_before: Mapping[str, Any], now: datetime, hint: str = ""
) -> datetime | None:
    """A time a responder gives for the record, refused if it is unreadable, in the future, or
    before a time of the record it must follow (`not_before`: field name → recorded value)."""
    text = time_parameter(name, value)
    when = parse_time(text)
    if when is None:
        return None
    if when > now + CLOCK_SKEW:
        raise ConfigError(
            f"{name} {text} is in the future (now {format_time(now)}): give UTC, or add the "
            "zone, e.g. +01:00"
        )
    for other, recorded in not_before.items():
        earlier = parse_time(recorded)
        if earlier is not None and when < earlier:
            raise ConfigError(
                f"{name} {text} is before {other} ({format_time(earlier)}): check the time and "
                f"its zone{hint}"
            )
    return when


def format_time(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def time_parameter(name: str, value: str) -> str:
    """A timestamp a responder gave: ISO-8601, UTC unless it says otherwise; empty stays empty."""
    if not value:
        return ""
    parsed = parse_time(value)
    if parsed is None:
        raise ConfigError(
            f"{name} {value!r} is not a time: use ISO-8601, e.g. 2026-11-27T14:33:00Z "
            "(without a zone it is read as UTC)"
        )
    return format_time(parsed)


def action_item(text: str) -> dict[str, Any]:
    """`Add pool alert | Backend Lead | 2026-12-01 | P1` → an action item (owner, due date and
    priority optional; a leading `[x]` marks it done)."""
    raw = text.strip()
    done = raw.lower().startswith("[x]")
    raw = re.sub(r"^\[[ xX]?\]\s*", "", raw)
    parts = [p.strip() for p in raw.split("|")]
    if not parts[0] or len(parts) > 4:
        raise ConfigError(
            f"action item {text!r}: write 'action | owner | due date | priority' "
            "(owner, due date and priority may be left out)"
        )
    parts += [""] * (4 - len(parts))
    action, owner, due, priority = parts
    if due:
        try:
            # Kept as written in full ("2026-09-03"): dates compare and sort as text too.
            due = datetime.strptime(due, "%Y-%m-%d").date().isoformat()
        except ValueError:
            raise ConfigError(f"action item {text!r}: due date {due!r} is not YYYY-MM-DD") from None
    if priority and priority not in ACTION_PRIORITIES:
        raise ConfigError(
            f"action item {text!r}: priority {priority!r} is not one of "
            f"{', '.join(ACTION_PRIORITIES)}"
        )
    return {"action": action, "owner": owner, "due": due, "priority": priority, "done": done}


def add_action_items(existing: Any, texts: Sequence[str]) -> list[dict[str, Any]]:
    """The recorded action items with `texts` added, none twice (by their action)."""
    items = list(existing or [])
    known = {i.get("action") for i in items}
    items += [i for i in map(action_item, texts) if i["action"] not in known]
    return items
