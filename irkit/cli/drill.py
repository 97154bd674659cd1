"""`irkit drill`: rehearse a runbook scenario on the practice stack, and undo it. Each drill runs
on its own stack: the embedded one (`irkit sandbox up`) or the Compose one
(`irkit sandbox up --compose`), loaded by name."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from irkit.errors import UsageError

if TYPE_CHECKING:
    from irkit.drills import Practice


def drill(args: argparse.Namespace) -> int:
    from irkit import drills

    if args.action == "list":
        catalogue = drills.catalogue()
        width = max(len(name) for name in catalogue) + 1
        for d in catalogue.values():
            on = " (on the Compose stack)" if d.stack == drills.COMPOSE else ""
            print(f"{d.name:<{width}} {d.scenario}{on}")
            print(f"{'':<{width}} run: irkit run {d.section} {d.parameters}")
            print(f"{'':<{width}} shows: {d.shows}")
            for setting in d.settings:
                print(
                    f"{'':<{width}} --set {setting.name}=N: {setting.meaning} "
                    f"({setting.low:g}-{setting.high:g}, default {setting.default:g})"
                )
        return 0
    if args.action == "status":
        stacks = _stacks()
        if not any(drills.active(stack) for stack in stacks):
            print("no drill is active")
        for stack in stacks:
            print_active(stack)
        return 0
    if not args.name:
        raise UsageError(f"irkit drill {args.action} needs a drill name; see: irkit drill list")
    if args.settings and args.action != "start":
        raise UsageError("--set tunes a drill as it starts: irkit drill start NAME --set KEY=VALUE")
    if args.action == "start":
        chosen = drills.get(args.name)
        settings = _settings(args.settings)
        chosen.chosen(settings)  # a wrong setting is told before anything starts
        stack = drills.load_stack(chosen)
        already = any(a.name == chosen.name for a in drills.active(stack))
        active = drills.start(stack, chosen.name, settings)
        since = "was already active since" if already else "started at"
        print(f"drill {chosen.name} {since} {active.started_at}: {chosen.scenario}")
        if tuned := active.state.get("settings"):
            print(f"with: {drills.describe(tuned)}")
        print(f"now run: irkit run {chosen.section} {chosen.parameters}")
        print(f"it should show: {chosen.shows}")
        print(f"undo with: irkit drill stop {chosen.name}")
        return 0
    if args.name == "all":
        pairs = [(stack, a.name) for stack in _stacks() for a in drills.active(stack)]
    else:
        pairs = [(drills.load_stack(drills.get(args.name)), drills.get(args.name).name)]
    for stack, name in pairs:
        if drills.stop(stack, name):
            print(f"drill {name} stopped; the practice stack is healthy again")
            if lingers := drills.get(name).lingers:
                print(f"note: {lingers}")
        else:
            print(f"drill {name} was not active")
    return 0


def _settings(pairs: list[str]) -> dict[str, str]:
    settings = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--set takes KEY=VALUE, got {pair!r}")
        settings[key.strip()] = value.strip()
    return settings


def _stacks() -> list[Practice]:
    from irkit.sandbox.compose_stack import ComposeStack
    from irkit.sandbox.stack import Stack

    return [Stack.load(), ComposeStack.load()]


def print_active(stack: Practice) -> None:
    from irkit import drills

    for active in drills.active(stack):
        tuned = active.state.get("settings")
        with_ = f", with {drills.describe(tuned)}" if tuned else ""
        print(f"drill active: {active.name} (since {active.started_at}{with_})")
