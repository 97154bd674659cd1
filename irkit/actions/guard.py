"""The guard rails every action passes through (design §6).

- `Plan`: what an action would do, item by item, and what it refuses and why. Making a plan
  changes nothing.
- `guarded` (a notebook's `section.act`): shows the plan and records it; then acts only if the
  responder confirms in JupyterLab (by typing the number of items), or if the action is named in
  `allow_actions` under papermill. Otherwise it stays a dry run, and says how to act.
- An action's `act` re-checks each item against the plan and acts only on those that still
  match: a pid now running another query, a file changed since, is left alone and reported.
"""

from __future__ import annotations

import getpass
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from html import escape
from typing import Any, Protocol

from irkit.errors import IrkitError
from irkit.kernel import interactive
from irkit.result import ACTION_MIME, utc_now
from irkit.secrets import redact


@dataclass(frozen=True)
class Item:
    """One thing an action would change: `key` identifies it (a pid, a path, a queue)."""

    key: str
    summary: str
    details: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Plan:
    action: str
    target: str
    what: str  # "terminate 3 backends", in the plan's own words
    items: tuple[Item, ...] = ()
    refused: tuple[tuple[str, str], ...] = ()  # (item, why it is left alone)
    at: datetime = field(default_factory=utc_now)
    # What the responder must know before acting, or why there is nothing to act on: a warning
    # ("--volumes deletes data"), who holds the pool when no session matches the filter.
    notes: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "target": self.target,
            "what": self.what,
            "items": [{"key": i.key, "summary": i.summary, **i.details} for i in self.items],
            "refused": [{"item": k, "why": why} for k, why in self.refused],
            "notes": list(self.notes),
            "at": self.at.isoformat(timespec="seconds"),
        }

    def __repr__(self) -> str:
        return str(self._repr_mimebundle_()["text/plain"])

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        head = f"PLAN {self.action} on {self.target}: {self.what}"
        lines = [head] + [f"  - {i.summary}" for i in self.items]
        lines += [f"  refused: {k}: {why}" for k, why in self.refused]
        if not self.items:
            lines.append("  nothing to do")
        lines += [f"  note: {note}" for note in self.notes]
        html = f"<p><b>{escape(head)}</b></p><ul>"
        html += "".join(f"<li>{escape(i.summary)}</li>" for i in self.items)
        html += "".join(
            f"<li style='color:#8a6d3b'>refused: {escape(k)}: {escape(why)}</li>"
            for k, why in self.refused
        )
        html += "</ul>" if self.items or self.refused else "<li>nothing to do</li></ul>"
        html += "".join(f"<p style='color:#8a6d3b'>{escape(note)}</p>" for note in self.notes)
        return {
            "text/plain": redact("\n".join(lines)),
            "text/html": redact(html),
            ACTION_MIME: redact({"kind": "plan", **self.to_json()}),
        }


@dataclass(frozen=True)
class Outcome:
    action: str
    target: str
    done: tuple[tuple[str, str], ...] = ()  # (item, what happened)
    skipped: tuple[tuple[str, str], ...] = ()  # (item, why not: changed since the plan, …)
    failed: tuple[tuple[str, str], ...] = ()
    summary: str = ""
    # A step that only reads (showmigrations, inspect active) changes nothing to re-check.
    read_only: bool = False

    @property
    def verdict(self) -> str:
        """DONE, FAILED (nothing done, something failed), PARTLY DONE or NOT DONE."""
        if self.failed:
            return "PARTLY DONE" if self.done else "FAILED"
        return "DONE" if self.done or not self.skipped else "NOT DONE"

    @property
    def changed(self) -> bool:
        """Whether it changed something that its findings should be measured again for."""
        return bool(self.done) and not self.read_only

    def to_json(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "target": self.target,
            "verdict": self.verdict,
            # Whether it changed something: a read-only step (showmigrations) never mitigates.
            "changed": self.changed,
            "summary": self.summary,
            "done": [{"item": k, "result": r} for k, r in self.done],
            "skipped": [{"item": k, "why": r} for k, r in self.skipped],
            "failed": [{"item": k, "why": r} for k, r in self.failed],
        }

    def __repr__(self) -> str:
        return str(self._repr_mimebundle_()["text/plain"])

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        head = f"{self.verdict} {self.action} on {self.target}: {self.summary}"
        rows = [("done", k, r) for k, r in self.done]
        rows += [("skipped", k, r) for k, r in self.skipped]
        rows += [("FAILED", k, r) for k, r in self.failed]
        text = "\n".join([head] + [f"  {kind}: {k}: {r}" for kind, k, r in rows])
        colour = "#a94442" if self.failed else "#3c763d"
        html = f"<p style='color:{colour}'><b>{escape(head)}</b></p><ul>"
        html += "".join(f"<li>{escape(kind)}: {escape(k)}: {escape(r)}</li>" for kind, k, r in rows)
        return {
            "text/plain": redact(text),
            "text/html": redact(html + "</ul>"),
            ACTION_MIME: redact({"kind": "outcome", **self.to_json()}),
        }


