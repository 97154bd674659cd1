"""What a worker does as it starts: publish the records its host's runs left hidden when they
were killed outright (a worker lost with its machine, SIGKILL), so none waits for the next run
in the same folder. Files of other hosts' runs are left to them: from here, their runs cannot be
told apart from the living (irkit.records)."""

from __future__ import annotations

from pathlib import Path

from irkit import records
from irkit.environments import NAME_PATTERN
from irkit.health import history
from irkit.home import reports_dir
from irkit.incident import store


def adopt_everywhere(root: Path | None = None) -> list[Path]:
    """Publish this host's orphans under the reports folder: the health reports (each
    environment's), the section runs, the monthly analyses, and every incident's notebooks."""
    root = root or reports_dir()
    published: list[Path] = []
    health = root / history.NAME
    flat = [health, *_folders(health), root / "runs", root / "metrics"]
    for folder in flat:
        published += records.adopt_orphans(folder)
    for incident in store.incident_folders(root / "incidents")[0]:
        published += store.adopt_orphans(incident)
    return published


def adopt_for_lost_host(host: str, root: Path | None = None) -> list[Path]:
    """Publish what the runs of `host`, a machine gone for good, left hidden everywhere under the
    reports folder: a person's word that none of its runs is alive."""
    with records.hosts_gone(frozenset({host})):
        return adopt_everywhere(root)


def _folders(parent: Path) -> list[Path]:
    """The environments' folders in `parent` (never through a symlink)."""
    try:
        return sorted(p for p in parent.iterdir() if NAME_PATTERN.fullmatch(p.name) and _real(p))
    except OSError:
        return []


def _real(path: Path) -> bool:
    return path.is_dir() and not path.is_symlink()
