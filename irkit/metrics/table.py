"""Incident records as one table, one row per incident, and the records that cannot be counted
as they are, each with its reason: nothing is dropped or counted silently.

Durations are in minutes, named by their two ends (design §5): TTD = detected - impact started,
TTA = acknowledged - detected, TTM = mitigated - impact started, TTR = resolved - detected,
impact = resolved - impact started. A duration whose end comes before its start is impossible:
it is left empty and the record is listed with the reason.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import pandas as pd

from irkit.incident import schema, sla
from irkit.incident.load import Incident

METRICS = tuple(sla.DURATIONS)  # ttd, tta, ttm, ttr, impact
COLUMNS = (
    "incident_id",
    "title",
    "severity",
    "category",
    "status",
    "drill",
    "month",
    *schema.TIMESTAMPS,
    *(f"{m}_min" for m in METRICS),
    "root_cause_key",
    "actions_open",
    "actions_done",
    "actions_overdue",
)


@dataclass(frozen=True)
class Problem:
    incident_id: str
    reason: str


def build(incidents: Sequence[Incident], today: datetime) -> tuple[pd.DataFrame, list[Problem]]:
    """The table of `incidents`, and the data-quality problems found while building it."""
    rows: list[dict[str, object]] = []
    problems: list[Problem] = []
    for incident in incidents:
        row, found = _row(incident, today)
        rows.append(row)
        problems += found
    table = pd.DataFrame(rows, columns=list(COLUMNS))
    for name in schema.TIMESTAMPS:
        table[name] = pd.to_datetime(table[name], utc=True)
    for name in METRICS:
        table[f"{name}_min"] = table[f"{name}_min"].astype("float64")
    table["drill"] = table["drill"].astype(bool)
    return table, problems


def _row(incident: Incident, today: datetime) -> tuple[dict[str, object], list[Problem]]:
    problems = [Problem(incident.incident_id, w) for w in incident.warnings]
    if not incident.complete:
        failed = [n.name for n in incident.notebooks if not n.complete]
        problems.append(
            Problem(incident.incident_id, f"incomplete notebook(s): {', '.join(failed)}")
        )
    times = {name: incident.time(name) for name in schema.TIMESTAMPS}
    detected = times["detected_at"]
    if detected is None:
        problems.append(
            Problem(
                incident.incident_id, "no detected_at: it belongs to no month and is not counted"
            )
        )
    row: dict[str, object] = {
        "incident_id": incident.incident_id,
        "title": incident.get("title", ""),
        "severity": incident.get("severity", ""),
        "category": incident.get("category", ""),
        "status": incident.get("status", ""),
        "drill": incident.drill,
        "month": detected.strftime("%Y-%m") if detected else None,
        **times,
        "root_cause_key": incident.get("root_cause_key", ""),
    }
    for name, (start, end, _) in sla.DURATIONS.items():
        # From the times parsed above: the same as sla.durations, without parsing them again.
        began, ended = times[start], times[end]
        minutes = (ended - began).total_seconds() / 60 if began and ended else None
        if minutes is not None and minutes < 0:
            problems.append(
                Problem(
                    incident.incident_id,
                    f"{_end(end)} before {_end(start)}: {name.upper()} left out",
                )
            )
            minutes = None
        row[f"{name}_min"] = minutes
    row.update(_actions(incident.get("action_items", []), today))
    return row, problems


def _end(field: str) -> str:
    return field.removesuffix("_at").replace("_", " ")


def _actions(items: Iterable[object], today: datetime) -> dict[str, int]:
    counts = {"actions_open": 0, "actions_done": 0, "actions_overdue": 0}
    for item in items:
        if not isinstance(item, dict):
            continue
        state = item_state(item, today)
        if state == "done":
            counts["actions_done"] += 1
            continue
        counts["actions_open"] += 1  # overdue ones are open too, and counted apart as well
        if state == "overdue":
            counts["actions_overdue"] += 1
    return counts


def item_state(item: dict[str, Any], today: datetime) -> str:
    """done, overdue (past its due date and not done) or open. Dates are compared as dates:
    a due date written "2026-9-3" in an older record is still September."""
    if item.get("done"):
        return "done"
    due = _due_date(item)
    return "overdue" if due is not None and due < today.date() else "open"


def _due_date(item: dict[str, Any]) -> date | None:
    try:
        return datetime.strptime(str(item.get("due") or ""), "%Y-%m-%d").date()
    except ValueError:
        return None


ITEM_COLUMNS = ("incident_id", "action", "owner", "due", "priority", "state")
_STATE_ORDER = {"overdue": 0, "open": 1, "done": 2}


def action_items(
    incidents: Sequence[Incident], ids: Iterable[str], today: datetime
) -> pd.DataFrame:
    """The postmortems' action items of the incidents `ids`, one row each: what, who, when, and
    its state (overdue: past its due date and not done); overdue first, then open, then done,
    each by due date."""
    wanted = set(ids)
    rows = []
    for incident in incidents:
        if incident.incident_id not in wanted:
            continue
        for item in incident.get("action_items", []) or []:
            if not isinstance(item, dict):
                continue
            due_date = _due_date(item)
            due = due_date.isoformat() if due_date else str(item.get("due") or "")
            state = item_state(item, today)
            rows.append(
                {
                    "incident_id": incident.incident_id,
                    "action": str(item.get("action") or ""),
                    "owner": str(item.get("owner") or ""),
                    "due": due,
                    "priority": str(item.get("priority") or ""),
                    "state": state,
                }
            )
    rows.sort(key=lambda r: (_STATE_ORDER[r["state"]], r["due"] or "9999", r["incident_id"]))
    return pd.DataFrame(rows, columns=list(ITEM_COLUMNS))
