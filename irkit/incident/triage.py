"""The triage notebook's steps (runbook §1 Detection, §2 Triage, §3 Communication), one call
per cell."""

from __future__ import annotations

import getpass
import os
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from irkit import escape
from irkit.catalogue.parameters import default
from irkit.errors import ConfigError
from irkit.incident import escalation, forms, messages, notify, paging, schema, severity, sla
from irkit.render import show
from irkit.result import Result, utc_now

if TYPE_CHECKING:
    from irkit.incident.section import Section


class Links:
    """The runbook's dashboards, as links a responder can click."""

    def __init__(self, links: Mapping[str, str], logs_command: str = "") -> None:
        self.links = {name: url for name, url in links.items() if url}
        self.logs_command = logs_command

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        text = [f"{name}: {url}" for name, url in self.links.items()]
        html = "".join(
            f"<li><b>{escape.html(n)}</b>: {_link(u)}</li>" for n, u in self.links.items()
        )
        if self.logs_command:
            text.append(f"Logs: {self.logs_command}")
            html += f"<li><b>Logs</b>: <code>{escape.html(self.logs_command)}</code></li>"
        return {"text/plain": "\n".join(text), "text/html": f"<ul>{html}</ul>"}


def _link(url: str) -> str:
    """A link to click; any other scheme than http(s) is shown as text, never followed."""
    target = escape.link_target(url)
    if target is None:
        return f"<code>{escape.html(url)}</code>"
    return (
        f"<a href='{escape.html(target)}' target='_blank' rel='noopener noreferrer'>"
        f"{escape.html(url)}</a>"
    )


def dashboards(
    grafana_url: str, jaeger_url: str, prometheus_url: str, logs_command: str = ""
) -> Links:
    prom = prometheus_url.rstrip("/")
    return Links(
        {
            "Grafana (metrics)": grafana_url,
            "Jaeger (traces)": jaeger_url,
            "Prometheus (active alerts)": f"{prom}/alerts" if prom else "",
        },
        logs_command,
    )


def start(
    section: Section,
    *,
    title: str = "",
    category: str = "",
    responder: str = "",
    impact: str = "",
    detection_source: str = "",
    impact_started_at: str = "",
    detected_at: str = "",
    acknowledged_at: str = "",
    acknowledge: bool = True,
) -> dict[str, Any]:
    """Record what the responder gave and acknowledge the incident: the response clock stops
    when a responder starts triage, or at `acknowledged_at` when they took the page earlier (a
    pager's acknowledgement, or a record written up after the fact). Returns the record so far."""
    given: dict[str, Any] = {}
    if category:
        given["category"] = schema.check_choice("category", category, schema.CATEGORIES)
    for name, value in (
        ("title", title),
        ("impact", impact),
        ("detection_source", detection_source),
    ):
        if value:
            given[name] = value
    for name, value in (("impact_started_at", impact_started_at), ("detected_at", detected_at)):
        if value:
            given[name] = schema.time_parameter(name, value)
    fields = section.incident.fields
    # A run nobody watches names no responder: the first person to run triage becomes it.
    if (not fields.get("responder") and acknowledge) or responder:
        given["responder"] = responder or _user()
    now = utc_now()
    # With no detection time anywhere, it is now: unless the page was acknowledged earlier.
    detection_unknown = not fields.get("detected_at") and "detected_at" not in given
    detected = (
        {}
        if detection_unknown
        else {"detected_at": given.get("detected_at") or fields["detected_at"]}
    )
    acknowledged = schema.time_in_order(
        "acknowledged_at",
        acknowledged_at,
        not_before=detected,
        now=now,
        hint=", or give detected_at too",
    )
    if detection_unknown:
        given["detected_at"] = schema.format_time(min(now, acknowledged or now))
    if not fields.get("status"):
        given["status"] = "investigating"
    recorded = schema.parse_time(fields.get("acknowledged_at"))
    # Once per acknowledgement: a parameter kept for the next run adds nothing again. A run
    # nobody watches (the alert intake's) acknowledges nothing: the page is still open.
    acknowledging = (acknowledged and acknowledged != recorded) or (
        not acknowledged and not recorded and acknowledge
    )
    if acknowledging:
        given["acknowledged_at"] = schema.format_time(acknowledged or now)
        who = given.get("responder") or fields.get("responder")
        text = f"acknowledged by {who}" if acknowledged else f"triage started by {who}"
        section.incident.event("acknowledged", text, at=acknowledged)
    if given:
        section.incident.update(**given)
    if acknowledging:
        paging.follow_up(section.incident, "acknowledge")
    return dict(section.incident.fields)


def _user() -> str:
    try:
        return os.environ.get("USER") or getpass.getuser()
    except (KeyError, OSError):
        return ""


