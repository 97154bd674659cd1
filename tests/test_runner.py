"""A run whose kernel dies or whose cell hangs still leaves its record, marked incomplete."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from irkit import runner
from irkit.result import Status


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
