"""Reading an incident back: every notebook in its folder and its journal, merged into one record.

Later values override earlier ones; events from all sources are merged (one copy per id) and
sorted; a notebook whose run raised is kept and marked incomplete; a corrupt file is skipped with
a warning that names it, and so is a journal line that cannot be read (only that line). What a
run killed outright left in its hidden file is read too, and named. Only regular files are read:
a symlink is not followed, a FIFO is not waited on. Nothing here writes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from irkit import records, safefiles
from irkit.incident import schema, store, timeline
from irkit.incident.log import JOURNAL
from irkit.result import Status


@dataclass
class NotebookRun:
    """One notebook of the incident, as the record lists it."""

    name: str
    section: str
    status: Status
    complete: bool
    ran: bool
    error: str = ""
    checks: int = 0  # verdicts it recorded (a postmortem records none)


@dataclass
class Incident:
    incident_id: str
    folder: Path
    fields: dict[str, Any] = field(default_factory=dict)
    timeline: list[dict[str, Any]] = field(default_factory=list)
    notebooks: list[NotebookRun] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def get(self, name: str, default: Any = None) -> Any:
        value = self.fields.get(name)
        return default if value in (None, "", [], {}) else value

    def time(self, name: str) -> datetime | None:
        return schema.parse_time(self.fields.get(name))

    @property
    def drill(self) -> bool:
        return bool(self.fields.get("drill"))

    @property
    def complete(self) -> bool:
        return all(n.complete for n in self.notebooks)

    def to_json(self) -> dict[str, Any]:
        return {
            **{name: self.fields.get(name) for name in schema.FIELDS if name != "timeline"},
            **{k: v for k, v in self.fields.items() if k not in schema.FIELDS},
            "timeline": self.timeline,
            "notebooks": [
                {
                    "name": n.name,
                    "section": n.section,
                    "status": n.status.name,
                    "complete": n.complete,
                    "ran": n.ran,
                    "error": n.error,
                    "checks": n.checks,
                }
                for n in self.notebooks
            ],
            "warnings": self.warnings,
        }


def load(incident_id: str) -> Incident:
    return load_folder(store.folder(incident_id))


def load_all(root: Path | None = None) -> tuple[list[Incident], list[str]]:
    """Every incident under `root` (default reports/incidents/), oldest first, and warnings for
    folders that are not incidents."""
    folders, problems = store.incident_folders(root or store.incidents_dir())
    incidents = [load_folder(path) for path in folders]
    incidents.sort(key=lambda i: (i.fields.get("detected_at") or "", i.incident_id))
    return incidents, problems


# One change to the record, placed in time: (when, tie-break order, fields or event).
_Change = tuple[datetime, int, dict[str, Any]]


def load_folder(path: Path) -> Incident:
    incident = Incident(incident_id=path.name, folder=path)
    updates: list[_Change] = []
    events: list[dict[str, Any]] = []
    order = 0
    for nb_path, section, killed in _notebooks(path):
        record = records.read(nb_path)
        if record.corrupt:
            incident.warnings.append(f"{nb_path.name}: skipped, {record.error}")
            continue
        if killed:
            record.complete = False
            record.error = killed
            incident.warnings.append(f"{nb_path.name}: {killed}")
        ran = bool(record.results or record.updates or record.events or record.started_at)
        incident.notebooks.append(
            NotebookRun(
                name=nb_path.name,
                section=section,
                status=record.status if ran else Status.UNKNOWN,
                complete=record.complete,
                ran=ran,
                error=record.error,
                checks=len(record.latest),
            )
        )
        when = _when(record, nb_path)
        for at, fields in record.updates:
            order += 1
            updates.append((schema.parse_time(at) or when, order, fields))
        events.extend(record.events)
        events.extend(_derived_events(nb_path.name, section, record))
    journal_updates, journal_events = _read_journal(path / JOURNAL, incident.warnings)
    updates.extend((at, order + i, f) for i, (at, f) in enumerate(journal_updates, 1))
    events.extend(journal_events)
    for _, _, fields in sorted(updates, key=lambda u: (u[0], u[1])):
        incident.fields.update(fields)
    incident.fields.setdefault("incident_id", path.name)
    incident.timeline = _merge_events(events)
    written = timeline.postmortem_written_at(incident.timeline)
    if written is not None:
        # Kept as a field: the metrics' index keeps fields, not the timeline.
        incident.fields["postmortem_written_at"] = schema.format_time(written)
    if not incident.fields.get("mitigated_at"):
        # Not given by the responder: the first action that acted and failed at nothing is
        # when the mitigation took effect (so the time to mitigate can be measured).
        mitigation = timeline.first_mitigation(incident.timeline)
        if mitigation is not None:
            incident.fields["mitigated_at"] = schema.format_time(
                schema.parse_time(mitigation["at"])  # type: ignore[arg-type]
            )
    return incident


def _notebooks(path: Path) -> list[tuple[Path, str, str]]:
    """The numbered notebooks in run order, then what killed runs left (with why it is there)."""
    found = [
        (p, store.NUMBERED.fullmatch(p.name).group(2), "")  # type: ignore[union-attr]
        for p in store.numbered_notebooks(path)
    ]
    for orphan in records.orphans(path):
        if not orphan.cut_short:
            killed = (
                f"the run ({orphan.process}) was killed before it finished; its record so far "
                "is kept here and numbered by the next run on this incident"
            )
            found.append((orphan.path, orphan.stem, killed))
    return found


def _when(record: records.Record, path: Path) -> datetime:
    """When a notebook's outputs were written: its papermill start, else (a notebook stepped
    through by hand) when it was prepared, else the file's time."""
    return (
        schema.parse_time(record.started_at)
        or schema.parse_time(record.prepared_at)
        or datetime.fromtimestamp(path.stat().st_mtime, UTC)
    )


