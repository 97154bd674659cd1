"""Disk probes: space and inodes per path, and old files a clean-up could reclaim."""

from __future__ import annotations

import fnmatch
import os
import stat
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import psutil

from irkit.probes.contract import Finding, check_thresholds, grade, probe
from irkit.result import Result, Status
from irkit.targets import LocalHost
from irkit.units import count, human_bytes

# A walk of a huge tree must not hold up the notebook: past this, report what was seen so far.
WALK_LIMIT_FILES = 200_000
WALK_LIMIT_S = 10.0


def _disk_usage(r: Result) -> str:
    return (
        "Runbook Scenario 3, disk space full: rotate application logs "
        "(`find /app/logs -name '*.log' -mtime +7 -delete`), remove old media/temp files "
        "(`-mtime +30`), `docker system prune`; see the reclaimable-files check below."
    )


def _disk_old_files(r: Result) -> str:
    return (
        f"{r.evidence.get('files', 0)} old files ({r.evidence.get('human', '?')}) can go: the "
        "runbook's log rotation (>7 days) and temp clean-up (>30 days)."
    )


@probe(
    "disk.usage",
    measures="space and inodes of the filesystem holding each path",
    grades="{disk_warn_pct} / {disk_crit_pct}",
    target="host",
    thresholds={"paths": "disk_paths", "warn_pct": "disk_warn_pct", "crit_pct": "disk_crit_pct"},
    area="host",
    recheck=True,
    advice=_disk_usage,
)
def usage(
    host: LocalHost,
    *,
    paths: Sequence[str],
    warn_pct: float,
    crit_pct: float,
) -> Finding:
    """Used space and used inodes of the filesystem holding each path, as `df -h` and `df -i`."""
    check_thresholds(warn_pct, crit_pct)
    mounts = sorted((p.mountpoint for p in psutil.disk_partitions(all=True)), key=len, reverse=True)
    rows: list[dict[str, Any]] = []
    statuses = []
    for path in paths:
        try:
            du = psutil.disk_usage(path)
            vfs = os.statvfs(path)
        except OSError as exc:
            rows.append({"path": path, "error": exc.strerror or str(exc)})
            statuses.append(Status.UNKNOWN)
            continue
        inode_pct = 100.0 * (vfs.f_files - vfs.f_ffree) / vfs.f_files if vfs.f_files else 0.0
        real = os.path.realpath(path)
        mount = next((m for m in mounts if real == m or real.startswith(m.rstrip("/") + "/")), "")
        rows.append(
            {
                "path": path,
                "mount": mount,
                "used_pct": round(du.percent, 1),
                "used": du.used,
                "free": du.free,
                "total": du.total,
                "free_human": human_bytes(du.free),
                "inodes_used_pct": round(inode_pct, 1),
            }
        )
        statuses.append(grade(max(du.percent, inode_pct), warn_pct, crit_pct))
    status = Status.worst(statuses)
    measured = [r for r in rows if "error" not in r]
    parts = [
        f"{r['path']} {r['used_pct']:.0f}% used ({r['free_human']} free"
        + (f", inodes {r['inodes_used_pct']:.0f}%)" if r["inodes_used_pct"] >= warn_pct else ")")
        for r in measured
    ]
    parts += [f"{r['path']}: {r['error']}" for r in rows if "error" in r]
    evidence = {"rows": rows, "warn_pct": warn_pct, "crit_pct": crit_pct}
    return Finding(status, "; ".join(parts) or "no paths given", evidence)


@dataclass
class _Walk:
    files: int = 0
    bytes: int = 0
    seen: int = 0
    truncated: bool = False
    largest: list[dict[str, Any]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


@probe(
    "disk.old_files",
    measures=(
        "logs older than {disk_log_max_age_days} and temp files older than "
        "{disk_temp_max_age_days} that a clean-up would remove (symlinks not followed)"
    ),
    grades="informational",
    target="host",
    thresholds={
        "log_dirs": "disk_log_dirs",
        "log_pattern": "disk_log_pattern",
        "log_max_age_days": "disk_log_max_age_days",
        "temp_dirs": "disk_temp_dirs",
        "temp_max_age_days": "disk_temp_max_age_days",
    },
    area="host",
    advice=_disk_old_files,
    advice_when_ok=True,
)
def old_files(
    host: LocalHost,
    *,
    log_dirs: Sequence[str],
    log_pattern: str,
    log_max_age_days: float,
    temp_dirs: Sequence[str],
    temp_max_age_days: float,
) -> Finding:
    """Files the runbook's clean-up would delete: logs matching `log_pattern` older than
    `log_max_age_days`, anything in `temp_dirs` older than `temp_max_age_days`. Read-only: it walks
    without following symlinks and only counts."""
    walk = _Walk()
    deadline = time.monotonic() + WALK_LIMIT_S
    now = time.time()
    per_dir = []
    for roots, pattern, days in (
        (log_dirs, log_pattern, log_max_age_days),
        (temp_dirs, "*", temp_max_age_days),
    ):
        for root in roots:
            before = (walk.files, walk.bytes)
            _scan(root, pattern, now - days * 86400, walk, deadline)
            per_dir.append(
                {
                    "dir": root,
                    "older_than_days": days,
                    "pattern": pattern,
                    "files": walk.files - before[0],
                    "bytes": walk.bytes - before[1],
                }
            )
    walk.largest.sort(key=lambda r: -int(r["bytes"]))
    evidence: dict[str, Any] = {
        "files": walk.files,
        "bytes": walk.bytes,
        "human": human_bytes(walk.bytes),
        "dirs": per_dir,
        "rows": walk.largest[:20],
        "scanned": walk.seen,
        "truncated": walk.truncated,
        "problems": walk.problems,
    }
    if not per_dir:
        return Finding(Status.OK, "no log or temp directories configured", evidence)
    summary = (
        f"{count(walk.files, 'old file')}, {human_bytes(walk.bytes)} reclaimable "
        f"in {count(len(per_dir), 'directory', 'directories')}"
    )
    if walk.truncated:
        summary += f" (stopped after {walk.seen} files: at least this much)"
    if walk.problems:
        summary += f"; could not read: {'; '.join(walk.problems[:3])}"
        return Finding(Status.UNKNOWN, summary, evidence)
    return Finding(Status.OK, summary, evidence)


def _scan(root: str, pattern: str, cutoff: float, walk: _Walk, deadline: float) -> None:
    if not os.path.isdir(root):
        walk.problems.append(f"{root} is not a directory")
        return

    def on_error(err: OSError) -> None:
        walk.problems.append(f"{err.filename}: {err.strerror}")

    for dirpath, _dirs, filenames in os.walk(root, onerror=on_error, followlinks=False):
        for name in filenames:
            walk.seen += 1
            if walk.seen > WALK_LIMIT_FILES or time.monotonic() > deadline:
                walk.truncated = True
                return
            if not fnmatch.fnmatch(name, pattern):
                continue
            path = os.path.join(dirpath, name)
            try:
                st = os.lstat(path)
            except OSError:
                continue
            if not stat.S_ISREG(st.st_mode) or st.st_mtime >= cutoff:
                continue
            walk.files += 1
            walk.bytes += st.st_size
            walk.largest.append(
                {
                    "path": path,
                    "bytes": st.st_size,
                    "age_days": round((time.time() - st.st_mtime) / 86400, 1),
                }
            )
            if len(walk.largest) > 200:
                walk.largest.sort(key=lambda r: -int(r["bytes"]))
                del walk.largest[20:]
