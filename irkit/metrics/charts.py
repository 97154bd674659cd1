"""The monthly analysis' charts (design §5), readable when printed: a title, units on the axes,
and n beside every distribution."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from irkit import escape
from irkit.metrics.layout import duration

SEVERITIES = ["P0", "P1", "P2", "P3"]
_COLOURS = {"P0": "#c44e52", "P1": "#dd8452", "P2": "#4c72b0", "P3": "#8c8c8c"}


def _figure(title: str, height: float = 3.2) -> tuple[Any, Any]:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    figure = Figure(figsize=(7.0, height), dpi=96, layout="constrained")
    axes = figure.add_subplot()
    axes.set_title(title, fontsize=11)
    return figure, axes


def by_severity_per_month(counted: pd.DataFrame, months: list[str]) -> Any:
    figure, axes = _figure("Incidents per month, by severity")
    bottom = pd.Series(0, index=months, dtype=float)
    for severity in SEVERITIES:
        values = (
            counted[counted["severity"] == severity]
            .groupby("month")
            .size()
            .reindex(months, fill_value=0)
            .astype(float)
        )
        axes.bar(months, values, bottom=bottom, label=severity, color=_COLOURS[severity])
        bottom += values
    _whole_numbers(axes.yaxis)
    axes.set_ylabel("incidents")
    axes.set_xlabel("month (by detection time, UTC)")
    axes.legend(fontsize=8)
    return figure


def by_category(counted: pd.DataFrame) -> Any:
    figure, axes = _figure("Incidents by category")
    counts = counted["category"].replace("", "(none)").value_counts().sort_values()
    labels = [escape.chart(c) for c in counts.index]
    axes.barh(labels, counts.to_numpy(dtype=float), color="#4c72b0")
    for position, value in enumerate(counts.to_numpy()):
        axes.annotate(
            f"{value}",
            (float(value), position),
            xytext=(3, 0),
            textcoords="offset points",
            va="center",
        )
    _whole_numbers(axes.xaxis)
    axes.set_xlabel("incidents")
    return figure


def _wide(values: list[float]) -> bool:
    """Minutes to days on one axis: a log scale keeps the short ones readable (not with a zero,
    which a log axis cannot show)."""
    return bool(values) and min(values) > 0 and max(values) / min(values) > 50


def _whole_numbers(axis: Any) -> None:
    from matplotlib.ticker import MaxNLocator

    axis.set_major_locator(MaxNLocator(integer=True))


def distribution(counted: pd.DataFrame, metric: str, label: str, span: str = "") -> Any:
    figure, axes = _figure(f"{label} by severity" + (f", {span}" if span else ""))
    data, names = [], []
    for severity in SEVERITIES:
        values = counted.loc[counted["severity"] == severity, f"{metric}_min"].dropna()
        if values.size:
            data.append(values.to_numpy(dtype=float))
            names.append(f"{severity}\nn={values.size}, median {duration(values.median())}")
    if data:
        axes.boxplot(data, tick_labels=names, orientation="horizontal")
        if _wide([float(v) for values in data for v in values]):
            axes.set_xscale("log")
            axes.set_xlabel("minutes (log scale)")
        else:
            axes.set_xlabel("minutes")
    else:
        axes.text(0.5, 0.5, "no incident has both times", ha="center", transform=axes.transAxes)
        axes.set_xlabel("minutes")
    return figure


def ttr_trend(durations: pd.DataFrame, months: list[str]) -> Any:
    """One line per severity; how many incidents each median stands on is written under its
    month (labels beside the points would overlap where two severities' medians are close)."""
    figure, axes = _figure("Median time to resolve, per month", height=3.6)
    ttr = durations[durations["metric"] == "ttr"]
    counts: dict[str, list[str]] = {month: [] for month in months}
    for severity in SEVERITIES:
        rows = ttr[ttr["severity"] == severity].set_index("month").reindex(months)
        if rows["median"].notna().any():
            axes.plot(months, rows["median"], marker="o", label=severity, color=_COLOURS[severity])
            for month, n in zip(months, rows["n"], strict=True):
                if pd.notna(n) and n:
                    counts[month].append(f"{severity} {int(n)}")
    axes.set_xticks(range(len(months)), [_month_label(m, counts[m]) for m in months], fontsize=8)
    if _wide([float(v) for v in ttr["median"].dropna()]):
        axes.set_yscale("log")
        axes.set_ylabel("median TTR (minutes, log scale)")
    else:
        axes.set_ylabel("median TTR (minutes)")
    axes.set_xlabel("month, with n (incidents resolved) per severity")
    axes.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return figure


def _month_label(month: str, counts: list[str]) -> str:
    pairs = [" · ".join(counts[i : i + 2]) for i in range(0, len(counts), 2)]
    return "\n".join([month, *(f"n: {p}" if i == 0 else p for i, p in enumerate(pairs))])


_MET, _MISSED, _UNDECIDED = "#55a868", "#c44e52", "#bbbbbb"


def sla(compliance: pd.DataFrame, goal_pct: float) -> Any:
    """A bar per severity and clock, green where it meets the goal and red where it does not,
    the goal drawn as a line; each bar's numbers in its label, so the axis can stop at 100 %."""
    figure, axes = _figure("SLA compliance by severity (met / (met + breached))")
    labels, values, colours = [], [], []
    # Drawn bottom up: reversed, P0 reads first.
    for row in reversed(compliance.to_dict("records")):
        decided = int(row["met"]) + int(row["breached"])
        pct = float(row["compliance_pct"]) if decided else 0.0
        # Rounded down: 94.7 % must not read "95%" beside a bar coloured as missing a 95 % goal.
        note = f"{math.floor(pct)}% of {decided}" if decided else "none decided yet"
        note += f", +{int(row['pending'])} pending" if row["pending"] else ""
        labels.append(f"{row['severity']} {row['clock']}\n{note}")
        values.append(pct)
        colours.append(_UNDECIDED if not decided else _MET if pct >= goal_pct else _MISSED)
    axes.barh(labels, values, color=colours)
    axes.axvline(goal_pct, color="#333333", linestyle="--", linewidth=1)
    from matplotlib.patches import Patch

    axes.legend(
        handles=[
            Patch(color=_MET, label=f"meets the goal ({goal_pct:g}%)"),
            Patch(color=_MISSED, label="below the goal"),
            axes.lines[0],
        ],
        labels=[f"meets the goal ({goal_pct:g}%)", "below the goal", f"goal {goal_pct:g}%"],
        fontsize=8,
        loc="lower left",
        bbox_to_anchor=(1.0, 0.0),
    )
    axes.tick_params(axis="y", labelsize=8)
    axes.set_xlim(0, 100)
    axes.set_xlabel("% of incidents within target")
    return figure


def repeated_causes(repeats: pd.DataFrame) -> Any:
    figure, axes = _figure("Top repeated root causes (within 90 days)")
    counts = repeats["root_cause_key"].value_counts().head(8).sort_values()
    if counts.empty:
        axes.text(0.5, 0.5, "no repeats", ha="center", transform=axes.transAxes)
    else:
        labels = [escape.chart(key) for key in counts.index]
        axes.barh(labels, counts.to_numpy(dtype=float), color="#8172b3")
        _whole_numbers(axes.xaxis)
    axes.set_xlabel("repeat incidents")
    return figure
