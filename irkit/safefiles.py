"""The record's files on disk, as the kit touches them: it reads only regular files (never through
a symlink, never waiting on a FIFO or a device someone left in the record's place) and creates
only new files (never writing through a symlink or into someone else's file).
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path


def write_new(path: Path, data: bytes) -> None:
    """Create `path` with `data`: never through a symlink, never into a file that was already
    there (someone else's). A failed write removes the file it started."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
    except BaseException:
        with contextlib.suppress(OSError):
            path.unlink()
        raise


# No notebook or journal the kit writes comes near this (a month's health report with its charts
# is a few MB); a file over it was put there by something else, and reading it whole could
# exhaust the memory of every command that reads the record.
RECORD_LIMIT = 256 << 20


class NotRead(OSError):
    """A path in the record that the kit will not read; the message says why."""


class NotRegularFile(NotRead):
    """A path in the record that is a symlink, a FIFO, a device or a folder: never read."""


class TooLarge(NotRead):
    """A file in the record larger than any the kit writes."""


def read_regular(path: Path, limit: int = RECORD_LIMIT) -> bytes:
    """The bytes of the regular file at `path`, at most `limit` of them. A symlink is not
    followed and a FIFO or device is not waited on (opening one without O_NONBLOCK would hang
    the reader until a writer came)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        if os.path.islink(path):
            raise NotRegularFile(f"{path.name} is a symlink (not followed)") from None
        raise
    with os.fdopen(fd, "rb") as file:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise NotRegularFile(f"{path.name} is not a regular file ({_kind(mode)})")
        # Read one byte past the limit: a file that grows after the check is refused too.
        data = file.read(limit + 1)
        if len(data) > limit:
            raise TooLarge(f"{path.name} is larger than {limit >> 20} MiB (not read)")
        return data


_KINDS = {
    stat.S_IFIFO: "a FIFO",
    stat.S_IFDIR: "a folder",
    stat.S_IFSOCK: "a socket",
    stat.S_IFCHR: "a device",
    stat.S_IFBLK: "a device",
}


def _kind(mode: int) -> str:
    return _KINDS.get(stat.S_IFMT(mode), "not a file")
