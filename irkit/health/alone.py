"""One health report per environment at a time, across machines and schedulers (cron, a timer,
Celery, Airflow, a person): an advisory lock on a file in the environment's history folder, held
for as long as the report goes on and let go when its process ends, however it ends. Two at once
would each compare with the same previous report and post the same notice. On NFSv4 such a lock
reaches every machine (and lapses with a lost one's lease)."""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

from irkit import safefiles
from irkit.errors import ConfigError

LOCK = ".running.lock"
# What `irkit health` prints when another report of the environment holds the lock (and exits 3:
# this run judged nothing); a task reads it as its outcome's status.
SKIPPED = "SKIPPED"


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
