"""What to do next, in the runbook's words, for each verdict that is not OK. Each probe's advice
is declared with it (`@probe(…, advice=…)`, irkit.probes)."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from typing import Any

from irkit import probes
from irkit.errors import ConfigError
from irkit.render import badge
from irkit.result import NEXT_STEPS_MIME, Result, Status


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
    """A section's closing summary: its verdict, the runbook steps its findings (WARN, CRIT,
    UNKNOWN) call for, and what an informational check that passed still points at (reclaimable
    files). Checks that passed are counted in the headline, never listed as steps."""

    def __init__(self, section: str, results: Sequence[Result]) -> None:
        self.section = section
        self.results = list(results)
        self.status = Status.worst(r.status for r in self.results)
        order = sorted(self.results, key=lambda r: -r.status.rank)
        # A check skipped because its target had just failed another: that one's step covers it.
        findings = [
            r for r in order if r.status is not Status.OK and "skipped_because" not in r.evidence
        ]
        self.steps = [(r, text) for r in findings if (text := advise(r))]
        passed = [r for r in order if r.status is Status.OK]
        self.notes = [(r, text) for r in passed if (text := advise(r))]

    def headline(self) -> str:
        counts = {s: sum(r.status is s for r in self.results) for s in Status}
        tally = ", ".join(f"{n} {s.name}" for s, n in counts.items() if n)
        if not self.results:
            return f"{self.section}: no checks have run yet"
        if self.status is Status.OK:
            return f"{self.section}: {self.status.name}: all {len(self.results)} checks OK"
        return f"{self.section}: {self.status.name} ({tally})"

    def to_json(self) -> dict[str, Any]:
        def rows(pairs: list[tuple[Result, str]]) -> list[dict[str, str]]:
            return [{"status": r.status.name, "probe": r.probe, "step": t} for r, t in pairs]

        return {
            "section": self.section,
            "status": self.status.name,
            "headline": self.headline(),
            "steps": rows(self.steps),
            "notes": rows(self.notes),
        }

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        text = [self.headline()]
        text += [f"- {r.status.name} {r.probe}: {step}" for r, step in self.steps]
        text += [f"  note: {r.probe}: {note}" for r, note in self.notes]
        items = "".join(
            f"<li>{badge(r.status)} <code>{escape(r.probe)}</code>: {escape(step)}</li>"
            for r, step in self.steps
        )
        html = f"<h3>{badge(self.status)} {escape(self.headline())}</h3>"
        html += f"<ol>{items}</ol>" if items else "<p>Nothing in this section needs action.</p>"
        if self.notes:
            notes = "".join(
                f"<li><code>{escape(r.probe)}</code>: {escape(note)}</li>" for r, note in self.notes
            )
            html += f"<p>Worth knowing:</p><ul>{notes}</ul>"
        return {"text/plain": "\n".join(text), "text/html": html, NEXT_STEPS_MIME: self.to_json()}
