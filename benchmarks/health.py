"""What `irkit health` costs on top of papermill, all OK and with every target hanging.

    .venv/bin/python benchmarks/health.py [--runs 7] [--timeout 3]

Starts its own practice servers on free ports, then, in one run:

1. times papermill executing an empty notebook (the baseline: kernel start and save) and
   `irkit health` with every target OK (HTML included), interleaved; target ratio <= 1.5;
2. times `irkit health` with every target pointed at a listener that accepts and never answers,
   each with a timeout of `--timeout` seconds, against the baseline plus that timeout; target
   ratio <= 1.2 (one after the other, six hung targets would take six timeouts);
3. the peak memory of each command: its process and the kernel it starts, summed, sampled every
   20 ms.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import nbformat
import psutil
import yaml
from nbformat.v4 import new_code_cell, new_notebook

from irkit.sandbox import readiness
from irkit.sandbox.stack import Stack, free_ports

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
OK_RATIO_TARGET = 1.5
HUNG_RATIO_TARGET = 1.2


def measured(command: list[str], env: dict[str, str]) -> tuple[float, float, int]:
    """Wall time, peak RSS of the command's process tree (MB), exit code."""
    started = time.perf_counter()
    proc = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    peak = 0
    root = psutil.Process(proc.pid)
    while proc.poll() is None:
        try:
            tree = [root, *root.children(recursive=True)]
            peak = max(peak, sum(_rss(p) for p in tree))
        except psutil.Error:
            pass
        time.sleep(0.02)
    elapsed = time.perf_counter() - started
    _, err = proc.communicate()
    if proc.returncode not in (0, 1, 2):
        raise SystemExit(f"{command[1:3]} failed ({proc.returncode}): {err.decode()[-500:]}")
    return elapsed, peak / 2**20, proc.returncode


def _rss(p: psutil.Process) -> int:
    try:
        return int(p.memory_info().rss)
    except psutil.Error:
        return 0


def hanging_listener() -> int:
    server = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []

    def accept() -> None:
        while True:
            conn, _ = server.accept()
            held.append(conn)

    threading.Thread(target=accept, daemon=True).start()
    return int(server.getsockname()[1])


def healthy(stack: Stack) -> dict[str, Any]:
    return {
        **stack.targets(),
        "celery_expected_workers": 1,
        "prom_window": "15s",
        "disk_paths": [str(stack.base)],
    }


def hanging(port: int, timeout: int) -> dict[str, Any]:
    return {
        "pg_host": "127.0.0.1",
        "pg_port": port,
        "pg_connect_timeout_s": timeout,
        "redis_url": f"redis://127.0.0.1:{port}/1",
        "redis_socket_timeout_s": timeout,
        "celery_broker_url": f"redis://127.0.0.1:{port}/0",
        "celery_socket_timeout_s": timeout,
        "web_url": f"http://127.0.0.1:{port}",
        "web_timeout_s": timeout,
        "prom_url": f"http://127.0.0.1:{port}/prometheus",
        "prom_timeout_s": timeout,
        "tls_endpoints": [f"himalytix.test:{port}@127.0.0.1"],
        "tls_timeout_s": timeout,
        "disk_paths": ["/"],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7, help="runs per median (all OK)")
    parser.add_argument("--hung-runs", type=int, default=3, help="runs per median (hanging)")
    parser.add_argument("--timeout", type=int, default=3, help="each target's timeout, s")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="irkit-bench-"))
    work.chmod(0o755)
    stack = Stack(work / "stack", **free_ports())
    empty = work / "empty.ipynb"
    nb = new_notebook(cells=[new_code_cell("pass")])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3"}
    nbformat.write(nb, empty)
    env = {**os.environ, "IRKIT_REPORTS": str(work / "reports"), "IRKIT_SANDBOX_DIR": str(work)}
    try:
        stack.up()
        readiness.wait_until_ready(stack)  # rates need two scrapes first
        ok_file = work / "ok.yaml"
        ok_file.write_text(yaml.safe_dump(healthy(stack)))
        hung_file = work / "hung.yaml"
        hung_file.write_text(yaml.safe_dump(hanging(hanging_listener(), args.timeout)))
        papermill = [
            str(BIN / "papermill"),
            "--no-progress-bar",
            str(empty),
            str(work / "out.ipynb"),
        ]
        ok = [str(BIN / "irkit"), "health", "-f", str(ok_file)]
        hung = [str(BIN / "irkit"), "health", "-f", str(hung_file)]
        measured(papermill, env)  # warm the disk cache; not counted
        code = measured(ok, env)[2]
        if code != 0:
            raise SystemExit(f"the practice stack is not all OK (exit {code}); see {work}")
        base, base_mem, ok_t, ok_mem, hung_t, hung_mem = [], [], [], [], [], []
        for _ in range(args.runs):
            t, m, _ = measured(papermill, env)
            base.append(t)
            base_mem.append(m)
            t, m, _ = measured(ok, env)
            ok_t.append(t)
            ok_mem.append(m)
        for _ in range(args.hung_runs):
            t, m, code = measured(hung, env)
            assert code == 2, code
            hung_t.append(t)
            hung_mem.append(m)
    finally:
        stack.down()
        shutil.rmtree(work, ignore_errors=True)

    baseline = statistics.median(base)
    ok_ratio = statistics.median(ok_t) / baseline
    hung_ratio = statistics.median(hung_t) / (baseline + args.timeout)
    print(f"papermill, empty notebook    {baseline * 1000:8.0f} ms  peak {max(base_mem):6.0f} MB")
    print(
        f"irkit health, all OK         {statistics.median(ok_t) * 1000:8.0f} ms  "
        f"peak {max(ok_mem):6.0f} MB"
    )
    print(
        f"irkit health, all hanging    {statistics.median(hung_t) * 1000:8.0f} ms  "
        f"peak {max(hung_mem):6.0f} MB  (timeout {args.timeout} s)"
    )
    failed = False
    for name, ratio, target in (
        ("all OK / baseline", ok_ratio, OK_RATIO_TARGET),
        ("all hanging / (baseline + timeout)", hung_ratio, HUNG_RATIO_TARGET),
    ):
        verdict = "meets" if ratio <= target else "MISSES"
        failed |= ratio > target
        print(f"{name:<36}{ratio:6.2f}  {verdict} target <= {target}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
