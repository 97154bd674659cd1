"""Host probes: available memory and CPU use, each with the processes that use the most."""

from __future__ import annotations

import contextlib
import os
import time
from typing import Any

import psutil

from irkit.probes.contract import Finding, check_thresholds, grade, grade_low, probe
from irkit.result import Result
from irkit.targets import LocalHost
from irkit.units import human_bytes

TOP = 5
# Shorter samples are dominated by scheduling noise.
MIN_CPU_INTERVAL_S = 0.5


def _host_memory(r: Result) -> str:
    return (
        "Runbook Scenario 1, high memory usage: the largest processes are in the evidence; "
        "restart the web service if it is out of memory, scale it out "
        "(`docker-compose up -d --scale web=3`)."
    )


def _host_cpu(r: Result) -> str:
    return (
        "Runbook 'High CPU Alert': the busiest processes are in the evidence; check for runaway "
        "Celery tasks (`celery inspect active`), and roll back a deployment that coincides."
    )


@probe(
    "host.memory",
    measures="memory available, largest processes",
    grades="≤ {host_memory_available_warn_pct} / ≤ {host_memory_available_crit_pct} available",
    target="host",
    thresholds={
        "warn_pct": "host_memory_available_warn_pct",
        "crit_pct": "host_memory_available_crit_pct",
    },
    area="host",
    recheck=True,
    advice=_host_memory,
)
def memory(host: LocalHost, *, warn_pct: float, crit_pct: float) -> Finding:
    """Memory still available to new work (`available`, not `free`: the page cache gives way),
    and the largest processes by resident size, as `docker stats` and `top` would show them."""
    check_thresholds(warn_pct, crit_pct, higher_is_worse=False)
    vm = psutil.virtual_memory()
    swap = psutil.swap_memory()
    available_pct = 100.0 * vm.available / vm.total
    procs = []
    for p in psutil.process_iter(["pid", "name", "username", "memory_info"]):
        info = p.info
        if info.get("memory_info") is not None:
            procs.append(
                {
                    "pid": info["pid"],
                    "name": info.get("name") or "",
                    "user": info.get("username") or "",
                    "rss": info["memory_info"].rss,
                }
            )
    procs.sort(key=lambda r: -int(r["rss"]))
    top = [{**r, "rss_human": human_bytes(r["rss"])} for r in procs[:TOP]]
    evidence: dict[str, Any] = {
        "available_pct": round(available_pct, 1),
        "available": vm.available,
        "total": vm.total,
        "swap_used_pct": swap.percent,
        "rows": top,
        "warn_pct": warn_pct,
        "crit_pct": crit_pct,
    }
    biggest = (
        f"; largest: {top[0]['name']} (pid {top[0]['pid']}, {top[0]['rss_human']})" if top else ""
    )
    summary = (
        f"{available_pct:.0f}% of {human_bytes(vm.total)} memory available "
        f"({human_bytes(vm.available)}){biggest}"
    )
    return Finding(grade_low(available_pct, warn_pct, crit_pct), summary, evidence)


@probe(
    "host.cpu",
    measures="CPU use over {host_cpu_interval_s}, busiest processes",
    grades="{host_cpu_warn_pct} / {host_cpu_crit_pct}",
    target="host",
    thresholds={
        "interval_s": "host_cpu_interval_s",
        "warn_pct": "host_cpu_warn_pct",
        "crit_pct": "host_cpu_crit_pct",
    },
    fixed={"exclude_self": True},
    area="host",
    recheck=True,
    advice=_host_cpu,
)
def cpu(
    host: LocalHost,
    *,
    interval_s: float,
    warn_pct: float,
    crit_pct: float,
    exclude_self: bool = False,
) -> Finding:
    """CPU use over `interval_s` (a first reading with no interval is always 0) and the busiest
    processes over the same interval, as `top -b -n 1` would show them. With `exclude_self`, the
    CPU used meanwhile by this process and its children is left out (the health report measures
    while its other checks run)."""
    check_thresholds(warn_pct, crit_pct)
    interval_s = max(interval_s, MIN_CPU_INTERVAL_S)
    procs = list(psutil.process_iter(["pid", "name", "username"]))
    for p in procs:
        try:
            p.cpu_percent(None)  # start each process's own interval
        except psutil.Error:
            continue
    # The report's own use is counted over exactly the interval the total covers.
    own_before = _own_cpu_s() if exclude_self else 0.0
    started = time.monotonic()
    total = psutil.cpu_percent(interval=interval_s)
    own_pids: set[int] = set()
    own_pct = 0.0
    if exclude_self:
        wall = time.monotonic() - started
        own_pct = 100.0 * (_own_cpu_s() - own_before) / (wall * (psutil.cpu_count() or 1))
        total = round(max(0.0, total - own_pct), 1)
        own_pids = _own_pids()
    rows = []
    for p in procs:
        if p.pid in own_pids:
            continue
        try:
            used = p.cpu_percent(None)
        except psutil.Error:
            continue
        if used > 0:
            rows.append(
                {
                    "pid": p.pid,
                    "name": p.info.get("name") or "",
                    "user": p.info.get("username") or "",
                    "cpu_pct": round(used, 1),
                }
            )
    rows.sort(key=lambda r: -float(r["cpu_pct"]))
    load1, load5, load15 = os.getloadavg()
    evidence: dict[str, Any] = {
        "cpu_pct": total,
        "cpus": psutil.cpu_count(),
        "load_average": [round(load1, 2), round(load5, 2), round(load15, 2)],
        "interval_s": interval_s,
        **({"own_cpu_pct_left_out": round(own_pct, 1)} if exclude_self else {}),
        "rows": rows[:TOP],
        "warn_pct": warn_pct,
        "crit_pct": crit_pct,
    }
    busiest = (
        f"; busiest: {rows[0]['name']} (pid {rows[0]['pid']}, {rows[0]['cpu_pct']:.0f}%)"
        if rows
        else ""
    )
    summary = (
        f"CPU {total:.0f}% busy over {interval_s:g} s on {psutil.cpu_count()} CPUs "
        f"(load {load1:.2f}){busiest}"
    )
    return Finding(grade(total, warn_pct, crit_pct), summary, evidence)


def _own_pids() -> set[int]:
    me = psutil.Process()
    pids = {me.pid}
    with contextlib.suppress(psutil.Error):
        pids |= {c.pid for c in me.children(recursive=True)}
    return pids


def _own_cpu_s() -> float:
    """CPU seconds used by this process and its children so far, those it already waited for
    included (a child that ended during the interval still counts)."""
    me = psutil.Process()
    total = 0.0
    for proc in [me, *me.children(recursive=True)]:
        with contextlib.suppress(psutil.Error):
            t = proc.cpu_times()
            total += t.user + t.system + t.children_user + t.children_system
    return total
