"""A run whose kernel dies or whose cell hangs still leaves its record, marked incomplete."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from irkit import runner
from irkit.result import Status
from tests.helpers import ROOT


def notebook(tmp_path: Path, *sources: str) -> Path:
    nb = new_notebook(cells=[new_code_cell(s) for s in sources])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3"}
    path = tmp_path / "nb.ipynb"
    nbformat.write(nb, path)
    return path


def plan(tmp_path: Path, path: Path) -> runner.Plan:
    return runner.Plan("test", path, {}, tmp_path / "out" / "run.ipynb", exact_output=False)


def test_a_dead_kernel_keeps_the_record(tmp_path: Path) -> None:
    path = notebook(tmp_path, "x = 1", "import os; os._exit(1)", "y = 2")
    (tmp_path / "out").mkdir()
    record = runner.execute(plan(tmp_path, path))
    assert record.path.exists()
    assert not record.complete
    assert "DeadKernelError" in record.error
    assert record.status is Status.UNKNOWN


def test_a_hung_cell_is_stopped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runner, "CELL_TIMEOUT_S", 2)
    path = notebook(tmp_path, "import time; time.sleep(60)")
    (tmp_path / "out").mkdir()
    record = runner.execute(plan(tmp_path, path))
    assert not record.complete
    assert record.path.exists()
    assert record.status is Status.UNKNOWN


def test_kernel_sockets_stay_within_the_unix_path_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    import tempfile

    from irkit import engine

    monkeypatch.setattr(tempfile, "tempdir", "/tmp")
    assert engine._socket_parent() is None  # the temp dir itself
    monkeypatch.setattr(tempfile, "tempdir", "/tmp/" + "d" * 90)
    assert engine._socket_parent() == "/tmp"
    manager = engine.KernelManager()
    assert manager.transport == "ipc"
    try:
        assert len(manager.ip) + len("-65535") <= 107
        assert os.stat(os.path.dirname(manager.ip)).st_mode & 0o077 == 0  # private
    finally:
        os.rmdir(os.path.dirname(manager.ip))


def test_a_sections_module_is_loaded_as_the_kernel_starts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(runner.PRELOAD, "test", "irkit.units")
    path = notebook(
        tmp_path,
        "import sys\n"
        "loaded = 'irkit.units' in sys.modules\n"
        "leftover = [n for n in ('importlib', 'irkit') if n in globals()]\n"
        "print(loaded, leftover)",
    )
    (tmp_path / "out").mkdir()
    record = runner.execute(plan(tmp_path, path))
    assert record.complete, record.error
    out = nbformat.read(record.path, as_version=4).cells[0].outputs
    # Loaded before the first cell, and nothing left in the notebook's namespace.
    assert out[0]["text"] == "True []\n"


def test_every_preloaded_module_exists() -> None:
    # A kernel that cannot import it only logs a warning the run hides: check the names here.
    import importlib.util

    for section, module in runner.PRELOAD.items():
        assert (ROOT / "notebooks" / f"{section}.ipynb").exists(), section
        assert importlib.util.find_spec(module.partition(":")[0]) is not None, module


def test_a_kernel_that_will_not_exit_is_stopped_after_a_second(tmp_path: Path) -> None:
    # ipykernel's control thread can hang in shutdown (positron#7142); an exit handler that
    # never returns stands in for it. jupyter_client's default waits 2.5 s before SIGTERM.
    marker = tmp_path / "exited"
    path = notebook(
        tmp_path,
        f"import atexit, pathlib, time\natexit.register(lambda: time.sleep(30) or "
        f"pathlib.Path({str(marker)!r}).touch())",
    )
    (tmp_path / "out").mkdir()
    record = runner.execute(plan(tmp_path, path))
    returned = datetime.now(UTC)
    assert record.complete, record.error
    cell = nbformat.read(record.path, as_version=4).cells[0]
    ended = datetime.fromisoformat(cell.metadata["papermill"]["end_time"])
    assert (returned - ended).total_seconds() < 2.4
    assert not marker.exists()
