"""The monthly analysis' tables as people read them: text to the left and numbers to the right
(Jupyter's own style right-aligns every cell), durations in the unit that reads best, and the
durations of every severity and metric in one grid of median, p90 and n."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from irkit import escape
from irkit.incident import sla

SEVERITIES = ("P0", "P1", "P2", "P3")
# Short column heads; the notebook's text spells each metric out by its two ends.
METRIC_HEADS = {
    "ttd": "TTD (detect)",
    "tta": "TTA (acknowledge)",
    "ttm": "TTM (mitigate)",
    "ttr": "TTR (resolve)",
    "impact": "impact",
}
assert set(METRIC_HEADS) == set(sla.DURATIONS)
_EMPTY = "—"


def duration(minutes: float | None) -> str:
    """47 min, 2.5 h, 1.9 d: a month's durations run from minutes to days."""
    if minutes is None or math.isnan(minutes):
        return _EMPTY
    if minutes < 90:
        return f"{minutes:.0f} min"
    if minutes < 48 * 60:
        return f"{minutes / 60:.1f} h"
    return f"{minutes / 1440:.1f} d"


def _numeric(column: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column)


def _cell(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return _EMPTY
    if isinstance(value, float):
        return f"{value:.1f}".removesuffix(".0")
    return str(value)


def frame_html(frame: pd.DataFrame) -> str:
    """A table with its text columns left-aligned and its number columns right-aligned."""
    if not len(frame):
        return "<p>(none)</p>"
    align = {c: "right" if _numeric(frame[c]) else "left" for c in frame.columns}
    head = "".join(
        f'<th style="text-align:{align[c]}">{escape.html(str(c))}</th>' for c in frame.columns
    )
    rows = []
    for values in frame.itertuples(index=False, name=None):
        cells = "".join(
            f'<td style="text-align:{align[c]}">{escape.html(_cell(v))}</td>'
            for c, v in zip(frame.columns, values, strict=True)
        )
        rows.append(f"<tr>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def frame_text(frame: pd.DataFrame) -> str:
    """The plain-text twin of `frame_html`, aligned the same way."""
    if not len(frame):
        return "(none)"
    columns = [str(c) for c in frame.columns]
    cells = [[_cell(v) for v in values] for values in frame.itertuples(index=False, name=None)]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    right = [_numeric(frame[c]) for c in frame.columns]

    def line(values: list[str]) -> str:
        return "  ".join(
            v.rjust(w) if r else v.ljust(w) for v, w, r in zip(values, widths, right, strict=True)
        ).rstrip()

    return "\n".join([line(columns), *(line(row) for row in cells)])


def _stats(by_severity: pd.DataFrame) -> dict[tuple[str, str], dict[Any, Any]]:
    return {(r["severity"], r["metric"]): r for r in by_severity.to_dict("records")}


def grid_html(by_severity: pd.DataFrame) -> str:
    """Severity down, metric across; each cell the median in bold, then p90 and n."""
    found = _stats(by_severity)
    severities = [s for s in SEVERITIES if any(k[0] == s for k in found)]
    if not severities:
        return "<p>(no incident in these months)</p>"
    head = '<th style="text-align:left">severity</th>' + "".join(
        f'<th style="text-align:right">{escape.html(label)}</th>' for label in METRIC_HEADS.values()
    )
    rows = []
    for severity in severities:
        cells = [f'<td style="text-align:left"><b>{severity}</b></td>']
        for metric in METRIC_HEADS:
            row = found.get((severity, metric))
            if not row or not row["n"]:
                cells.append(f'<td style="text-align:right;color:#888">{_EMPTY}</td>')
                continue
            cells.append(
                '<td style="text-align:right;white-space:nowrap">'
                f"<b>{duration(row['median'])}</b><br>"
                f'<span style="color:#555;font-size:90%">p90 {duration(row["p90"])}, '
                f"n={int(row['n'])}</span></td>"
            )
        rows.append(f"<tr>{''.join(cells)}</tr>")
    return (
        f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
        '<p style="color:#555;font-size:90%">Each cell: the median in bold, then the 90th '
        "percentile and the number of incidents that have both times.</p>"
    )


def grid_text(by_severity: pd.DataFrame) -> str:
    found = _stats(by_severity)
    lines = []
    for severity in SEVERITIES:
        parts = []
        for metric, label in METRIC_HEADS.items():
            row = found.get((severity, metric))
            if row and row["n"]:
                parts.append(
                    f"{label.split()[0]} {duration(row['median'])} "
                    f"(p90 {duration(row['p90'])}, n={int(row['n'])})"
                )
        if parts:
            lines.append(f"{severity}: " + "; ".join(parts))
    return "\n".join(lines) or "(no incident in these months)"
