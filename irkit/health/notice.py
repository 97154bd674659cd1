"""The health report's Slack notice: posted only when it is news (the worst status changes, or a
check fails that did not, or fails worse: a second CRIT check while the first is still CRIT is
news), or while it stays CRIT no more often than every `repeat_min` minutes. A check that
recovers while the worst status stays is said in the next notice, not in one of its own: a check
flapping between OK and WARN next to a steady CRIT must not post every run. A scheduler running
the report every five minutes must not page a channel every five minutes."""

from __future__ import annotations

import socket
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta

from irkit import escape
from irkit.result import Result, Status
from irkit.secrets import redact

_LISTED = 5
_NAMED = 3  # checks named in the reason; the message lists the worst findings anyway


def failing(results: Sequence[Result]) -> dict[tuple[str, str], Status]:
    """The checks that are not OK, by probe and target, with their status."""
    return {(r.probe, r.target): r.status for r in results if r.status is not Status.OK}


def failing_changed(
    now: Mapping[tuple[str, str], Status], before: Mapping[tuple[str, str], Status]
) -> str:
    """What changed in the set of failing checks ("newly failing: CRIT postgres.blocking"), or
    "" when the same checks fail as before, each as badly."""
    newly = [f"{s.name} {probe}" for (probe, t), s in now.items() if (probe, t) not in before]
    moved = [
        f"{probe} {before[probe, t].name} → {s.name}"
        for (probe, t), s in now.items()
        if (probe, t) in before and before[probe, t] is not s
    ]
    cleared = [probe for (probe, t) in before if (probe, t) not in now]
    parts = [
        f"{label}: {_some(names)}"
        for label, names in (
            ("newly failing", newly),
            ("changed", moved),
            ("no longer failing", cleared),
        )
        if names
    ]
    return "; ".join(parts)


def got_worse(
    now: Mapping[tuple[str, str], Status], before: Mapping[tuple[str, str], Status]
) -> bool:
    """Whether a check fails now that did not, or fails worse than it did."""
    return any(key not in before or status.rank > before[key].rank for key, status in now.items())


def _some(names: list[str]) -> str:
    shown = ", ".join(names[:_NAMED])
    return shown + (f" and {len(names) - _NAMED} more" if len(names) > _NAMED else "")


def reason(
    now: Status,
    before: Status | None,
    last_posted: datetime | None,
    at: datetime,
    repeat_min: float,
    changed: str = "",
    worse: bool = False,
) -> str:
    """Why a notice is due, or "" when none is. `changed` says how the set of failing checks
    changed since the previous report (`failing_changed`); it is news if a check fails that did
    not, or fails worse (`worse`, from `got_worse`)."""
    if before is None:
        return "" if now is Status.OK else f"first health report: {now.name}"
    if now is not before:
        return "recovered" if now is Status.OK else f"{before.name} → {now.name}"
    if changed and worse:
        return f"still {now.name}; {changed}"
    if now is Status.CRIT:
        if last_posted is None:
            return "still CRIT (no notice posted yet)"
        if at - last_posted >= timedelta(minutes=repeat_min):
            return (
                f"still CRIT, last notice {int((at - last_posted).total_seconds() // 60)} min ago"
            )
    return ""


def text(
    results: Sequence[Result], worst: Status, why: str, at: datetime, environment: str = ""
) -> str:
    """A short Slack message: the verdict, for which environment, why now, and the worst
    findings. A summary carries text from outside (an alert's name, a health endpoint's component
    text, a log line): it is scrubbed, then escaped for Slack, so that it can neither page the
    channel nor plant a link."""
    counts = {s: sum(r.status is s for r in results) for s in Status}
    tally = ", ".join(f"{n} {s.name}" for s, n in counts.items() if n)
    where = f"for {_shown(environment)} " if environment else ""
    lines = [
        f"*irkit health: {worst.name}* {where}on {_shown(socket.gethostname())} at "
        f"{at:%Y-%m-%d %H:%M} UTC ({_shown(why)}): {tally}"
    ]
    bad = sorted((r for r in results if r.status is not Status.OK), key=lambda r: -r.status.rank)
    lines += [f"• {r.status.name} {_shown(r.probe)}: {_shown(r.summary)}" for r in bad[:_LISTED]]
    if len(bad) > _LISTED:
        lines.append(f"• … and {len(bad) - _LISTED} more in the report")
    return "\n".join(lines)


def _shown(value: str) -> str:
    # Scrubbed before escaping: a secret holding `&` or `<` would no longer be found after.
    return escape.slack(redact(value))
