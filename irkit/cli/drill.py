"""`irkit drill`: rehearse a runbook scenario on the practice stack, and undo it."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from irkit.errors import UsageError

if TYPE_CHECKING:
    from irkit.sandbox.stack import Stack


def drill(args: argparse.Namespace) -> int:
    from irkit import drills
    from irkit.sandbox.stack import Stack

    stack = Stack.load()
    if args.action == "list":
        for d in drills.catalogue().values():
            print(f"{d.name:<18} {d.scenario}")
            print(f"{'':<18} run: irkit run {d.section} -f parameters/sandbox.yaml")
            print(f"{'':<18} shows: {d.shows}")
        return 0
    if args.action == "status":
        if not drills.active(stack):
            print("no drill is active")
        print_active(stack)
        return 0
    if not args.name:
        raise UsageError(f"irkit drill {args.action} needs a drill name; see: irkit drill list")
    if args.action == "start":
        chosen = drills.get(args.name)
        already = any(a.name == chosen.name for a in drills.active(stack))
        active = drills.start(stack, chosen.name)
        since = "was already active since" if already else "started at"
        print(f"drill {chosen.name} {since} {active.started_at}: {chosen.scenario}")
        print(f"now run: irkit run {chosen.section} -f parameters/sandbox.yaml")
        print(f"it should show: {chosen.shows}")
        print(f"undo with: irkit drill stop {chosen.name}")
        return 0
    names = [a.name for a in drills.active(stack)] if args.name == "all" else [args.name]
    for name in names:
        if drills.stop(stack, drills.get(name).name):
            print(f"drill {name} stopped; the practice stack is healthy again")
            if lingers := drills.get(name).lingers:
                print(f"note: {lingers}")
        else:
            print(f"drill {name} was not active")
    return 0


def print_active(stack: Stack) -> None:
    from irkit import drills

    for active in drills.active(stack):
        print(f"drill active: {active.name} (since {active.started_at})")
