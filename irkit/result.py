"""Probe results: one check's verdict and its evidence, as notebooks show and store them (the
results table, in text and HTML, is drawn here from `irkit.render`'s parts)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from irkit import escape
from irkit.render import COLOURS, badge, evidence_html

# Re-exported: a Result's status is part of the results' vocabulary (`irkit.result.Status`).
from irkit.status import Status as Status

RESULT_MIME = "application/vnd.irkit.result+json"
# The incident record inside executed notebooks: partial incident objects (later ones override
# earlier fields) and timeline events.
INCIDENT_MIME = "application/vnd.irkit.incident+json"
EVENT_MIME = "application/vnd.irkit.event+json"
# What the terminal streams as a run goes (irkit.cli.stream), besides results: a guarded action's
# plan, outcome or dry run; a notice a responder must see (an incident NOT resolved); and the
# section's closing verdict with its next steps.
ACTION_MIME = "application/vnd.irkit.action+json"
NOTICE_MIME = "application/vnd.irkit.notice+json"
NEXT_STEPS_MIME = "application/vnd.irkit.next-steps+json"


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, kw_only=True)
class Result:
    """One probe's verdict. Never holds a secret: `target` is already redacted."""

    probe: str
    target: str
    status: Status
    summary: str
    evidence: Mapping[str, Any] = field(default_factory=dict)
    elapsed_ms: float = 0.0
    at: datetime = field(default_factory=utc_now)
    # Measured after a guarded action in the same run changed something: that action's name.
    after: str = ""
    # The environment the run was for (`--env NAME`), when one was named.
    environment: str = ""

    def to_json(self) -> dict[str, Any]:
        data = {
            "probe": self.probe,
            "target": self.target,
            "status": self.status.name,
            "summary": self.summary,
            "evidence": dict(self.evidence),
            "elapsed_ms": round(self.elapsed_ms, 1),
            "at": self.at.isoformat(timespec="seconds").replace("+00:00", "Z"),
        }
        if self.after:
            data["after"] = self.after
        if self.environment:
            data["environment"] = self.environment
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Result:
        return cls(
            probe=str(data["probe"]),
            target=str(data["target"]),
            status=Status[str(data["status"])],
            summary=str(data["summary"]),
            evidence=dict(data.get("evidence") or {}),
            elapsed_ms=float(data.get("elapsed_ms", 0.0)),
            at=datetime.fromisoformat(str(data["at"]).replace("Z", "+00:00")),
            after=str(data.get("after") or ""),
            environment=str(data.get("environment") or ""),
        )

    def __str__(self) -> str:
        # Printed to a terminal or a cron mail: a summary quoting a remote text (a health
        # endpoint, a log line) must not move the cursor, recolour or add lines.
        return (
            f"{self.status.name:<7} {escape.one_line(self.probe)}  {escape.one_line(self.summary)}"
            f"{self.after_note}"
        )

    @property
    def after_note(self) -> str:
        """' (after postgres.terminate)' for a verdict re-measured after an action, else ''."""
        return f" (after {escape.one_line(self.after)})" if self.after else ""

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        return {
            "text/plain": results_text([self]),
            "text/html": results_html([self]),
            RESULT_MIME: self.to_json(),
        }


class Results(tuple[Result, ...]):
    """Several results shown as one table; their JSON is a list of result objects."""

    def __new__(cls, results: Iterable[Result] = ()) -> Results:
        return super().__new__(cls, tuple(results))

    @property
    def status(self) -> Status:
        return Status.worst(r.status for r in self)

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        return {
            "text/plain": results_text(self),
            "text/html": results_html(self),
            RESULT_MIME: [r.to_json() for r in self],
        }


def results_text(results: Sequence[Result]) -> str:
    lines = [
        f"{r.status.name:<8}{escape.one_line(r.probe):<30}{escape.one_line(r.summary)}{r.after_note}"
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
            f"{escape.html(r.after_note)}"
            f"{evidence_html(r.evidence)}</td>"
            f'<td style="vertical-align:top;font-family:monospace;color:#555">'
            f"{escape.html(r.target)}</td>"
            f'<td style="vertical-align:top;color:#555">{r.elapsed_ms:.0f}&nbsp;ms</td></tr>'
        )
    return (
        '<table class="irkit-results" style="border-collapse:collapse">'
        "<thead><tr><th>status</th><th>probe</th><th>summary</th><th>target</th><th>took</th>"
        f"</tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )
