"""The monthly analysis as a notebook shows it: headline numbers, the tables, the charts and the
data-quality list, and the computed tables as JSON (`application/vnd.irkit.metrics+json`), which
is what tools read from the executed notebook.

    analysis = monthly.analyse(month="2026-11", months=6)
    analysis.headline()
"""

from __future__ import annotations

import base64
import io
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from irkit import escape
from irkit.catalogue.parameters import default
from irkit.errors import ConfigError
from irkit.metrics import charts, layout, postmortems, stats, table

METRICS_MIME = "application/vnd.irkit.metrics+json"
_MONTH = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")


def parse_month(text: str) -> str:
    if not _MONTH.match(text):
        raise ConfigError(f"month {text!r}: give it as YYYY-MM, e.g. 2026-11")
    return text


def window(month: str, months: int) -> list[str]:
    """The `months` months ending with `month`, oldest first."""
    from irkit import bounds

    bounds.count("months", "months", months)
    end = pd.Period(month, freq="M")
    return [str(end - i) for i in range(months - 1, -1, -1)]


def analyse(
    *,
    month: str = "",
    months: int = default("months"),
    incidents_dir: str = "",
    environment: str = "",
    now: datetime | None = None,
) -> Analysis:
    """The analysis of `months` months ending with `month`; with `environment`, of that
    environment's incidents only."""
    from irkit.incident import store
    from irkit.metrics import index

    now = now or datetime.now(UTC)
    month = parse_month(month) if month else now.strftime("%Y-%m")
    root = Path(incidents_dir) if incidents_dir else store.incidents_dir()
    if incidents_dir and not root.is_dir():
        raise ConfigError(f"no incident folder at {root}")
    incidents, folder_problems = index.load(root) if root.is_dir() else ([], [])
    if environment:
        incidents = [i for i in incidents if i.get("environment") == environment]
    frame, problems = table.build(incidents, now)
    months_shown = window(month, months)
    ids_in_window = set(frame.loc[frame["month"].isin(months_shown), "incident_id"])
    quality = [
        {"incident_id": p.incident_id, "reason": p.reason}
        for p in problems
        if p.incident_id in ids_in_window or "no detected_at" in p.reason
    ] + [{"incident_id": text.partition(":")[0], "reason": text} for text in folder_problems]
    shown = frame[frame["month"].isin(months_shown)]
    counted_ids = stats.real(shown)["incident_id"]
    return Analysis(
        month,
        months_shown,
        shown,
        quality,
        now,
        root,
        stats.repeats(frame, months_shown),
        table.action_items(incidents, counted_ids, now),
        late_postmortems=postmortems.late(incidents, months_shown, now),
    )


