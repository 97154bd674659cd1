"""The HTML parts results and reports are drawn with: status colours and badges, evidence, tables;
and showing several things in one notebook cell. (The results table itself is in `irkit.result`.)"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from irkit import escape
from irkit.status import Status

COLOURS = {
    Status.OK: ("#1b5e20", "#e8f5e9"),
    Status.WARN: ("#8a5300", "#fff3e0"),
    Status.CRIT: ("#b71c1c", "#ffebee"),
    Status.UNKNOWN: ("#4a148c", "#f3e5f5"),
}

_MAX_ROWS_SHOWN = 50


def badge(status: Status) -> str:
    fg, bg = COLOURS[status]
    return (
        f'<span style="color:{fg};background:{bg};border:1px solid {fg};border-radius:3px;'
        f'padding:1px 6px;font-weight:bold;font-family:monospace">{status.name}</span>'
    )


def evidence_html(evidence: Mapping[str, Any]) -> str:
    if not evidence:
        return ""
    parts = []
    for key, value in evidence.items():
        if _is_table(value):
            parts.append(f"<div><b>{escape.html(key)}</b>{table_html(value)}</div>")
        else:
            parts.append(
                f"<div><b>{escape.html(key)}</b>: <code>{escape.html(_scalar(value))}</code></div>"
            )
    return f'<details style="margin-top:4px"><summary>evidence</summary>{"".join(parts)}</details>'


def _is_table(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, dict) for v in value)


def table_html(rows: Iterable[Mapping[str, Any]], *, status_column: str = "") -> str:
    """Rows as a table; with `status_column`, each row is coloured by the status it names (as
    the results table is) and that cell shows the status badge."""
    rows = list(rows)
    columns: list[str] = []
    for row in rows:
        columns.extend(k for k in row if k not in columns)
    # Left like the cells (Jupyter's own style puts table heads to the right).
    head = "".join(f'<th style="text-align:left">{escape.html(c)}</th>' for c in columns)
    body = "".join(_row_html(row, columns, status_column) for row in rows[:_MAX_ROWS_SHOWN])
    more = (
        f"<tr><td colspan={len(columns)}>… {len(rows) - _MAX_ROWS_SHOWN} more rows in the JSON"
        "</td></tr>"
        if len(rows) > _MAX_ROWS_SHOWN
        else ""
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}{more}</tbody></table>"


def _row_html(row: Mapping[str, Any], columns: list[str], status_column: str) -> str:
    status = Status.__members__.get(str(row.get(status_column, ""))) if status_column else None
    cells = []
    for column in columns:
        if status is not None and column == status_column:
            cells.append(f'<td style="text-align:left">{badge(status)}</td>')
        else:
            cells.append(
                f'<td style="text-align:left">{escape.html(_scalar(row.get(column, "")))}</td>'
            )
    style = f' style="background:{COLOURS[status][1]}"' if status is not None else ""
    return f"<tr{style}>{''.join(cells)}</tr>"


def _scalar(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, float):
        return f"{value:g}"
    return json.dumps(value, default=str)


def show(items: Iterable[Any]) -> None:
    """Display several things in one notebook cell, each with its own rich output."""
    from IPython.display import display

    for item in items:
        display(item)  # type: ignore[no-untyped-call]
