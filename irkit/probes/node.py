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
    """The machines Prometheus has data for from a whole window ago."""
    return f'count by (instance) ({CPU}{{mode="idle"}} offset {window})'


def step_for(window_min: float) -> str:
    """The rate's own range inside the window: a minute (a few scrapes at production's usual
    15-30 s), shorter for short windows so that the window still holds several."""
    return promql_range(min(1.0, window_min / 3))


def sustained_query(window: str, step: str) -> str:
    """The lowest CPU use over the window, each point a rate over `step`: the level the CPU
    stayed above throughout, as an alert `for: 5m` requires (a burst does not lift it)."""
    return f"min_over_time(({cpu_busy_query(step)})[{window}:])"


def cpu_busy(target: HttpTarget, window_min: float) -> list[Reading]:
    """Per machine, most loaded first: the CPU use sustained throughout the window (`value`),
    its average over the window, and whether Prometheus holds the whole window (it may have
    started since); [] when it has no node_exporter series (or not two scrapes of them yet)."""
    window, step = promql_range(window_min), step_for(window_min)
    with client(target) as http:
        sustained = _by_instance(_query(http, target, sustained_query(window, step)))
        if not sustained:
            return []
        average = _by_instance(_query(http, target, cpu_busy_query(window)))
        cpus = _by_instance(_query(http, target, cpu_count_query()))
        covered = _by_instance(_query(http, target, covered_query(window)))
        names = _names(http, target)
    readings = [
        Reading(
            instance,
            names.get(instance, ""),
            round(value, 1),
            {
                "cpus": int(cpus.get(instance, 0)),
                "average_pct": round(average.get(instance, value), 1),
                "whole_window": instance in covered,
                "query": sustained_query(window, step),
            },
        )
        for instance, value in sustained.items()
    ]
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
