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
    """A path the kit will not read; the message says why."""


class NotRegularFile(NotRead):
    """A symlink (where none is followed), a FIFO, a device or a folder: never read."""

    def __init__(self, message: str, kind: str) -> None:
        super().__init__(message)
        self.kind = kind


class TooLarge(NotRead):
    """A file larger than any the kit would write or a user would mean."""


def open_lock(path: Path) -> int:
    """A lock file's descriptor, to `flock`: created if missing, never a symlink and never
    waiting on a FIFO put in its place (NotRead, saying to remove it)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
    try:
        fd = os.open(path, flags, 0o644)
    except OSError as exc:
        # A FIFO with no reader (ENXIO) or a symlink (ELOOP) put in its place.
        raise NotRead(f"cannot use {path}: {exc.strerror}; remove it") from None
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        kind = kind_of(mode)
        raise NotRegularFile(f"{path} is {kind}, not a regular file: remove it", kind)
    return fd


def read_regular(path: Path, limit: int = RECORD_LIMIT, *, follow_symlinks: bool = False) -> bytes:
    """The bytes of the regular file at `path`, at most `limit` of them. A FIFO or device is not
    waited on (opening one without O_NONBLOCK would hang the reader until a writer came), and a
    symlink is followed only when asked (a file a user named; never in the record)."""
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
    try:
        fd = os.open(path, flags if follow_symlinks else flags | os.O_NOFOLLOW)
    except OSError:
        if not follow_symlinks and os.path.islink(path):
            raise NotRegularFile(f"{path.name} is a symlink (not followed)", "a symlink") from None
        raise
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            kind = kind_of(info.st_mode)
            raise NotRegularFile(f"{path.name} is not a regular file ({kind})", kind)
        if info.st_size > limit:
            raise TooLarge(_too_large(path, limit))
    except BaseException:
        os.close(fd)
        raise
    with os.fdopen(fd, "rb") as file:
        # One byte past the limit: a file that grows after the check is refused too.
        data = file.read(limit + 1)
    if len(data) > limit:
        raise TooLarge(_too_large(path, limit))
    return data


def _too_large(path: Path, limit: int) -> str:
    size = f"{limit >> 20} MiB" if limit >= 1 << 20 else f"{limit // 1024} KiB"
    return f"{path.name} is larger than {size} (not read)"


def kind_of(mode: int) -> str:
    """What a file that is not a regular one is, for a message."""
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISLNK(mode):
        return "a symlink"
    return "of another kind"
