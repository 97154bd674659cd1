"""Incidents as a terminal shows them: `irkit incident list` and `irkit incident show`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from irkit.escape import one_line
from irkit.incident import sla, timeline
from irkit.incident.load import Incident
from irkit.incident.schema import TIMESTAMPS, parse_time
from irkit.result import utc_now


def _columns(rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    )


def table(incidents: Sequence[Incident]) -> str:
    rows = [("ID", "SEV", "STATUS", "DETECTED (UTC)", "TTR", "POSTMORTEM", "NOTEBOOKS", "TITLE")]
    for i in incidents:
        detected = i.time("detected_at")
        ttr = sla.durations(i.fields)["ttr"]
        flags = " [drill]" if i.drill else ""
        flags += " [incomplete]" if not i.complete else ""
        flags += " [warnings]" if i.warnings else ""
        flags += " [impossible times]" if _impossible(i.fields) else ""
        rows.append(
            (
                i.incident_id,
                one_line(i.get("severity", "?")),
                one_line(i.get("status", "?")),
                f"{detected:%Y-%m-%d %H:%M}" if detected else "?",
                sla.minutes(ttr) if ttr is not None else "-",
                _postmortem(i),
                str(len(i.notebooks)),
                one_line(i.get("title", "?")) + flags,
            )
        )
    return _columns(rows)


def _postmortem(i: Incident) -> str:
    """Written (and when), or due by when (runbook §6: P0 and P1 within 5 days), or "-"."""
    written = parse_time(i.fields.get("postmortem_written_at"))
    if written is not None:
        return f"written {written:%m-%d}"
    due = sla.postmortem_due(i.fields)
    if due is None:
        return "-"
    return f"due {due:%m-%d}" + (" LATE" if due < utc_now() else "")


def detail(i: Incident) -> str:
    """The merged record for a terminal. Every value passes through `one_line`: a title, a log
    line or a file name that carries line breaks or escape sequences must not fake a line of
    this listing or act on the reader's terminal."""
    f = i.fields
    title = one_line(i.get("title", "(no title)"))
    out = [f"{i.incident_id}: {title}" + ("  [drill]" if i.drill else "")]
    for name in (
        "severity",
        "category",
        "status",
        "responder",
        "detection_source",
        "impact",
        "users_affected",
        "tenants_affected",
        "root_cause",
        "root_cause_key",
        "resolution",
    ):
        if f.get(name) not in (None, ""):
            out.append(f"  {name + ':':<18} {one_line(f[name])}")
    out.append("times (UTC):")
    for name in TIMESTAMPS:
        when = parse_time(f.get(name))
        out.append(f"  {name + ':':<18} {f'{when:%Y-%m-%d %H:%M:%S}' if when else '-'}")
    durations = sla.durations(f)
    out.append(
        "durations: "
        + ", ".join(f"{k.upper()} {sla.minutes(v)}" for k, v in durations.items() if v is not None)
    )
    out += [f"  impossible: {name.upper()} is negative, {text}" for name, text in _impossible(f)]
    now = utc_now()
    for clock in sla.clocks(f):
        state = clock.state(now)
        left = clock.left(now)
        out.append(
            f"SLA {clock.name}: {sla.minutes(clock.target)} → deadline "
            f"{clock.deadline:%Y-%m-%d %H:%M} UTC, {state}"
            + (f", {sla.minutes(left)} left" if state == "pending" else "")
        )
    if (due := sla.postmortem_due(f)) is not None:
        out.append(f"postmortem: due {due:%Y-%m-%d %H:%M} UTC ({_postmortem(i)})")
    if f.get("action_items"):
        out.append("action items:")
        out += [
            one_line(
                f"  [{'x' if a.get('done') else ' '}] {a.get('action')} ({a.get('owner') or '?'}, "
                f"due {a.get('due') or '?'}, {a.get('priority') or '?'})"
            )
            for a in f["action_items"]
        ]
    out.append("timeline:")
    for row in timeline.condense(i.timeline):
        out.append(f"  {row.at:%m-%d %H:%M:%S}  {one_line(row.kind):<14} {one_line(row.shown)}")
    out.append("notebooks:")
    for n in i.notebooks:
        if not n.ran:
            state = "prepared, not run"
        elif not n.complete:
            state = f"{n.status.name}, INCOMPLETE: {one_line(n.error)}"
        elif not n.checks:
            # Its status would read UNKNOWN, which is a verdict it never gave.
            state = "ran, no checks"
        else:
            state = n.status.name
        out.append(f"  {one_line(n.name):<24} {state}")
    if i.warnings:
        # What was skipped or left by a killed run is part of the answer, not only a warning.
        out.append("about this record:")
        out += [f"  {one_line(w)}" for w in i.warnings]
    return "\n".join(out)


def _impossible(fields: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Durations whose end comes before their start: a typo or a wrong zone, to be corrected."""
    found = []
    for name, value in sla.durations(fields).items():
        if value is not None and value.total_seconds() < 0:
            start, end, _ = sla.DURATIONS[name]
            found.append((name, f"{end} is before {start}"))
    return found
