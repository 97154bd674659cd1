"""What the commands that run a notebook print: its verdicts, whether it ran to the end, where its
HTML copy went, and a record that could not be kept; and the exit code of a usage error."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from irkit.result import Status

if TYPE_CHECKING:
    from irkit.records import Record, RecordNotWritten
    from irkit.runner import Plan

# argparse and Python exit 2 on a usage error; 2 means CRIT here, so a usage error is UNKNOWN.
USER_ERROR = Status.UNKNOWN.exit_code


def execute(plan: Plan, what: str, *, meanwhile: Callable[[], object] | None = None) -> Record:
    """Run the plan's notebook, showing each verdict, plan and outcome as it comes
    (irkit.cli.stream), and say when `what` did not run to the end. A record that could not be
    written raises RecordNotWritten (see `not_kept`)."""
    from irkit import runner
    from irkit.cli.stream import Stream

    # The streamed lines are the progress: no progress bar to interleave with them.
    stream = Stream(sys.stdout, colour=sys.stdout.isatty())
    record = runner.execute(plan, meanwhile=meanwhile, on_output=stream)
    if not record.complete:
        why = record.error or "it stopped before the end"
        print(f"irkit: {what} did not run to the end ({why})", file=sys.stderr)
    return record


def html_copy(notebook: Path, *, exclude_input: bool = False) -> Path | None:
    """Write and print the HTML copy; a failure is said, never fatal (the record is safe)."""
    from irkit import htmlcopy

    try:
        html = htmlcopy.write(notebook, exclude_input=exclude_input)
    except Exception as exc:
        print(f"irkit: could not write the HTML copy: {exc}", file=sys.stderr)
        return None
    print(f"html:   {html}")
    return html


def not_kept(exc: RecordNotWritten) -> int:
    """The checks ran but their record could not be written (a full or read-only disk): a
    responder or a scheduler got the verdicts as they came, and gets exit 3 for the lost
    record."""
    print(f"irkit: {exc}", file=sys.stderr)
    print(f"status: {exc.record.status.name} (not kept)")
    return USER_ERROR
