"""Drills: each makes one runbook scenario happen for real on the practice stack, and undoes it.

A drill's state lives in the stack's folder (`drills/<name>.json`) so that `stop` works from
another shell, after a reboot of the CLI, or from a test. Every start and stop is appended to
`drills/history.jsonl`; notebooks run while a drill is active mark their record as a drill, so it
never counts in the incident metrics.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar

from irkit.errors import SandboxError
from irkit.result import utc_now
from irkit.sandbox.compose_stack import ComposeStack
from irkit.sandbox.stack import Stack

State = dict[str, Any]
# The two practice stacks: the embedded one (processes) and the Compose one (containers).
Practice = Stack | ComposeStack
S = TypeVar("S", Stack, ComposeStack)
EMBEDDED = "embedded"
COMPOSE = "compose"


@dataclass(frozen=True)
class Setting:
    """A number a drill's fault can be tuned by at start (`irkit drill start NAME --set KEY=VALUE`),
    such as how much memory to leave available."""

    name: str
    default: float
    low: float
    high: float
    meaning: str

    def parse(self, text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise SandboxError(f"{self.name} must be a number, got {text!r}") from None
        if not self.low <= value <= self.high:
            raise SandboxError(f"{self.name} must be between {self.low:g} and {self.high:g}")
        return value


@dataclass(frozen=True)
class Drill(Generic[S]):
    name: str
    scenario: str  # the runbook's words for it
    section: str  # the notebook the runbook sends a responder to
    shows: str  # what that notebook should show while the drill runs
    start: Callable[[S, State], None]
    stop: Callable[[S, State], None]
    holds_down: tuple[str, ...] = ()  # components `sandbox up` must leave stopped meanwhile
    needs_root: bool = False
    conflicts: tuple[str, ...] = ()
    # What still shows after `stop`, and for how long (monitoring that looks back over a window).
    lingers: str = ""
    # The stack it runs on: "embedded" (irkit.sandbox.stack) or "compose" (compose_stack).
    stack: str = EMBEDDED
    settings: tuple[Setting, ...] = ()

    def chosen(self, given: dict[str, str]) -> dict[str, float]:
        """Every setting's value: the defaults, with those `given` (as typed) in their place."""
        known = {s.name: s for s in self.settings}
        if unknown := sorted(set(given) - set(known)):
            offer = f"its settings are: {', '.join(known)}" if known else "it has no settings"
            raise SandboxError(f"drill {self.name} has no setting {unknown[0]!r}; {offer}")
        return {
            name: setting.parse(given[name]) if name in given else setting.default
            for name, setting in known.items()
        }

    @property
    def parameters(self) -> str:
        """How to point a notebook at the drill's stack."""
        return "--env sandbox-compose" if self.stack == COMPOSE else "-f parameters/sandbox.yaml"


@dataclass(frozen=True)
class ActiveDrill:
    name: str
    started_at: str
    state: State = field(default_factory=dict)


def catalogue() -> dict[str, Drill[Any]]:
    from irkit.drills import containers, database, host, services

    drills: list[Drill[Any]] = [
        *database.DRILLS,
        *services.DRILLS,
        *host.DRILLS,
        *containers.DRILLS,
    ]
    return {d.name: d for d in drills}


def kind(stack: Practice) -> str:
    return COMPOSE if isinstance(stack, ComposeStack) else EMBEDDED


def load_stack(drill: Drill[Any]) -> Practice:
    """The kit's practice stack the drill runs on, on the ports it was brought up with."""
    return ComposeStack.load() if drill.stack == COMPOSE else Stack.load()


def get(name: str) -> Drill[Any]:
    drills = catalogue()
    if name not in drills:
        raise SandboxError(f"no drill named {name!r}; the drills are: {', '.join(drills)}")
    return drills[name]


def folder(stack: Practice) -> Path:
    """The kit's two stacks share one folder (irkit.home.active_drills reads it)."""
    return stack.drills_dir if isinstance(stack, ComposeStack) else stack.base / "drills"


