"""Executed notebooks as records: where they go (never overwriting), and what they say.

A run is written to a hidden temporary file beside its final place and then linked to a name
nobody holds yet, so a reader never sees half a report and two runs in the same second both
survive.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from irkit.errors import ConfigError
from irkit.result import EVENT_MIME, INCIDENT_MIME, RESULT_MIME, Result, Status
from irkit.sandbox.process import pid_alive


def stamp(now: datetime | None = None) -> str:
    return (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")


def temporary_path(final: Path) -> Path:
    return final.with_name(f".{final.stem}.{os.getpid()}.partial.ipynb")


_ORPHAN = re.compile(
    r"^\.(?P<stem>.+)\.(?P<pid>\d+)\.partial\.ipynb(?P<rest>\.writing|\.adopted-by-(?P<by>\d+))?$"
)


def adopt_orphans(folder: Path) -> list[Path]:
    """Publish what runs killed outright (SIGKILL, a lost machine) left in their hidden files: a
    record is never lost, and reads as incomplete (its unfinished cells are marked pending)."""
    adopted: list[Path] = []
    if not folder.is_dir():
        return adopted
    for tmp in sorted(folder.iterdir()):
        match = _ORPHAN.match(tmp.name)
        if not match or pid_alive(int(match["by"] or match["pid"])):
            continue
        if match["rest"] == ".writing":
            # A save cut short: the notebook beside it holds the last whole one.
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
            continue
        # Claimed by a rename first: of two runs adopting at once, only one gets it.
        claimed = tmp.with_name(f"{tmp.name}.adopted-by-{os.getpid()}")
        try:
            tmp.rename(claimed)
        except FileNotFoundError:
            continue
        adopted.append(publish(claimed, folder / f"{match['stem']}.ipynb"))
    return adopted


def publish(tmp: Path, wanted: Path) -> Path:
    """Give `tmp` the name `wanted`, or `wanted-2`, `wanted-3`, … if taken; never overwrite."""
    stem, suffix = wanted.stem, wanted.suffix
    for n in range(1, 10_000):
        candidate = wanted if n == 1 else wanted.with_name(f"{stem}-{n}{suffix}")
        try:
            os.link(tmp, candidate)
        except FileExistsError:
            continue
        tmp.unlink()
        return candidate
    raise ConfigError(f"too many reports named {wanted.name}* in {wanted.parent}")


def publish_exact(tmp: Path, wanted: Path) -> Path:
    """Give `tmp` exactly the name `wanted`, failing if it exists (an explicit --output)."""
    try:
        os.link(tmp, wanted)
    except FileExistsError:
        # Taken while the run went on: keep this run's record where it is, and say where.
        raise ConfigError(
            f"{wanted} appeared during the run and is not overwritten; this run's record is {tmp}"
        ) from None
    tmp.unlink()
    return wanted


def write_text_atomically(path: Path, text: str) -> Path:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.partial")
    tmp.write_text(text, encoding="utf-8")
    try:
        return publish(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


@dataclass
class Record:
    """What an executed notebook says: its results and whether it ran to the end."""

    path: Path
    results: list[Result] = field(default_factory=list)
    complete: bool = True
    error: str = ""
    events: list[dict[str, Any]] = field(default_factory=list)
    # Each incident output in the order written, with when it was set if the output says.
    updates: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    corrupt: bool = False
    started_at: str = ""
    ended_at: str = ""
    # A notebook prepared to be stepped through by hand (irkit incident open) says when.
    prepared_at: str = ""

    @property
    def incident(self) -> dict[str, Any]:
        """The incident fields this notebook sets, later outputs overriding earlier ones."""
        merged: dict[str, Any] = {}
        for _, fields in self.updates:
            merged.update(fields)
        return merged

    @property
    def status(self) -> Status:
        statuses = [r.status for r in self.results]
        if not self.complete or not statuses:
            statuses.append(Status.UNKNOWN)
        return Status.worst(statuses)


def read(path: Path) -> Record:
    try:
        nb = json.loads(path.read_text(encoding="utf-8"))
        cells = nb["cells"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return Record(path, complete=False, corrupt=True, error=f"unreadable notebook: {exc}")
    if not isinstance(cells, list):
        return Record(path, complete=False, corrupt=True, error="unreadable notebook: no cells")
    record = Record(path)
    metadata = nb.get("metadata") if isinstance(nb.get("metadata"), dict) else {}
    papermill = (metadata or {}).get("papermill") or {}
    papermill = papermill if isinstance(papermill, dict) else {}
    record.started_at = str(papermill.get("start_time") or "")
    record.ended_at = str(papermill.get("end_time") or "")
    own = (metadata or {}).get("irkit")
    own = own if isinstance(own, dict) else {}
    record.prepared_at = str(own.get("prepared_at") or "")
    if papermill.get("exception"):
        record.complete = False
    # A run that was stopped leaves cells that never completed (papermill marks them pending; a
    # notebook only prepared by papermill, then run by hand, keeps those marks and is not one).
    if papermill.get("start_time") and any(
        isinstance(c, dict)
        and c.get("cell_type") == "code"
        and c.get("metadata", {}).get("papermill", {}).get("status", "completed") != "completed"
        for c in cells
    ):
        record.complete = False
        record.error = record.error or "the run stopped before every cell had run"
    for output in _outputs(cells):
        if output.get("output_type") == "error":
            record.complete = False
            record.error = f"{output.get('ename')}: {output.get('evalue')}"
        data = output.get("data", {})
        if isinstance(data.get(INCIDENT_MIME), dict):
            meta = output.get("metadata", {}).get(INCIDENT_MIME)
            at = str(meta.get("at") or "") if isinstance(meta, dict) else ""
            record.updates.append((at, data[INCIDENT_MIME]))
        if isinstance(data.get(EVENT_MIME), dict):
            record.events.append(data[EVENT_MIME])
        payload = data.get(RESULT_MIME)
        items = payload if isinstance(payload, list) else [payload] if payload else []
        for item in items:
            with contextlib.suppress(KeyError, ValueError, TypeError):
                record.results.append(Result.from_json(item))
    return record


def _outputs(cells: Any) -> Iterator[dict[str, Any]]:
    for cell in cells if isinstance(cells, list) else []:
        if isinstance(cell, dict) and cell.get("cell_type") == "code":
            yield from (o for o in cell.get("outputs", []) if isinstance(o, dict))
