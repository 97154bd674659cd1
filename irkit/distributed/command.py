"""One `irkit` command as a task runs it: in a process of its own, exactly as cron would start it,
bounded by a deadline, and told to stop if the worker's process dies under it.

A process of its own keeps a worker's memory what it was (every kernel and record goes with the
run), gives the run the command's exit status, and lets a deadline stop it the way a scheduler
does: SIGTERM first, which keeps the record so far, then SIGKILL."""

from __future__ import annotations

import contextlib
import ctypes
import os
import re
import shlex
import signal
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from irkit import pids
from irkit.distributed import config
from irkit.secrets import redact

# After SIGTERM at the deadline, how long the run has to write its record before SIGKILL.
GRACE_S = 30.0
# How much of the command's output the result keeps (its last lines: the verdicts' summary).
OUTPUT_LIMIT = 4000
# What the run does not need and must not see: the broker's and result backend's URLs (with
# their passwords) stay with the worker.
_WITHHELD = (config.BROKER_ENV, config.BROKER_PASSWORD_ENV, config.BACKEND_ENV)
_PR_SET_PDEATHSIG = 1
# Each task's command; a section run also names its section.
_COMMANDS = {"health": ("health",), "run": ("run",), "monthly": ("report", "monthly")}
_REPORT = re.compile(r"^report: (?P<path>.+)$", re.MULTILINE)
_STATUS = re.compile(r"^status: (?P<status>[A-Z]+)", re.MULTILINE)
# Exit codes the command gives beside the Nagios ones.
_STOPPED = 130


@dataclass(frozen=True)
class Outcome:
    """What a task returns: the command's exit status and where its record went."""

    command: str
    exit_code: int | None  # None: not run (skipped)
    status: str  # OK, WARN, CRIT, UNKNOWN as the command printed it; else why there is none
    report: str  # the executed notebook, "" when none was written
    host: str
    output: str  # the end of what the command printed, secrets masked
    deadline_s: float
    timed_out: bool = False

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def argv(kind: str, kwargs: Mapping[str, Any]) -> list[str]:
    """The command line of a task (`health`, `run`, `monthly`) and its arguments, as a person
    would type it after `irkit`."""
    line = list(_COMMANDS[kind])
    if kind == "run":
        line.append(kwargs["section"])
    if kwargs.get("environment"):
        line += ["--env", kwargs["environment"]]
    for pair in kwargs.get("parameters", ()):
        line += ["-p", pair]
    line += ["--notify"] if kwargs.get("notify") else []
    line += ["--keep", kwargs["keep"]] if kwargs.get("keep") else []
    line += ["--incident", kwargs["incident"]] if kwargs.get("incident") else []
    line += ["--html"] if kwargs.get("html") else []
    line += ["--month", kwargs["month"]] if kwargs.get("month") else []
    return line


def run(argv: list[str], deadline_s: float, host: str = "") -> Outcome:
    """`irkit ARGV`, stopped at `deadline_s` (SIGTERM, then SIGKILL after GRACE_S)."""
    env = {k: v for k, v in os.environ.items() if k not in _WITHHELD}
    if host:
        env[pids.HOST_ENV] = host
    proc = subprocess.Popen(
        [sys.executable, "-m", "irkit", *argv],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        # Its own process group: a deadline's signal reaches the run and whatever it started in
        # its group. Its kernel has a session of its own (jupyter_client's): the run shuts it
        # down on SIGTERM, and the kernel ends by itself once its run is gone (ipykernel
        # watches its parent, JPY_PARENT_PID), after a SIGKILL too.
        start_new_session=True,
        preexec_fn=_stop_with_parent,  # only prctl, before exec
    )
    timed_out = False
    try:
        out, _ = proc.communicate(timeout=deadline_s)
    except subprocess.TimeoutExpired:
        timed_out = True
        _signal_group(proc, signal.SIGTERM)
        try:
            out, _ = proc.communicate(timeout=GRACE_S)
        except subprocess.TimeoutExpired:
            _signal_group(proc, signal.SIGKILL)
            out, _ = proc.communicate()
    except BaseException:
        # The task itself is being stopped (a hard time limit, the worker shutting down): the
        # run is stopped the polite way and keeps its record.
        _signal_group(proc, signal.SIGTERM)
        raise
    out = redact(out or "")
    report = _REPORT.findall(out)
    status = _STATUS.search(out)
    code = proc.returncode if proc.returncode >= 0 else 128 - proc.returncode
    return Outcome(
        command=shlex.join(["irkit", *argv]),
        exit_code=code,
        status=status["status"] if status else _no_status(code, timed_out),
        report=report[-1].strip() if report else "",
        host=host or pids.this_host(),
        output=out[-OUTPUT_LIMIT:],
        deadline_s=deadline_s,
        timed_out=timed_out,
    )


def _no_status(code: int, timed_out: bool) -> str:
    if timed_out:
        return "STOPPED (deadline)"
    if code == _STOPPED:
        return "STOPPED"
    return "UNKNOWN"


def _signal_group(proc: subprocess.Popen[str], sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)


def _stop_with_parent() -> None:
    """In the child, before exec: SIGTERM when the worker's process that started it dies (a
    worker killed outright), so the run stops and keeps its record instead of running on
    unowned."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