class Timeline(Protocol):
    """Where a guarded step records its plan, confirmation and result: the run's incident log
    (`irkit.incident.log.IncidentLog`). Only its events are needed here, so mitigations do not
    depend on the incident package."""

    def event(
        self, kind: str, text: str, *, at: datetime | None = None, **data: Any
    ) -> dict[str, Any]: ...


class Action(Protocol):
    name: str

    def plan(self) -> Plan: ...

    def act(self, plan: Plan) -> Outcome: ...


class Dry:
    """What a guarded step shows when it did not act."""

    def __init__(self, action: str, text: str, kind: str = "dry-run") -> None:
        self.action = action
        self.text = text
        self.kind = kind  # "dry-run", or "no-plan" when the plan could not be made

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        return {
            "text/plain": self.text,
            "text/html": f"<p><i>{escape(self.text)}</i></p>",
            ACTION_MIME: {"kind": self.kind, "action": self.action, "text": self.text},
        }


def who(confirmed_by: str = "") -> str:
    if confirmed_by:
        return confirmed_by
    try:
        return os.environ.get("USER") or getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


# Called with the outcome of an action that acted (at once, or later from the panel); returns
# what to show after it: the findings it answers, measured again.
Then = Callable[[Outcome], Sequence[Any]]


def guarded(
    log: Timeline,
    action: Action,
    *,
    allow_actions: Sequence[str] = (),
    confirmed_by: str = "",
    then: Then | None = None,
) -> Outcome | None:
    """Plan, show, record; act only if allowed (papermill) or confirmed (JupyterLab), then show
    what `then` returns for the outcome. Returns the outcome when it acted at once, else None."""
    from irkit.render import show

    shown = _guarded(log, action, allow_actions, confirmed_by, then)
    show(shown)
    return next((s for s in shown if isinstance(s, Outcome)), None)


def _guarded(
    log: Timeline,
    action: Action,
    allow_actions: Sequence[str],
    confirmed_by: str,
    then: Then | None = None,
) -> list[Any]:
    try:
        plan = action.plan()
    except Exception as exc:
        # A target that is down cannot be mitigated from here: say so, do not crash the notebook.
        text = f"{action.name}: no plan could be made: {redact(str(exc))}"
        log.event("action-plan", text)
        return [Dry(action.name, text, "no-plan")]
    log.event("action-plan", f"plan {plan.action}: {plan.what}", plan=redact(plan.to_json()))
    shown: list[Any] = [plan]
    if not plan.items:
        return shown
    if action.name in allow_actions:
        actor = f"{who(confirmed_by)} (allow_actions)"
        outcome = _act(log, action, plan, actor)
        shown.append(outcome)
        if then is not None:
            shown.extend(then(outcome))
    elif interactive():
        shown.append(_confirm_panel(log, action, plan, confirmed_by, then))
    else:
        text = (
            f"Dry run: nothing was changed. To act under papermill, add {action.name!r} to "
            "allow_actions (e.g. -p 'allow_actions=[\"" + action.name + "\"]'); in JupyterLab, "
            "confirm in the panel."
        )
        log.event("action-dry-run", f"{plan.action} not run: {action.name} not in allow_actions")
        shown.append(Dry(action.name, text))
    return shown