@dataclass
class Analysis:
    month: str
    months: list[str]
    table: pd.DataFrame
    quality: list[dict[str, str]]
    now: datetime
    root: Path
    # Found over every record: a repeat's earlier incident may come before the months shown.
    repeated: pd.DataFrame
    # The counted incidents' action items, one row each (not the drills').
    items: pd.DataFrame
    late_postmortems: pd.DataFrame = field(default_factory=pd.DataFrame)

    @property
    def counted(self) -> pd.DataFrame:
        return stats.real(self.table)

    @property
    def this_month(self) -> pd.DataFrame:
        return self.counted[self.counted["month"] == self.month]

    def computed(self) -> dict[str, Any]:
        durations = stats.durations(self.table)
        return {
            "month": self.month,
            "months": self.months,
            "headline": self._headline(),
            "durations": _records(durations),
            "sla": _records(stats.sla_compliance(self.table, self.now)),
            "by_category": {
                str(k): int(v) for k, v in self.counted["category"].value_counts().items()
            },
            "by_severity_month": {
                f"{key[0]}/{key[1]}": int(n)  # type: ignore[index]
                for key, n in self.counted.groupby(["month", "severity"]).size().items()
            },
            "repeats": _records(self.repeated),
            "actions": {
                name: int(self.counted[f"actions_{name}"].sum())
                for name in ("open", "overdue", "done")
            },
            "action_items": _records(self.items),
            "drills": self.table.loc[self.table["drill"], "incident_id"].tolist(),
            "quality": self.quality,
        }

    def _headline(self) -> dict[str, Any]:
        rows = self.this_month
        ttr = rows["ttr_min"].dropna()
        return {
            "incidents": len(rows),
            "by_severity": {str(k): int(v) for k, v in rows["severity"].value_counts().items()},
            "open": int((~rows["status"].isin(["resolved", "closed"])).sum()),
            "ttr_median_min": float(ttr.median()) if ttr.size else None,
            "ttr_mean_min": float(ttr.mean()) if ttr.size else None,
            "ttr_p90_min": float(ttr.quantile(0.9)) if ttr.size else None,
            "ttr_n": int(ttr.size),
            "drills": int(self.table[self.table["month"] == self.month]["drill"].sum()),
        }

    # --- what the notebook shows ---------------------------------------------------------

    def headline(self) -> _Bundle:
        h = self._headline()
        if not h["incidents"]:
            text = (
                f"No incidents in {self.month} (read from {self.root}); "
                f"{h['drills']} drill(s) left out."
            )
        else:
            severities = ", ".join(f"{s} {n}" for s, n in sorted(h["by_severity"].items()))
            ttr = "no incident resolved"
            if h["ttr_n"]:
                ttr = (
                    f"median {h['ttr_median_min']:.0f} min, mean {h['ttr_mean_min']:.0f}, "
                    f"p90 {h['ttr_p90_min']:.0f} (n={h['ttr_n']})"
                )
            problems = len(self.quality)
            text = (
                f"{self.month}: {h['incidents']} incident(s) ({severities}); {h['open']} "
                f"still open; time to resolve: {ttr}; {h['drills']} drill(s) left out; "
                f"{problems} record(s) with data problems (listed below)."
            )
        data = {METRICS_MIME: self.computed()}
        return _Bundle({"text/plain": text, "text/html": f"<h3>{escape.html(text)}</h3>", **data})

    def durations(self) -> _Bundle:
        frame = stats.durations(self.table)
        span = f"{self.months[0]} to {self.months[-1]}" if len(self.months) > 1 else self.month
        grids = [(self.month, stats.by_severity(self.this_month))]
        if len(self.months) > 1:
            grids.append((span, stats.by_severity(self.table)))
        figures = [
            charts.distribution(self.counted, m, label, span)
            for m, label in (
                ("ttr", "Time to resolve"),
                ("ttd", "Time to detect"),
                ("tta", "Time to acknowledge"),
            )
        ]
        figures.append(charts.ttr_trend(frame, self.months))
        # Every month's mean, median, p90 and n per severity stay in the JSON (`durations`).
        text = [f"Durations, {title}: median (p90, n)\n{layout.grid_text(g)}" for title, g in grids]
        html = [
            f"<h4>{escape.html(f'Durations, {title}')}</h4>{layout.grid_html(g)}"
            for title, g in grids
        ]
        return _Bundle(
            {"text/plain": "\n\n".join(text), "text/html": "".join(html) + _images(figures)}
        )

    def sla(self, goal_pct: float = default("sla_goal_pct")) -> _Bundle:
        frame = stats.sla_compliance(self.table, self.now)
        return _tables_and_figures(
            [("SLA compliance", _rounded(frame))], [charts.sla(frame, goal_pct)]
        )

    def volume(self) -> _Bundle:
        counts = (
            self.counted.groupby(["month", "severity"])
            .size()
            .unstack(fill_value=0)
            .reindex(self.months, fill_value=0)
        )
        counts.columns.name = None
        return _tables_and_figures(
            [("Incidents per month and severity", counts.reset_index())],
            [
                charts.by_severity_per_month(self.counted, self.months),
                charts.by_category(self.counted),
            ],
        )

    def repeats(self) -> _Bundle:
        frame = self.repeated
        return _tables_and_figures(
            [("Repeat incidents (same root_cause_key within 90 days)", frame)],
            [charts.repeated_causes(frame)],
        )

    def actions(self) -> _Bundle:
        states = self.items["state"].value_counts()
        overdue, done = states.get("overdue", 0), states.get("done", 0)
        # "Open" as the JSON's actions.open counts it: every item not done, overdue ones included.
        title = (
            f"Action items: {overdue + states.get('open', 0)} open ({overdue} overdue), {done} done"
        )
        return _tables_and_figures([(title, self.items)], [])

    def postmortems(self) -> _Bundle:
        return _tables_and_figures(
            [("P0 and P1 postmortems not written within 5 days", self.late_postmortems)], []
        )

    def drills(self) -> _Bundle:
        frame = self.table.loc[self.table["drill"], ["incident_id", "month", "severity", "title"]]
        return _tables_and_figures([("Drills (never counted above)", frame)], [])

    def data_quality(self) -> _Bundle:
        frame = pd.DataFrame(self.quality, columns=["incident_id", "reason"])
        return _tables_and_figures(
            [("Records with missing or impossible times, incomplete or corrupt notebooks", frame)],
            [],
        )


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [
        {str(k): (None if isinstance(v, float) and pd.isna(v) else v) for k, v in row.items()}
        for row in frame.to_dict("records")
    ]


def _rounded(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.round(1)


def _png(figure: Any) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _tables_and_figures(tables: list[tuple[str, pd.DataFrame]], figures: list[Any]) -> _Bundle:
    text, html = [], []
    for title, frame in tables:
        text.append(f"{title}\n{layout.frame_text(frame)}")
        html.append(f"<h4>{escape.html(title)}</h4>{layout.frame_html(frame)}")
    return _Bundle({"text/plain": "\n\n".join(text), "text/html": "".join(html) + _images(figures)})


def _images(figures: list[Any]) -> str:
    return "".join(
        f'<img alt="chart" style="max-width:100%" src="data:image/png;base64,{_png(figure)}"/>'
        for figure in figures
    )


class _Bundle:
    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        return self.data