def active(stack: Practice) -> list[ActiveDrill]:
    """The drills active on this stack (not those of the other stack sharing the folder)."""
    drills = catalogue()
    found = []
    for path in sorted(folder(stack).glob("*.json")):
        try:
            data = json.loads(path.read_text())
            record = ActiveDrill(data["name"], data["started_at"], data.get("state", {}))
        except (OSError, ValueError, KeyError):
            continue
        drill = drills.get(record.name)
        if (drill.stack if drill else EMBEDDED) == kind(stack):
            found.append(record)
    return found


def held_down(stack: Practice) -> frozenset[str]:
    drills = catalogue()
    return frozenset(
        component
        for drill in active(stack)
        if drill.name in drills
        for component in drills[drill.name].holds_down
    )


def start(stack: Practice, name: str, settings: dict[str, str] | None = None) -> ActiveDrill:
    """Make drill `name`'s fault happen, tuned by `settings` (its `Setting`s, as typed); an
    active drill is left as it is."""
    drill = get(name)
    chosen = drill.chosen(settings or {})
    if drill.stack != kind(stack):
        raise SandboxError(f"drill {name} runs on the {drill.stack} practice stack")
    current = {d.name: d for d in active(stack)}
    if name in current:
        running = current[name].state.get("settings", {})
        if settings and running != chosen:
            raise SandboxError(
                f"drill {name} is already active with {describe(running)}; "
                f"to change it: irkit drill stop {name}, then start it again"
            )
        return current[name]
    if clash := [c for c in drill.conflicts if c in current]:
        raise SandboxError(
            f"drill {name} cannot run while {', '.join(clash)} is active: "
            f"irkit drill stop {clash[0]}"
        )
    if drill.needs_root and os.geteuid() != 0:
        raise SandboxError(
            f"drill {name} needs root (it mounts a small filesystem to fill); "
            "run it with sudo, or rehearse the disk notebook against a real full disk"
        )
    down = [row.name for row in stack.status() if row.state not in ("running", "not installed")]
    if down:
        up = "irkit sandbox up --compose" if drill.stack == COMPOSE else "irkit sandbox up"
        raise SandboxError(f"the practice stack is not fully up ({', '.join(down)}); run: {up}")
    state: State = {"settings": chosen} if chosen else {}
    record = ActiveDrill(name, utc_now().isoformat(), state)
    _save(stack, record)  # first, so that a half-done start can still be stopped
    try:
        drill.start(stack, state)
    except BaseException:
        try:
            drill.stop(stack, state)
        finally:
            _forget(stack, name)
        raise
    _save(stack, record)
    _history(stack, {"drill": name, "event": "start", "at": record.started_at})
    return record


def describe(settings: dict[str, float]) -> str:
    return ", ".join(f"{key}={value:g}" for key, value in settings.items()) or "no settings"


def stop(stack: Practice, name: str) -> bool:
    """Undo the drill and bring the stack back to healthy; False if it was not active."""
    drill = get(name)
    current = {d.name: d for d in active(stack)}
    if name not in current:
        return False
    drill.stop(stack, current[name].state)
    _forget(stack, name)
    # What the drill held down comes back with everything else that may have died meanwhile.
    stack.up(held_down(stack))
    _history(stack, {"drill": name, "event": "stop", "at": utc_now().isoformat()})
    return True


def _path(stack: Practice, name: str) -> Path:
    return folder(stack) / f"{name}.json"


def _save(stack: Practice, record: ActiveDrill) -> None:
    folder(stack).mkdir(parents=True, exist_ok=True)
    data = {"name": record.name, "started_at": record.started_at, "state": record.state}
    final = _path(stack, record.name)
    partial = final.with_name(final.name + ".partial")
    partial.write_text(json.dumps(data, indent=2) + "\n")
    partial.replace(final)


def _forget(stack: Practice, name: str) -> None:
    _path(stack, name).unlink(missing_ok=True)


def _history(stack: Practice, event: dict[str, str]) -> None:
    folder(stack).mkdir(parents=True, exist_ok=True)
    with (folder(stack) / "history.jsonl").open("a") as f:
        f.write(json.dumps(event) + "\n")
