"""Earlier health reports: the one before this run (what changed since), and when a notice was
last posted. The executed notebooks in reports/health/ are the only state: no side files."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from irkit import records
from irkit.home import reports_dir
from irkit.result import Result, Status

NAME = "health"
# <UTC stamp>-health.ipynb, or -health-2.ipynb for a second run in the same second.
_REPORT = re.compile(r"^(?P<stamp>\d{8}T\d{6}Z)-health(?:-(?P<n>\d+))?\.ipynb$")
NOTIFIED = "health-notified"


def folder(environment: str = "") -> Path:
    """Where the health reports are kept: one history per environment, so that one
    environment's report is never compared with, or quiets the notices of, another's."""
    return reports_dir() / NAME / environment if environment else reports_dir() / NAME


def stamp_of(path: Path) -> datetime | None:
    match = _REPORT.match(path.name)
    if not match:
        return None
    return datetime.strptime(match["stamp"], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)


def newest_first(where: Path) -> Iterator[Path]:
    """Published health reports, newest first (hidden files are runs still going)."""
    if not where.is_dir():
        return

    def order(p: Path) -> tuple[str, int]:
        match = _REPORT.match(p.name)
        assert match
        return match["stamp"], int(match["n"] or 1)

    found = [p for p in where.iterdir() if _REPORT.match(p.name) and p.is_file()]
    yield from sorted(found, key=order, reverse=True)


def previous(where: Path | None = None) -> records.Record | None:
    """The latest complete report before this run: one that was stopped or is corrupt says
    little about the state then, and is passed over for the one before it."""
    for path in newest_first(where or folder()):
        record = records.read(path)
        if record.complete and not record.corrupt:
            return record
    return None


def last_notified(since: datetime, where: Path | None = None) -> datetime | None:
    """When a health notice was last posted, looking back no further than `since`."""
    for path in newest_first(where or folder()):
        at = stamp_of(path)
        if at is None or at < since - timedelta(minutes=1):
            return None
        for event in reversed(records.read(path).events):
            if event.get("kind") == NOTIFIED:
                try:
                    return datetime.fromisoformat(str(event["at"]).replace("Z", "+00:00"))
                except (KeyError, ValueError):
                    continue
    return None


@dataclass(frozen=True)
class Change:
    probe: str
    target: str
    was: str  # a status name, or "—" for a check the earlier report did not have
    now: str
    summary: str


def changes(now: Sequence[Result], before: Sequence[Result]) -> list[Change]:
    """Checks whose verdict differs from the earlier report's, worst first."""
    earlier = {(r.probe, r.target): r for r in before}
    found: list[Change] = []
    for result in now:
        old = earlier.pop((result.probe, result.target), None)
        if old is None or old.status is not result.status:
            was = old.status.name if old else "—"
            found.append(
                Change(result.probe, result.target, was, result.status.name, result.summary)
            )
    for (probe, target), old in earlier.items():
        found.append(Change(probe, target, old.status.name, "—", "no longer checked"))

    def rank(change: Change) -> int:
        return -Status[change.now].rank if change.now in Status.__members__ else 1

    return sorted(found, key=rank)
