"""The resolve notebook's steps (runbook §5 Resolution): re-check everything, decide honestly
whether the service is restored, record the root cause and action items, announce."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from irkit import escape, probes
from irkit.errors import ConfigError
from irkit.incident import forms, messages, notify, paging, schema, sla
from irkit.render import show
from irkit.result import NOTICE_MIME, Result, Results, Status, utc_now

if TYPE_CHECKING:
    from irkit.incident.section import Section


def recheck(section: Section) -> Results:
    """Every read-only probe of the other sections marked for it in the catalogue
    (`@probe(…, recheck=True)`), on the thresholds this notebook declares, else their defaults:
    the service is only restored if nothing else is still burning."""
    checks: list[Result] = []
    for entry in probes.catalogue():
        if not entry.recheck:
            continue
        target = getattr(section, entry.target)
        if entry.recheck_when is not None and not entry.recheck_when(target):
            continue
        if getattr(target, "configured", True) is False:
            continue  # an optional target nobody gave (a Compose project): nothing to re-check
        kwargs = entry.keywords(section.params)
        kwargs.update({kw: getattr(section, t) for kw, t in entry.uses.items()})
        checks.append(section.check(probes.get(entry.name), target, **kwargs))
    return Results(checks)


def timeline(section: Section) -> Any:
    """What the record holds so far (earlier runs, actions, notes), condensed as the postmortem
    will show it: check it before calling the incident resolved."""
    from irkit.incident.timeline import Shown

    return Shown(section.record().timeline)


class Verdict:
    """Whether the incident can be called resolved, and why (shown in the notebook)."""

    def __init__(self, resolved: bool, text: str) -> None:
        self.resolved = resolved
        self.text = text

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        colour = "#d4edda" if self.resolved else "#f8d7da"
        return {
            "text/plain": self.text,
            "text/html": (
                f"<p style='background:{colour};padding:6px'><b>{escape.html(self.text)}</b></p>"
            ),
            # Streamed to the terminal: whether the incident was resolved is the run's outcome.
            NOTICE_MIME: {"status": "OK" if self.resolved else "CRIT", "text": self.text},
        }


def check_times(section: Section, *, mitigated_at: str = "", resolved_at: str = "") -> None:
    """Refuse, before anything runs, a mitigation or resolution time that cannot be read, is in
    the future, or comes before the impact started or the incident was detected (a typo, or a
    time in the wrong zone)."""
    _times(section, mitigated_at, resolved_at)


def _times(section: Section, mitigated_at: str, resolved_at: str) -> tuple[str, str]:
    record = section.incident.fields
    earlier = {name: record.get(name) for name in ("impact_started_at", "detected_at")}
    now = utc_now()
    given = []
    for name, value in (("mitigated_at", mitigated_at), ("resolved_at", resolved_at)):
        when = schema.time_in_order(name, value, not_before=earlier, now=now)
        given.append(schema.format_time(when) if when else "")
    return given[0], given[1]


def conclude(
    section: Section,
    *,
    root_cause: str = "",
    root_cause_key: str = "",
    resolution: str = "",
    action_items: Sequence[str] = (),
    mitigated_at: str = "",
    resolved_at: str = "",
    declare_resolved: bool = False,
) -> Verdict:
    """Record the findings; mark the incident resolved only if no check is CRIT, or if the
    responder declares it so (and the record says they did, over which verdicts)."""
    fields: dict[str, Any] = {}
    if root_cause_key and not schema.ROOT_CAUSE_KEY.fullmatch(root_cause_key):
        raise ConfigError(
            f"root_cause_key {root_cause_key!r}: use a lowercase slug such as "
            "'pg-pool-exhausted' (it groups repeat incidents)"
        )
    for name, value in (
        ("root_cause", root_cause),
        ("root_cause_key", root_cause_key),
        ("resolution", resolution),
    ):
        if value:
            fields[name] = value
    mitigated, resolved = _times(section, mitigated_at, resolved_at)
    record = section.incident.fields
    if action_items:
        # Added to what the record holds (the postmortem may have added some): none is lost.
        fields["action_items"] = schema.add_action_items(record.get("action_items"), action_items)
    if mitigated and mitigated != record.get("mitigated_at"):
        fields["mitigated_at"] = mitigated
        section.incident.event(
            "mitigated", f"mitigated at {mitigated}", at=schema.parse_time(mitigated)
        )
    failing = [r for r in section.results if r.status is Status.CRIT]
    was_mitigated = mitigated or record.get("mitigated_at")
    if record.get("severity") not in schema.SEVERITIES:
        # An incident nobody triaged has no SLA and no postmortem rule: it cannot be closed.
        if fields:
            section.incident.update(**fields)
        incident_id = section.incident.incident_id or "ID"
        return Verdict(
            False,
            "NOT resolved: the incident has no severity yet. Triage it first (irkit run triage "
            f"--incident {incident_id}), or set the severity there (-p severity=P2), then run "
            "this notebook again.",
        )
    if failing and not declare_resolved:
        names = ", ".join(sorted({r.probe for r in failing}))
        if was_mitigated and record.get("status") == "investigating":
            fields["status"] = "mitigated"
        if fields:
            section.incident.update(**fields)
        return Verdict(
            False,
            f"NOT resolved: {len(failing)} checks are CRIT ({names}). Keep the incident open, "
            "mitigate, and run this notebook again (or set declare_resolved=True if these are "
            "known and accepted).",
        )
    reason = "no check is CRIT"
    if failing:
        names = ", ".join(sorted({r.probe for r in failing}))
        reason = f"declared by the responder despite CRIT: {names}"
    if record.get("status") in ("resolved", "closed") and not resolved:
        # Already resolved: a later run adds its findings, and keeps when that happened.
        if fields:
            section.incident.update(**fields)
        return Verdict(
            True, f"Already {record['status']} at {record.get('resolved_at')}; {reason}."
        )
    fields["resolved_at"] = resolved or schema.format_time(utc_now())
    if record.get("status") != "closed":
        fields["status"] = "resolved"
    due = sla.postmortem_due({**record, **fields, "postmortem_due_at": None})
    if due is not None:
        fields["postmortem_due_at"] = schema.format_time(due)
    section.incident.update(reason, **fields)
    # At the time given when written up afterwards, else now.
    section.incident.event(
        "resolved", f"incident resolved ({reason})", at=schema.parse_time(resolved)
    )
    paging.follow_up(section.incident, "resolve")
    return Verdict(True, f"RESOLVED at {fields['resolved_at']}: {reason}.")


def announce(
    section: Section,
    *,
    notify_now: bool = False,
    statuspage_page_id: str = "",
    statuspage_api: str = notify.STATUSPAGE_API,
) -> None:
    """What the record allows to say: the "INCIDENT RESOLVED" message only once it is resolved,
    and the status page updated either way (runbook Communication: update, then resolve). Ready
    to paste; posted when asked."""
    fields = section.incident.fields
    resolved = fields.get("status") in ("resolved", "closed")
    shown: list[Any] = []
    outgoing: list[messages.Message] = []
    if resolved:
        outgoing.append(messages.resolved(fields))
    else:
        shown.append(
            _Notice(
                "No INCIDENT RESOLVED message: the incident is not resolved (status: "
                f"{fields.get('status') or 'unknown'}). The status page gets an update instead."
            )
        )
    outgoing.append(messages.statuspage(fields))
    for message in outgoing:
        shown.append(message)
        shown += forms.post_or_offer(
            section.incident,
            message,
            "Post to Slack" if message.kind == "resolved" else "Post to the status page",
            notify_now=notify_now,
            page_id=statuspage_page_id,
            api=statuspage_api,
        )
    show(shown)


class _Notice:
    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return self.text

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        return {"text/plain": self.text, "text/html": f"<p><b>{escape.html(self.text)}</b></p>"}
