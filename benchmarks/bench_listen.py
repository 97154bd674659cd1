"""The alert intake: how long from a webhook's arrival to the executed triage notebook on disk,
against `irkit run triage` by hand; and 20 alert groups arriving at once, with the receiver's
memory and its runs at once bounded.

    .venv/bin/python benchmarks/bench_listen.py [--runs 5] [--burst 20]

Starts its own practice servers on free ports and `irkit listen` on loopback, then:

1. alternates `irkit run triage -f params` (the baseline, a command) with one Alertmanager
   notification posted to the receiver, timed until the incident's executed triage notebook
   is on disk; prints the medians and their ratio; target: webhook / by hand <= 1.5;
2. posts `--burst` groups at once; prints how many were accepted, how long until all were
   handled, the most `irkit run` processes seen at once (bounded by alert_max_runs), and the
   receiver's own resident memory before and at its peak; target: every group handled, runs
   at once <= alert_max_runs, the receiver's growth under 50 MB.
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
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import psutil
import yaml

from irkit.sandbox import readiness
from irkit.sandbox.process import free_port
from irkit.sandbox.stack import Stack, free_ports

ROOT = Path(__file__).resolve().parent.parent
RATIO_TARGET = 1.5
GROWTH_TARGET_MB = 50.0
MAX_RUNS = 2


def notification(name: str) -> dict[str, Any]:
    alert = {
        "status": "firing",
        "labels": {"alertname": name, "severity": "warning"},
        "annotations": {"summary": "benchmark"},
        "startsAt": "2026-12-01T10:00:00Z",
        "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": "",
        "fingerprint": name,
    }
    return {
        "version": "4",
        "groupKey": f'{{}}:{{alertname="{name}"}}',
        "status": "firing",
        "receiver": "irkit",
        "groupLabels": {"alertname": name},
        "commonLabels": alert["labels"],
        "commonAnnotations": alert["annotations"],
        "externalURL": "",
        "alerts": [alert],
    }


def triage_on_disk(reports: Path, name: str) -> bool:
    slug = name.lower()
    return any(
        p.name != "01-triage.ipynb"
        for folder in (reports / "incidents").glob(f"*-{slug}-*")
        for p in folder.glob("[0-9][0-9]-triage.ipynb")
    )


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--burst", type=int, default=20)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="irkit-bench-"))
    work.chmod(0o755)
    stack = Stack(work / "stack", **free_ports())
    listener: subprocess.Popen[bytes] | None = None
    try:
        stack.up()
        readiness.wait_until_ready(stack)
        params = work / "params.yaml"
        params.write_text(yaml.safe_dump({**stack.targets(), "alert_max_runs": MAX_RUNS}))
        reports = work / "reports"
        env = {**os.environ, "IRKIT_REPORTS": str(reports), "IRKIT_LISTEN_TOKEN": ""}
        irkit = [sys.executable, "-m", "irkit"]
        port = free_port()
        log = (work / "listen.log").open("wb")
        listener = subprocess.Popen(
            [*irkit, "listen", "--insecure-loopback", "--port", str(port), "-f", str(params)],
            env=env,
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        url = f"http://127.0.0.1:{port}"
        while True:
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.05)

        def by_hand() -> float:
            started = time.perf_counter()
            subprocess.run(
                [*irkit, "run", "triage", "-f", str(params)],
                env=env,
                cwd=ROOT,
                capture_output=True,
                check=False,
            )
            return time.perf_counter() - started

        def through_webhook(n: int) -> float:
            name = f"BenchAlert{n}"
            started = time.perf_counter()
            answer = httpx.post(f"{url}/alertmanager", content=json.dumps(notification(name)))
            answer.raise_for_status()
            while not triage_on_disk(reports, name):
                time.sleep(0.01)
            return time.perf_counter() - started

        by_hand()  # warm the disk cache; not counted
        through_webhook(-1)
        hand, hook = [], []
        for n in range(args.runs):
            hand.append(by_hand())
            hook.append(through_webhook(n))
        ratio = statistics.median(hook) / statistics.median(hand)
        print(f"irkit run triage, by hand            {statistics.median(hand) * 1000:6.0f} ms")
        print(f"webhook to executed triage on disk   {statistics.median(hook) * 1000:6.0f} ms")
        verdict = "meets" if ratio <= RATIO_TARGET else "MISSES"
        print(
            f"ratio                                {ratio:6.2f}  {verdict} target <= {RATIO_TARGET}"
        )

        # The burst: every group at once.
        wait_idle(url)
        me = psutil.Process(listener.pid)
        before = me.memory_info().rss
        peak_rss, peak_runs = before, 0
        done_before = len(list((reports / "intake" / "done").glob("*.json")))
        stop = threading.Event()

        def watch() -> None:
            nonlocal peak_rss, peak_runs
            while not stop.is_set():
                try:
                    peak_rss = max(peak_rss, me.memory_info().rss)
                    runs = [
                        c
                        for c in me.children(recursive=False)
                        if "run" in c.cmdline() and "irkit" in c.cmdline()
                    ]
                    peak_runs = max(peak_runs, len(runs))
                except psutil.Error:
                    pass
                time.sleep(0.02)

        watcher = threading.Thread(target=watch)
        watcher.start()
        started = time.perf_counter()
        answers: list[int] = []
        posts = [
            threading.Thread(
                target=lambda n=n: answers.append(
                    httpx.post(
                        f"{url}/alertmanager", content=json.dumps(notification(f"BenchBurst{n}"))
                    ).status_code
                )
            )
            for n in range(args.burst)
        ]
        for post in posts:
            post.start()
        for post in posts:
            post.join()
        accepted = answers.count(200)
        while len(list((reports / "intake" / "done").glob("*.json"))) < done_before + accepted:
            time.sleep(0.05)
        took = time.perf_counter() - started
        stop.set()
        watcher.join()
        growth = (peak_rss - before) / 2**20
        ok = accepted == args.burst and peak_runs <= MAX_RUNS and growth < GROWTH_TARGET_MB
        print(f"burst of {args.burst} groups: {accepted} accepted, all handled in {took:.1f} s")
        print(f"irkit run processes at once, at most  {peak_runs} (alert_max_runs {MAX_RUNS})")
        print(
            f"receiver's resident memory            {before / 2**20:.0f} MB before, "
            f"{peak_rss / 2**20:.0f} MB at its peak (+{growth:.1f} MB)"
        )
        print(f"burst                                {'meets' if ok else 'MISSES'} its targets")
        return 0 if ratio <= RATIO_TARGET and ok else 1
    finally:
        if listener is not None:
            listener.terminate()
            listener.wait(15)
        stack.down()
        shutil.rmtree(work, ignore_errors=True)


def wait_idle(url: str) -> None:
    while httpx.get(f"{url}/healthz").json()["waiting"]:
        time.sleep(0.05)


if __name__ == "__main__":
    sys.exit(main())
