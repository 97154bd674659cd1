"""Host drills: Scenario 3 (disk full), the High CPU alert and Scenario 1 (high memory)."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
from pathlib import Path

from irkit.drills import Drill, Setting, State, agent
from irkit.errors import SandboxError
from irkit.sandbox.stack import Stack

DISK_SIZE = "32m"
FILL_FILE = "drill-fill.bin"


def _fill_disk(stack: Stack, state: State) -> None:
    """A small filesystem mounted on the app's uploads folder, filled to 97 %: what a volume
    full of media and logs looks like from the inside."""
    media = stack.media_dir
    media.mkdir(parents=True, exist_ok=True)
    _run(["mount", "-t", "tmpfs", "-o", f"size={DISK_SIZE},mode=0755", "irkit-drill", str(media)])
    state["mounted"] = str(media)
    total = shutil.disk_usage(media).total
    with (media / FILL_FILE).open("wb") as f:
        block = b"\0" * (1 << 20)
        for _ in range(int(total * 0.97) >> 20):
            f.write(block)


def _free_disk(stack: Stack, state: State) -> None:
    mounted = state.get("mounted")
    if not mounted:
        return
    with contextlib.suppress(FileNotFoundError):
        (Path(mounted) / FILL_FILE).unlink()
    # Lazy: a process with a file open below it must not keep the drill from ending.
    _run(["umount", "--lazy", mounted])


def _run(args: list[str]) -> None:
    done = subprocess.run(args, capture_output=True, text=True, check=False, timeout=30)
    if done.returncode != 0:
        raise SandboxError(f"{' '.join(args)} failed: {done.stderr.strip()}")


DRILLS = [
    Drill(
        "disk-full",
        "Scenario 3: Disk Space Full",
        "disk",
        "disk.usage above 90 % on the uploads filesystem; the health check's Storage fails",
        _fill_disk,
        _free_disk,
        needs_root=True,
        conflicts=("health-fail",),
    ),
    Drill(
        "high-cpu",
        "Alert Triage: High CPU Alert (>80% for 5 min)",
        "disk",
        "host.cpu above 95 % once the burn fills the window (host_window_min; node_exporter's "
        "rate, else the load average), the drill's busy processes at the top of the list",
        *agent.held("high-cpu", "burn-cpu", max_s=1800),
        lingers="host.cpu judges over host_window_min (5 min): it stays high that long after stop",
    ),
    Drill(
        "high-memory",
        "Scenario 1: High Memory Usage",
        "disk",
        "host.memory below 10 % available (averaged over host_window_min through node_exporter), "
        "the drill's process largest by RSS",
        *agent.held("high-memory", "hold-memory", max_s=1800),
        lingers="through node_exporter, host.memory averages over host_window_min (5 min)",
        settings=(
            Setting(
                "target_available_pct",
                7.0,
                1.0,
                95.0,
                "the % of the machine's memory left available (the runbook's CRIT is below 10)",
            ),
        ),
    ),
]
