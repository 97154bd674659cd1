"""A health round over many environments on two `irkit worker` processes, against one
environment's health report on the same workers.

    .venv/bin/python benchmarks/bench_distributed.py [--environments 20] [--concurrency 2]
                                                     [--runs 3]

Starts its own practice servers and a Redis broker on free ports, writes `--environments`
parameter files (every one pointing at the practice stack, as many environments of one app would
point at theirs), starts two workers of `--concurrency` each, and in one run:

1. times one environment's health report sent as a task (send to result; the baseline);
2. times a round: the health report of every environment sent at once, until the last result;
   target: the round within 2.5 x the baseline, with no more kernels at once than the workers'
   concurrency allows;
3. samples every 20 ms, per worker, the memory of the worker's own processes (its main process
   and pool) and of its whole tree (with the runs and kernels), and the kernels running at once;
4. measures the machine's CPU time over the round: a report's work is mostly CPU (two Python
   processes start, the kernel imports its clients, the record is written and read), so on C
   cores no round can end before (CPU seconds / C); that floor is printed beside the ratio.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import psutil
import yaml
from celery import Celery

from irkit.sandbox import readiness
from irkit.sandbox.process import free_port
from irkit.sandbox.redis import RedisServer
from irkit.sandbox.stack import Stack, free_ports

ROOT = Path(__file__).resolve().parent.parent
RATIO_TARGET = 2.5


class Sampler:
    """Peak memory of each worker (its own processes; its whole tree) and the most kernels at
    once, sampled on a thread."""

    def __init__(self, workers: dict[str, subprocess.Popen[bytes]]) -> None:
        self.workers = workers
        self.own = dict.fromkeys(workers, 0)
        self.tree = dict.fromkeys(workers, 0)
        self.kernels = 0
        # The worker's own memory at the first and the last sample: what many runs left in it.
        self.first: dict[str, int] = {}
        self.last: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            kernels = 0
            for name, proc in self.workers.items():
                try:
                    root = psutil.Process(proc.pid)
                    tree = [root, *root.children(recursive=True)]
                except psutil.Error:
                    continue
                runs = [p for p in tree if _is_run(p)]
                found = [p for p in tree if _is_kernel(p)]
                # A kernel's child between fork and exec (a library running a program) still
                # shows the kernel's command line: one kernel, not two.
                kernels += sum(_ppid(p) not in {k.pid for k in found} for p in found)
                own = [p for p in tree if p not in runs and not _under_run(p, runs)]
                now = sum(_rss(p) for p in own)
                self.first.setdefault(name, now)
                self.last[name] = now
                self.own[name] = max(self.own[name], now)
                self.tree[name] = max(self.tree[name], sum(_rss(p) for p in tree))
            self.kernels = max(self.kernels, kernels)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def _rss(p: psutil.Process) -> int:
    try:
        return int(p.memory_info().rss)
    except psutil.Error:
        return 0


def _ppid(p: psutil.Process) -> int:
    try:
        return int(p.ppid())
    except psutil.Error:
        return 0


def _cmdline(p: psutil.Process) -> list[str]:
    try:
        return p.cmdline()
    except psutil.Error:
        return []


def _is_run(p: psutil.Process) -> bool:
    line = _cmdline(p)
    return line[1:3] == ["-m", "irkit"] and "worker" not in line


def _is_kernel(p: psutil.Process) -> bool:
    """A kernel still running: one SIGKILLed at the end of its run is not counted while it is
    being reaped."""
    try:
        alive = p.status() not in (psutil.STATUS_ZOMBIE, psutil.STATUS_DEAD)
    except psutil.Error:
        return False
    return alive and "ipykernel_launcher" in " ".join(_cmdline(p))


def _under_run(p: psutil.Process, runs: list[psutil.Process]) -> bool:
    try:
        return any(parent in runs for parent in p.parents())
    except psutil.Error:
        return False


def round_of(client: Celery, names: list[str]) -> tuple[float, float, list[dict[str, Any]]]:
    """Send the health report of every environment in `names` at once; the time until the last
    result, the machine's CPU seconds meanwhile, and the results."""
    cpu = _busy()
    started = time.perf_counter()
    sent = [
        client.send_task("irkit.health", kwargs={"environment": n}, queue="irkit") for n in names
    ]
    results = [r.get(timeout=600) for r in sent]
    return time.perf_counter() - started, _busy() - cpu, results


