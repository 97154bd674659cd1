"""The incident records, read once: an index beside them (`.metrics-index.json` in the incidents
folder) keeps each incident's merged fields with the size and time of every file it came from.
A later analysis reads again only the folders whose files changed, were added or removed.

The index is a cache, never the record: delete it and the next run rebuilds it from the
notebooks; a corrupt or foreign one is ignored.
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from irkit import records, safefiles
from irkit.incident import schema
from irkit.incident.load import Incident, NotebookRun, load_folder
from irkit.result import Status

NAME = ".metrics-index.json"
# 4: fields derived from the timeline (mitigated_at, postmortem_written_at) are kept too.
VERSION = 4


def _signature(folder: str) -> list[list[Any]]:
    """What the folder's record was read from: its files (a FIFO or symlink by name and kind,
    which the loader names as skipped), and the hidden files of runs that are gone (a run killed
    since the last analysis changes nothing else)."""
    found = []
    with os.scandir(folder) as entries:
        for entry in entries:
            if entry.name.startswith("."):
                continue
            stat = entry.stat(follow_symlinks=False)
            found.append([entry.name, stat.st_mode, stat.st_mtime_ns, stat.st_size])
    for orphan in records.orphans(Path(folder)):
        try:
            stat = orphan.path.lstat()
        except FileNotFoundError:
            continue  # claimed meanwhile by the next run on that incident
        found.append([orphan.path.name, stat.st_mode, stat.st_mtime_ns, stat.st_size])
    return sorted(found)


def _to_json(incident: Incident) -> dict[str, Any]:
    return {
        "fields": incident.fields,
        "warnings": incident.warnings,
        "notebooks": [
            [n.name, n.section, n.status.name, n.complete, n.ran, n.error, n.checks]
            for n in incident.notebooks
        ],
    }


def _from_json(folder: Path, data: dict[str, Any]) -> Incident:
    return Incident(
        incident_id=folder.name,
        folder=folder,
        fields=dict(data["fields"]),
        warnings=list(data["warnings"]),
        notebooks=[
            NotebookRun(name, section, Status[status], complete, ran, error, checks)
            for name, section, status, complete, ran, error, checks in data["notebooks"]
        ],
    )


@contextlib.contextmanager
def _without_gc() -> Iterator[None]:
    """Reading builds hundreds of thousands of small dicts and lists, none in a cycle; Python's
    collector would walk them again and again (a quarter of a warm run)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def load(root: Path) -> tuple[list[Incident], list[str]]:
    """Every incident under `root` (without its timeline, which the metrics do not use), oldest
    first, and the folders that are not incidents."""
    with _without_gc():
        return _load(root)


def _load(root: Path) -> tuple[list[Incident], list[str]]:
    cache_path = root / NAME
    cached: dict[str, Any] = {}
    with contextlib.suppress(OSError, ValueError, TypeError):
        data = json.loads(safefiles.read_regular(cache_path))
        if isinstance(data, dict) and data.get("version") == VERSION:
            cached = data.get("incidents") or {}
    incidents: list[Incident] = []
    problems: list[str] = []
    fresh: dict[str, Any] = {}
    changed = False
    for entry in sorted(os.scandir(root), key=lambda e: e.name):
        if entry.name.startswith("."):
            continue
        if entry.is_symlink():
            problems.append(f"{entry.name}: a symlink, not an incident folder; not followed")
            continue
        if not entry.is_dir(follow_symlinks=False):
            continue
        if not schema.ID_PATTERN.fullmatch(entry.name):
            problems.append(f"{entry.name}: not an incident id; skipped")
            continue
        folder = root / entry.name
        signature = _signature(entry.path)
        known = cached.get(entry.name)
        incident = None
        if isinstance(known, dict) and known.get("signature") == signature:
            with contextlib.suppress(KeyError, TypeError, ValueError):
                incident = _from_json(folder, known["incident"])
        if incident is None:
            incident = load_folder(folder)
            changed = True
        fresh[entry.name] = {"signature": signature, "incident": _to_json(incident)}
        incidents.append(incident)
    if changed or set(fresh) != set(cached):
        _save(cache_path, {"version": VERSION, "incidents": fresh})
    incidents.sort(key=lambda i: (i.fields.get("detected_at") or "", i.incident_id))
    return incidents, problems


def _save(path: Path, data: dict[str, Any]) -> None:
    """Written beside and renamed over; a folder the analysis may not write to just goes
    without an index (the next run reads everything again)."""
    tmp = path.with_name(f"{path.name}.{os.getpid()}.partial")
    try:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()  # left by a killed process that had this pid
        safefiles.write_new(tmp, json.dumps(data, default=str).encode())
        os.replace(tmp, path)
    except OSError:
        with contextlib.suppress(OSError):
            tmp.unlink()
