"""Mitigations: the runbook steps that change a target. Each is planned first (a dry run that
shows exactly what would be done), acts only after a confirmation or an explicit allow, re-checks
every item against its plan before touching it, and leaves the plan, the confirmation and the
result in the incident's timeline. See `guard`.
"""

from __future__ import annotations

import importlib
from types import ModuleType

__all__ = [
    "catalogue",
    "celery",
    "containers",
    "deployment",
    "disk",
    "postgres",
    "redis",
    "steps",
]


def __getattr__(name: str) -> ModuleType:
    # Imported on first use: the db notebook should not pay for Celery's import.
    if name in __all__:
        return importlib.import_module(f"irkit.actions.{name}")
    raise AttributeError(f"module 'irkit.actions' has no attribute {name!r}")
