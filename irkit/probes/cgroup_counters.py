"""A running container's CPU and memory counters read from its cgroup, on the Docker host: the
files the engine's own statistics are made of, read at once instead of at the engine's next
once-a-second round. Shaped like the Engine API's stats, so that one computation serves both.

The container's cgroup is found through its main process (`/proc/PID/cgroup`), which works for
the cgroupfs and systemd drivers and for cgroup v1 and v2 alike. It is used only when that path
names the container's id: in another pid namespace (irkit in a container of its own) the pid is
someone else's, and None sends the caller to the Engine API."""

from __future__ import annotations

import os
import re
import time
from pathlib import Path
from typing import Any

CGROUP_ROOT = Path("/sys/fs/cgroup")


def sample(attrs: dict[str, Any]) -> dict[str, Any] | None:
    """The container's counters now, in the Engine API's shape; None when not readable here."""
    pid = int((attrs.get("State") or {}).get("Pid") or 0)
    container_id = str(attrs.get("Id") or "")
    if pid <= 0 or not container_id:
        return None
    try:
        paths = _paths(pid)
        if not any(container_id in path for path in paths.values()):
            return None
        if "" in paths and (CGROUP_ROOT / "cgroup.controllers").exists():
            return _v2(CGROUP_ROOT / paths[""].lstrip("/"))
        return _v1(paths)
    except (OSError, ValueError, KeyError):
        return None


# Where the engine's two cgroup drivers put a container's cgroup (cgroupfs, systemd), under the
# cgroup v2 root or v1's CPU accounting hierarchy. A custom --cgroup-parent is not among them:
# those containers are read through their process alone (`sample`).
_CONTAINER_DIRS = ("docker/*", "system.slice/docker-*.scope")
_V1_CPU = ("cpuacct", "cpu,cpuacct", "cpuacct,cpu")
_ID = re.compile(r"(?:^|docker-)([0-9a-f]{64})(?:\.scope)?$")


def cpu_by_container() -> dict[str, dict[str, Any]]:
    """Container id → its CPU counter now, in the Engine API's shape, for every container this
    machine's cgroups show where the engine puts them by default: read without asking the engine
    which containers there are (a first sample taken before the Engine API has answered)."""
    found: dict[str, dict[str, Any]] = {}
    v2 = (CGROUP_ROOT / "cgroup.controllers").exists()
    roots = [CGROUP_ROOT] if v2 else [CGROUP_ROOT / name for name in _V1_CPU]
    for root in roots:
        for pattern in _CONTAINER_DIRS:
            for folder in root.glob(pattern):
                match = _ID.search(folder.name)
                if not match or match.group(1) in found:
                    continue
                try:
                    usage = _cpu_ns_v2(folder) if v2 else _cpu_ns_v1(folder)
                except (OSError, ValueError, KeyError):
                    continue
                found[match.group(1)] = _shaped(usage, 0, {}, None)
    return found


def _paths(pid: int) -> dict[str, str]:
    """Controller → path, from lines such as `4:memory:/docker/ID` and `0::/system.slice/…`."""
    paths: dict[str, str] = {}
    for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        for controller in controllers.split(","):
            paths[controller] = path
    return paths


def _v1(paths: dict[str, str]) -> dict[str, Any]:
    def file(controller: str, name: str) -> Path:
        relative = paths[controller].lstrip("/")
        for folder in (controller, *_V1_CPU):
            candidate = CGROUP_ROOT / folder / relative / name
            if candidate.exists():
                return candidate
        raise FileNotFoundError(name)

    usage = _cpu_ns_v1(file("cpuacct", "cpuacct.usage").parent)
    memory = int(file("memory", "memory.usage_in_bytes").read_text())
    stat = _stat(file("memory", "memory.stat"))
    return _shaped(usage, memory, {"total_inactive_file": stat.get("total_inactive_file", 0)},
                   _pids(lambda: file("pids", "pids.current")))  # fmt: skip


def _cpu_ns_v1(folder: Path) -> int:
    return int((folder / "cpuacct.usage").read_text())


def _cpu_ns_v2(folder: Path) -> int:
    return _stat(folder / "cpu.stat")["usage_usec"] * 1000


def _v2(folder: Path) -> dict[str, Any]:
    usage = _cpu_ns_v2(folder)
    memory = int((folder / "memory.current").read_text())
    stat = _stat(folder / "memory.stat")
    return _shaped(usage, memory, {"inactive_file": stat.get("inactive_file", 0)},
                   _pids(lambda: folder / "pids.current"))  # fmt: skip


def _shaped(cpu_ns: int, memory: int, detail: dict[str, int], pids: int | None) -> dict[str, Any]:
    cpus = os.cpu_count() or 1
    # The Engine API's system usage is the CPU time of the whole machine: wall time times CPUs, of
    # which only differences between two samples are ever used.
    system = time.monotonic_ns() * cpus
    return {
        "cpu_stats": {
            "cpu_usage": {"total_usage": cpu_ns},
            "system_cpu_usage": system,
            "online_cpus": cpus,
        },
        "memory_stats": {"usage": memory, "stats": detail},
        "pids_stats": {"current": pids} if pids is not None else {},
    }


def _stat(path: Path) -> dict[str, int]:
    values: dict[str, int] = {}
    for line in path.read_text().splitlines():
        key, _, value = line.partition(" ")
        if value.strip().isdigit():
            values[key] = int(value)
    return values


def _pids(path: Any) -> int | None:
    try:
        return int(path().read_text())
    except (OSError, ValueError):
        return None
