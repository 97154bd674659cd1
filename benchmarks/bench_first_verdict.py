"""How soon a responder sees the first verdict: `irkit run db` streams each verdict as it comes;
the time from starting the command to its first verdict line on the terminal is compared with
papermill's own time to run an empty notebook, both measured here.

    .venv/bin/python benchmarks/bench_first_verdict.py [--runs 9]

Starts its own practice servers on free ports, then alternates the two commands (so a change in
the machine's load hits both alike) and prints the medians and their ratio;
target: first verdict of irkit run db / papermill empty notebook <= 1.20.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_run import ROOT, irkit_db, papermill_empty, timed

from irkit.sandbox.process import free_port
from irkit.sandbox.stack import Stack

RATIO_TARGET = 1.20
# "  1.3s  OK      postgres.connect  connected in 12 ms"
VERDICT = re.compile(r"^\s*\d+\.\d+s  (OK|WARN|CRIT|UNKNOWN) ")


def until_first_verdict(command: list[str], env: dict[str, str]) -> float:
    """Seconds from starting `command` to its first verdict line; the rest of the run is
    waited for but not counted."""
    started = time.perf_counter()
    proc = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, cwd=ROOT, text=True
    )
    assert proc.stdout is not None
    first = None
    for line in proc.stdout:
        if first is None and VERDICT.match(line):
            first = time.perf_counter() - started
    proc.wait()
    if first is None:
        raise SystemExit(f"no verdict line from {' '.join(command)}")
    return first


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=9, help="runs of each command per median")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="irkit-bench-"))
    work.chmod(0o755)
    stack = Stack(work / "stack", postgres_port=free_port(), redis_port=free_port())
    env = {**os.environ, "IRKIT_REPORTS": str(work / "reports")}
    papermill = papermill_empty(work)
    db = irkit_db(stack)

    papermill_s, first_s = [], []
    try:
        stack.up()
        timed(papermill(-1), env)  # warm the disk cache; not counted
        until_first_verdict(db, env)
        for i in range(args.runs):
            papermill_s.append(timed(papermill(i), env))
            first_s.append(until_first_verdict(db, env))
    finally:
        stack.down()
        shutil.rmtree(work, ignore_errors=True)

    baseline, first = statistics.median(papermill_s), statistics.median(first_s)
    ratio = first / baseline
    verdict = "meets" if ratio <= RATIO_TARGET else "MISSES"
    runs = f"(median of {args.runs})"
    print(f"papermill, empty notebook, to exit    {baseline * 1000:8.0f} ms  {runs}")
    print(f"irkit run db, to its first verdict    {first * 1000:8.0f} ms  {runs}")
    target = f"{verdict} target <= {RATIO_TARGET:g}"
    print(f"ratio                                 {ratio:8.2f}     {target}")
    return 0 if ratio <= RATIO_TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
