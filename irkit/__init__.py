"""irkit: the Himalytix incident-response runbook as executable notebooks.

Notebooks start with `section = irkit.Section("db", globals())` after their parameters cell, then
run one probe per cell with `section.check(...)`; see README.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = ["RESULT_MIME", "Result", "Results", "Section", "Status", "__version__"]

if TYPE_CHECKING:
    from irkit.incident.section import Section
    from irkit.result import RESULT_MIME, Result, Results, Status


def __getattr__(name: str) -> Any:
    # Imported on first use: the command line starts without the notebook-side modules.
    if name == "Section":
        from irkit.incident.section import Section

        return Section
    if name in {"RESULT_MIME", "Result", "Results", "Status"}:
        from irkit import result

        return getattr(result, name)
    raise AttributeError(f"module 'irkit' has no attribute {name!r}")
