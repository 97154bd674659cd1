"""The monthly analysis over 10,000 incident folders: cold, warm, and a plain `nbformat.read`.

    .venv/bin/python benchmarks/metrics.py [--incidents 10000]

Generates the incident folders (an executed triage notebook each, shaped like the kit's: the
record's fields as `application/vnd.irkit.incident+json` outputs, and a journal line), then, in
one run:

1. the baseline: a plain loop of `nbformat.read` over the same notebooks;
2. cold: the monthly analysis' numbers (every table, statistic and data-quality list the notebook
   shows, without drawing its charts) with no index: every notebook read and merged;
3. warm: the same again, the index reused (only changed folders read again);
4. peak memory (tracemalloc) of a second cold run, apart from the timing (tracemalloc slows
   every allocation).

Targets: cold <= 10 s, warm <= 1 s, peak <= 500 MB.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import sys
import tempfile
import time
import tracemalloc
from datetime import UTC, datetime, timedelta
from pathlib import Path

import nbformat

from irkit.metrics import index, monthly
from irkit.result import INCIDENT_MIME

COLD_TARGET_S = 10.0
WARM_TARGET_S = 1.0
PEAK_TARGET_MB = 500.0


def notebook(fields: dict[str, object], at: str) -> dict[str, object]:
    output = {
        "output_type": "display_data",
        "data": {INCIDENT_MIME: fields, "text/plain": "record"},
        "metadata": {INCIDENT_MIME: {"at": at}},
    }
    cells = [
        {"cell_type": "markdown", "id": "m0", "metadata": {}, "source": "# Triage"},
        {
            "cell_type": "code",
            "id": "c0",
            "metadata": {"papermill": {"status": "completed"}},
            "execution_count": 1,
            "source": "section.record()",
            "outputs": [output],
        },
    ]
    return {
        "cells": cells,
        "metadata": {
            "papermill": {"start_time": at, "end_time": at},
            "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }


def generate(root: Path, count: int) -> list[Path]:
    rng = random.Random(7)  # noqa: S311  (repeatable test data, not a secret)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    paths = []
    for n in range(count):
        detected = start + timedelta(minutes=rng.randrange(0, 330 * 24 * 60))
        impact = detected - timedelta(minutes=rng.randrange(1, 30))
        resolved = detected + timedelta(minutes=rng.randrange(10, 600))
        fields = {
            "incident_id": f"INC-{n:05d}",
            "title": "generated",
            "status": "resolved",
            "severity": rng.choice(["P0", "P1", "P2", "P3"]),
            "category": rng.choice(["database", "infrastructure", "application", "security"]),
            "impact_started_at": impact.isoformat(),
            "detected_at": detected.isoformat(),
            "acknowledged_at": (detected + timedelta(minutes=5)).isoformat(),
            "resolved_at": resolved.isoformat(),
            "root_cause_key": f"cause-{n % 40}",
        }
        folder = root / f"INC-{n:05d}"
        folder.mkdir()
        path = folder / "01-triage.ipynb"
        path.write_text(json.dumps(notebook(fields, detected.isoformat())))
        (folder / "journal.jsonl").write_text(
            json.dumps({"at": detected.isoformat(), "incident": {"responder": "bench"}}) + "\n"
        )
        paths.append(path)
    return paths


def timed(step: object) -> float:
    started = time.perf_counter()
    step()  # type: ignore[operator]
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--incidents", type=int, default=10_000)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="irkit-bench-metrics-"))
    now = datetime(2026, 12, 1, tzinfo=UTC)
    try:
        root = work / "incidents"
        root.mkdir()
        paths = generate(root, args.incidents)
        baseline = timed(lambda: [nbformat.read(p, as_version=4) for p in paths])

        def analysis() -> dict[str, object]:
            # Everything the notebook computes (tables, statistics, SLA, repeats, data
            # quality), without drawing the charts.
            return monthly.analyse(
                month="2026-11", months=12, incidents_dir=str(root), now=now
            ).computed()

        cold = timed(analysis)
        warm = timed(analysis)
        # Memory on a second cold run: tracemalloc slows allocation, so never while timing.
        (root / index.NAME).unlink()
        tracemalloc.start()
        computed = analysis()
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        counted = sum(computed["by_severity_month"].values())  # type: ignore[attr-defined]
        assert counted == args.incidents, counted
    finally:
        shutil.rmtree(work, ignore_errors=True)
    peak_mb = peak / 2**20
    print(f"{args.incidents} incidents")
    print(f"nbformat.read loop (baseline)   {baseline:7.2f} s")
    print(f"monthly analysis, cold          {cold:7.2f} s  ({cold / baseline:.2f}x baseline)")
    print(f"monthly analysis, warm          {warm:7.2f} s  ({warm / baseline:.2f}x baseline)")
    print(f"peak memory, cold               {peak_mb:7.0f} MB")
    failed = False
    for name, value, target in (
        ("cold", cold, COLD_TARGET_S),
        ("warm", warm, WARM_TARGET_S),
        ("peak MB", peak_mb, PEAK_TARGET_MB),
    ):
        ok = value <= target
        failed |= not ok
        print(f"{name:<10}{'meets' if ok else 'MISSES'} target <= {target:g}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
