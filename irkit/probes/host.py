"""Host probes: memory available and CPU use of the machine that runs the app, judged over the
runbook's window ("CPU > 80 % for 5 min"), each with the processes that use the most.

With Prometheus configured the machine is the one its node_exporter reports on; without, this
machine, by its load average. A short burst (the kit's own work, a test run) does not make a
verdict: only what lasts over the window does. The busiest and largest processes are evidence,
sampled here, and listed only when the machine measured is this one."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import psutil

from irkit.catalogue.parameters import quantity
from irkit.errors import ServiceError
from irkit.probes import node, processes
from irkit.probes.contract import Finding, check_thresholds, grade, grade_low, probe
from irkit.result import Result, Status
from irkit.targets import Machine
from irkit.units import human_bytes


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
    measures=(
        "memory available on the app's machine over {host_window_min} (node_exporter, else now), "
        "largest processes"
    ),
    grades="≤ {host_memory_available_warn_pct} / ≤ {host_memory_available_crit_pct} available",
    target="machine",
    thresholds={
        "window_min": "host_window_min",
        "warn_pct": "host_memory_available_warn_pct",
        "crit_pct": "host_memory_available_crit_pct",
    },
    area="host",
    recheck=True,
    advice=_host_memory,
)
def memory(machine: Machine, *, window_min: float, warn_pct: float, crit_pct: float) -> Finding:
    """Memory still available to new work (`available`, not `free`: the page cache gives way):
    averaged over `window_min` by node_exporter, else this machine's now; and the largest
    processes by resident size."""
    check_thresholds(warn_pct, crit_pct, higher_is_worse=False)
    readings, fallback = _node_exporter(node.memory_available, machine, window_min)
    if readings:
        worst = readings[0]
        available_pct, total = worst.value, worst.details["total"]
        available, measured = worst.details["available"], worst.machine
        over = f"on average over the last {quantity(window_min, 'minutes')}"
        here = worst.nodename == machine.name
    else:
        vm = psutil.virtual_memory()
        available_pct, total, available = 100.0 * vm.available / vm.total, vm.total, vm.available
        measured, over, here = _this_machine(machine, fallback), "now", True
    top = processes.largest(processes.own_tree()) if here else []
    evidence: dict[str, Any] = {
        "measured": measured,
        "available_pct": round(available_pct, 1),
        "available": available,
        "total": total,
        **({"window_min": window_min} if readings else {}),
        **_machines(readings),
        "rows": top,
        "warn_pct": warn_pct,
        "crit_pct": crit_pct,
    }
    if not readings:
        evidence["swap_used_pct"] = psutil.swap_memory().percent
    largest = _first(top, here, "largest", "rss_human")
    summary = (
        f"{available_pct:.0f}% of {human_bytes(total)} memory available ({human_bytes(available)}) "
        f"{over} on {measured}{largest}"
    )
    return Finding(grade_low(available_pct, warn_pct, crit_pct), summary, evidence)


@probe(
    "host.cpu",
    measures=(
        "CPU use the app's machine sustained over {host_window_min} (node_exporter, else the load "
        "average), busiest processes"
    ),
    grades="{host_cpu_warn_pct} / {host_cpu_crit_pct}",
    target="machine",
    thresholds={
        "window_min": "host_window_min",
        "interval_s": "host_cpu_interval_s",
        "warn_pct": "host_cpu_warn_pct",
        "crit_pct": "host_cpu_crit_pct",
    },
    area="host",
    recheck=True,
    advice=_host_cpu,
)
def cpu(
    machine: Machine,
    *,
    window_min: float,
    interval_s: float,
    warn_pct: float,
    crit_pct: float,
) -> Finding:
    """CPU busy over `window_min`, as the runbook's alert "CPU > 80 % for 5 min" means it: by
    node_exporter, the use the CPU stayed above throughout the window (the lowest of its
    one-minute rates; a burst does not lift it), with the average beside it; else this
    machine's load average per CPU over the nearest window the kernel keeps (1, 5 or 15 min).
    The busiest processes over `interval_s`, the kit's own left out, are evidence only."""
    check_thresholds(warn_pct, crit_pct)
    readings, fallback = _node_exporter(node.cpu_busy, machine, window_min)
    load = os.getloadavg()
    status_cap = ""
    if readings:
        worst = readings[0]
        busy, cpus, measured = worst.value, worst.details["cpus"], worst.machine
        here = worst.nodename == machine.name
        judged: dict[str, Any] = {
            "window_min": window_min,
            "average_pct": worst.details["average_pct"],
            "whole_window": worst.details["whole_window"],
            "query": worst.details["query"],
        }
        shown = quantity(window_min, "minutes")
        if worst.details["whole_window"]:
            how = f"at least {busy:.0f}% busy throughout the last {shown}"
        else:
            # An alert `for: 5m` cannot have fired on less than 5 min of data.
            how = f"at least {busy:.0f}% busy since Prometheus' data starts, less than {shown} ago"
            status_cap = f"; not CRIT before {shown} of it"
        how += f" (average {worst.details['average_pct']:.0f}%)"
    else:
        cpus = psutil.cpu_count() or 1
        minutes = _load_window(window_min)
        used = load[LOAD_WINDOWS_MIN.index(minutes)]
        busy = round(100.0 * used / cpus, 1)
        measured, here = _this_machine(machine, fallback), True
        # A load average counts what waits for a CPU too: it can pass 100 % of their capacity.
        how = f"load {used:.2f} over the last {minutes} min ({busy:.0f}% of their capacity)"
        judged = {"window_min": minutes, "load_average_used": used}
    rows = processes.busiest(interval_s, processes.own_tree()) if here else []
    evidence: dict[str, Any] = {
        "measured": measured,
        "cpu_pct": busy,
        "cpus": cpus,
        **judged,
        **_machines(readings),
        "load_average_here": [round(v, 2) for v in load],
        "rows": rows,
        "warn_pct": warn_pct,
        "crit_pct": crit_pct,
    }
    busiest = _first(rows, here, "busiest now", "cpu_pct")
    summary = f"CPU {how} on {cpus} CPUs of {measured}{status_cap}{busiest}"
    status = grade(busy, warn_pct, crit_pct)
    if status_cap and status is Status.CRIT:
        status = Status.WARN
    return Finding(status, summary, evidence)


