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


class NotRegularFile(OSError):
    """A path in the record that is a symlink, a FIFO, a device or a folder: never read."""


def read_regular(path: Path) -> bytes:
    """The bytes of the regular file at `path`. A symlink is not followed and a FIFO or device is
    not waited on (opening one without O_NONBLOCK would hang the reader until a writer came)."""
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
        return file.read()


_KINDS = {
    stat.S_IFIFO: "a FIFO",
    stat.S_IFDIR: "a folder",
    stat.S_IFSOCK: "a socket",
    stat.S_IFCHR: "a device",
    stat.S_IFBLK: "a device",
}


def _kind(mode: int) -> str:
    return _KINDS.get(stat.S_IFMT(mode), "not a file")
