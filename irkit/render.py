"""How results look: a status-coloured HTML table in notebooks, plain text in terminals."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from irkit import escape
from irkit.result import Status

if TYPE_CHECKING:
    from irkit.result import Result

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


def results_text(results: Sequence[Result]) -> str:
    lines = [
        f"{r.status.name:<8}{escape.one_line(r.probe):<30}{escape.one_line(r.summary)}"
        for r in results
    ]
    return "\n".join(lines)


def results_html(results: Sequence[Result]) -> str:
    rows = []
    for r in results:
        _, bg = COLOURS[r.status]
        rows.append(
            f'<tr style="background:{bg}">'
            f'<td style="vertical-align:top">{badge(r.status)}</td>'
            f'<td style="vertical-align:top;font-family:monospace">{escape.html(r.probe)}</td>'
            f'<td style="vertical-align:top;text-align:left">{escape.html(r.summary)}'
            f"{_evidence_html(r.evidence)}</td>"
            f'<td style="vertical-align:top;font-family:monospace;color:#555">'
            f"{escape.html(r.target)}</td>"
            f'<td style="vertical-align:top;color:#555">{r.elapsed_ms:.0f}&nbsp;ms</td></tr>'
        )
    return (
        '<table class="irkit-results" style="border-collapse:collapse">'
        "<thead><tr><th>status</th><th>probe</th><th>summary</th><th>target</th><th>took</th>"
        f"</tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )


def _evidence_html(evidence: Mapping[str, Any]) -> str:
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


def table_html(rows: Iterable[Mapping[str, Any]]) -> str:
    rows = list(rows)
    columns: list[str] = []
    for row in rows:
        columns.extend(k for k in row if k not in columns)
    head = "".join(f"<th>{escape.html(c)}</th>" for c in columns)
    body = "".join(
        "<tr>"
        + "".join(
            f'<td style="text-align:left">{escape.html(_scalar(row.get(c, "")))}</td>'
            for c in columns
        )
        + "</tr>"
        for row in rows[:_MAX_ROWS_SHOWN]
    )
    more = (
        f"<tr><td colspan={len(columns)}>… {len(rows) - _MAX_ROWS_SHOWN} more rows in the JSON"
        "</td></tr>"
        if len(rows) > _MAX_ROWS_SHOWN
        else ""
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}{more}</tbody></table>"


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
