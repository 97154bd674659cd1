"""The papermill engine `irkit run` uses: papermill's own, writing the record less often.

papermill writes the whole output notebook at the start and at the end of every cell, markdown
cells included; on a short notebook those writes are a fifth of the run. Here the record is written
when a code cell completes (at most every half second), and at the start and end of the run: a run
whose kernel dies mid-cell keeps every output before it, and the cell it stopped in says why
(`irkit.records.read` reads that as incomplete).

A run prints nothing of its kernel's: once the record is in this process, the kernel is stopped at
once (SIGKILL to its process group), not asked to shut down. Asked, ipykernel 7 closes its
sockets while its threads still use them: a zmq traceback or a libzmq assertion on stderr now and
then (ipykernel#1518), or a control thread that never exits (positron#7142); and jupyter_client
interrupts it first, which it logs as "KeyboardInterrupt caught in kernel." about one run in three.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from jupyter_client.manager import AsyncKernelManager
from nbformat.v4 import new_output
from papermill.clientwrap import PapermillNotebookClient
from papermill.engines import NBClientEngine, NotebookExecutionManager, papermill_engines
from papermill.utils import merge_kwargs, remove_args
from traitlets import default

from irkit import interrupt, safefiles
from irkit.secrets import redact

NAME = "irkit"
# A notebook of many quick cells is written at most this often while it runs; the end of the run
# (normal, raised, interrupted or stopped by SIGTERM) always writes everything.
WRITE_EVERY_S = 0.5
# nbclient's log: what it says there (a dead kernel, a cell past its timeout, a kernel that did not
# start) is raised as well, and the run reports it in one line; on stderr it was a second one.
# Records still reach handlers an application configures.
_CLIENT_LOG = logging.getLogger("irkit.engine.client")
_CLIENT_LOG.addHandler(logging.NullHandler())


class _Manager(NotebookExecutionManager):  # type: ignore[misc]
    output_path: str | None
    # Why the last save failed (a full or read-only disk); None once a save succeeds.
    unsaved: OSError | None = None

    # The cell last started: where a run cut short stopped.
    _started: int | None = None

    def cell_start(self, cell: Any, cell_index: Any = None, **kwargs: Any) -> None:
        self._started = cell_index
        self._without_writing(super().cell_start, cell, cell_index, **kwargs)

    _last_write = 0.0

    def cell_complete(self, cell: Any, cell_index: Any = None, **kwargs: Any) -> None:
        now = time.monotonic()
        if cell.get("cell_type") == "code" and now - self._last_write >= WRITE_EVERY_S:
            super().cell_complete(cell, cell_index, **kwargs)
            self._last_write = time.monotonic()
        else:
            self._without_writing(super().cell_complete, cell, cell_index, **kwargs)

    # Set once papermill's pass over the cells ended by itself (every cell ran, or one raised and
    # it stopped there): a run stopped later, as its kernel shut down, loses nothing.
    cells_finished = False

    def stopped(self, exc: BaseException) -> None:
        """Mark the cell the run stopped in as failed, with why as its error: papermill would mark
        it and every cell after it completed, and the record would read as a whole run."""
        if self.cells_finished:
            return
        cells = self.nb.cells
        first = self._started or 0
        index = next((i for i in range(first, len(cells)) if cells[i].cell_type == "code"), None)
        if index is None:
            return
        where = "while this cell ran" if index == self._started else "before this cell ran"
        signame = interrupt.requested()
        if signame or isinstance(exc, KeyboardInterrupt):
            ename, evalue = "KeyboardInterrupt", f"stopped by {signame or 'an interrupt'} {where}"
        else:  # the kernel died or did not start, or the cell outran its timeout
            ename, evalue = type(exc).__name__, redact((str(exc).strip().splitlines() or [""])[0])
        self.cell_exception(cells[index], cell_index=index)
        error = new_output("error", ename=ename, evalue=evalue, traceback=[f"{ename}: {evalue}"])
        cells[index].outputs.append(error)

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
        except BaseException as exc:
            nb_man.stopped(exc)
            raise
        finally:
            nb_man.cleanup_pbar()
            nb_man.notebook_complete()
            if interrupt.requested():
                # Cancelled by SIGTERM or Ctrl-C (nbclient reads a cancelled cell as a dead
                # kernel): now that the record is complete, say what happened.
                raise KeyboardInterrupt
        return nb_man.nb

    @classmethod
    def execute_managed_notebook(
        cls,
        nb_man: Any,
        kernel_name: str,
        log_output: bool = False,
        stdout_file: Any = None,
        stderr_file: Any = None,
        start_timeout: int = 60,
        execution_timeout: int | None = None,
        **kwargs: Any,
    ) -> Any:
        # papermill's NBClientEngine.execute_managed_notebook, with the client below.
        on_output: OnOutput | None = kwargs.pop("irkit_on_output", None)
        kwargs = remove_args(["input_path"], **kwargs)
        safe_kwargs = remove_args(["timeout", "startup_timeout"], **kwargs)
        final_kwargs = merge_kwargs(
            safe_kwargs,
            timeout=execution_timeout if execution_timeout else kwargs.get("timeout"),
            startup_timeout=start_timeout,
            kernel_name=kernel_name,
            log=_CLIENT_LOG,
            log_output=log_output,
            stdout_file=stdout_file,
            stderr_file=stderr_file,
            shutdown_kernel="immediate",  # see the module's docstring
        )
        client = _Client(nb_man, **final_kwargs)
        client.on_output = on_output
        return client.execute()


# Called with each output as the kernel sends it (a notebook output: its "output_type", "data",
# "metadata"), for a caller to show as the run goes; the record is written as before.
OnOutput = Callable[[Mapping[str, Any]], object]


class _Client(PapermillNotebookClient):  # type: ignore[misc]
    km: Any
    nb_man: _Manager
    on_output: OnOutput | None = None

    def output(
        self, outs: list[Any], msg: dict[str, Any], display_id: str | None, cell_index: int
    ) -> Any:
        out = super().output(outs, msg, display_id, cell_index)
        if out is not None and self.on_output is not None:
            try:
                self.on_output(out)
            except Exception as exc:  # a terminal that went away must not stop the record
                _CLIENT_LOG.warning("could not show an output as it came: %s", exc)
                self.on_output = None
        return out

    def papermill_execute_cells(self) -> None:
        super().papermill_execute_cells()
        self.nb_man.cells_finished = True

    @contextlib.contextmanager
    def setup_kernel(self, **kwargs: Any) -> Iterator[None]:
        if self.km is None:
            self.km = self.create_kernel_manager()
        km = self.km
        try:
            with super().setup_kernel(**kwargs):
                yield
        except BaseException:
            if km.has_kernel:
                # Stopped while the kernel started (or was being stopped): nbclient stops it after
                # an Exception only, and a cancelled start left it running for seconds, its
                # connection file (with the key to its sockets) in the temp dir.
                self.km = km
                self._cleanup_kernel()
            raise


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

    async def _async_interrupt_kernel(self) -> None:
        # jupyter_client interrupts a kernel before it stops it, even at once, to stop a running
        # cell: there is none to stop once the record is in, and the interrupt lands in whatever
        # the kernel does then (see the module's docstring).
        if self.shutting_down:
            return
        await super()._async_interrupt_kernel()

    async def _async_wait(self, pollinterval: float = 0.1) -> None:
        # A killed kernel is gone within milliseconds; looking every 0.1 s added most of a look
        # to every run.
        await super()._async_wait(min(pollinterval, 0.01))

    async def _async_cleanup_resources(self, restart: bool = False) -> None:
        await super()._async_cleanup_resources(restart=restart)
        if self.transport == "ipc" and not restart:
            # Not empty or gone: a stray socket folder in the temp dir harms nothing.
            with contextlib.suppress(OSError):
                os.rmdir(os.path.dirname(self.ip))

    # nbclient calls this one itself after a kernel died on its own; jupyter_client binds it to
    # its own method, which left the socket folder behind.
    cleanup_resources = _async_cleanup_resources


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
