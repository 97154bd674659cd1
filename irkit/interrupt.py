"""SIGTERM and Ctrl-C stop a run: at once, keeping the record, and without breaking its event loop.

A scheduler stops a run with SIGTERM; a responder with Ctrl-C. Either unwinds like a
KeyboardInterrupt, so the record written so far is kept under its name. But while papermill's
event loop drives the kernel, a KeyboardInterrupt raised from the signal handler lands anywhere in
asyncio's and zmq's own code: the run then ended as `InvalidStateError` instead of interrupted, or
left its kernel running with its connection file behind. There the signal cancels the loop's
tasks instead, the run stops its kernel, and `irkit.engine` raises the KeyboardInterrupt once the
record is complete. Further signals are ignored meanwhile: a few seconds at most.
"""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path
from types import FrameType

_requested: str | None = None


class Stopped(KeyboardInterrupt):
    """A run stopped (SIGTERM, Ctrl-C) after its record was kept: where the record is, for the
    command to say."""

    def __init__(self, record: Path) -> None:
        super().__init__(str(record))
        self.record = record


def install() -> None:
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, _stop)


def requested() -> str | None:
    """The stop signal that arrived (its name), if one did."""
    return _requested


def _stop(signum: int, frame: FrameType | None) -> None:
    global _requested
    _requested = signal.Signals(signum).name
    # The stop is under way: the kernel is being stopped and the record written, which a second
    # Ctrl-C would break off. Ignored rather than caught, it is ignored also as Python exits,
    # when it would otherwise kill the process.
    for other in (signal.SIGTERM, signal.SIGINT):
        signal.signal(other, signal.SIG_IGN)
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        raise KeyboardInterrupt from None
    # Thread-safe: it also wakes the loop out of its wait for the kernel.
    loop.call_soon_threadsafe(_cancel_all, loop)


def _cancel_all(loop: asyncio.AbstractEventLoop) -> None:
    for task in asyncio.all_tasks(loop):
        task.cancel()
