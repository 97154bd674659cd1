"""What an incident costs a responder, measured in one run.

    .venv/bin/python benchmarks/bench_incident.py [--runs 7] [--notebooks 60]

Starts its own practice stack on free ports, then:

1. times `papermill` executing an empty notebook (kernel start and save: the baseline) and
   `irkit run triage --incident ID` (all OK) against the stack, alternately, and prints the ratio;
   target: triage / papermill empty <= 1.50;
2. builds an incident of `--notebooks` executed notebooks (copies of real runs) and a journal, and
   times `irkit.incident.load` merging it against a plain loop of `nbformat.read` over the same
   files; target: load / nbformat.read loop <= 1.00, peak memory of the merge (tracemalloc) printed.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_notebook

from irkit.incident import load, store
from irkit.probes import prometheus
from irkit.result import Status
from irkit.sandbox.process import free_port
from irkit.sandbox.stack import DEFAULT_PORTS, Stack
from irkit.targets import HttpTarget

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
TRIAGE_RATIO_TARGET = 1.50
LOAD_RATIO_TARGET = 1.00


def timed(command: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=ROOT, check=False)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"not all OK, so not comparable:\n{done.stdout}{done.stderr}")
    return elapsed


def wait_for_first_scrapes(stack: Stack) -> None:
    """A rate needs two scrapes: until then the error-rate check rightly says UNKNOWN."""
    target = HttpTarget(base_url=stack.prometheus.url)
    deadline = time.monotonic() + 30
    while prometheus.error_rate(target).status is not Status.OK:
        if time.monotonic() > deadline:
            raise SystemExit("Prometheus has no request rates after 30 s")
        time.sleep(0.5)


def stack_env(stack: Stack, reports: Path) -> dict[str, str]:
    return {
        **os.environ,
        "IRKIT_REPORTS": str(reports),
        "PGHOST": stack.postgres.host,
        "PGPORT": str(stack.postgres.port),
        "PGUSER": "erp",
        "PGDATABASE": "himalytix",
        "IRKIT_BASE_URL": stack.web.url,
        "IRKIT_PROMETHEUS_URL": stack.prometheus.url,
        "IRKIT_SANDBOX_DIR": str(stack.base),
    }


def bench_triage(stack: Stack, work: Path, runs: int) -> tuple[float, float]:
    empty = work / "empty.ipynb"
    nb = new_notebook(cells=[new_code_cell("pass")])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3"}
    nbformat.write(nb, empty)
    env = stack_env(stack, work / "reports")
    timed([str(BIN / "irkit"), "incident", "open", "--title", "bench", "--id", "BENCH"], env)
    papermill = [str(BIN / "papermill"), "--no-progress-bar", str(empty), str(work / "e.ipynb")]
    triage = [
        str(BIN / "irkit"),
        "run",
        "triage",
        "--incident",
        "BENCH",
        "-p",
        "answer_one_tenant_only=no",
        "-p",
        "answer_cosmetic_only=no",
    ]
    timed(papermill, env)  # warm the disk cache; not counted
    times_p, times_t = [], []
    for _ in range(runs):
        times_p.append(timed(papermill, env))
        times_t.append(timed(triage, env))
    return statistics.median(times_p), statistics.median(times_t)


def build_incident(work: Path, count: int) -> Path:
    """An incident of `count` notebooks, copied from the triage runs just made, and a journal."""
    source = work / "reports" / "incidents" / "BENCH"
    runs = [p for p in store.numbered_notebooks(source) if p.name != "01-triage.ipynb"]
    folder = work / "big" / "BIG"
    folder.mkdir(parents=True)
    for n in range(1, count + 1):
        shutil.copy(runs[n % len(runs)], folder / f"{n:02d}-triage.ipynb")
    with (folder / "journal.jsonl").open("w") as journal:
        for n in range(200):
            at = f"2026-11-27T10:{n // 60:02d}:{n % 60:02d}Z"
            event = {"at": at, "kind": "note", "text": f"n{n}", "source": "b", "id": f"e{n}"}
            journal.write(json.dumps({"at": at, "event": event}) + "\n")
    return folder


def bench_load(folder: Path, runs: int) -> tuple[float, float, float]:
    notebooks = store.numbered_notebooks(folder)

    def read_all() -> None:
        for path in notebooks:
            nbformat.read(path, as_version=4)

    def merge() -> None:
        load.load_folder(folder)

    read_all(), merge()  # warm the disk cache; not counted
    times_r, times_m = [], []
    for _ in range(runs):
        started = time.perf_counter()
        read_all()
        times_r.append(time.perf_counter() - started)
        started = time.perf_counter()
        merge()
        times_m.append(time.perf_counter() - started)
    tracemalloc.start()
    merge()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return statistics.median(times_r), statistics.median(times_m), peak / 2**20


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7, help="runs per median")
    parser.add_argument("--notebooks", type=int, default=60, help="notebooks in the big incident")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="irkit-bench-"))
    work.chmod(0o755)
    ports = {name: free_port() for name in DEFAULT_PORTS}
    stack = Stack(work / "stack", **ports)
    try:
        stack.up()
        wait_for_first_scrapes(stack)
        baseline, triage = bench_triage(stack, work, args.runs)
        folder = build_incident(work, args.notebooks)
        size_mb = sum(p.stat().st_size for p in folder.iterdir()) / 2**20
        read_s, merge_s, peak_mb = bench_load(folder, args.runs)
    finally:
        stack.down()
        shutil.rmtree(work, ignore_errors=True)

    failed = False
    ratio = triage / baseline
    failed |= ratio > TRIAGE_RATIO_TARGET
    print(f"papermill, empty notebook           {baseline * 1000:8.0f} ms  (median of {args.runs})")
    print(f"irkit run triage --incident, all OK {triage * 1000:8.0f} ms")
    print(
        f"ratio                               {ratio:8.2f}     "
        f"{'meets' if ratio <= TRIAGE_RATIO_TARGET else 'MISSES'} target <= "
        f"{TRIAGE_RATIO_TARGET}"
    )
    print()
    load_ratio = merge_s / read_s
    failed |= load_ratio > LOAD_RATIO_TARGET
    print(f"incident of {args.notebooks} notebooks and 200 journal lines ({size_mb:.1f} MB):")
    print(f"  nbformat.read of every notebook   {read_s * 1000:8.1f} ms")
    print(f"  irkit.incident.load (the merge)   {merge_s * 1000:8.1f} ms, peak {peak_mb:.1f} MB")
    print(
        f"  ratio                             {load_ratio:8.2f}     "
        f"{'meets' if load_ratio <= LOAD_RATIO_TARGET else 'MISSES'} target <= "
        f"{LOAD_RATIO_TARGET}"
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
