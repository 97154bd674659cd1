"""Disk clean-up from runbook Scenario 3: delete logs older than 7 days and media/temp files
older than 30 days, under configured roots only.

Never `/`, a home folder or a folder holding one; never through a symlink (the walk and every
deletion go through open folder handles with O_NOFOLLOW, so a folder swapped for a symlink after
the plan is refused, not followed); never a hard-linked file; never a file newer than the limit or
changed since the plan.
"""

from __future__ import annotations

import contextlib
import errno
import fnmatch
import os
import pwd
import stat
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from irkit.actions.guard import Item, Outcome, Plan, act_on
from irkit.errors import ConfigError
from irkit.units import human_age, human_bytes

_LIMIT = 10_000  # files in one plan: a plan a person can still read is a short one
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW


def _homes() -> set[Path]:
    found = {Path(os.path.realpath(os.path.expanduser("~")))}
    with contextlib.suppress(OSError):
        found.update(Path(os.path.realpath(p.pw_dir)) for p in pwd.getpwall() if p.pw_dir)
    found.update(Path(os.path.realpath(p)) for p in ("/home", "/root"))
    return {h for h in found if h != Path("/nonexistent")}


def _refused_root(root: str) -> str | None:
    if not root.strip():
        return "an empty path"
    path = Path(root)
    if path.is_symlink():
        return "it is a symlink"
    real = Path(os.path.realpath(path))
    if real == Path("/"):
        return "it is /"
    homes = _homes()
    if real in homes:
        return "it is a home folder"
    for home in sorted(homes):
        if home != Path("/") and real in home.parents:
            return f"it holds the home folder {home}"
    if not real.is_dir():
        return "not a folder"
    return None


@contextlib.contextmanager
def _folder(root: str, parts: Sequence[str]) -> Iterator[int]:
    """An open handle on root/parts…, each step refusing a symlink."""
    fds = [os.open(root, _DIR_FLAGS)]
    try:
        for part in parts:
            fds.append(os.open(part, _DIR_FLAGS, dir_fd=fds[-1]))
        yield fds[-1]
    finally:
        for fd in reversed(fds):
            os.close(fd)


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
        if max_age_days <= 0:
            raise ConfigError("max_age_days must be positive")
        self.name = name
        self.roots = [str(r) for r in roots]
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
                refused.append((root, why))
                continue
            real = os.path.realpath(root)
            # fwalk never follows a symlinked folder, and stats through the folder's handle.
            for folder, _dirs, files, dir_fd in os.fwalk(real, follow_symlinks=False):
                for name in files:
                    if not fnmatch.fnmatch(name, self.pattern):
                        continue
                    try:
                        st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
                    except OSError:
                        continue  # gone meanwhile (rotated): nothing to plan
                    if not stat.S_ISREG(st.st_mode) or now - st.st_mtime < self.max_age_s:
                        continue
                    path = os.path.join(folder, name)
                    if st.st_nlink > 1:
                        refused.append((path, "hard-linked elsewhere: deleting frees nothing"))
                        continue
                    age = human_age(now - st.st_mtime)
                    items.append(
                        Item(
                            path,
                            f"{path} ({human_bytes(st.st_size)}, {age} old)",
                            {
                                "root": real,
                                "relative": os.path.relpath(path, real),
                                "size": st.st_size,
                                "mtime": st.st_mtime,
                                "inode": st.st_ino,
                                "device": st.st_dev,
                            },
                        )
                    )
                if len(items) >= _LIMIT:
                    refused.append((root, f"more than {_LIMIT} files: planned the first"))
                    break
        total = sum(int(i.details["size"]) for i in items)
        what = f"delete {len(items)} files, {human_bytes(total)} ({self.label})"
        return Plan(self.name, ", ".join(self.roots), what, tuple(items), tuple(refused))

    def act(self, plan: Plan) -> Outcome:
        def checked(item: Item) -> str | None:
            d = item.details
            *parents, name = Path(str(d["relative"])).parts
            try:
                with _folder(str(d["root"]), parents) as fd:
                    st = os.stat(name, dir_fd=fd, follow_symlinks=False)
                    if stat.S_ISLNK(st.st_mode):
                        return "it is a symlink now"
                    if (st.st_ino, st.st_dev, st.st_size, st.st_mtime) != (
                        d["inode"],
                        d["device"],
                        d["size"],
                        d["mtime"],
                    ):
                        return "changed since the plan"
                    # Through the same handle: what was checked is what is removed, even if a
                    # folder above is swapped now.
                    os.unlink(name, dir_fd=fd)
            except FileNotFoundError:
                return "already gone"
            except OSError as exc:
                # O_NOFOLLOW on a folder that is a symlink now: ENOTDIR or ELOOP, by platform.
                if exc.errno in (errno.ENOTDIR, errno.ELOOP):
                    return "a folder on its path was replaced (by a symlink or a file)"
                raise
            return None

        results: dict[str, str | None] = {}

        def still_matches(item: Item) -> str | None:
            results[item.key] = checked(item)
            return results[item.key]

        def deleted(item: Item) -> str:
            return f"deleted, {human_bytes(int(item.details['size']))} freed"

        done, skipped, failed = act_on(plan, still_matches, deleted)
        freed = sum(int(i.details["size"]) for i in plan.items if i.summary in dict(done))
        summary = f"{len(done)} files deleted, {human_bytes(freed)} freed"
        if skipped:
            summary += f"; {len(skipped)} left alone"
        return Outcome(self.name, plan.target, tuple(done), tuple(skipped), tuple(failed), summary)
