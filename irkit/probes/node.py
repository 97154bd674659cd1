"""CPU and memory of the machines Prometheus scrapes with node_exporter, over a window: the
machine that runs the app, judged the way its alert is ("CPU > 80 % for 5 min"), not the
machine that happens to run irkit."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import httpx

from irkit.probes.http import client
from irkit.probes.prometheus import api
from irkit.targets import HttpTarget

# The series node_exporter's cpu, meminfo and uname collectors export.
CPU = "node_cpu_seconds_total"
MEMORY_AVAILABLE = "node_memory_MemAvailable_bytes"
MEMORY_TOTAL = "node_memory_MemTotal_bytes"
UNAME = "node_uname_info"
LOAD = "node_load"  # node_load1, node_load5, node_load15: the kernel's own load averages

# The load averages the kernel keeps, by the minutes they cover.
LOAD_WINDOWS_MIN = (1, 5, 15)


def load_window(window_min: float) -> int:
    """The kernel's load average closest to the window: 1, 5 or 15 min."""
    return min(LOAD_WINDOWS_MIN, key=lambda minutes: abs(minutes - window_min))


@dataclass(frozen=True)
class Reading:
    """One machine's value over the window, and how to name the machine."""

    instance: str  # the scrape target, host:port
    nodename: str  # the machine's own name (uname -n), "" when its uname collector is off
    value: float
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def machine(self) -> str:
        if self.nodename:
            return f"{self.nodename} (node_exporter {self.instance})"
        return f"node_exporter {self.instance}"


def promql_range(window_min: float) -> str:
    """A window in minutes as a PromQL range, in whole seconds (`5m` is `300s`)."""
    return f"{max(1, round(window_min * 60))}s"


def cpu_busy_query(window: str) -> str:
    return f'100 * (1 - avg by (instance) (rate({CPU}{{mode="idle"}}[{window}])))'


def cpu_count_query() -> str:
    return f'count by (instance) ({CPU}{{mode="idle"}})'


def memory_available_query(window: str) -> str:
    return (
        f"100 * avg by (instance) (avg_over_time({MEMORY_AVAILABLE}[{window}]))"
        f" / avg by (instance) ({MEMORY_TOTAL})"
    )


def covered_query(window: str) -> str:
    """The machines Prometheus has data for from a whole window ago: a rate over a window it
    holds only the last seconds of would judge a burst as if it had lasted the whole window."""
    return f'count by (instance) ({CPU}{{mode="idle"}} offset {window})'


def load_query(window_min: float) -> str:
    return f"avg by (instance) ({LOAD}{load_window(window_min)})"


def cpu_busy(target: HttpTarget, window_min: float) -> list[Reading]:
    """Share of CPU time not idle over the window, per machine, busiest first; [] when
    Prometheus has no node_exporter series (or not two scrapes of them yet). Where Prometheus
    holds less than the window (it started since), the machine's own load average per CPU
    over the nearest window instead (`details["load"]`)."""
    window = promql_range(window_min)
    with client(target) as http:
        busy = _by_instance(_query(http, target, cpu_busy_query(window)))
        if not busy:
            return []
        cpus = _by_instance(_query(http, target, cpu_count_query()))
        covered = _by_instance(_query(http, target, covered_query(window)))
        loads = (
            {}
            if covered.keys() >= busy.keys()
            else _by_instance(_query(http, target, load_query(window_min)))
        )
        names = _names(http, target)
    readings = []
    for instance, value in busy.items():
        count = int(cpus.get(instance, 0))
        details: dict[str, Any] = {"cpus": count, "query": cpu_busy_query(window)}
        if instance not in covered and instance in loads and count:
            details.update(load=loads[instance], query=load_query(window_min))
            value = 100.0 * loads[instance] / count
        readings.append(Reading(instance, names.get(instance, ""), round(value, 1), details))
    return sorted(readings, key=lambda r: -r.value)


def memory_available(target: HttpTarget, window_min: float) -> list[Reading]:
    """Memory available (MemAvailable, not MemFree: the page cache gives way) as a share of the
    total, averaged over the window, per machine, tightest first; [] without node_exporter."""
    window = promql_range(window_min)
    with client(target) as http:
        share = _by_instance(_query(http, target, memory_available_query(window)))
        if not share:
            return []
        total = _by_instance(_query(http, target, f"avg by (instance) ({MEMORY_TOTAL})"))
        names = _names(http, target)
    readings = [
        Reading(
            instance,
            names.get(instance, ""),
            round(value, 1),
            {
                "total": int(total.get(instance, 0)),
                "available": int(total.get(instance, 0) * value / 100),
                "query": memory_available_query(window),
            },
        )
        for instance, value in share.items()
    ]
    return sorted(readings, key=lambda r: r.value)


def _query(http: httpx.Client, target: HttpTarget, query: str) -> dict[str, Any]:
    return api(http, target, "/api/v1/query", {"query": query})


def _by_instance(data: dict[str, Any]) -> dict[str, float]:
    found = {}
    for series in data.get("result", []):
        value = float(series["value"][1])
        if not math.isnan(value):
            found[str(series["metric"].get("instance", "?"))] = value
    return found


def _names(http: httpx.Client, target: HttpTarget) -> dict[str, str]:
    data = _query(http, target, UNAME)
    return {
        str(s["metric"].get("instance", "?")): str(s["metric"].get("nodename", ""))
        for s in data.get("result", [])
    }
