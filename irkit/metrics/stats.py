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
    """Per month, severity and metric: mean, median, p90 and n, in minutes (None where n is 0)."""
    columns = [f"{m}_min" for m in METRICS]
    groups = real(table).groupby(["month", "severity"], sort=True)[columns]
    # One table per statistic, indexed by (month, severity), a column per metric.
    found: dict[str, dict[Any, dict[Any, Any]]] = {
        name: frame.to_dict("index")
        for name, frame in (
            ("n", groups.count()),
            ("mean", groups.mean()),
            ("median", groups.median()),
            ("p90", groups.quantile(0.9)),
        )
    }
    rows = []
    for key, counts in found["n"].items():
        for metric, column in zip(METRICS, columns, strict=True):
            count = int(counts[column])
            rows.append(
                {
                    "month": key[0],
                    "severity": key[1],
                    "metric": metric,
                    "n": count,
                    **{
                        name: float(found[name][key][column]) if count else None
                        for name in ("mean", "median", "p90")
                    },
                }
            )
    return pd.DataFrame(rows, columns=["month", "severity", "metric", "n", "mean", "median", "p90"])


def by_severity(table: pd.DataFrame) -> pd.DataFrame:
    """Per severity and metric over every month of `table`: n, median and p90 in minutes (None
    where n is 0)."""
    rows = []
    for severity, group in real(table).groupby("severity", sort=True):
        for metric in METRICS:
            values = group[f"{metric}_min"].dropna()
            found = bool(values.size)
            rows.append(
                {
                    "severity": severity,
                    "metric": metric,
                    "n": int(values.size),
                    "median": float(values.median()) if found else None,
                    "p90": float(values.quantile(0.9)) if found else None,
                }
            )
    return pd.DataFrame(rows, columns=["severity", "metric", "n", "median", "p90"])


def sla_compliance(table: pd.DataFrame, now: datetime) -> pd.DataFrame:
    """Per severity and clock (response, resolution): met, breached, pending, and compliance =
    met / (met + breached). An open incident past its target is breached; one still within it is
    pending and not counted."""
    counts: dict[tuple[str, str], dict[str, int]] = {}
    for severity, *times in _rows(real(table), ["severity", *schema.TIMESTAMPS]):
        fields: dict[str, Any] = {"severity": severity}
        for name, value in zip(schema.TIMESTAMPS, times, strict=True):
            if not pd.isna(value):
                fields[name] = value.to_pydatetime()
        for clock in sla.clocks(fields):
            state = clock.state(now)
            if state == "impossible":
                continue  # listed as a data problem; counted neither met nor breached
            tally = counts.setdefault(
                (clock.severity, clock.name), {"met": 0, "breached": 0, "pending": 0}
            )
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
    columns = ["incident_id", "root_cause_key", "month", "detected_at"]
    for incident_id, key, month, at in _rows(counted, columns):
        if not key:
            continue
        earlier = last_seen.get(key)
        if earlier is not None and at - earlier <= REPEAT_WINDOW:
            rows.append(
                {
                    "incident_id": incident_id,
                    "root_cause_key": key,
                    "month": month,
                    "days_since_last": (at - earlier).days,
                }
            )
        last_seen[key] = at
    found = pd.DataFrame(
        rows, columns=["incident_id", "root_cause_key", "month", "days_since_last"]
    )
    return found if months is None else found[found["month"].isin(months)]


def _rows(table: pd.DataFrame, columns: list[str]) -> list[tuple[Any, ...]]:
    """The given columns, row by row, as plain tuples (much faster than records of every
    column)."""
    return list(table[columns].itertuples(index=False, name=None))
