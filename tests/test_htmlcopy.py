"""The HTML copy is the same whether its exporter was warmed on a thread or not."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from irkit import htmlcopy


@pytest.fixture(autouse=True)
def no_warm_up_left(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts without a warm-up an earlier one (or a CLI run) left behind."""
    monkeypatch.setattr(htmlcopy, "_warming", {})


def report(path: Path) -> Path:
    nb = new_notebook(
        cells=[
            new_markdown_cell("## 2. PostgreSQL\n\nScenario 2 *Database Connection Pool*"),
            new_code_cell(
                "report.show('postgres')",
                outputs=[
                    new_output(
                        "display_data",
                        data={"text/plain": "CRIT pool", "text/html": "<p><b>CRIT</b> pool</p>"},
                    ),
                ],
            ),
        ],
        metadata={"kernelspec": {"name": "python3", "display_name": "Python 3"}},
    )
    nbformat.write(nb, path)
    return path


def counting(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Record each exporter made (by its exclude_input)."""
    made: list[bool] = []
    real = htmlcopy._exporter

    def exporter(exclude_input: bool) -> Any:
        made.append(exclude_input)
        return real(exclude_input)

    monkeypatch.setattr(htmlcopy, "_exporter", exporter)
    return made


def test_a_warmed_copy_is_the_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = report(tmp_path / "r.ipynb")
    made = counting(monkeypatch)
    cold = htmlcopy.write(path, exclude_input=True).read_text()
    assert made == [True]
    htmlcopy.warm(exclude_input=True)
    warmed = htmlcopy.write(path, exclude_input=True).read_text()
    # The warm-up made the second exporter, and the copy used it rather than a third.
    assert made == [True, True]
    assert warmed == cold
    assert "<b>CRIT</b> pool" in warmed
    assert "jp-mod-noInput" in warmed  # readers get no code


def test_a_failed_warm_up_leaves_a_cold_copy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken() -> None:
        raise RuntimeError("template missing")

    monkeypatch.setattr(htmlcopy, "_sample", broken)
    made = counting(monkeypatch)
    htmlcopy.warm()
    html = htmlcopy.write(report(tmp_path / "r.ipynb")).read_text()
    assert made == [False, False]  # the failed warm-up's, then the copy's own
    assert "<b>CRIT</b> pool" in html
    assert "jp-mod-noInput" not in html  # with its code, as asked


def test_a_stuck_warm_up_is_not_waited_for(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import threading

    release = threading.Event()
    monkeypatch.setattr(htmlcopy, "_sample", release.wait)
    monkeypatch.setattr(htmlcopy, "_JOIN_S", 0.2)
    made = counting(monkeypatch)
    htmlcopy.warm()
    html = htmlcopy.write(report(tmp_path / "r.ipynb")).read_text()
    release.set()
    assert made == [False, False]
    assert "<b>CRIT</b> pool" in html
