"""Where the kit's files live: notebooks, parameter files, reports and the practice servers."""

from __future__ import annotations

import os
from pathlib import Path

from irkit.errors import ConfigError


def kit_home() -> Path:
    """IRKIT_HOME if set; else the current directory if it holds the kit's notebooks; else the
    checkout the package was installed from (an editable install, as the README sets up)."""
    if env := os.environ.get("IRKIT_HOME"):
        return Path(env).resolve()
    cwd = Path.cwd()
    if (cwd / "notebooks").is_dir() and (cwd / "irkit").is_dir():
        return cwd
    checkout = Path(__file__).resolve().parent.parent
    if (checkout / "notebooks").is_dir():
        return checkout
    raise ConfigError(
        "cannot find the kit's notebooks/ folder; "
        "run irkit from the kit's checkout or set IRKIT_HOME"
    )


def notebooks_dir() -> Path:
    return kit_home() / "notebooks"


def reports_dir() -> Path:
    return Path(os.environ.get("IRKIT_REPORTS") or kit_home() / "reports")


def sandbox_dir() -> Path:
    """The practice stack's folder: IRKIT_SANDBOX_DIR, else `.sandbox` in the kit."""
    return Path(os.environ.get("IRKIT_SANDBOX_DIR") or kit_home() / ".sandbox").resolve()


def active_drills() -> list[str]:
    """The drills running now on the practice stack (their state files; see irkit.drills)."""
    try:
        return sorted(p.stem for p in (sandbox_dir() / "drills").glob("*.json"))
    except (OSError, ConfigError):
        return []


def sections() -> list[str]:
    """The runnable sections: one per notebook."""
    return sorted(p.stem for p in notebooks_dir().glob("*.ipynb"))


def notebook_path(section: str) -> Path:
    known = sections()
    if section not in known:
        raise ConfigError(f"unknown section {section!r}; the sections are: {', '.join(known)}")
    return notebooks_dir() / f"{section}.ipynb"
