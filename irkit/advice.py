"""What to do next, in the runbook's words, for each verdict that is not OK. Each probe's advice
is declared with it (`@probe(…, advice=…)`, irkit.probes)."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from typing import Any

from irkit import probes
from irkit.errors import ConfigError
from irkit.render import badge
from irkit.result import Result, Status


def advise(result: Result) -> str | None:
    """The next step for one result; None when it needs no action."""
    if result.status is Status.UNKNOWN:
        return f"Could not tell: {result.summary}. Fix what stops the check and re-run it."
    try:
        entry = probes.entry(result.probe)
    except ConfigError:  # a verdict of a probe this kit does not have (an older record)
        entry = None
    if result.status is Status.OK:
        # Informational probes can still point at something useful (reclaimable files).
        if entry is not None and entry.advice is not None and entry.advice_when_ok:
            return entry.advice(result)
        return None
    if entry is None or entry.advice is None:
        return result.summary
    return entry.advice(result) or result.summary


class NextSteps:
    """A section's closing summary: its verdict and the runbook steps its findings call for."""

    def __init__(self, section: str, results: Sequence[Result]) -> None:
        self.section = section
        self.results = list(results)
        self.status = Status.worst(r.status for r in self.results)
        order = sorted(self.results, key=lambda r: -r.status.rank)
        self.steps = [(r, text) for r in order if (text := advise(r))]

    def headline(self) -> str:
        counts = {s: sum(r.status is s for r in self.results) for s in Status}
        tally = ", ".join(f"{n} {s.name}" for s, n in counts.items() if n)
        if not self.results:
            return f"{self.section}: no checks have run yet"
        if not self.steps:
            return f"{self.section}: {self.status.name}: all {len(self.results)} checks OK"
        return f"{self.section}: {self.status.name} ({tally})"

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        text = [self.headline()]
        text += [f"- {r.status.name} {r.probe}: {step}" for r, step in self.steps]
        items = "".join(
            f"<li>{badge(r.status)} <code>{escape(r.probe)}</code>: {escape(step)}</li>"
            for r, step in self.steps
        )
        html = f"<h3>{badge(self.status)} {escape(self.headline())}</h3>"
        html += f"<ol>{items}</ol>" if items else "<p>Nothing in this section needs action.</p>"
        return {"text/plain": "\n".join(text), "text/html": html}
