"""The runbook's SLA targets and the record's clocks (design §5)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from irkit.incident.schema import format_time, parse_time

# severity: (respond within, resolve within)
TARGETS = {
    "P0": (timedelta(minutes=15), timedelta(hours=2)),
    "P1": (timedelta(hours=1), timedelta(hours=8)),
    "P2": (timedelta(hours=4), timedelta(hours=24)),
    "P3": (timedelta(hours=24), timedelta(days=5)),
}

# Runbook §6: the postmortem within 5 days of the resolution, for these severities.
POSTMORTEM_WITHIN = timedelta(days=5)
POSTMORTEM_SEVERITIES = ("P0", "P1")


def postmortem_due(fields: Mapping[str, Any]) -> datetime | None:
    """When the postmortem is due: as recorded at the resolution, else (a record resolved before
    the due date was kept) 5 days after it; None when the severity needs none (now: an incident
    re-triaged from P1 to P2 after its resolution owes none) or it is open."""
    if fields.get("severity") not in POSTMORTEM_SEVERITIES:
        return None
    recorded = parse_time(fields.get("postmortem_due_at"))
    if recorded is not None:
        return recorded
    resolved = parse_time(fields.get("resolved_at"))
    return None if resolved is None else resolved + POSTMORTEM_WITHIN


# name: (from, to, meaning)
DURATIONS = {
    "ttd": ("impact_started_at", "detected_at", "time to detect"),
    "tta": ("detected_at", "acknowledged_at", "time to acknowledge (response)"),
    "ttm": ("impact_started_at", "mitigated_at", "time to mitigate"),
    "ttr": ("detected_at", "resolved_at", "time to resolve (the runbook's Duration)"),
    "impact": ("impact_started_at", "resolved_at", "impact duration (the customer's view)"),
}


def durations(fields: Mapping[str, Any]) -> dict[str, timedelta | None]:
    """Each metric of one incident; None where an end is missing."""
    out: dict[str, timedelta | None] = {}
    for name, (start, end) in ((k, v[:2]) for k, v in DURATIONS.items()):
        a, b = parse_time(fields.get(start)), parse_time(fields.get(end))
        out[name] = b - a if a and b else None
    return out


def minutes(value: timedelta | None) -> str:
    if value is None:
        return "unknown"
    total = round(value.total_seconds() / 60)
    sign = "-" if total < 0 else ""
    total = abs(total)
    if total < 60:
        return f"{sign}{total} min"
    hours, mins = divmod(total, 60)
    if hours < 48:
        return f"{sign}{hours} h {mins:02d} min"
    return f"{sign}{hours // 24} d {hours % 24} h"


@dataclass(frozen=True)
class Clock:
    name: str  # "response" or "resolution"
    severity: str
    starts: datetime
    target: timedelta
    stopped_at: datetime | None

    @property
    def deadline(self) -> datetime:
        return self.starts + self.target

    def state(self, now: datetime) -> str:
        """met, breached or pending; "impossible" when it stopped before it started (a typo or a
        wrong zone in the record), which counts as neither met nor breached."""
        if self.stopped_at is not None and self.stopped_at < self.starts:
            return "impossible"
        end = self.stopped_at or now
        if end > self.deadline:
            return "breached"
        return "met" if self.stopped_at else "pending"

    def left(self, now: datetime) -> timedelta:
        return self.deadline - (self.stopped_at or now)


def clocks(fields: Mapping[str, Any]) -> list[Clock]:
    """The response and resolution clocks of the record's severity, both started at detection."""
    severity = fields.get("severity")
    detected = parse_time(fields.get("detected_at"))
    if severity not in TARGETS or detected is None:
        return []
    respond, resolve = TARGETS[severity]
    return [
        Clock("response", severity, detected, respond, parse_time(fields.get("acknowledged_at"))),
        Clock("resolution", severity, detected, resolve, parse_time(fields.get("resolved_at"))),
    ]


def _left(clock: Clock, now: datetime) -> str:
    state = clock.state(now)
    if state == "impossible":
        return "stopped before it started: correct the record"
    if state == "breached":
        return f"over by {minutes(-clock.left(now))}"
    return minutes(clock.left(now))


class ClockTable:
    """The SLA clocks as a notebook shows them: deadlines in UTC, and time left."""

    def __init__(self, fields: Mapping[str, Any], now: datetime) -> None:
        self.clocks = clocks(fields)
        self.now = now
        self.fields = fields

    def rows(self) -> list[dict[str, str]]:
        return [
            {
                "clock": c.name,
                "target": minutes(c.target),
                "deadline (UTC)": format_time(c.deadline),
                "state": c.state(self.now),
                "left": _left(c, self.now),
            }
            for c in self.clocks
        ]

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        from irkit import escape

        rows = self.rows()
        if not rows:
            text = "No SLA clock yet: the record needs a severity and a detection time."
            return {"text/plain": text, "text/html": f"<p>{escape.html(text)}</p>"}
        head = list(rows[0])
        text = "\n".join(
            [f"SLA clocks ({self.fields.get('severity')}), now {format_time(self.now)}"]
            + ["  " + "  ".join(f"{r[h]}" for h in head) for r in rows]
        )
        colour = {
            "breached": "#f8d7da",
            "pending": "#fff3cd",
            "met": "#d4edda",
            "impossible": "#f8d7da",
        }
        html = (
            f"<p><b>SLA clocks ({escape.html(str(self.fields.get('severity')))})</b>, now "
            f"{format_time(self.now)}</p><table><tr>"
            + "".join(f"<th>{escape.html(h)}</th>" for h in head)
            + "</tr>"
            + "".join(
                f"<tr style='background:{colour[r['state']]}'>"
                + "".join(f"<td>{escape.html(r[h])}</td>" for h in head)
                + "</tr>"
                for r in rows
            )
            + "</table>"
        )
        return {"text/plain": text, "text/html": html}
