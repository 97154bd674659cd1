"""The scheduled health report: every read-only check at once, a summary first (worst status,
counts, what changed since the previous report), then one section per runbook area with its
verdicts, evidence and charts; a Slack notice only when it is news.

In the notebook (`health.warm_up()` in its first cell, right after the imports):

    report = health.run(section, deadline_s=health_deadline_s)
    report.summary()
    report.show("postgres")
    report.notify(notify, repeat_min=notify_repeat_min)
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from irkit import escape, probes, render
from irkit.catalogue.areas import AREAS
from irkit.catalogue.parameters import default
from irkit.health import charts, history, notice
from irkit.health.checks import Check, report_checks, selected
from irkit.records import Record
from irkit.result import RESULT_MIME, Result, Status, results_html, results_text, utc_now

if TYPE_CHECKING:
    from irkit.incident.section import Section

__all__ = ["AREAS", "HEALTH_MIME", "Check", "Report", "report_checks", "run", "warm_up"]

# The summary as data, for tools that read the reports without parsing HTML.
HEALTH_MIME = "application/vnd.irkit.health+json"


def warm_up() -> None:
    """Start loading the client libraries of every check (psycopg, redis, kombu, httpx, … take a
    good part of a second) in the background, while the notebook's next cells (parameters, the
    Section) are sent and run. Called by the notebook's first cell, and earlier still by the
    kernel `irkit health` starts (`runner.PRELOAD`); once is enough."""
    global _warming
    with _warming_lock:
        if _warming is None:
            _warming = threading.Thread(target=_load_probes, name="irkit-load-probes", daemon=True)
            _warming.start()


_warming: threading.Thread | None = None
_warming_lock = threading.Lock()


def _load_probes() -> None:
    probes.load_all()


def run(
    section: Section,
    *,
    deadline_s: float = default("health_deadline_s"),
    charts_always: bool = False,
) -> Report:
    """Every read-only check this configuration allows, concurrently, within `deadline_s`.
    Charts are drawn for the areas that need attention, or for every area with `charts_always`."""
    from irkit.health import checks

    chosen = selected(section.params)
    at = utc_now()
    started = time.perf_counter()
    # When every chart is wanted, their library loads while the checks wait on their targets.
    results = checks.run(
        section, chosen, deadline_s=deadline_s, meanwhile=charts.warm_up if charts_always else None
    )
    section.note(results)
    return Report(
        section=section,
        checks=chosen,
        results=results,
        at=at,
        elapsed_s=time.perf_counter() - started,
        previous=history.previous(history.folder(section.environment)),
        charts_always=charts_always,
    )


@dataclass
class Report:
    """One health report as its notebook shows it: the verdicts of this run, the previous
    report's record to compare with, the summary, each area and the notice. (The executed
    notebook it ends up in is read back by `irkit.records`.)"""

    section: Section
    checks: list[Check]
    results: list[Result]
    at: datetime
    elapsed_s: float
    previous: Record | None
    charts_always: bool = False
    _shown: set[str] = field(default_factory=set)

    @property
    def worst(self) -> Status:
        return Status.worst(r.status for r in self.results)

    @property
    def previous_worst(self) -> Status | None:
        return self.previous.status if self.previous else None

    def counts(self) -> dict[str, int]:
        return {s.name: sum(r.status is s for r in self.results) for s in Status}

    def area(self, name: str) -> list[Result]:
        if name not in AREAS:
            raise KeyError(f"no report area {name!r}; the areas are: {', '.join(AREAS)}")
        return [r for c, r in zip(self.checks, self.results, strict=True) if c.area == name]

    def changes(self) -> list[history.Change]:
        return history.changes(self.results, self.previous.results) if self.previous else []

    def summary(self) -> _Bundle:
        counts = self.counts()
        tally = ", ".join(f"{n} {s}" for s, n in counts.items() if n)
        head = (
            f"Health: {self.worst.name}: {tally} ({len(self.results)} checks in "
            f"{self.elapsed_s:.1f} s, {self.at:%Y-%m-%d %H:%M:%S} UTC)"
        )
        bad = sorted(
            (r for r in self.results if r.status is not Status.OK), key=lambda r: -r.status.rank
        )
        changes = self.changes()
        if self.previous is None:
            since = "No earlier health report to compare with."
        else:
            when = self.previous.started_at[:19].replace("T", " ") or self.previous.path.name
            since = f"Since the previous report ({when} UTC, {self.previous.status.name}): " + (
                f"{len(changes)} change(s)" if changes else "no change"
            )
        text = [head, "", "Needs attention:" if bad else "Every check is OK."]
        text += [f"  {r.status.name:<8}{r.probe:<30}{escape.one_line(r.summary)}" for r in bad]
        text += ["", since]
        text += [
            f"  {c.probe:<30}{c.was:>8} → {c.now:<8}{escape.one_line(c.summary)}" for c in changes
        ]
        html = [
            f"<h3>{render.badge(self.worst)} {escape.html(head.partition(': ')[2])}</h3>",
            f"<p><b>Needs attention</b></p>{_table(bad)}" if bad else "<p>Every check is OK.</p>",
            f"<p><b>{escape.html(since)}</b></p>",
        ]
        if changes:
            rows = [
                {
                    "probe": c.probe,
                    "target": c.target,
                    "was": c.was,
                    "now": c.now,
                    "summary": c.summary,
                }
                for c in changes
            ]
            # Coloured by the status the check has now: what got worse stands out.
            html.append(render.table_html(rows, status_column="now"))
        data = {
            "worst": self.worst.name,
            "counts": counts,
            "checks": len(self.results),
            "elapsed_s": round(self.elapsed_s, 2),
            "at": self.at.isoformat(timespec="seconds"),
            "previous": {"report": self.previous.path.name, "worst": self.previous.status.name}
            if self.previous
            else None,
            "changes": [c.__dict__ for c in changes],
        }
        return _Bundle(
            {"text/plain": "\n".join(text), "text/html": "".join(html), HEALTH_MIME: data}
        )

    def show(self, name: str) -> _Bundle:
        """One area's verdicts with their evidence (the record's results), and its charts."""
        results = self.area(name)
        if name in self._shown:
            # Shown twice, the record would count every verdict twice.
            return _Bundle({"text/plain": f"{AREAS[name]}: shown above"})
        self._shown.add(name)
        if not results:
            note = f"{AREAS[name]}: nothing configured to check here"
            return _Bundle(
                {"text/plain": note, "text/html": f"<p><em>{escape.html(note)}</em></p>"}
            )
        # A picture helps where something needs attention: which path is full, which queue
        # is long, which state holds the connections. (Drawing costs matplotlib's start-up.)
        wanted = self.charts_always or any(r.status is not Status.OK for r in results)
        images = "".join(
            f'<img alt="chart" style="max-width:100%" src="{uri}"/>'
            for uri in (charts.for_area(name, results) if wanted else [])
        )
        return _Bundle(
            {
                "text/plain": results_text(results),
                "text/html": results_html(results) + images,
                RESULT_MIME: [r.to_json() for r in results],
            }
        )

    def notify(self, enabled: bool, *, repeat_min: float = default("notify_repeat_min")) -> _Bundle:
        """Post the Slack notice if asked and if it is news; record the attempt."""
        from irkit.incident.notify import post_slack

        since = self.at - timedelta(minutes=repeat_min)
        failing_now = notice.failing(self.results)
        failing_before = notice.failing(self.previous.results) if self.previous else {}
        changed = notice.failing_changed(failing_now, failing_before) if self.previous else ""
        worse = notice.got_worse(failing_now, failing_before)
        why = notice.reason(
            self.worst,
            self.previous_worst,
            history.last_notified(since, history.folder(self.section.environment)),
            self.at,
            repeat_min,
            changed,
            worse,
        )
        if not why:
            if self.previous is None:
                return _note("No notice: the first health report here, and all is OK")
            same = ", and the same checks fail" if self.worst is not Status.OK else ""
            return _note(
                f"No notice: the worst status is {self.worst.name}, as before{same}"
                + ("" if self.worst is not Status.CRIT else f" (reminded every {repeat_min:g} min)")
            )
        message = notice.text(self.results, self.worst, why, self.at, self.section.environment)
        if not enabled:
            return _note(f"A notice would be due ({why}), not posted: notify is off.\n{message}")
        delivery = post_slack(message)
        log = self.section.incident
        if delivery.posted:
            log.event(
                history.NOTIFIED, f"health notice posted to Slack ({why})", worst=self.worst.name
            )
        else:
            log.event("message-failed", f"health notice NOT posted: {delivery.detail}")
        return _note(f"{delivery}\n{message}")


def _table(results: list[Result]) -> str:
    rows = [
        {"status": r.status.name, "probe": r.probe, "summary": r.summary, "target": r.target}
        for r in results
    ]
    return render.table_html(rows, status_column="status")


def _note(text: str) -> _Bundle:
    return _Bundle({"text/plain": text, "text/html": f"<pre>{escape.html(text)}</pre>"})


class _Bundle:
    """Something a notebook cell shows, as these MIME types."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        return self.data
