"""`irkit health`: the scheduled health report, its verdicts printed, older reports pruned."""

from __future__ import annotations

import argparse
import functools
import sys

from irkit.catalogue.parameters import default
from irkit.cli.output import execute, html_copy, not_kept
from irkit.result import Status


def health(args: argparse.Namespace) -> int:
    from datetime import timedelta

    from irkit import htmlcopy, records, runner
    from irkit.health import history, retention
    from irkit.result import utc_now

    keep = retention.parse_age(args.keep) if args.keep else None
    pairs = [*args.pairs, *(["notify=true"] if args.notify else [])]
    folder = history.folder()
    plan = runner.plan("health", args.files, pairs, folder=folder)
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
        # The last notice is found in the reports: keep them as long as a reminder may wait.
        repeat = timedelta(
            minutes=float(plan.values.get("notify_repeat_min", default("notify_repeat_min")))
        )
        removed = retention.prune(folder, max(keep, repeat), utc_now(), spare=written)
        if removed:
            print(f"pruned: {len(removed)} health report file(s) older than {args.keep}")
    counts = ", ".join(
        f"{n} {s.name}" for s in Status if (n := sum(r.status is s for r in record.latest))
    )
    print(f"status: {record.status.name}" + (f" ({counts})" if counts else ""))
    return record.status.exit_code
