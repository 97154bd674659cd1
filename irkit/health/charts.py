"""The report's pictures, where one helps: disk use per path, tasks waiting per queue, and
database sessions by state. Drawn with matplotlib (no display needed) as PNG, readable in print:
a title, units on the axis, the value on each bar and the thresholds as lines."""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence
from typing import Any

from irkit import escape
from irkit.result import Result

_WIDTH_IN = 6.4
_DPI = 96


def warm_up() -> None:
    """Load matplotlib ahead of the first chart (a good part of a second)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    Figure()


def for_area(area: str, results: Sequence[Result]) -> list[str]:
    """The area's charts as PNG data URIs (none when the evidence is missing)."""
    by_probe = {r.probe: r for r in results}
    drawn: list[str] = []
    if area == "host" and (disk := by_probe.get("disk.usage")):
        drawn += _disk(disk.evidence)
    if area == "celery" and (queues := by_probe.get("celery.queues")):
        drawn += _queues(queues.evidence)
    if area == "postgres" and (conns := by_probe.get("postgres.connections")):
        drawn += _connections(conns.evidence)
    return drawn


def _disk(evidence: Any) -> list[str]:
    rows = [r for r in evidence.get("rows") or [] if "used_pct" in r]
    if not rows:
        return []
    labels = [str(r["path"]) for r in rows]
    values = [float(r["used_pct"]) for r in rows]
    notes = [
        f"{v:.0f}% ({r.get('free_human', '?')} free)" for v, r in zip(values, rows, strict=True)
    ]
    return [
        _bars(
            "Disk use per path",
            "% of the filesystem used",
            labels,
            values,
            notes,
            limit=100.0,
            lines={"WARN": evidence.get("warn_pct"), "CRIT": evidence.get("crit_pct")},
        )
    ]


def _queues(evidence: Any) -> list[str]:
    rows = evidence.get("rows") or []
    if not rows:
        return []
    values = [float(r["waiting"]) for r in rows]
    crit = float(evidence.get("crit") or 0)
    return [
        _bars(
            "Tasks waiting per Celery queue",
            "tasks waiting (priority sub-queues included)",
            [str(r["queue"]) for r in rows],
            values,
            [f"{v:,.0f}" for v in values],
            limit=max([*values, crit]) * 1.15 or 1.0,
            lines={"WARN": evidence.get("warn"), "CRIT": evidence.get("crit")},
        )
    ]


def _connections(evidence: Any) -> list[str]:
    states = evidence.get("by_state") or {}
    available = float(evidence.get("available") or 0)
    if not states:
        return []
    ordered = sorted(states.items(), key=lambda kv: -kv[1])
    values = [float(n) for _, n in ordered]
    return [
        _bars(
            f"PostgreSQL client sessions by state ({evidence.get('used', '?')} of "
            f"{available:.0f} usable)",
            "sessions",
            [s for s, _ in ordered],
            values,
            [f"{v:.0f}" for v in values],
            limit=max([*values, available]) * 1.1 or 1.0,
            lines={"usable slots": available or None},
        )
    ]


def _bars(
    title: str,
    unit: str,
    labels: list[str],
    values: list[float],
    notes: list[str],
    *,
    limit: float,
    lines: dict[str, Any],
) -> str:
    # Imported here: the report pays for matplotlib only when it draws.
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    height = 1.2 + 0.45 * len(labels)
    figure = Figure(figsize=(_WIDTH_IN, height), dpi=_DPI, layout="constrained")
    axes = figure.add_subplot()
    positions = list(range(len(labels)))
    axes.barh(positions, values, color="#4c72b0")
    axes.set_yticks(positions, labels=[escape.chart(label) for label in labels])
    axes.invert_yaxis()
    axes.set_xlim(0, limit)
    axes.set_xlabel(unit)
    axes.set_title(escape.chart(title), fontsize=11)
    for position, value, note in zip(positions, values, notes, strict=True):
        axes.annotate(
            note, (value, position), xytext=(4, 0), textcoords="offset points", va="center"
        )
    styles = {"WARN": ("#dd8452", "--"), "CRIT": ("#c44e52", "-")}
    for name, at in lines.items():
        if at:
            colour, style = styles.get(name, ("#555555", ":"))
            axes.axvline(float(at), color=colour, linestyle=style, linewidth=1, label=name)
    if any(lines.values()):
        axes.legend(loc="lower right", fontsize=8)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
