"""The monthly analysis' charts (design §5), readable when printed: a title, units on the axes,
and n beside every distribution."""

from __future__ import annotations

from typing import Any

import pandas as pd

from irkit import escape

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
            names.append(f"{severity}\nn={values.size}, median {values.median():.0f}")
    if data:
        axes.boxplot(data, tick_labels=names, vert=False)
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
    figure, axes = _figure("Median time to resolve, per month")
    ttr = durations[durations["metric"] == "ttr"]
    for severity in SEVERITIES:
        rows = ttr[ttr["severity"] == severity].set_index("month").reindex(months)
        if rows["median"].notna().any():
            axes.plot(months, rows["median"], marker="o", label=severity, color=_COLOURS[severity])
            for month, median, n in zip(months, rows["median"], rows["n"], strict=True):
                if pd.notna(median):
                    axes.annotate(
                        f"n={int(n)}",
                        (month, median),
                        xytext=(0, 5),
                        textcoords="offset points",
                        ha="center",
                        fontsize=7,
                    )
    if _wide([float(v) for v in ttr["median"].dropna()]):
        axes.set_yscale("log")
        axes.set_ylabel("median TTR (minutes, log scale)")
    else:
        axes.set_ylabel("median TTR (minutes)")
    axes.set_xlabel("month")
    axes.legend(fontsize=8)
    return figure


def sla(compliance: pd.DataFrame) -> Any:
    figure, axes = _figure("SLA compliance by severity (met / (met + breached))")
    labels, values, notes = [], [], []
    # Drawn bottom up: reversed, P0 reads first.
    for row in reversed(compliance.to_dict("records")):
        decided = int(row["met"]) + int(row["breached"])
        labels.append(f"{row['severity']} {row['clock']}")
        values.append(float(row["compliance_pct"]) if decided else 0.0)
        note = f"{row['compliance_pct']:.0f}% of {decided}" if decided else "none decided yet"
        notes.append(note + (f" (+{int(row['pending'])} pending)" if row["pending"] else ""))
    axes.barh(labels, values, color="#55a868")
    for position, (value, note) in enumerate(zip(values, notes, strict=True)):
        axes.annotate(
            note,
            (value, position),
            xytext=(3, 0),
            textcoords="offset points",
            va="center",
            fontsize=8,
        )
    axes.set_xlim(0, 140)  # room for the note beside a full bar
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
