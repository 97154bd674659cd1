"""The HTML copy of an executed notebook, for people without Jupyter.

nbconvert's first export in a process is slow: it loads the library, compiles its templates and
the regular expressions of its Markdown renderer and highlighter (a quarter of a second; the next
export takes 50 ms). `warm()` pays that on a thread while the kernel runs, with the exporter the
copy will use, so a scheduled report does not wait for it at the end.
"""

from __future__ import annotations

import threading
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from irkit import records

# Per exclude_input: the exporter being warmed, as a future.
_warming: dict[bool, Future[Any]] = {}
# Still warming when the copy is due, it is nearly done (a quarter of a second in all); stuck, the
# copy is exported cold rather than waited for.
_JOIN_S = 10.0


def warm(*, exclude_input: bool = False) -> None:
    """Start exporting a small notebook like a report, on a thread; `write` then reuses it."""
    if exclude_input in _warming:
        return
    future: Future[Any] = Future()

    def export() -> None:
        try:
            exporter = _exporter(exclude_input)
            exporter.from_notebook_node(_sample())
        except Exception as exc:
            future.set_exception(exc)  # `write` then exports cold, and says what fails
        else:
            future.set_result(exporter)

    _warming[exclude_input] = future
    threading.Thread(target=export, name="irkit-warm-html", daemon=True).start()


def write(notebook: Path, *, exclude_input: bool = False) -> Path:
    """An HTML copy beside the notebook (a report for readers leaves the code cells out:
    `exclude_input`)."""
    import nbformat

    exporter = _warmed(exclude_input) or _exporter(exclude_input)
    body, _ = exporter.from_notebook_node(nbformat.read(notebook, as_version=4))
    return records.write_text_atomically(notebook.with_suffix(".html"), body)


def _warmed(exclude_input: bool) -> Any:
    future = _warming.pop(exclude_input, None)
    if future is None:
        return None
    try:
        return future.result(timeout=_JOIN_S)
    except Exception:  # failed, or stuck (TimeoutError)
        return None


def _exporter(exclude_input: bool) -> Any:
    from nbconvert import HTMLExporter

    return HTMLExporter(
        exclude_input=exclude_input,
        exclude_input_prompt=exclude_input,
        exclude_output_prompt=exclude_input,
    )


def _sample() -> Any:
    """What reports hold: Markdown with code, a list and a table; text and HTML outputs."""
    from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

    markdown = "# Report\n\n## 1. Area\n\n*Runbook*: `curl -f …`\n\n- one\n\n| a | b |\n|---|---|\n"
    html = "<table><tr><th>status</th></tr><tr><td><b>OK</b></td></tr></table>"
    outputs = [
        new_output("display_data", data={"text/plain": "OK", "text/html": html}),
        new_output("stream", name="stdout", text="OK  check  fine\n"),
    ]
    return new_notebook(
        cells=[new_markdown_cell(markdown), new_code_cell("report.show('x')", outputs=outputs)],
        metadata={
            "kernelspec": {"name": "python3", "display_name": "Python 3"},
            "language_info": {"name": "python"},
        },
    )
