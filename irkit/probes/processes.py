"""The processes behind a host verdict: the busiest and the largest, named by what they are
(`irkit.process_names`), leaving out the kit's own (the `irkit` command, papermill and the
kernel running the notebook), whose work would otherwise be what a check reports."""

from __future__ import annotations

import contextlib
import time
from typing import Any

import psutil

from irkit.process_names import readable_name
from irkit.units import human_bytes

TOP = 5
# Shorter samples are dominated by scheduling noise.
MIN_SAMPLE_S = 0.5

# What the kit runs a notebook in; a parent of another kind (a shell, JupyterLab, a scheduler)
# is where the kit's own tree ends.
KIT_PROCESSES = frozenset({"irkit", "papermill", "ipykernel"})


def describe(proc: psutil.Process) -> dict[str, Any]:
    """pid, readable name and user of one process ("?" for what it hides from us)."""
    name, cmdline, user = "?", [], "?"
    with contextlib.suppress(psutil.Error):
        name = proc.name()
    with contextlib.suppress(psutil.Error):
        cmdline = proc.cmdline()
    with contextlib.suppress(psutil.Error):
        user = proc.username()
    return {"pid": proc.pid, "name": readable_name(name, cmdline), "user": user}


def own_tree() -> set[int]:
    """This process, its parents up to the `irkit` command (while they are the kit's: papermill,
    the kernel), and all their children."""
    top = psutil.Process()
    with contextlib.suppress(psutil.Error):
        for parent in top.parents():
            if describe(parent)["name"] not in KIT_PROCESSES:
                break
            top = parent
    pids = {psutil.Process().pid, top.pid}
    with contextlib.suppress(psutil.Error):
        pids |= {child.pid for child in top.children(recursive=True)}
    return pids


def busiest(sample_s: float, leave_out: set[int]) -> list[dict[str, Any]]:
    """The processes using the most CPU over `sample_s` (at least half a second), as `top -b -n 1`
    would show them: evidence of who burns the CPU now, not the verdict."""
    procs = [p for p in psutil.process_iter() if p.pid not in leave_out]
    for p in procs:
        with contextlib.suppress(psutil.Error):
            p.cpu_percent(None)  # starts each process's own interval; the first reading is 0
    time.sleep(max(sample_s, MIN_SAMPLE_S))
    rows = []
    for p in procs:
        try:
            used = p.cpu_percent(None)
        except psutil.Error:
            continue
        if used > 0:
            rows.append({**describe(p), "cpu_pct": round(used, 1)})
    rows.sort(key=lambda r: -float(r["cpu_pct"]))
    return rows[:TOP]


def largest(leave_out: set[int]) -> list[dict[str, Any]]:
    """The processes with the most resident memory, as `docker stats` and `top` show them."""
    sizes = []
    for p in psutil.process_iter():
        if p.pid in leave_out:
            continue
        with contextlib.suppress(psutil.Error):
            sizes.append((p.memory_info().rss, p))
    sizes.sort(key=lambda pair: -pair[0])
    return [{**describe(p), "rss": rss, "rss_human": human_bytes(rss)} for rss, p in sizes[:TOP]]
