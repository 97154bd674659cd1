"""`irkit health`: the scheduled health report, its verdicts printed, older reports pruned."""

from __future__ import annotations

import argparse
import dataclasses
import functools
import sys
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from irkit.catalogue.parameters import default
from irkit.cli.output import execute, html_copy, not_kept
from irkit.result import Status

if TYPE_CHECKING:
    from irkit.runner import Plan


def health(args: argparse.Namespace) -> int:
    from irkit import runner
    from irkit.health import alone, history, retention

    keep = retention.parse_age(args.keep) if args.keep else None
    pairs = [*args.pairs, *(["notify=true"] if args.notify else [])]
    plan = runner.plan("health", args.files, pairs, folder=history.folder())
    folder = history.folder(str(plan.values.get("environment") or ""))
    if folder != plan.output.parent:  # one history per environment: the same run, moved there
        folder.mkdir(parents=True, exist_ok=True)
        plan = dataclasses.replace(plan, output=folder / plan.output.name)
    if keep is not None:
        # The last notice is found in the reports: keep them as long as a reminder may wait.
        repeat_min = float(plan.values.get("notify_repeat_min", default("notify_repeat_min")))
        if keep < timedelta(minutes=repeat_min):
            print(
                f"irkit: --keep {args.keep} is shorter than notify_repeat_min "
                f"({repeat_min:g} min), where the last notice is looked for: "
                f"keeping health reports for {repeat_min:g} min",
                file=sys.stderr,
            )
            keep = timedelta(minutes=repeat_min)
    with alone.running_alone(folder) as first:
        if not first:
            name = plan.values.get("environment") or "this reports folder"
            print(
                f"status: {alone.SKIPPED} (a health report of {name} is running already: it is "
                "the news; this one checked nothing)"
            )
            return Status.UNKNOWN.exit_code  # this run judged nothing
        return _report(plan, folder, keep)


def _report(plan: Plan, folder: Path, keep: timedelta | None) -> int:
    """The report, run while this process holds the environment's lock."""
    from irkit import htmlcopy, records
    from irkit.health import retention
    from irkit.result import utc_now

    for adopted in records.adopt_orphans(folder):
        print(f"irkit: kept the record of a run that was killed: {adopted}", file=sys.stderr)
    warm = functools.partial(htmlcopy.warm, exclude_input=True)
    try:
        record = execute(plan, "the report", meanwhile=warm)
    except records.RecordNotWritten as exc:
        return not_kept(exc)
    html = html_copy(record.path, exclude_input=True)
    written = [record.path, *([html] if html else [])]
    print(f"report: {record.path}")
    if keep is not None:
        removed = retention.prune(folder, keep, utc_now(), spare=written)
        if removed:
            print(f"pruned: {len(removed)} health report file(s) older than {_age(keep)}")
    counts = ", ".join(
        f"{n} {s.name}" for s in Status if (n := sum(r.status is s for r in record.latest))
    )
    print(f"status: {record.status.name}" + (f" ({counts})" if counts else ""))
    return record.status.exit_code


def _age(age: timedelta) -> str:
    """An age as --keep takes it: 30d, 12h, 90m (what was given, or what it was raised to)."""
    minutes = age.total_seconds() / 60
    for size, unit in ((7 * 24 * 60, "w"), (24 * 60, "d"), (60, "h")):
        if minutes >= size and minutes % size == 0:
            return f"{minutes / size:g}{unit}"
    return f"{minutes:g}m"
