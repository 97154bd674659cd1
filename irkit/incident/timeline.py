"""The timeline as people read it, and the moment the incident was first mitigated.

Every run of a notebook records its verdicts and its plans again: re-running the db notebook five
times while the pool drains leaves five identical dry-run plans. Read back raw, that is a wall of
rows at the same minute. `condense` keeps the first and the last of each repeated plan, dry run,
verdict and run summary (same kind, same text, anywhere in the incident) and says on the last how
many there were; every other event, above all an action that acted (its confirmation and its
result), a note or a message, is kept as it is. The postmortem, `irkit incident show` and the
resolve notebook all read the timeline through here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from irkit.incident.schema import parse_time

# Events that each run records again while nothing changed: collapsed when repeated.
REPEATED_KINDS = frozenset({"action-plan", "action-dry-run", "verdict", "run"})


@dataclass(frozen=True)
class Row:
    """One line of the condensed timeline. `count` > 1 on the last of a repeated event, with
    `first_at` the time of the first."""

    at: datetime
    kind: str
    text: str
    count: int = 1
    first_at: datetime | None = None

    @property
    def shown(self) -> str:
        if self.count < 2 or self.first_at is None:
            return self.text
        # The multiplication sign, as people write a count of repeats.
        return f"{self.text} (×{self.count} since {self.first_at:%H:%M:%S})"  # noqa: RUF001


def condense(events: Iterable[Mapping[str, Any]]) -> list[Row]:
    """The events (sorted, as `load` merges them) with repeated plans and verdicts collapsed to
    their first and last occurrence."""
    timed = [(at, e) for e in events if (at := parse_time(e.get("at"))) is not None]
    groups: dict[tuple[str, str], list[int]] = {}
    for index, (_, event) in enumerate(timed):
        kind = str(event.get("kind", ""))
        if kind in REPEATED_KINDS:
            groups.setdefault((kind, str(event.get("text", ""))), []).append(index)
    dropped: set[int] = set()
    last_of: dict[int, list[int]] = {}
    for indexes in groups.values():
        dropped.update(indexes[1:-1])
        if len(indexes) > 1:
            last_of[indexes[-1]] = indexes
    rows = []
    for index, (at, event) in enumerate(timed):
        if index in dropped:
            continue
        group = last_of.get(index)
        rows.append(
            Row(
                at=at,
                kind=str(event.get("kind", "")),
                text=str(event.get("text", "")),
                count=len(group) if group else 1,
                first_at=timed[group[0]][0] if group else None,
            )
        )
    return rows


def first_mitigation(events: Sequence[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """The first action that changed something and failed at nothing: its result event. A dry
    run, a refusal or a partial failure is not a mitigation."""
    timed = sorted(
        ((at, e) for e in events if (at := parse_time(e.get("at"))) is not None),
        key=lambda pair: pair[0],
    )
    for _, event in timed:
        if event.get("kind") != "action-result":
            continue
        data = event.get("data")
        outcome = data.get("outcome") if isinstance(data, Mapping) else None
        if isinstance(outcome, Mapping) and _changed(outcome) and not outcome.get("failed"):
            return event
    return None


def _changed(outcome: Mapping[str, Any]) -> bool:
    """Whether an action's result changed something. Records written before outcomes said so
    are read by the step's name: a read-only command (showmigrations) never mitigates."""
    if "changed" in outcome:
        return outcome["changed"] is True
    from irkit.actions import deployment

    name = str(outcome.get("action", "")).removeprefix("command.")
    return bool(outcome.get("done")) and name not in deployment.READ_ONLY


def postmortem_written_at(events: Iterable[Mapping[str, Any]]) -> datetime | None:
    """When the postmortem was first written (its timeline event), if it was."""
    written = (parse_time(e.get("at")) for e in events if e.get("kind") == "postmortem")
    return min((at for at in written if at is not None), default=None)


class Shown:
    """The condensed timeline as a notebook shows it: a table, every value escaped."""

    def __init__(self, events: Iterable[Mapping[str, Any]]) -> None:
        self.rows = condense(events)

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        from irkit.escape import html, one_line

        if not self.rows:
            return {"text/plain": "(nothing on the timeline yet)"}
        text = [
            f"{r.at:%m-%d %H:%M:%S}  {one_line(r.kind):<14} {one_line(r.shown)}" for r in self.rows
        ]
        cells = "".join(
            f"<tr><td>{r.at:%m-%d %H:%M:%S}</td><td>{html(r.kind)}</td>"
            f"<td style='text-align:left'>{html(r.shown)}</td></tr>"
            for r in self.rows
        )
        table = f"<table><tr><th>UTC</th><th>kind</th><th>event</th></tr>{cells}</table>"
        return {"text/plain": "\n".join(text), "text/html": table}