def impact(section: Section, result: Result) -> Result:
    """The runbook's quick impact check into the record (users active in the window); returns
    the check's result to show."""
    if "active_users" in result.evidence:
        section.incident.update(users_affected=result.evidence["active_users"])
    return result


def decide_severity(
    section: Section,
    *,
    override: str = "",
    service_down: str = "",
    users_can_login: str = "",
    core_features_work: str = "",
    one_tenant_only: str = "",
    cosmetic_only: str = "",
    tenants_affected: str = "",
    login_path: str = default("web_login_path"),
    core_paths: Sequence[str] = (),
) -> severity.Decision:
    """The runbook's decision list on this run's verdicts and the responder's answers. A
    severity a person chose (`severity`, `--severity`, the form) is kept unless this run
    overrides it: the list then only advises."""
    answers = {
        name: severity.parse_answer(f"answer_{name}", value)
        for name, value in (
            ("service_down", service_down),
            ("users_can_login", users_can_login),
            ("core_features_work", core_features_work),
            ("one_tenant_only", one_tenant_only),
            ("cosmetic_only", cosmetic_only),
        )
    }
    decision = severity.decide(
        section.results, answers, override=override, login_path=login_path, core_paths=core_paths
    )
    log = section.incident
    chosen = log.fields.get("severity")
    if override or any(v is not None for v in answers.values()):
        log.update(decision.reason, severity=decision.severity, severity_source="responder")
    elif log.fields.get("severity_source") == "responder" and chosen in schema.SEVERITIES:
        decision = severity.Decision(
            chosen,
            f"kept as the responder set it (the decision list says {decision.severity}: "
            f"{decision.reason})",
            decision.answers,
            overridden=True,
        )
    elif (
        log.fields.get("severity_source") == "alert"
        and chosen in schema.SEVERITIES
        and schema.SEVERITIES.index(decision.severity) > schema.SEVERITIES.index(chosen)
    ):
        # The alert's severity is a floor: the list may make it graver (P0), never lighter,
        # until a person says otherwise.
        decision = severity.Decision(
            chosen,
            f"kept from the alert (the decision list says {decision.severity}: {decision.reason})",
            decision.answers,
            overridden=True,
        )
    else:
        log.update(decision.reason, severity=decision.severity, severity_source="decision list")
    _record_tenants(section, tenants_affected, decision)
    return decision


def _record_tenants(section: Section, given: str, decision: severity.Decision) -> None:
    """Tenants affected: as the responder says, else what the one-tenant answer implies; never
    guessed from the probes alone."""
    if given:
        section.incident.update(tenants_affected=given)
        return
    one = next(a for a in decision.answers if a.key == "one_tenant_only")
    if one.value is not None and not section.incident.fields.get("tenants_affected"):
        section.incident.update(tenants_affected="1" if one.value else "all")


def severity_form(
    section: Section,
    decision: severity.Decision,
    *,
    login_path: str = default("web_login_path"),
    core_paths: Sequence[str] = (),
) -> Any:
    return forms.severity_form(
        section.incident, decision, section.results, login_path=login_path, core_paths=core_paths
    )


def clocks(section: Section) -> sla.ClockTable:
    return sla.ClockTable(section.incident.fields, utc_now())


def contacts(section: Section, handles: Sequence[str] = ()) -> escalation.Escalation:
    """`handles`: "Role: @handle" strings, e.g. "Database Admin: @dba-oncall"."""
    mapping = {}
    for item in handles:
        role, sep, handle = item.partition(":")
        if not sep or not role.strip() or not handle.strip():
            raise ConfigError(f"contact {item!r}: write it as 'Role: @handle'")
        mapping[role.strip()] = handle.strip()
    return escalation.Escalation(str(section.incident.fields.get("category") or ""), mapping)


def communicate(
    section: Section,
    *,
    notify_now: bool = False,
    next_update_min: int = default("next_update_min"),
    statuspage_page_id: str = "",
    statuspage_api: str = notify.STATUSPAGE_API,
) -> None:
    """The Slack "INCIDENT DETECTED" text and the status-page update, from the record: shown
    ready to paste; posted when `notify_now`, or by the buttons in JupyterLab."""
    fields = section.incident.fields
    slack = messages.detected(fields, utc_now(), timedelta(minutes=next_update_min))
    page = messages.statuspage(fields)
    shown: list[Any] = [slack, page]
    for message in (slack, page):
        shown += forms.post_or_offer(
            section.incident,
            message,
            f"Post {'to Slack' if message.kind == 'detected' else 'to the status page'}",
            notify_now=notify_now,
            page_id=statuspage_page_id,
            api=statuspage_api,
        )
    show(shown)
