"""The runbook's postmortem template, filled from the merged incident record.

Only what the record holds is written; every empty part is listed under "Missing from the
record", never invented, so the meeting knows what to bring. Every value from the record is
escaped for Markdown (`irkit.escape`): a title, a log line or an alert's text is shown as text,
never as a heading, a table row, a link or HTML, in `postmortem.md` and in its HTML copies.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from irkit import escape, records
from irkit.incident import schema, sla, timeline
from irkit.incident.load import Incident
from irkit.incident.messages import MISSING
from irkit.incident.schema import LESSONS, SEVERITY_NAMES, format_time
from irkit.result import utc_now

if TYPE_CHECKING:
    from irkit.incident.section import Section

FILENAME = "postmortem.md"
SECTIONS = (
    "Summary",
    "Timeline (All times UTC)",
    "Root Cause",
    "Impact",
    "Resolution",
    "Detection",
    "Action Items",
    "Lessons Learned",
    "Follow-up",
)


@dataclass(frozen=True)
class Postmortem:
    markdown: str
    missing: tuple[str, ...]

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        return {"text/markdown": self.markdown, "text/plain": self.markdown}

    def write(self, folder: Path) -> Path:
        """Into the incident's folder; an earlier postmortem is kept (`postmortem-2.md`)."""
        return records.write_text_atomically(folder / FILENAME, self.markdown)


def _hhmm(value: datetime | None, with_date: bool = False) -> str:
    if value is None:
        return "?"
    return f"{value:%Y-%m-%d %H:%M}" if with_date else f"{value:%H:%M}"


def build(incident: Incident, *, author: str = "") -> Postmortem:
    f = incident.fields
    missing: list[str] = []

    def need(name: str, *, block: bool = False) -> str:
        """The field as Markdown text (a paragraph with `block`), or MISSING, noted."""
        value = f.get(name)
        if value in (None, "", [], {}):
            missing.append(name)
            return MISSING
        return escape.markdown_block(value) if block else escape.markdown(value)

    detected, resolved = incident.time("detected_at"), incident.time("resolved_at")
    started = incident.time("impact_started_at")
    spans_days = bool(
        incident.timeline and len({str(e.get("at", ""))[:10] for e in incident.timeline}) > 1
    )
    durations = sla.durations(f)
    ttr, ttd = durations["ttr"], durations["ttd"]
    duration = (
        f"{round(ttr.total_seconds() / 60)} minutes ({_hhmm(detected)} - {_hhmm(resolved)} UTC)"
        if ttr is not None
        else MISSING
    )
    if ttr is None:
        missing.append("resolved_at (for the duration)")
    severity = f.get("severity")
    shown_severity = (
        f"{severity} - {SEVERITY_NAMES[severity]}"
        if severity in SEVERITY_NAMES
        else need("severity")
    )
    out = [
        f"# Postmortem: {need('title')}",
        "",
        f"**Date:** {detected:%Y-%m-%d}  " if detected else f"**Date:** {MISSING}  ",
        f"**Author:** {escape.markdown(author or f.get('responder') or MISSING)}  ",
        f"**Severity:** {shown_severity}  ",
        f"**Duration:** {duration}",
    ]
    if incident.drill:
        out += ["", "> This was a drill on the practice stack: it is not counted in the metrics."]
    summary = f.get("summary") or _summary(f)
    if not summary:
        missing.append("summary")
    out += ["", "---", "", "## Summary", escape.markdown_block(summary) if summary else MISSING]
    out += ["", "---", "", "## Timeline (All times UTC)", "| Time | Event |", "|------|-------|"]
    for row in timeline.condense(incident.timeline):
        # To the second: a drill's steps are seconds apart, and their order is the story.
        at = f"{row.at:%Y-%m-%d %H:%M:%S}" if spans_days else f"{row.at:%H:%M:%S}"
        out.append(f"| {at} | {escape.markdown_cell(row.shown)} |")
    if not incident.timeline:
        missing.append("timeline events")
    out += ["", "---", "", "## Root Cause", need("root_cause", block=True)]
    users = f.get("users_affected")
    tenants = f.get("tenants_affected")
    impact_span = durations["impact"]
    shown_users = (
        f"~{escape.markdown(users)} concurrent users"
        if users not in (None, "")
        else need("users_affected")
    )
    shown_tenants = "All (multi-tenant system)" if tenants == "all" else need("tenants_affected")
    out += [
        "",
        "---",
        "",
        "## Impact",
        f"- **What users saw:** {need('impact')}",
        f"- **Users Affected:** {shown_users}",
        f"- **Duration:** {duration}"
        + (f"; impact {sla.minutes(impact_span)} from its start" if impact_span else ""),
        f"- **Revenue Impact:** {need('revenue_impact')}",
        f"- **Tenants Affected:** {shown_tenants}",
    ]
    out += ["", "---", "", "## Resolution", need("resolution", block=True)]
    if ttd is not None:
        ttd_text = (
            f"{round(ttd.total_seconds() / 60)} minutes (alert triggered {_hhmm(detected)}, "
            f"impact started {_hhmm(started)})"
        )
    else:
        ttd_text = MISSING
        missing.append("impact_started_at (for the time to detect)")
    out += [
        "",
        "---",
        "",
        "## Detection",
        f"- **How detected:** {need('detection_source')}",
        f"- **Time to detect:** {ttd_text}",
        f"- **Could detection be faster?** {need('detection_review')}",
    ]
    items = f.get("action_items") or []
    out += [
        "",
        "---",
        "",
        "## Action Items",
        "| Action | Owner | Due Date | Priority | Done |",
        "|--------|-------|----------|----------|------|",
    ]
    for item in items:
        out.append(
            "| "
            + " | ".join(
                escape.markdown_cell(item.get(k) or ("?" if k != "action" else MISSING))
                for k in ("action", "owner", "due", "priority")
            )
            + f" | {'yes' if item.get('done') else 'no'} |"
        )
    if not items:
        missing.append("action_items")
    lessons: Mapping[str, Any] = f.get("lessons") or {}
    out += ["", "---", "", "## Lessons Learned"]
    for key, heading in LESSONS.items():
        entries = lessons.get(key) or []
        out += [f"### {heading}", *([f"- {escape.markdown(e)}" for e in entries] or [MISSING])]
        if not entries:
            missing.append(f"lessons: {heading.lower()}")
    follow = f.get("follow_up") or []
    follow_lines = [f"- {escape.markdown(e)}" for e in follow] or [MISSING]
    out += ["", "---", "", "## Follow-up", *follow_lines]
    if not follow:
        missing.append("follow_up")
    if incident.warnings or not incident.complete:
        out += ["", "---", "", "## About this record"]
        out += [f"- {escape.markdown(w)}" for w in incident.warnings]
        out += [
            f"- {escape.markdown(n.name)} did not run to the end: "
            f"{escape.markdown(n.error or 'stopped')}"
            for n in incident.notebooks
            if not n.complete
        ]
    if missing:
        out += [
            "",
            "---",
            "",
            "## Missing from the record",
            "Fill these in before the meeting (they were not invented):",
            *[f"- {m}" for m in missing],
        ]
    return Postmortem("\n".join(out) + "\n", tuple(missing))