def _busy() -> float:
    """CPU seconds this machine has spent busy (every process), as the kernel counts them."""
    times = psutil.cpu_times()
    return float(sum(times) - times.idle - getattr(times, "iowait", 0.0))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--environments", type=int, default=20)
    parser.add_argument("--concurrency", type=int, default=2, help="runs at once per worker")
    parser.add_argument("--runs", type=int, default=3, help="rounds (and baselines) per median")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="irkit-bench-"))
    work.chmod(0o755)
    stack = Stack(work / "stack", **free_ports())
    broker = RedisServer(work / "broker", free_port())
    home = work / "home"
    (home / "parameters").mkdir(parents=True)
    (home / "notebooks").symlink_to(ROOT / "notebooks")
    names = [f"env{n:02d}" for n in range(args.environments)]
    env = {
        **os.environ,
        "IRKIT_HOME": str(home),
        "IRKIT_REPORTS": str(work / "reports"),
        "IRKIT_SANDBOX_DIR": str(work),
        "IRKIT_BROKER_URL": broker.url(0),
    }
    workers: dict[str, subprocess.Popen[bytes]] = {}
    try:
        stack.up()
        broker.start()
        readiness.wait_until_ready(stack)  # rates need two scrapes first
        values = {
            **stack.targets(),
            "celery_expected_workers": 1,
            "prom_window": "15s",
            "disk_paths": [str(stack.base)],
            # The host is what this benchmark loads: its CPU is not the verdict measured here.
            "host_cpu_warn_pct": 100.0,
            "host_cpu_crit_pct": 100.0,
        }
        for name in names:
            (home / "parameters" / f"{name}.yaml").write_text(yaml.safe_dump(values))
        for host in ("bench-a", "bench-b"):
            log = (work / f"{host}.log").open("wb")
            workers[host] = subprocess.Popen(
                [sys.executable, "-m", "irkit", "worker", "--hostname", host,
                 "--concurrency", str(args.concurrency), "--loglevel", "WARNING"],
                cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        client = Celery(broker=broker.url(0), backend=broker.url(0))
        # Until both workers answer, and once more: the first run of each loads from disk.
        ready = time.monotonic() + 60
        while len(client.control.ping(timeout=1)) < len(workers):
            if time.monotonic() > ready:
                raise SystemExit(f"the workers did not start; see {work}")
        round_of(client, names[: 2 * args.concurrency])
        sampler = Sampler(workers)
        one, many, cpu_one, cpu_many, statuses = [], [], [], [], set()
        for _ in range(args.runs):
            elapsed, cpu, results = round_of(client, names[:1])
            one.append(elapsed)
            cpu_one.append(cpu)
            elapsed, cpu, results = round_of(client, names)
            many.append(elapsed)
            cpu_many.append(cpu)
            statuses |= {r["status"] for r in results}
        sampler.stop()
    finally:
        for proc in workers.values():
            proc.terminate()
        for proc in workers.values():
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
        broker.stop()
        stack.down()
        shutil.rmtree(work, ignore_errors=True)

    baseline = statistics.median(one)
    round_s = statistics.median(many)
    ratio = round_s / baseline
    cores = psutil.cpu_count() or 1
    floor = statistics.median(cpu_many) / cores
    print(
        f"one environment's health report (task)   {baseline * 1000:8.0f} ms  "
        f"CPU {statistics.median(cpu_one):5.1f} s"
    )
    print(
        f"a round of {args.environments} environments             {round_s * 1000:8.0f} ms  "
        f"CPU {statistics.median(cpu_many):5.1f} s  (statuses: {', '.join(sorted(statuses))})"
    )
    print(
        f"the round's floor on {cores} cores (CPU / cores) {floor * 1000:6.0f} ms  "
        f"= {floor / baseline:.2f} x one environment"
    )
    print(
        f"kernels at once, most                     {sampler.kernels:8d}     "
        f"(2 workers x concurrency {args.concurrency})"
    )
    tasks = args.runs * (1 + args.environments)
    for host in workers:
        print(
            f"peak memory of {host}: its own processes {sampler.own[host] / 2**20:6.0f} MB, "
            f"with its runs and kernels {sampler.tree[host] / 2**20:6.0f} MB; its own from "
            f"{sampler.first[host] / 2**20:.0f} to {sampler.last[host] / 2**20:.0f} MB over "
            f"{tasks} tasks of both"
        )
    verdict = "meets" if ratio <= RATIO_TARGET else "MISSES"
    print(f"round / one environment {ratio:6.2f}  {verdict} target <= {RATIO_TARGET}")
    bounded = sampler.kernels <= 2 * args.concurrency
    print(f"kernels bounded by the workers' concurrency: {'yes' if bounded else 'NO'}")
    return 0 if ratio <= RATIO_TARGET and bounded else 1


if __name__ == "__main__":
    raise SystemExit(main())
