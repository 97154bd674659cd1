"""The runbook's escalation paths and contact methods."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from irkit.incident.schema import CATEGORIES

LEVELS = {
    "database": ("On-call Engineer", "Database Admin", "CTO"),
    "infrastructure": ("DevOps Lead", "Cloud Provider Support", "CTO"),
    "application": ("Backend Lead", "Engineering Manager", "CTO"),
    "security": ("Security Lead", "CISO", "CEO"),
}
CONTACT_METHODS = (
    "Slack: @oncall (fastest)",
    "PagerDuty: automatic escalation",
    "Phone: emergency contact list (stored in 1Password)",
)


class Escalation:
    """Who to call for this category, level by level; `contacts` maps a role to a handle."""

    def __init__(self, category: str, contacts: Mapping[str, str] | None = None) -> None:
        self.category = category
        self.contacts = dict(contacts or {})

    def rows(self) -> list[tuple[str, str, str]]:
        categories = [self.category] if self.category in LEVELS else list(CATEGORIES)
        return [
            (
                category,
                f"Level {n}",
                f"{role}" + (f" ({self.contacts[role]})" if role in self.contacts else ""),
            )
            for category in categories
            for n, role in enumerate(LEVELS[category], 1)
        ]

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        from irkit import escape

        note = (
            ""
            if self.category in LEVELS
            else "No category recorded yet: every path is shown; set `category`."
        )
        text = "\n".join(
            ([note] if note else [])
            + [f"  {c:<15} {lvl}: {who}" for c, lvl, who in self.rows()]
            + ["Contact methods:"]
            + [f"  {n}. {m}" for n, m in enumerate(CONTACT_METHODS, 1)]
        )
        html = (
            (f"<p>{escape.html(note)}</p>" if note else "")
            + "<table><tr><th>category</th><th>level</th><th>who</th></tr>"
            + "".join(
                f"<tr><td>{escape.html(c)}</td><td>{lvl}</td><td>{escape.html(who)}</td></tr>"
                for c, lvl, who in self.rows()
            )
            + "</table><p>Contact methods:</p><ol>"
            + "".join(f"<li>{escape.html(m)}</li>" for m in CONTACT_METHODS)
            + "</ol>"
        )
        return {"text/plain": text, "text/html": html}
