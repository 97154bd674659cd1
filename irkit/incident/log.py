"""Writing the record from a notebook: incident fields and timeline events.

Each update and event is shown as a display output (the executed notebook is the record). In
JupyterLab it is also appended to the incident's journal, because a widget's choice runs in a
callback whose output Jupyter does not save, and a responder may close a notebook unsaved. The
loader merges both, one copy per event id.
"""

from __future__ import annotations

import json
import os
import stat
import uuid
import warnings
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from irkit.incident import schema
from irkit.kernel import interactive
from irkit.result import EVENT_MIME, INCIDENT_MIME, utc_now
from irkit.secrets import redact

JOURNAL = "journal.jsonl"
# Fields whose every change is a moment in the timeline.
_TRACKED = {"severity": "severity", "status": "status"}


class IncidentLog:
    """The record of one notebook run. Without an incident id it still shows what it would
    record, so a notebook run on its own reads the same."""

    def __init__(self, incident_id: str, source: str, folder: Path | None = None) -> None:
        self.incident_id = incident_id
        self.source = source
        self.folder = folder
        # The record so far (as loaded, then as updated here) and what this run changed.
        self.fields: dict[str, Any] = {}
        self.changed: dict[str, Any] = {}

    @property
    def journal(self) -> Path | None:
        if self.folder is None or not interactive():
            return None
        return self.folder / JOURNAL

    def update(self, reason: str = "", /, **fields: Any) -> None:
        """Set incident fields. A change of severity or status is also a timeline event."""
        unknown = sorted(set(fields) - set(schema.FIELDS) - set(schema.EXTRA_FIELDS))
        if unknown:
            raise ValueError(f"not incident fields: {', '.join(unknown)}")
        at = utc_now()
        for name in schema.TIMESTAMPS:
            if isinstance(fields.get(name), str) and fields[name]:
                fields[name] = schema.time_parameter(name, fields[name])  # always UTC, "Z"
        for name, kind in _TRACKED.items():
            if name in fields and fields[name] and fields[name] != self.fields.get(name):
                before = self.fields.get(name)
                change = f"{before} → {fields[name]}" if before else f"{fields[name]}"
                self.event(kind, f"{name}: {change}" + (f" ({reason})" if reason else ""))
        self.fields.update(fields)
        self.changed.update(fields)
        fields = redact(fields)
        # When the fields were set rides in the output's metadata: the loader orders every
        # change by it, whichever notebook or journal it comes from.
        when = _stamp(at)
        _display(
            {INCIDENT_MIME: fields},
            metadata={INCIDENT_MIME: {"at": when}},
        )
        self._journal({"at": when, "incident": fields, "source": self.source})

    def event(
        self, kind: str, text: str, *, at: datetime | None = None, **data: Any
    ) -> dict[str, Any]:
        """Add one moment to the timeline: now, or `at` when it happened earlier."""
        event: dict[str, Any] = {
            "at": _stamp(at or utc_now()),
            "kind": kind,
            # Never a secret in the record, whatever a caller passes (a query text, an output).
            "text": redact(text),
            "source": self.source,
            "id": uuid.uuid4().hex,
        }
        if data:
            event["data"] = redact(data)
        _display({EVENT_MIME: event})
        self._journal({"at": event["at"], "event": event, "source": self.source})
        return event

    def _journal(self, entry: Mapping[str, Any]) -> None:
        path = self.journal
        if path is None:
            return
        try:
            append_to_journal(path, entry)
        except OSError as exc:
            warnings.warn(
                f"could not add to the incident journal {path}: {exc}; save the notebook to "
                "keep this step in the record",
                stacklevel=3,
            )


def append_to_journal(path: Path, entry: Mapping[str, Any]) -> None:
    """Add one entry (`{"at", "incident" or "event", "source"}`) to the journal at `path`."""
    _append_line(path, (json.dumps(entry, default=str) + "\n").encode())


def _append_line(path: Path, line: bytes) -> None:
    """One write with O_APPEND: lines from two kernels never interleave, nothing earlier is
    rewritten. Never through a symlink or into a FIFO (the record is regular files only)."""
    flags = os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
    fd = os.open(path, flags, 0o644)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise OSError(f"{path.name} is not a regular file")
        # A line cut short earlier (a full disk) would swallow this one: start a new line.
        if info.st_size and os.pread(fd, 1, info.st_size - 1) != b"\n":
            line = b"\n" + line
        os.write(fd, line)
    finally:
        os.close(fd)


def _stamp(at: datetime) -> str:
    return at.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _display(bundle: dict[str, Any], metadata: dict[str, Any] | None = None) -> None:
    """Keep `bundle` in the notebook as its record, for tools, not readers: what a reader should
    see of a step (a plan, a verdict, a message) is shown by the step itself. The empty HTML
    form renders to nothing in JupyterLab and in the HTML copies, where an unknown type alone
    would be reported as not representable."""
    from IPython.display import display

    bundle = {**bundle, "text/html": ""}
    display(bundle, raw=True, metadata=metadata)  # type: ignore[no-untyped-call]