def _derived_events(name: str, section: str, record: records.Record) -> list[dict[str, Any]]:
    """The timeline entries a notebook implies: its verdicts that need attention, and its end."""
    out: list[dict[str, Any]] = []
    for r in record.results:
        # A check skipped because its target had just failed adds nothing to that failure.
        if r.status is not Status.OK and "skipped_because" not in r.evidence:
            out.append(
                {
                    "at": schema.format_time(r.at),
                    "kind": "verdict",
                    "text": f"{r.status.name} {r.probe}: {r.summary}{r.after_note}",
                    "source": name,
                    "id": f"{name}-{r.probe}-{r.target}-{r.at.isoformat()}",
                }
            )
    if record.results or not record.complete:
        at = record.ended_at or (
            schema.format_time(max(r.at for r in record.results))
            if record.results
            else record.started_at
        )
        if at:
            worst = record.status.name
            text = (
                f"{section} ran: {worst}, {len(record.latest)} checks"
                if record.complete
                else f"{section} did not run to the end ({record.error or 'stopped'})"
            )
            out.append({"at": at, "kind": "run", "text": text, "source": name, "id": f"{name}-run"})
    return out


def _read_journal(
    path: Path, warnings: list[str]
) -> tuple[list[tuple[datetime, dict[str, Any]]], list[dict[str, Any]]]:
    """Each line on its own: a bad line (cut short by a full disk, a stray byte, an editor) is
    skipped and named, and every other line still counts."""
    updates: list[tuple[datetime, dict[str, Any]]] = []
    events: list[dict[str, Any]] = []
    try:
        data = safefiles.read_regular(path)
    except FileNotFoundError:
        return updates, events
    except OSError as exc:
        warnings.append(f"{path.name}: skipped, unreadable ({exc})")
        return updates, events
    for number, raw in enumerate(data.split(b"\n"), 1):
        if not raw.strip():
            continue
        read = _journal_entry(raw)
        if isinstance(read, str):
            warnings.append(f"{path.name} line {number}: skipped, {read}")
            continue
        at, entry = read
        if isinstance(entry.get("incident"), dict):
            updates.append((at, entry["incident"]))
        if isinstance(entry.get("event"), dict):
            events.append(entry["event"])
    return updates, events


def _journal_entry(raw: bytes) -> tuple[datetime, dict[str, Any]] | str:
    """One journal line as its time and entry, or why it cannot be one."""
    try:
        line = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return f"not UTF-8 (byte 0x{raw[exc.start]:02x} at column {exc.start + 1})"
    try:
        entry = json.loads(line)
    except ValueError as exc:
        return f"not JSON ({exc})"
    at = schema.parse_time(entry.get("at")) if isinstance(entry, dict) else None
    if at is None:
        return "not a journal entry (no time)"
    return at, entry


def _merge_events(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    seen: dict[str, dict[str, Any]] = {}
    for event in events:
        if not isinstance(event, dict) or schema.parse_time(event.get("at")) is None:
            continue
        key = str(event.get("id") or (event.get("at"), event.get("kind"), event.get("text")))
        seen.setdefault(key, event)
    return sorted(seen.values(), key=lambda e: schema.parse_time(e["at"]))  # type: ignore[arg-type,return-value]
