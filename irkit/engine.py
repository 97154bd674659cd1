"""The papermill engine `irkit run` uses: papermill's own, writing the record less often.

papermill writes the whole output notebook at the start and at the end of every cell, markdown
cells included; on a short notebook those writes are a fifth of the run. Here the record is written
when a code cell completes (at most every half second), and at the start and end of the run: a run
whose kernel dies mid-cell keeps every output before it, and its unfinished cells stay marked
pending (`irkit.reports.read` reads that as incomplete).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from jupyter_client.manager import AsyncKernelManager
from papermill.engines import NBClientEngine, NotebookExecutionManager, papermill_engines
from traitlets import default

from irkit import safefiles

NAME = "irkit"
# A notebook of many quick cells is written at most this often while it runs; the end of the run
# (normal, raised, interrupted or stopped by SIGTERM) always writes everything.
WRITE_EVERY_S = 0.5


class _Manager(NotebookExecutionManager):  # type: ignore[misc]
    output_path: str | None
    # Why the last save failed (a full or read-only disk); None once a save succeeds.
    unsaved: OSError | None = None

    def cell_start(self, cell: Any, cell_index: Any = None, **kwargs: Any) -> None:
        self._without_writing(super().cell_start, cell, cell_index, **kwargs)

    _last_write = 0.0

    def cell_complete(self, cell: Any, cell_index: Any = None, **kwargs: Any) -> None:
        now = time.monotonic()
        if cell.get("cell_type") == "code" and now - self._last_write >= WRITE_EVERY_S:
            super().cell_complete(cell, cell_index, **kwargs)
            self._last_write = time.monotonic()
        else:
            self._without_writing(super().cell_complete, cell, cell_index, **kwargs)

    def save(self, **kwargs: Any) -> None:
        # Written beside, then renamed over: a run killed mid-write (SIGKILL) still leaves a
        # whole notebook, the last one saved, never half a file.
        path = self.output_path
        if path and "://" not in path:
            import nbformat

            tmp = f"{path}.writing"
            try:
                # Created afresh: a file or symlink left under this name is not written through.
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp)
                safefiles.write_new(Path(tmp), nbformat.writes(self.nb).encode())
                os.replace(tmp, path)
            except OSError as exc:
                # The run goes on in memory, so its verdicts can still be shown (irkit.runner
                # says the record was not written); no half-written file is left behind.
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
                self.unsaved = exc
                return
            self.unsaved = None
            self.last_save_time = self.now()
            return
        super().save(**kwargs)

    def _without_writing(self, step: Callable[..., None], *args: Any, **kwargs: Any) -> None:
        output_path: str | None = self.output_path
        self.output_path = None  # save() writes only when it has a path
        try:
            step(*args, **kwargs)
        finally:
            self.output_path = output_path


class Engine(NBClientEngine):  # type: ignore[misc]
    @classmethod
    def execute_notebook(
        cls,
        nb: Any,
        kernel_name: str,
        output_path: str | None = None,
        progress_bar: bool = True,
        log_output: bool = False,
        autosave_cell_every: int = 30,
        **kwargs: Any,
    ) -> Any:
        # papermill's Engine.execute_notebook, with the manager above, handed to the caller
        # (the notebook as run, even when it could not be written).
        kept: list[_Manager] | None = kwargs.pop("irkit_kept", None)
        nb_man = _Manager(
            nb,
            output_path=output_path,
            progress_bar=progress_bar,
            log_output=log_output,
            autosave_cell_every=autosave_cell_every,
        )
        if kept is not None:
            kept.append(nb_man)
        nb_man.notebook_start()
        try:
            cls.execute_managed_notebook(nb_man, kernel_name, log_output=log_output, **kwargs)
        finally:
            nb_man.cleanup_pbar()
            nb_man.notebook_complete()
        return nb_man.nb


class KernelManager(AsyncKernelManager):
    """The kernel talks to the run over Unix sockets in a folder of its own, not loopback TCP.

    With TCP, the client picks free ports and closes them before the kernel binds them; a second
    run starting at the same moment can take one, and that kernel dies before its first cell
    (papermill#511, jupyter_client#154): two scheduled reports at once must both run. A socket
    folder of mode 0700 also keeps other local users off the kernel."""

    @default("transport")
    def _transport_default(self) -> str:
        return "ipc"

    @default("ip")
    def _ip_default(self) -> str:
        if self.transport != "ipc":
            return str(super()._ip_default())
        return os.path.join(tempfile.mkdtemp(prefix="irkit-kernel-", dir=_socket_parent()), "k")

    @default("shutdown_wait_time")
    def _shutdown_wait_time_default(self) -> float:
        # The record is in this process's memory before the kernel is asked to stop, and written
        # whatever the kernel does then. ipykernel's control thread can hang in shutdown, waiting
        # on an output thread already stopped (positron#7142; here about one run in ten): such a
        # kernel gets SIGTERM after 1 s and SIGKILL after 2 s, not after jupyter_client's 2.5 s
        # and 5 s.
        return 2.0

    async def _async_finish_shutdown(
        self, waittime: float | None = None, pollinterval: float = 0.1, restart: bool = False
    ) -> None:
        # A kernel exits in 0.1-0.3 s; looking every 0.1 s wasted half a look on every run.
        await super()._async_finish_shutdown(waittime, min(pollinterval, 0.02), restart)

    async def _async_cleanup_resources(self, restart: bool = False) -> None:
        await super()._async_cleanup_resources(restart=restart)
        if self.transport == "ipc" and not restart:
            # Not empty or gone: a stray socket folder in the temp dir harms nothing.
            with contextlib.suppress(OSError):
                os.rmdir(os.path.dirname(self.ip))


# A Unix socket's path has room for 107 bytes; the kernel's are "<folder>/k-<port>".
_SOCKET_PATH_MAX = 107
_SOCKET_NAME_ROOM = len("/irkit-kernel-XXXXXXXX/k-65535")


def _socket_parent() -> str | None:
    """The temp dir, unless its path is too long for the sockets (a deep TMPDIR): then /tmp."""
    if len(tempfile.gettempdir()) + _SOCKET_NAME_ROOM <= _SOCKET_PATH_MAX:
        return None
    return "/tmp"  # noqa: S108  (a private mkdtemp folder of mode 0700 inside it)


def register() -> str:
    papermill_engines.register(NAME, Engine)
    return NAME
