"""The monthly analysis' charts (design §5), readable when printed: a title, units on the axes,
and n beside every distribution."""

from __future__ import annotations

from typing import Any

import pandas as pd

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
        values = (counted[counted["severity"] == severity].groupby("month").size()
                  .reindex(months, fill_value=0).astype(float))  # fmt: skip
        axes.bar(months, values, bottom=bottom, label=severity, color=_COLOURS[severity])
        bottom += values
    axes.set_ylabel("incidents")
    axes.set_xlabel("month (by detection time, UTC)")
    axes.legend(fontsize=8)
    return figure


def by_category(counted: pd.DataFrame) -> Any:
    figure, axes = _figure("Incidents by category")
    counts = counted["category"].replace("", "(none)").value_counts().sort_values()
    axes.barh(counts.index.tolist(), counts.to_numpy(dtype=float), color="#4c72b0")
    for position, value in enumerate(counts.to_numpy()):
        axes.annotate(f"{value}", (float(value), position), xytext=(3, 0),
                      textcoords="offset points", va="center")  # fmt: skip
    axes.set_xlabel("incidents")
    return figure


def distribution(counted: pd.DataFrame, metric: str, label: str) -> Any:
    figure, axes = _figure(f"{label} by severity (minutes; median and n shown)")
    data, names = [], []
    for severity in SEVERITIES:
        values = counted.loc[counted["severity"] == severity, f"{metric}_min"].dropna()
        if values.size:
            data.append(values.to_numpy(dtype=float))
            names.append(f"{severity}\nn={values.size}, median {values.median():.0f}")
    if data:
        axes.boxplot(data, tick_labels=names, vert=False)
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
            axes.plot(months, rows["median"], marker="o", label=severity,
                      color=_COLOURS[severity])  # fmt: skip
            for month, median, n in zip(months, rows["median"], rows["n"], strict=True):
                if pd.notna(median):
                    axes.annotate(f"n={int(n)}", (month, median), xytext=(0, 5),
                                  textcoords="offset points", ha="center", fontsize=7)  # fmt: skip
    axes.set_ylabel("median TTR (minutes)")
    axes.set_xlabel("month")
    axes.legend(fontsize=8)
    return figure


def sla(compliance: pd.DataFrame) -> Any:
    figure, axes = _figure("SLA compliance by severity (met / (met + breached))")
    labels, values, notes = [], [], []
    for row in compliance.to_dict("records"):
        decided = int(row["met"]) + int(row["breached"])
        labels.append(f"{row['severity']} {row['clock']}")
        values.append(float(row["compliance_pct"]) if decided else 0.0)
        notes.append(f"{row['compliance_pct']:.0f}% of {decided}" if decided else "none decided")
    axes.barh(labels, values, color="#55a868")
    for position, (value, note) in enumerate(zip(values, notes, strict=True)):
        axes.annotate(note, (value, position), xytext=(3, 0), textcoords="offset points",
                      va="center", fontsize=8)  # fmt: skip
    axes.set_xlim(0, 115)
    axes.set_xlabel("% of incidents within target")
    return figure


def repeated_causes(repeats: pd.DataFrame) -> Any:
    figure, axes = _figure("Top repeated root causes (within 90 days)")
    counts = repeats["root_cause_key"].value_counts().head(8).sort_values()
    if counts.empty:
        axes.text(0.5, 0.5, "no repeats", ha="center", transform=axes.transAxes)
    else:
        axes.barh(counts.index.tolist(), counts.to_numpy(dtype=float), color="#8172b3")
    axes.set_xlabel("repeat incidents")
    return figure
