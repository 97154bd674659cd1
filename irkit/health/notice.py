"""The health report's Slack notice: posted only when the worst status changes, or while it stays
CRIT no more often than every `repeat_min` minutes. A scheduler running the report every five
minutes must not page a channel every five minutes."""

from __future__ import annotations

import socket
from collections.abc import Sequence
from datetime import datetime, timedelta

from irkit import escape
from irkit.result import Result, Status
from irkit.secrets import redact

_LISTED = 5


def reason(
    now: Status,
    before: Status | None,
    last_posted: datetime | None,
    at: datetime,
    repeat_min: float,
) -> str:
    """Why a notice is due, or "" when none is."""
    if before is None:
        return "" if now is Status.OK else f"first health report: {now.name}"
    if now is not before:
        return "recovered" if now is Status.OK else f"{before.name} → {now.name}"
    if now is Status.CRIT:
        if last_posted is None:
            return "still CRIT (no notice posted yet)"
        if at - last_posted >= timedelta(minutes=repeat_min):
            return (
                f"still CRIT, last notice {int((at - last_posted).total_seconds() // 60)} min ago"
            )
    return ""


def text(results: Sequence[Result], worst: Status, why: str, at: datetime) -> str:
    """A short Slack message: the verdict, why now, and the worst findings. A summary carries
    text from outside (an alert's name, a health endpoint's component text, a log line): it is
    scrubbed, then escaped for Slack, so that it can neither page the channel nor plant a link."""
    counts = {s: sum(r.status is s for r in results) for s in Status}
    tally = ", ".join(f"{n} {s.name}" for s, n in counts.items() if n)
    lines = [
        f"*irkit health: {worst.name}* on {_shown(socket.gethostname())} at "
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
