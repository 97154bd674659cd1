"""Runbook §6: a P0 or P1 incident gets its postmortem within 5 days of its resolution. The
monthly report lists those that did not: written after the due date, or not written and past it."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import pandas as pd

from irkit.incident import schema, sla
from irkit.incident.load import Incident

COLUMNS = ("incident_id", "severity", "title", "due", "written")


def late(incidents: Sequence[Incident], months: Sequence[str], now: datetime) -> pd.DataFrame:
    """The incidents detected in `months` (drills left out) whose postmortem was late or is
    overdue; one still within its 5 days is not listed."""
    rows = []
    for incident in incidents:
        detected = incident.time("detected_at")
        if incident.drill or detected is None or f"{detected:%Y-%m}" not in months:
            continue
        due = sla.postmortem_due(incident.fields)
        if due is None:
            continue
        written = schema.parse_time(incident.fields.get("postmortem_written_at"))
        if (written is not None and written <= due) or (written is None and now <= due):
            continue
        rows.append(
            {
                "incident_id": incident.incident_id,
                "severity": incident.get("severity", ""),
                "title": incident.get("title", ""),
                "due": f"{due:%Y-%m-%d %H:%M}",
                "written": f"{written:%Y-%m-%d %H:%M}" if written else "not yet",
            }
        )
    return pd.DataFrame(rows, columns=list(COLUMNS))
