"""`irkit health --keep 30d`: health reports older than that are deleted, and nothing else.

Only files in reports/health/ named like a health report (`<UTC stamp>-health[-N].ipynb` and its
`.html`) are candidates, judged by the time in their name, never by mtime (a copied file keeps
its age). Incident records, metrics and anything a person put there are never touched; symlinks
are not followed.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from datetime import datetime, timedelta
from pathlib import Path

from irkit.errors import ConfigError
from irkit.health.history import stamp_of

_AGE = re.compile(r"^(?P<n>\d+(?:\.\d+)?)\s*(?P<unit>[mhdw])$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
# Longer would reach back before any report (and past what a date can hold).
MAX_KEEP = timedelta(days=3650)


def parse_age(text: str) -> timedelta:
    """`30d`, `12h`, `2w`, `90m` → a timedelta."""
    match = _AGE.match(text.strip().lower())
    try:
        if match and float(match["n"]) > 0:
            age = timedelta(**{_UNITS[match["unit"]]: float(match["n"])})
            if age <= MAX_KEEP:
                return age
    except OverflowError:
        pass
    raise ConfigError(
        f"--keep {text!r}: give an age such as 30d (days), 12h, 2w or 90m, "
        f"at most {MAX_KEEP.days}d (ten years)"
    )


def prune(folder: Path, keep: timedelta, now: datetime, spare: Collection[Path] = ()) -> list[Path]:
    """Delete the health reports (notebook and HTML) older than `keep`; return what went."""
    if not folder.is_dir():
        return []
    cutoff = now - keep
    spared = {p.resolve() for p in spare}
    removed: list[Path] = []
    for path in sorted(folder.iterdir()):
        notebook = path.with_suffix(".ipynb") if path.suffix == ".html" else path
        at = stamp_of(notebook)
        if at is None or at >= cutoff or path.suffix not in (".ipynb", ".html"):
            continue
        if path.is_symlink() or not path.is_file() or path.resolve() in spared:
            continue
        path.unlink()
        removed.append(path)
    return removed
