"""The runbook's "Metrics to Track" from the incident table (design §5).

Every distribution is shown with its median, p90 and n beside the mean: durations are skewed, and
a mean alone misleads. p90 is pandas' linear interpolation between the two nearest incidents.
Drills are never counted; they are listed apart.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import pandas as pd

from irkit.incident import schema, sla
from irkit.metrics.table import METRICS

REPEAT_WINDOW = pd.Timedelta(days=90)


def real(table: pd.DataFrame) -> pd.DataFrame:
    """Incidents that count: not drills, and placed in a month by their detection time."""
    return table[~table["drill"] & table["month"].notna()]


def durations(table: pd.DataFrame) -> pd.DataFrame:
    """Per month, severity and metric: mean, median, p90 and n, in minutes."""
    rows = []
    for (month, severity), group in real(table).groupby(["month", "severity"], sort=True):
        for metric in METRICS:
            values = group[f"{metric}_min"].dropna()
            rows.append(
                {
                    "month": month,
                    "severity": severity,
                    "metric": metric,
                    "n": int(values.size),
                    "mean": float(values.mean()) if values.size else None,
                    "median": float(values.median()) if values.size else None,
                    "p90": float(values.quantile(0.9)) if values.size else None,
                }
            )
    return pd.DataFrame(rows, columns=["month", "severity", "metric", "n", "mean", "median", "p90"])


def sla_compliance(table: pd.DataFrame, now: datetime) -> pd.DataFrame:
    """Per severity and clock (response, resolution): met, breached, pending, and compliance =
    met / (met + breached). An open incident past its target is breached; one still within it is
    pending and not counted."""
    counts: dict[tuple[str, str], dict[str, int]] = {}
    for row in _records(real(table)):
        fields = {"severity": row["severity"]}
        for name in schema.TIMESTAMPS:
            if isinstance(row[name], pd.Timestamp) and not pd.isna(row[name]):
                fields[name] = row[name].isoformat()
        for clock in sla.clocks(fields):
            state = clock.state(now)
            if state == "impossible":
                continue  # listed as a data problem; counted neither met nor breached
            tally = counts.setdefault((clock.severity, clock.name),
                                      {"met": 0, "breached": 0, "pending": 0})  # fmt: skip
            tally[state] += 1
    rows = []
    for (severity, name), tally in sorted(counts.items()):
        decided = tally["met"] + tally["breached"]
        pct = 100.0 * tally["met"] / decided if decided else None
        rows.append({"severity": severity, "clock": name, **tally, "compliance_pct": pct})
    return pd.DataFrame(
        rows, columns=["severity", "clock", "met", "breached", "pending", "compliance_pct"]
    )


def repeats(table: pd.DataFrame, months: Sequence[str] | None = None) -> pd.DataFrame:
    """Incidents whose root_cause_key appeared on an earlier incident within 90 days; only those
    detected in `months` if given (the earlier one may come from before them)."""
    counted = real(table).sort_values("detected_at")
    rows = []
    last_seen: dict[str, Any] = {}
    for row in _records(counted):
        key, at = str(row["root_cause_key"] or ""), row["detected_at"]
        if not key:
            continue
        earlier = last_seen.get(key)
        if earlier is not None and at - earlier <= REPEAT_WINDOW:
            days = (at - earlier).days
            rows.append({"incident_id": row["incident_id"], "root_cause_key": key,
                         "month": row["month"], "days_since_last": days})  # fmt: skip
        last_seen[key] = at
    found = pd.DataFrame(
        rows, columns=["incident_id", "root_cause_key", "month", "days_since_last"]
    )
    return found if months is None else found[found["month"].isin(months)]


def _records(table: pd.DataFrame) -> list[dict[str, Any]]:
    return [{str(k): v for k, v in row.items()} for row in table.to_dict("records")]
