"""CPU and memory of running containers as `docker stats --no-stream` computes them.

CPU use is a rate: two samples of each container's cumulative usage are needed. The engine
publishes samples from one collector that pauses a second between rounds, so through the Engine
API every container's first sample comes from one round and its second from the next: about a
second for any number of containers, read in parallel. On the Docker host itself the same
counters are read from each container's cgroup (`irkit.probes.cgroup_counters`, what the engine's
collector reads), at least 0.1 s apart for all containers at once, the first read by
compose.services when it ran just before; the Engine API is the way elsewhere (irkit in a
container of its own, a remote engine)."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from irkit.probes import cgroup_counters

if TYPE_CHECKING:
    from docker.models.containers import Container

# The shortest interval between a container's two samples (an engine that does not pace its
# samples would otherwise give two of the same instant).
MIN_INTERVAL_S = 0.25
# Reads in parallel at most (the Docker client's connection pool is sized to match).
MAX_PARALLEL = 32


# Between the two reads of the cgroup counters at least: the engine's CPU quota period (`cpus:` is
# enforced per 100 ms), so that a container held at its limit reads exactly that limit, and short
# enough for the notebook's budget. compose.services reads them first when it runs before.
CGROUP_INTERVAL_S = 0.1
# Counters read this long ago at most still serve as a container's first sample: CPU is then
# measured since that read (`docker stats` too shows the use since its previous read).
EARLIER_MAX_AGE_S = 60.0

# CPU counters read earlier in this process (by compose.services, the notebook's first check, or
# by the last compose.stats), by container id.
_earlier: dict[str, tuple[float, dict[str, Any]]] = {}


def note_counters() -> None:
    """Read the CPU counters of the containers this machine's cgroups show, for the next
    `sample_all` to measure CPU since then rather than wait its own interval. Cheap: a small file
    each, found without the engine."""
    now = time.monotonic()
    for container_id, counters in cgroup_counters.cpu_by_container().items():
        _earlier[container_id] = (now, counters)


def sample_all(running: list[Container]) -> list[dict[str, Any] | str]:
    """Each container's two samples, in order; a string instead where one could not be read.
    From the cgroup counters where this machine sees them (the first one read earlier when
    `note_counters` did, at most EARLIER_MAX_AGE_S ago), else through the Engine API."""
    if not running:
        return []
    now = time.monotonic()
    first: list[tuple[float, dict[str, Any]] | None] = []
    for container in running:
        kept = _earlier.pop(str(container.id), None)
        if kept is not None and now - kept[0] <= EARLIER_MAX_AGE_S:
            first.append(kept)
        else:
            fresh = cgroup_counters.sample(container.attrs)
            first.append((now, fresh) if fresh is not None else None)
    read_at = [at for at, _ in filter(None, first)]
    if read_at:
        # The youngest first sample decides: every container is measured over the interval.
        time.sleep(max(0.0, CGROUP_INTERVAL_S - (time.monotonic() - max(read_at))))
    results: list[dict[str, Any] | str | None] = []
    for container, earlier in zip(running, first, strict=True):
        second = cgroup_counters.sample(container.attrs) if earlier else None
        if earlier and second and _total(second["cpu_stats"]) < _total(earlier[1]["cpu_stats"]):
            # Restarted since the first read: its new cgroup counts from zero. Measured afresh.
            time.sleep(CGROUP_INTERVAL_S)
            earlier, second = (now, second), cgroup_counters.sample(container.attrs)
        _keep(container, second)
        results.append(
            {"first": earlier[1], "second": second, "source": "cgroup"}
            if earlier and second
            else None
        )
    rest = [c for c, r in zip(running, results, strict=True) if r is None]
    if rest:
        with ThreadPoolExecutor(max_workers=min(MAX_PARALLEL, len(rest))) as pool:
            from_engine = iter(list(pool.map(_two_samples, rest)))
        results = [r if r is not None else next(from_engine) for r in results]
    return [r for r in results if r is not None]


def interval_s(samples: dict[str, Any]) -> float:
    """The time between the two samples, from the machine's CPU time they carry."""
    before, after = samples["first"]["cpu_stats"], samples["second"]["cpu_stats"]
    cpus = after.get("online_cpus") or 1
    system = (after.get("system_cpu_usage") or 0) - (before.get("system_cpu_usage") or 0)
    return max(0.0, system / cpus / 1e9)


def _keep(container: Container, counters: dict[str, Any] | None) -> None:
    now = time.monotonic()
    for key in [k for k, (at, _) in _earlier.items() if now - at > EARLIER_MAX_AGE_S]:
        del _earlier[key]  # containers gone since
    if counters is not None:
        _earlier[str(container.id)] = (now, counters)


def _two_samples(container: Container) -> dict[str, Any] | str:
    try:
        first = container.stats(stream=False, one_shot=True)
        time.sleep(MIN_INTERVAL_S)
        second = container.stats(stream=False, one_shot=True)
    except Exception as exc:  # a container gone meanwhile, a read timeout: that row only
        return f"{type(exc).__name__}: {exc}"
    return {"first": first, "second": second, "source": "engine"}


def cpu(samples: dict[str, Any]) -> tuple[float, int]:
    """CPU % as the docker CLI computes it (100 % is one whole CPU), and the CPUs online."""
    before, after = samples["first"]["cpu_stats"], samples["second"]["cpu_stats"]
    used = _total(after) - _total(before)
    system = (after.get("system_cpu_usage") or 0) - (before.get("system_cpu_usage") or 0)
    cpus = (
        after.get("online_cpus") or len(after.get("cpu_usage", {}).get("percpu_usage") or []) or 1
    )
    if used <= 0 or system <= 0:
        return 0.0, int(cpus)
    return used / system * cpus * 100.0, int(cpus)


def cpu_limit(attrs: dict[str, Any]) -> float | None:
    """The CPUs a container may use (`cpus:` is NanoCpus; `cpu_quota`/`cpu_period` the older
    form); None: no limit."""
    host = attrs.get("HostConfig") or {}
    if host.get("NanoCpus"):
        return float(host["NanoCpus"]) / 1e9
    quota, period = host.get("CpuQuota") or 0, host.get("CpuPeriod") or 100_000
    return quota / period if quota > 0 else None


def memory(samples: dict[str, Any], attrs: dict[str, Any]) -> tuple[int, int, bool]:
    """Memory used without the page cache the kernel may reclaim (as the docker CLI shows it),
    the limit, and whether that limit is the container's own (else the machine's)."""
    stats = samples["second"].get("memory_stats") or {}
    usage = int(stats.get("usage") or 0)
    detail = stats.get("stats") or {}
    # cgroup v1: total_inactive_file; cgroup v2: inactive_file.
    for key in ("total_inactive_file", "inactive_file"):
        if key in detail and detail[key] < usage:
            usage -= int(detail[key])
            break
    own = int((attrs.get("HostConfig") or {}).get("Memory") or 0)
    return usage, own or int(stats.get("limit") or 0), bool(own)


def pids(samples: dict[str, Any]) -> int | None:
    current = (samples["second"].get("pids_stats") or {}).get("current")
    return int(current) if current is not None else None


def _total(cpu_stats: dict[str, Any]) -> int:
    return int((cpu_stats.get("cpu_usage") or {}).get("total_usage") or 0)