def _node_exporter(
    read: Callable[[Any, float], list[node.Reading]], machine: Machine, window_min: float
) -> tuple[list[node.Reading], str]:
    """The app's machines as Prometheus' node_exporter sees them, or [] and why not (then this
    machine is measured instead, and the verdict says so)."""
    if machine.prometheus is None:
        return [], ""
    shown = machine.prometheus.display
    try:
        readings = read(machine.prometheus, window_min)
    except ServiceError as exc:
        return [], f"not through Prometheus: {exc}"
    if not readings:
        return [], f"{shown} has no node_exporter metrics ({node.CPU})"
    return readings, ""


def _this_machine(machine: Machine, fallback: str) -> str:
    why = f"; {fallback}" if fallback else ""
    return f"{machine.name} (this machine, where irkit runs{why})"


def _machines(readings: list[node.Reading]) -> dict[str, Any]:
    """Every machine node_exporter reports on, when there are several (the worst is judged)."""
    if len(readings) < 2:
        return {}
    return {"machines": [{"machine": r.machine, "value": r.value} for r in readings]}


# The load averages the kernel keeps, by the minutes they cover.
LOAD_WINDOWS_MIN = (1, 5, 15)


def _load_window(window_min: float) -> int:
    """The kernel's load average closest to the window: 1, 5 or 15 min."""
    return min(LOAD_WINDOWS_MIN, key=lambda minutes: abs(minutes - window_min))


def _first(rows: list[dict[str, Any]], here: bool, label: str, amount: str) -> str:
    """The top process for the summary (`amount` names its field in the row)."""
    if not here:
        return "; its processes are not visible from here (run `top` there)"
    if not rows:
        return ""
    top = rows[0]
    shown = f"{top[amount]:.0f}%" if amount == "cpu_pct" else top[amount]
    return f"; {label}: {top['name']} (pid {top['pid']}, {shown})"