def _summary(f: Mapping[str, Any]) -> str:
    """One paragraph from recorded facts only; empty if there are too few."""
    parts = []
    if f.get("impact"):
        parts.append(f"{str(f['impact']).rstrip('.')}.")
    if f.get("root_cause"):
        parts.append(f"Cause: {str(f['root_cause']).rstrip('.')}.")
    if f.get("resolution"):
        parts.append(f"Resolved by: {str(f['resolution']).rstrip('.')}.")
    return " ".join(parts) if len(parts) >= 2 else ""


def fill(
    section: Section,
    *,
    author: str = "",
    summary: str = "",
    revenue_impact: str = "",
    detection_review: str = "",
    went_well: Sequence[str] = (),
    went_wrong: Sequence[str] = (),
    lucky: Sequence[str] = (),
    follow_up: Sequence[str] = (),
    action_items: Sequence[str] = (),
) -> Postmortem | str:
    """The postmortem notebook's one step: record what the meeting adds, read the whole record,
    fill the template, and write `postmortem.md` beside the notebooks."""
    log = section.incident
    if log.folder is None:
        return (
            "No incident given: set incident_id (or run: irkit postmortem ID) to fill the "
            "template from an incident's record."
        )
    given: dict[str, Any] = {
        name: value
        for name, value in (
            ("summary", summary),
            ("revenue_impact", revenue_impact),
            ("detection_review", detection_review),
        )
        if value
    }
    lessons = dict(log.fields.get("lessons") or {})
    for key, entries in (("went_well", went_well), ("went_wrong", went_wrong), ("lucky", lucky)):
        if entries:
            lessons[key] = list(entries)
    if lessons != (log.fields.get("lessons") or {}):
        given["lessons"] = lessons
    if follow_up:
        given["follow_up"] = list(follow_up)
    if action_items:
        given["action_items"] = schema.add_action_items(
            log.fields.get("action_items"), action_items
        )
    if given:
        log.update(**given)
    incident = section.record()
    document = build(incident, author=author)
    path = document.write(log.folder)
    if incident.fields.get("status") == "resolved":
        # The postmortem is the last step: a resolved incident is closed by it.
        log.update("postmortem written", status="closed", closed_at=format_time(utc_now()))
    log.event(
        "postmortem",
        f"postmortem written: {path.name}"
        + (f" ({len(document.missing)} parts missing)" if document.missing else ""),
        file=path.name,
        missing=list(document.missing),
    )
    return document
