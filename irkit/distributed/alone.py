"""One run of a kind at a time, across machines: an advisory lock on a file in the shared
reports folder, held for as long as the run goes on and let go when its process ends, however
it ends. On NFSv4 such a lock reaches every machine (and lapses with a lost one's lease)."""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

from irkit import safefiles
from irkit.errors import ConfigError

LOCK = ".running.lock"


@contextlib.contextmanager
def running_alone(folder: Path) -> Iterator[bool]:
    """True inside the block when this process holds the folder's run lock, False when another
    holds it (nothing waits)."""
    folder.mkdir(parents=True, exist_ok=True)
    try:
        fd = safefiles.open_lock(folder / LOCK)
    except safefiles.NotRead as exc:
        raise ConfigError(str(exc)) from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(fd)
