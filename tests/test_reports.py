"""Records: written whole, never overwritten, and read back even when damaged."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_notebook, new_output

from irkit import records
from irkit.result import RESULT_MIME, Status


def partial(folder: Path, text: str) -> Path:
    tmp = folder / f".{text}.partial.ipynb"
    tmp.write_text(text)
    return tmp


def test_same_name_twice_gets_a_second_name(tmp_path: Path) -> None:
    wanted = tmp_path / "20261127T143500Z-db.ipynb"
    first = records.publish(partial(tmp_path, "one"), wanted)
    second = records.publish(partial(tmp_path, "two"), wanted)
    assert first == wanted
    assert second == tmp_path / "20261127T143500Z-db-2.ipynb"
    assert first.read_text() == "one"
    assert second.read_text() == "two"
    assert {p.name for p in tmp_path.iterdir()} == {first.name, second.name}


def test_write_text_atomically_never_overwrites(tmp_path: Path) -> None:
    a = records.write_text_atomically(tmp_path / "r.html", "a")
    b = records.write_text_atomically(tmp_path / "r.html", "b")
    assert (a.read_text(), b.read_text()) == ("a", "b")
    assert b.name == "r-2.html"


def result_output(status: str, probe: str = "redis.ping") -> object:
    data = {
        "probe": probe,
        "target": "t",
        "status": status,
        "summary": "s",
        "evidence": {},
        "elapsed_ms": 1.0,
        "at": "2026-11-27T14:35:00Z",
    }
    return new_output("display_data", data={RESULT_MIME: data, "text/plain": status})


def test_read_collects_results_and_lists(tmp_path: Path) -> None:
    nb = new_notebook(
        cells=[
            new_code_cell("a", outputs=[result_output("OK")]),
            new_code_cell(
                "b",
                outputs=[
                    new_output(
                        "execute_result",
                        execution_count=1,
                        data={
                            RESULT_MIME: [
                                json.loads(json.dumps(result_output("WARN").data[RESULT_MIME])),  # type: ignore[attr-defined]
                                {"broken": True},
                            ],
                        },
                    )
                ],
            ),
        ]
    )
    path = tmp_path / "x.ipynb"
    nbformat.write(nb, path)
    record = records.read(path)
    assert [r.status for r in record.results] == [Status.OK, Status.WARN]
    assert record.complete
    assert record.status is Status.WARN


def test_a_notebook_that_raised_is_incomplete(tmp_path: Path) -> None:
    nb = new_notebook(
        cells=[
            new_code_cell("a", outputs=[result_output("OK")]),
            new_code_cell(
                "b", outputs=[new_output("error", ename="ValueError", evalue="bad", traceback=[])]
            ),
        ]
    )
    path = tmp_path / "x.ipynb"
    nbformat.write(nb, path)
    record = records.read(path)
    assert not record.complete
    assert record.error == "ValueError: bad"
    assert record.status is Status.UNKNOWN  # OK so far, but the rest is not known


def test_a_corrupt_or_empty_notebook_is_read_as_unknown(tmp_path: Path) -> None:
    corrupt = tmp_path / "corrupt.ipynb"
    corrupt.write_text('{"cells": [')
    record = records.read(corrupt)
    assert not record.complete
    assert "unreadable notebook" in record.error
    assert record.status is Status.UNKNOWN
    empty = tmp_path / "empty.ipynb"
    nbformat.write(new_notebook(), empty)
    assert records.read(empty).status is Status.UNKNOWN  # no verdict is not OK
