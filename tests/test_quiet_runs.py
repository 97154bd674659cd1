"""What cron mails: a run that ends prints nothing on stderr, a run stopped by SIGTERM prints one
line and exits 130. Against the practice stack, through the CLI as a scheduler starts it; each
run gets a temp dir of its own, so what its kernel leaves behind (connection file, sockets) shows.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import nbformat
import psutil
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from irkit import records
from irkit.result import Status
from irkit.sandbox.stack import Stack
from tests.helpers import ROOT, wait_for

INTERRUPTED = "irkit: interrupted\n"
# Documented in the README: Ctrl-C or SIGTERM keeps the record so far and exits 130.
INTERRUPTED_EXIT = 130


def start(
    tmp_path: Path, name: str, *args: str, kit: Path | None = None
) -> tuple[subprocess.Popen[str], Path]:
    temp = tmp_path / f"tmp-{name}"
    temp.mkdir()
    env = {**os.environ, "IRKIT_REPORTS": str(tmp_path / f"reports-{name}"), "TMPDIR": str(temp)}
    if kit is not None:
        env["IRKIT_HOME"] = str(kit)
    command = [sys.executable, "-m", "irkit", *args]
    run = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    return run, temp


def kernels_using(temp: Path) -> list[psutil.Process]:
    """Kernels still running for a run: their command line names its connection file."""
    found = []
    for proc in psutil.process_iter(["cmdline", "status"]):
        cmdline = proc.info["cmdline"] or []
        if proc.info["status"] != psutil.STATUS_ZOMBIE and any(str(temp) in a for a in cmdline):
            found.append(proc)
    return found


def test_finished_runs_print_nothing_on_stderr(tmp_path: Path, stack: Stack) -> None:
    # About one run in three logged "KeyboardInterrupt caught in kernel." when it was busy: the
    # kernel was interrupted as it stopped (and, more rarely, its own shutdown wrote a zmq error).
    # Runs side by side, as a scheduler's overlap, to be busy: 16 section runs, 2 health reports.
    for wave in range(4):
        runs = [start(tmp_path, f"{wave}-{i}", "run", "redis") for i in range(4)]
        if wave < 2:
            runs.append(start(tmp_path, f"{wave}-health", "health"))
        for run, temp in runs:
            out, err = run.communicate(timeout=120)
            assert err == "", f"{run.args}: exit {run.returncode}\n{out}{err}"
            assert run.returncode in (0, 1, 2), out
            assert "report: " in out
            assert list(temp.iterdir()) == []  # the kernel's files went with it


def stopped_cleanly(
    run: subprocess.Popen[str], temp: Path, sig: signal.Signals = signal.SIGTERM, times: int = 1
) -> str:
    began = time.monotonic()
    kernel = kernels_using(temp)
    run.send_signal(sig)
    if times > 1:
        # A second Ctrl-C while the first one's stop is under way: the kernel is gone, the run
        # is cleaning up after it and writing the record.
        wait_for(lambda: not any(k.is_running() for k in kernel), "the kernel stopped", timeout=60)
        run.send_signal(sig)
    out, err = run.communicate(timeout=60)
    assert err == INTERRUPTED, err
    assert run.returncode == INTERRUPTED_EXIT, out + err
    assert time.monotonic() - began < 10  # not the probe's 30 s timeout
    assert kernels_using(temp) == []
    assert list(temp.iterdir()) == []
    return out


def the_record(folder: Path) -> records.Record:
    (path,) = [p for p in folder.rglob("*.ipynb") if not p.name.startswith(".")]
    return records.read(path)


@pytest.mark.parametrize(
    ("sig", "times"),
    [(signal.SIGTERM, 1), (signal.SIGINT, 1), (signal.SIGINT, 2)],
    ids=["sigterm", "ctrl-c", "ctrl-c-twice"],
)
def test_a_stop_mid_cell_prints_one_line(
    tmp_path: Path, silent_server: tuple[int, threading.Event], sig: signal.Signals, times: int
) -> None:
    port, connected = silent_server
    url = f"redis_url=redis://127.0.0.1:{port}/1"
    run, temp = start(tmp_path, "run", "run", "redis", "-p", url, "-p", "redis_socket_timeout_s=30")
    wait_for(connected.is_set, "the redis probe connected", timeout=60)
    stopped_cleanly(run, temp, sig, times)
    record = the_record(tmp_path / "reports-run")
    assert not record.complete
    assert f"stopped by {sig.name} while this cell ran" in record.error
    assert record.status is Status.UNKNOWN


def test_sigterm_mid_health_report_prints_one_line(
    tmp_path: Path, silent_server: tuple[int, threading.Event]
) -> None:
    port, connected = silent_server
    web = ["-p", f"web_url=http://127.0.0.1:{port}", "-p", "web_timeout_s=30"]
    disk = ["-p", f"disk_paths={[str(tmp_path)]}"]
    run, temp = start(tmp_path, "health", "health", *web, *disk)
    wait_for(connected.is_set, "the web check connected", timeout=60)
    stopped_cleanly(run, temp)
    record = the_record(tmp_path / "reports-health")
    assert not record.complete
    assert "stopped by SIGTERM" in record.error


def test_sigterm_while_the_kernel_starts_leaves_no_kernel(tmp_path: Path, stack: Stack) -> None:
    run, temp = start(tmp_path, "start", "run", "redis")
    # The connection file is written just before the kernel is launched.
    wait_for(lambda: list(temp.glob("*.json")), "the kernel's connection file", timeout=60)
    stopped_cleanly(run, temp)
    record = the_record(tmp_path / "reports-start")
    assert not record.complete  # papermill would have marked every cell completed
    assert "stopped by SIGTERM before this cell ran" in record.error


def test_a_kernel_that_dies_is_reported_in_one_line(tmp_path: Path) -> None:
    # nbclient also logged it ("Kernel died while waiting for execute reply."): a second line.
    kit = tmp_path / "kit"
    (kit / "notebooks").mkdir(parents=True)
    sources = ["seconds: float = 1.0  # how long", "import os\nos._exit(1)", "done = 1"]
    nb = new_notebook(cells=[new_code_cell(source) for source in sources])
    nb.cells[0].metadata["tags"] = ["parameters"]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3"}
    nbformat.write(nb, kit / "notebooks" / "dies.ipynb")
    run, temp = start(tmp_path, "dies", "run", "dies", kit=kit)
    _, err = run.communicate(timeout=120)
    assert err == "irkit: the notebook did not run to the end (DeadKernelError: Kernel died)\n"
    assert run.returncode == 3
    assert list(temp.iterdir()) == []
    record = the_record(tmp_path / "reports-dies")
    assert record.error == "DeadKernelError: Kernel died"  # in the cell it stopped in
