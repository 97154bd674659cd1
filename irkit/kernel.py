"""Who runs the notebook: a person in JupyterLab, or papermill (a scheduled or headless run).
Forms and confirmation panels appear only for a person; papermill takes parameters instead."""

from __future__ import annotations

import os


def interactive() -> bool:
    """True in a kernel a Jupyter server started for a notebook (JupyterLab, Notebook): the
    server names the session's notebook in JPY_SESSION_NAME; papermill and nbval do not."""
    return bool(os.environ.get("JPY_SESSION_NAME"))
