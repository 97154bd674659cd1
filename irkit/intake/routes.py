"""Where an alert goes: the incident it opens (title, category, severity), the notebooks run
after triage, and who is paged — from the alert's labels and the `alert_*` parameters."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from irkit.errors import ParameterError
from irkit.incident import schema
from irkit.intake.alertmanager import Notification

TRIAGE = "triage"
# The runbook's escalation table is by category; a section's area names its category.
SECTION_CATEGORY = {
    "db": "database",
    "redis": "infrastructure",
    "celery": "infrastructure",
    "disk": "infrastructure",
    "containers": "infrastructure",
    "alerts": "application",
}
MAX_TITLE = 200


@dataclass(frozen=True)
class Route:
    title: str
    category: str
    severity: str  # empty: the decision list decides
    sections: tuple[str, ...]  # after triage, in order
    pagerduty: bool
    email: bool
    why: str  # how the route was chosen, for the timeline


def pairs(name: str, lines: Sequence[str]) -> dict[str, str]:
    """`["critical: P1", …]` as {"critical": "P1"}; a line without its colon is refused."""
    found: dict[str, str] = {}
    for line in lines:
        key, sep, value = line.partition(":")
        if not sep or not key.strip():
            raise ParameterError(f'{name}: {line!r} is not "name: value"')
        found[key.strip()] = value.strip()
    return found


class Router:
    def __init__(self, values: Mapping[str, Any], sections: Sequence[str]) -> None:
        """`values`: the triage notebook's parameters (the `alert_*` ones); `sections`: the
        notebooks that take part in incidents. Everything is checked here, once, at start."""
        self.known = tuple(s for s in sections if s != TRIAGE)
        self.severities = pairs("alert_severities", values["alert_severities"])
        for label, level in self.severities.items():
            if level not in schema.SEVERITIES:
                raise ParameterError(
                    f"alert_severities: {label}: {level!r} is not one of "
                    f"{', '.join(schema.SEVERITIES)}"
                )
        self.sections = {
            name: self._sections(f"alert_sections: {name}", text)
            for name, text in pairs("alert_sections", values["alert_sections"]).items()
        }
        self.pagerduty = frozenset(values["alert_pagerduty"])
        self.email = frozenset(values["alert_email"])

    def _sections(self, where: str, text: str) -> tuple[str, ...]:
        named = [s for s in text.replace(",", " ").split() if s != TRIAGE]
        unknown = [s for s in named if s not in self.known]
        if unknown:
            raise ParameterError(
                f"{where}: no section {unknown[0]!r}; the sections are: {', '.join(self.known)}"
            )
        return tuple(dict.fromkeys(named))

    def route(self, notification: Notification) -> Route:
        name = notification.name or "alert"
        why = []
        label = notification.label("runbook_section")
        sections: tuple[str, ...] | None = None
        if label:
            try:
                sections = self._sections("the runbook_section label", label)
                why.append(f"runbook_section label: {' '.join(sections) or 'triage only'}")
            except ParameterError as exc:
                why.append(f"{exc} (the label is left aside)")
        if sections is None:
            sections = self.sections.get(name, ())
            why.append(
                f"alert_sections: {name}: {' '.join(sections)}"
                if name in self.sections
                else f"{name} is not in alert_sections: triage only"
            )
        severity_label = notification.label("severity")
        severity = self.severities.get(severity_label, "")
        why.append(
            f"severity {severity_label} → {severity}"
            if severity
            else f"severity label {severity_label!r} not mapped: the decision list decides"
        )
        category = notification.label("category")
        if category not in schema.CATEGORIES:
            category = next((SECTION_CATEGORY[s] for s in sections if s in SECTION_CATEGORY), "")
        summary = notification.annotation("summary")
        title = f"{name}: {summary}" if summary else name
        if len(title) > MAX_TITLE:
            title = title[: MAX_TITLE - 1] + "…"
        return Route(
            title=" ".join(title.split()),
            category=category,
            severity=severity,
            sections=sections,
            pagerduty=severity in ("P0", "P1") or name in self.pagerduty,
            email=name in self.email,
            why="; ".join(why),
        )
