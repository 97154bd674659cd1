"""Disk clean-up from runbook Scenario 3: delete logs older than 7 days and media/temp files
older than 30 days, under configured roots only. Symlinks are never followed nor deleted; a root
that is `/` or a home folder is refused; a file changed since the plan is left alone."""

from __future__ import annotations

import fnmatch
import os
import stat
import time
from collections.abc import Sequence
from pathlib import Path

from irkit.actions.guard import Item, Outcome, Plan, act_on
from irkit.errors import ConfigError
from irkit.units import human_age, human_bytes

_LIMIT = 10_000  # files in one plan: a plan a person can still read is a short one


def _refused_root(root: Path) -> str | None:
    real = Path(os.path.realpath(root))
    homes = {Path(os.path.expanduser("~")).resolve(), Path("/home"), Path("/root")}
    if real == Path("/"):
        return "it is /"
    if real in homes or real.parent == Path("/home"):
        return "it is a home folder"
    if root.is_symlink():
        return "it is a symlink"
    if not root.is_dir():
        return "not a folder"
    return None


class OldFiles:
    """Files matching `pattern` older than `max_age_days` under each root."""

    def __init__(
        self,
        roots: Sequence[str],
        *,
        max_age_days: float,
        pattern: str = "*",
        label: str = "",
        name: str = "disk.cleanup",
    ) -> None:
        self.name = name
        if max_age_days <= 0:
            raise ConfigError("max_age_days must be positive")
        self.roots = [Path(r) for r in roots]
        self.max_age_s = max_age_days * 86400
        self.pattern = pattern
        self.label = label or f"{pattern} older than {max_age_days:g} days"

    def plan(self) -> Plan:
        if not self.roots:
            return Plan(self.name, "-", "no folders configured: nothing to do")
        now = time.time()
        items: list[Item] = []
        refused: list[tuple[str, str]] = []
        for root in self.roots:
            why = _refused_root(root)
            if why:
                refused.append((str(root), why))
                continue
            for folder, dirs, files in os.walk(root, followlinks=False):
                dirs[:] = [d for d in dirs if not os.path.islink(os.path.join(folder, d))]
                for name in files:
                    path = os.path.join(folder, name)
                    st = os.lstat(path)
                    if stat.S_ISLNK(st.st_mode) or not stat.S_ISREG(st.st_mode):
                        continue
                    if not fnmatch.fnmatch(name, self.pattern):
                        continue
                    age = now - st.st_mtime
                    if age < self.max_age_s:
                        continue
                    items.append(
                        Item(
                            path,
                            f"{path} ({human_bytes(st.st_size)}, {human_age(age)} old)",
                            {
                                "size": st.st_size,
                                "mtime": st.st_mtime,
                                "inode": st.st_ino,
                                "device": st.st_dev,
                            },
                        )
                    )
                    if len(items) >= _LIMIT:
                        refused.append((str(root), f"more than {_LIMIT} files: planned the first"))
                        break
        total = sum(int(i.details["size"]) for i in items)
        what = f"delete {len(items)} files, {human_bytes(total)} ({self.label})"
        return Plan(self.name, ", ".join(map(str, self.roots)), what, tuple(items), tuple(refused))

    def act(self, plan: Plan) -> Outcome:
        def still_matches(item: Item) -> str | None:
            try:
                st = os.lstat(item.key)
            except FileNotFoundError:
                return "already gone"
            d = item.details
            if stat.S_ISLNK(st.st_mode):
                return "it is a symlink now"
            if (st.st_ino, st.st_dev, st.st_size, st.st_mtime) != (
                d["inode"], d["device"], d["size"], d["mtime"]
            ):  # fmt: skip
                return "changed since the plan"
            return None

        def delete(item: Item) -> str:
            os.unlink(item.key)
            return f"deleted, {human_bytes(int(item.details['size']))} freed"

        done, skipped, failed = act_on(plan, still_matches, delete)
        freed = sum(int(i.details["size"]) for i in plan.items if i.summary in dict(done))
        summary = f"{len(done)} files deleted, {human_bytes(freed)} freed"
        if skipped:
            summary += f"; {len(skipped)} left alone"
        return Outcome(self.name, plan.target, tuple(done), tuple(skipped), tuple(failed), summary)