def _act(log: Timeline, action: Action, plan: Plan, actor: str) -> Outcome:
    log.event("action-confirmed", f"{plan.action} confirmed by {actor}: {plan.what}")
    try:
        outcome = action.act(plan)
    except Exception as exc:
        # Items done before the failure are lost to this outcome only if the action could not
        # even start (no connection): `act_on` keeps each item's own result.
        reason = redact(
            f"{type(exc).__name__}: {exc}" if not isinstance(exc, IrkitError) else str(exc)
        )
        outcome = Outcome(plan.action, plan.target, failed=(("all", reason),), summary=reason)
    log.event(
        "action-result",
        # What went wrong leads: "FAILED: exit code 1: No nodes replied", not a plain summary.
        f"{plan.action}: {outcome.summary}"
        if outcome.verdict == "DONE"
        else f"{plan.action}: {outcome.verdict}: {outcome.summary}",
        outcome=redact(outcome.to_json()),
        confirmed_by=actor,
    )
    return outcome


def _confirm_panel(
    log: Timeline, action: Action, plan: Plan, confirmed_by: str, then: Then | None = None
) -> Any:
    """Type the number of items, then press the button: a count typed by hand cannot be a
    reflex, and it must match the plan shown."""
    import ipywidgets as w  # type: ignore[import-untyped]

    n = len(plan.items)
    box = w.Text(placeholder=f"type {n} to confirm", layout=w.Layout(width="14em"))
    box.add_class("irkit-confirm-count")
    button = w.Button(description=f"{plan.action}: act on {n}", button_style="danger")
    button.add_class("irkit-confirm-act")
    out = w.Output()

    def click(_: Any) -> None:
        with out:
            out.clear_output()
            if box.value.strip() != str(n):
                print(f"Not done: type {n} (the number of items in the plan) to confirm.")
                return
            button.disabled = True
            try:
                outcome = _act(log, action, plan, who(confirmed_by))
            except Exception as exc:
                print(f"FAILED: {type(exc).__name__}: {redact(str(exc))}")
                log.event("action-result", f"{plan.action} failed: {redact(str(exc))}")
                return
            print(outcome._repr_mimebundle_()["text/plain"])
            if then is not None:
                from irkit.render import show

                show(then(outcome))

    button.on_click(click)
    return w.VBox([w.HTML(f"<b>Confirm {escape(plan.what)}</b>"), w.HBox([box, button]), out])


def act_on(
    plan: Plan,
    still_matches: Callable[[Item], str | None],
    do: Callable[[Item], str],
) -> tuple[list[tuple[str, str]], list[tuple[str, str]], list[tuple[str, str]]]:
    """Run `do` on each planned item that `still_matches` (which returns None, or why not)."""
    done, skipped, failed = [], [], []
    for item in plan.items:
        try:
            why_not = still_matches(item)
            if why_not:
                skipped.append((item.summary, why_not))
                continue
            done.append((item.summary, do(item)))
        except Exception as exc:
            # The kit's own errors are written for the responder; others are named by type.
            why = str(exc) if isinstance(exc, IrkitError) else f"{type(exc).__name__}: {exc}"
            failed.append((item.summary, redact(why)))
    return done, skipped, failed


Tally = list[tuple[str, str]]


def said_by_its_step(
    action: str, plan: Plan, done: Tally, skipped: Tally, failed: Tally, *, read_only: bool
) -> Outcome:
    """The outcome of a one-item step (a command): its summary is the first line of what it
    printed, or of why it failed."""
    if done:
        summary = done[0][1].splitlines()[0] if done[0][1] else "done"
    elif failed:
        summary = failed[0][1].splitlines()[0]
    else:
        summary = f"not run: {skipped[0][1]}" if skipped else "not run"
    return Outcome(
        action, plan.target, tuple(done), tuple(skipped), tuple(failed), summary, read_only
    )


def counted(
    action: str, plan: Plan, summary: str, done: Tally, skipped: Tally, failed: Tally, why: str
) -> Outcome:
    """The outcome of a step over many items: `summary`, then how many were left alone (`why`)
    and how many failed."""
    if skipped:
        summary += f", {len(skipped)} left alone ({why})"
    if failed:
        summary += f", {len(failed)} failed"
    return Outcome(action, plan.target, tuple(done), tuple(skipped), tuple(failed), summary)
