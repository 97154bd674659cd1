"""One run of a kind at a time, across machines: an advisory lock on a file in the shared
reports folder, held for as long as the run goes on and let go when its process ends, however
it ends. On NFSv4 such a lock reaches every machine (and lapses with a lost one's lease)."""

from __future__ import annotations

import contextlib
import fcntl
import os
import stat
from collections.abc import Iterator
from pathlib import Path

from irkit.errors import ConfigError

LOCK = ".running.lock"


@contextlib.contextmanager
def running_alone(folder: Path) -> Iterator[bool]:
    """True inside the block when this process holds the folder's run lock, False when another
    holds it (nothing waits)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / LOCK
    flags = os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
    try:
        fd = os.open(path, flags, 0o644)
    except OSError as exc:
        raise ConfigError(f"cannot use {path}: {exc.strerror}; remove it") from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise ConfigError(f"{path} is not a regular file: remove it")
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(fd)
