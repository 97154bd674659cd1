"""The intake's own journal: every notification accepted is on disk (written and synced) before
Alertmanager hears 200, with how far its handling got. A receiver that stops, however it stops,
finds on restart what it had not finished, and what each step had done.

    reports/intake/pending/<id>.json   accepted, not finished
    reports/intake/done/<id>.json      finished: the incident, the runs, the pages
    reports/intake/groups/<hash>.json  an alert group's incident (by Alertmanager's groupKey)
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from irkit import safefiles
from irkit.result import utc_now

# Finished entries kept for the status page and for reading back; older ones are removed.
DONE_KEPT = 1000


@dataclass
class Entry:
    id: str
    received_at: str
    body: dict[str, Any]
    # How far the handling got: the incident, the runs done, the run going on, the pages sent.
    progress: dict[str, Any] = field(default_factory=dict)
    outcome: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "received_at": self.received_at,
            "progress": self.progress,
            "outcome": self.outcome,
            "body": self.body,
        }


class Full(Exception):
    """As many notifications wait as the intake keeps: the sender should come back later."""


class Spool:
    def __init__(self, root: Path, capacity: int) -> None:
        self.root = root
        self.capacity = capacity
        for name in ("pending", "done", "groups"):
            (root / name).mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._pending = len(list((root / "pending").glob("*.json")))

    def accept(self, body: dict[str, Any], raw: bytes) -> Entry:
        """Keep a notification; `Full` if as many wait as the intake keeps."""
        with self._lock:
            if self._pending >= self.capacity:
                raise Full
            now = utc_now()
            digest = hashlib.sha256(raw).hexdigest()[:8]
            entry = Entry(f"{now:%Y%m%dT%H%M%S%f}-{digest}", _stamp(now), body)
            _write(self.root / "pending" / f"{entry.id}.json", entry.to_json())
            self._pending += 1
        return entry

    def pending(self) -> list[Entry]:
        """What was accepted and not finished, oldest first."""
        return [_read(path) for path in sorted((self.root / "pending").glob("*.json"))]

    def save(self, entry: Entry) -> None:
        _write(self.root / "pending" / f"{entry.id}.json", entry.to_json())

    def finish(self, entry: Entry, outcome: str) -> None:
        entry.outcome = outcome
        entry.progress["finished_at"] = _stamp(utc_now())
        done = self.root / "done" / f"{entry.id}.json"
        _write(done, entry.to_json())
        with self._lock:
            (self.root / "pending" / f"{entry.id}.json").unlink(missing_ok=True)
            self._pending -= 1
        old = sorted((self.root / "done").glob("*.json"))[:-DONE_KEPT]
        for path in old:
            path.unlink(missing_ok=True)

    def recent(self, count: int) -> list[Entry]:
        """The newest entries, pending and done, newest first."""
        paths = [*(self.root / "pending").glob("*.json"), *(self.root / "done").glob("*.json")]
        paths.sort(key=lambda p: p.name, reverse=True)
        found = []
        for path in paths[:count]:
            try:
                found.append(_read(path))
            except (OSError, ValueError):
                continue  # finished and moved meanwhile
        return found

    @property
    def waiting(self) -> int:
        return self._pending

    # An alert group's incident, found again by the group's key on its next notification.

    def group_incident(self, group_key: str) -> str:
        path = self._group_path(group_key)
        try:
            return str(json.loads(path.read_text())["incident"])
        except (OSError, ValueError, KeyError):
            return ""

    def set_group_incident(self, group_key: str, incident_id: str) -> None:
        _write(self._group_path(group_key), {"group_key": group_key, "incident": incident_id})

    def _group_path(self, group_key: str) -> Path:
        return self.root / "groups" / f"{hashlib.sha256(group_key.encode()).hexdigest()}.json"


def _stamp(at: Any) -> str:
    return str(at.isoformat(timespec="milliseconds").replace("+00:00", "Z"))


def _read(path: Path) -> Entry:
    data = json.loads(safefiles.read_regular(path))
    return Entry(
        data["id"], data["received_at"], data["body"], data.get("progress", {}), data["outcome"]
    )


def _write(path: Path, data: dict[str, Any]) -> None:
    """Replace `path` whole, synced: a crash leaves the old file or the new one, never half."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    tmp.unlink(missing_ok=True)
    safefiles.write_new(tmp, json.dumps(data, indent=1).encode())
    fd = os.open(tmp, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
