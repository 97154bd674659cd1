"""The HTML copy is the same whether its exporter was warmed on a thread or not."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from irkit import htmlcopy


def report(path: Path) -> Path:
    nb = new_notebook(
        cells=[
            new_markdown_cell("## 2. PostgreSQL\n\nScenario 2 *Database Connection Pool*"),
            new_code_cell("report.show('postgres')", outputs=[
                new_output("display_data", data={"text/plain": "CRIT pool",
                                                 "text/html": "<p><b>CRIT</b> pool</p>"}),
            ]),
        ],
        metadata={"kernelspec": {"name": "python3", "display_name": "Python 3"}},
    )  # fmt: skip
    nbformat.write(nb, path)
    return path


def test_a_warmed_copy_is_the_copy(tmp_path: Path) -> None:
    path = report(tmp_path / "r.ipynb")
    cold = htmlcopy.write(path, exclude_input=True).read_text()
    htmlcopy.warm(exclude_input=True)
    assert True in htmlcopy._warming
    warmed = htmlcopy.write(path, exclude_input=True).read_text()
    assert True not in htmlcopy._warming  # used once
    assert warmed == cold
    assert "<b>CRIT</b> pool" in warmed
    assert "jp-mod-noInput" in warmed  # readers get no code


def test_a_failed_warm_up_leaves_a_cold_copy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken() -> None:
        raise RuntimeError("template missing")

    monkeypatch.setattr(htmlcopy, "_sample", broken)
    htmlcopy.warm()
    html = htmlcopy.write(report(tmp_path / "r.ipynb")).read_text()
    assert "jp-mod-noInput" not in html  # with its code: the exporter asked for, made cold
