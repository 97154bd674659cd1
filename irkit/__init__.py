"""irkit: the Himalytix incident-response runbook as executable notebooks.

Notebooks start with `section = irkit.Section("db", globals())` after their parameters cell, then
run one probe per cell with `section.check(...)`; see README.md.
"""

from irkit.result import RESULT_MIME, Result, Results, Status
from irkit.section import Section

__version__ = "0.1.0"

__all__ = ["RESULT_MIME", "Result", "Results", "Section", "Status", "__version__"]
