"""Probe results: one check's verdict and its evidence, as notebooks show and store them."""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from irkit import escape

RESULT_MIME = "application/vnd.irkit.result+json"
# The incident record inside executed notebooks: partial incident objects (later ones override
# earlier fields) and timeline events.
INCIDENT_MIME = "application/vnd.irkit.incident+json"
EVENT_MIME = "application/vnd.irkit.event+json"


class Status(enum.Enum):
    """A verdict, valued by its Nagios exit code."""

    OK = 0
    WARN = 1
    CRIT = 2
    UNKNOWN = 3

    @property
    def exit_code(self) -> int:
        return self.value

    @property
    def rank(self) -> int:
        # A known CRIT outranks not knowing, and not knowing outranks OK (monitoring-plugins'
        # max_state_alt); WARN sits above UNKNOWN so that one failed probe cannot hide a warning.
        return _RANK[self]

    @classmethod
    def worst(cls, statuses: Iterable[Status]) -> Status:
        return max(statuses, key=lambda s: s.rank, default=cls.OK)


_RANK = {Status.OK: 0, Status.UNKNOWN: 1, Status.WARN: 2, Status.CRIT: 3}


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

    def to_json(self) -> dict[str, Any]:
        return {
            "probe": self.probe,
            "target": self.target,
            "status": self.status.name,
            "summary": self.summary,
            "evidence": dict(self.evidence),
            "elapsed_ms": round(self.elapsed_ms, 1),
            "at": self.at.isoformat(timespec="seconds").replace("+00:00", "Z"),
        }

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
        )

    def __str__(self) -> str:
        # Printed to a terminal or a cron mail: a summary quoting a remote text (a health
        # endpoint, a log line) must not move the cursor, recolour or add lines.
        return (
            f"{self.status.name:<7} {escape.one_line(self.probe)}  {escape.one_line(self.summary)}"
        )

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        from irkit.render import results_html, results_text

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
        from irkit.render import results_html, results_text

        return {
            "text/plain": results_text(self),
            "text/html": results_html(self),
            RESULT_MIME: [r.to_json() for r in self],
        }
