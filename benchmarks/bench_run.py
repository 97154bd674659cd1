"""How much irkit adds to papermill, and how fast each probe is, measured in one run.

    .venv/bin/python benchmarks/bench_run.py [--runs 5] [--calls 30]

Starts its own practice servers (PostgreSQL, Redis, a Celery worker) on free ports, then:

1. times `papermill` executing an empty notebook (the baseline: kernel start and save) and
   `irkit run db` (all OK) against the servers, both as commands, and prints the ratio;
   target: irkit run db / papermill empty <= 1.30;
2. times each probe in-process against the same servers and prints its median; target: under
   50 ms, not counting the waits a probe is made of (host.cpu samples the busiest processes for
   `interval_s`; celery.workers gives workers `inspect_timeout_s` to answer).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import nbformat
from nbformat.v4 import new_code_cell, new_notebook

from irkit.probes import celery, disk, host, postgres, redis
from irkit.sandbox import readiness
from irkit.sandbox.stack import BROKER_DB, CACHE_DB, Stack, free_ports
from irkit.targets import CeleryTarget, HttpTarget, LocalHost, Machine, PostgresTarget, RedisTarget

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
RUN_RATIO_TARGET = 1.30
PROBE_TARGET_MS = 50.0


def timed(command: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True, env=env, cwd=ROOT)
    return time.perf_counter() - started


def medians_of(
    runs: int, a: Callable[[int], list[str]], b: Callable[[int], list[str]], env: dict[str, str]
) -> tuple[float, float]:
    """Alternate the two commands, so that a change in the machine's load hits both alike."""
    timed(a(-1), env)  # warm the disk cache; not counted
    timed(b(-1), env)
    times_a, times_b = [], []
    for i in range(runs):
        times_a.append(timed(a(i), env))
        times_b.append(timed(b(i), env))
    return statistics.median(times_a), statistics.median(times_b)


def papermill_empty(work: Path) -> Callable[[int], list[str]]:
    """The baseline: papermill running a notebook of one empty cell, run `i` into its own file."""
    empty = work / "empty.ipynb"
    nb = new_notebook(cells=[new_code_cell("pass")])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3"}
    nbformat.write(nb, empty)

    def papermill(i: int) -> list[str]:
        return [str(BIN / "papermill"), "--no-progress-bar", str(empty), str(work / f"e{i}.ipynb")]

    return papermill


def irkit_db(stack: Stack) -> list[str]:
    """`irkit run db` against the stack's PostgreSQL."""
    pg = stack.postgres
    values = [f"pg_host={pg.host}", f"pg_port={pg.port}", "pg_user=erp", "pg_database=himalytix"]
    return [str(BIN / "irkit"), "run", "db", *(arg for v in values for arg in ("-p", v))]


def bench_run(stack: Stack, work: Path, runs: int) -> tuple[float, float]:
    env = {**os.environ, "IRKIT_REPORTS": str(work / "reports")}
    return medians_of(runs, papermill_empty(work), lambda i: irkit_db(stack), env)


def bench_probes(stack: Stack, calls: int) -> list[tuple[str, float, float]]:
    pg = PostgresTarget(host="127.0.0.1", port=stack.postgres.port, user="erp", dbname="himalytix")
    rd = RedisTarget(url=stack.redis.url(CACHE_DB))
    br = CeleryTarget(broker_url=stack.redis.url(BROKER_DB))
    here = LocalHost()
    # The app's machine as the notebooks see it on the practice stack: through node_exporter.
    machine = Machine(prometheus=HttpTarget(base_url=stack.prometheus.url))
    cases: list[tuple[str, Callable[[], Any], float]] = [
        ("postgres.connect", lambda: postgres.connect(pg), 0.0),
        ("postgres.connections", lambda: postgres.connections(pg), 0.0),
        ("postgres.long_queries", lambda: postgres.long_queries(pg), 0.0),
        ("postgres.idle_in_transaction", lambda: postgres.idle_in_transaction(pg), 0.0),
        ("postgres.blocking", lambda: postgres.blocking(pg), 0.0),
        ("postgres.migrations", lambda: postgres.migrations(pg), 0.0),
        ("postgres.impact", lambda: postgres.impact(pg), 0.0),
        ("redis.ping", lambda: redis.ping(rd), 0.0),
        ("redis.memory", lambda: redis.memory(rd), 0.0),
        ("redis.clients", lambda: redis.clients(rd), 0.0),
        ("celery.queues", lambda: celery.queues(br), 0.0),
        ("celery.workers", lambda: celery.workers(br), br.inspect_timeout_s),
        ("disk.usage", lambda: disk.usage(here), 0.0),
        ("disk.old_files", lambda: disk.old_files(here, log_dirs=[str(stack.base)]), 0.0),
        ("host.memory", lambda: host.memory(machine), 0.0),
        ("host.cpu", lambda: host.cpu(machine, interval_s=0.5), 0.5),
    ]
    rows = []
    for name, call, wait in cases:
        n = calls if wait == 0 else max(3, calls // 10)
        times = []
        for _ in range(n):
            started = time.perf_counter()
            result = call()
            times.append((time.perf_counter() - started) * 1000)
            # The machine's CPU and memory are what other work makes them: a verdict is timed.
            wanted = {"WARN", "CRIT", "OK"} if name.startswith("host.") else {"OK"}
            assert result.status.name in wanted, f"{name}: {result.summary}"
        rows.append((name, statistics.median(times), wait * 1000))
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=9, help="command runs per median")
    parser.add_argument("--calls", type=int, default=30, help="probe calls per median")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="irkit-bench-"))
    work.chmod(0o755)
    stack = Stack(work / "stack", **free_ports())
    try:
        stack.up()
        readiness.wait_until_ready(stack)  # the host probes read node_exporter through Prometheus
        baseline, run_db = bench_run(stack, work, args.runs)
        probe_rows = bench_probes(stack, args.calls)
    finally:
        stack.down()
        shutil.rmtree(work, ignore_errors=True)

    ratio = run_db / baseline
    print(f"papermill, empty notebook     {baseline * 1000:8.0f} ms  (median of {args.runs})")
    print(f"irkit run db, all OK          {run_db * 1000:8.0f} ms  (median of {args.runs})")
    verdict = "meets" if ratio <= RUN_RATIO_TARGET else "MISSES"
    print(f"ratio                         {ratio:8.2f}     {verdict} target <= {RUN_RATIO_TARGET}")
    print()
    print(f"{'probe':<30}{'median ms':>10}{'of which wait':>15}{'own ms':>9}  target")
    failed = ratio > RUN_RATIO_TARGET
    for name, median_ms, wait_ms in probe_rows:
        own = median_ms - wait_ms
        ok = own < PROBE_TARGET_MS
        failed |= not ok
        mark = "ok" if ok else f"MISSES < {PROBE_TARGET_MS:.0f} ms"
        print(f"{name:<30}{median_ms:>10.1f}{wait_ms:>15.0f}{own:>9.1f}  {mark}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
