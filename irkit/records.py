"""Executed notebooks as records: where they go (never overwriting), and what they say.

A run is written to a hidden temporary file beside its final place and then linked to a name
nobody holds yet, so a reader never sees half a report and two runs in the same second both
survive.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import os
import re
import stat
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from irkit import pids, safefiles
from irkit.errors import ConfigError, IrkitError
from irkit.result import EVENT_MIME, INCIDENT_MIME, RESULT_MIME, Result, Status


def stamp(now: datetime | None = None) -> str:
    return (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")


def temporary_path(final: Path) -> Path:
    return final.with_name(f".{final.stem}.{owner()}.partial.ipynb")


def owner() -> str:
    """Who writes a hidden file: this process on this host (`1234@web-1`). On a folder shared by
    several machines a pid alone could name a live run elsewhere, or be taken twice."""
    return f"{os.getpid()}@{pids.this_host()}"


# A file of a run still going, or of one killed: `.<stem>.<pid>@<host>.partial.ipynb`, with
# `.writing` while a save is under way, or `.adopted-by-<pid>@<host>` while a later run publishes
# it. Files of earlier versions carry no host: they were written on the host reading them.
_OWNER = r"(\d+)(?:@([A-Za-z0-9-]+))?"
_ORPHAN = re.compile(
    rf"^\.(?P<stem>.+)\.(?P<owner>{_OWNER})\.partial\.ipynb"
    rf"(?P<rest>\.writing|\.adopted-by-(?P<by>{_OWNER}))?$"
)


# Hosts a person has declared gone for good (`irkit recover --host NAME`): their runs cannot be
# alive, whatever pid they name. Set only for the time of that command.
_HOSTS_GONE: contextvars.ContextVar[frozenset[str]] = contextvars.ContextVar(
    "hosts_gone", default=frozenset()
)
# A host's name as the hidden files carry it.
HOST_PATTERN = re.compile(r"[A-Za-z0-9-]+")


@contextlib.contextmanager
def hosts_gone(names: frozenset[str]) -> Iterator[None]:
    """Within the block, the runs of these hosts (other than this one) count as killed."""
    token = _HOSTS_GONE.set(names - {pids.this_host()})
    try:
        yield
    finally:
        _HOSTS_GONE.reset(token)


def _gone(owner: str) -> bool:
    """Whether the process `pid@host` is known to be gone: on another host that cannot be told,
    and its files wait for that host's next run (or for `irkit recover --host`)."""
    pid, _, host = owner.partition("@")
    if host and host != pids.this_host():
        return host in _HOSTS_GONE.get()
    return not pids.alive(int(pid))


@dataclass(frozen=True)
class Orphan:
    """A hidden file a run left behind when it was killed outright (SIGKILL, a lost machine)."""

    path: Path
    stem: str  # the name it was to be published under, without `.ipynb`
    owner: str  # the run that wrote it: `pid@host` (or a bare pid, from an earlier version)
    # A save cut short (`.writing`): the notebook beside it holds the last whole one.
    cut_short: bool

    @property
    def process(self) -> str:
        """The run's process as a person reads it: `pid 1234 on web-1`."""
        pid, _, host = self.owner.partition("@")
        return f"pid {pid} on {host}" if host else f"pid {pid}"


def orphans(folder: Path) -> list[Orphan]:
    """The hidden files of runs that are gone; a run still going (its process alive) is not one.
    Only regular files count: anything else there was not written by a run."""
    found: list[Orphan] = []
    try:
        names = sorted(os.listdir(folder))
    except OSError:
        return found
    for name in names:
        match = _ORPHAN.match(name)
        if not match:
            continue
        path = folder / name
        try:
            regular = stat.S_ISREG(path.lstat().st_mode)
        except OSError:
            continue
        if regular and _gone(match["by"] or match["owner"]):
            cut_short = match["rest"] == ".writing"
            found.append(Orphan(path, match["stem"], match["owner"], cut_short))
    return found


def claim(orphan: Orphan) -> Path | None:
    """Take an orphan for publishing by renaming it: of two runs adopting at once, only one gets
    it (None for the other). A cut-short save is deleted instead."""
    if orphan.cut_short:
        with contextlib.suppress(FileNotFoundError):
            orphan.path.unlink()
        return None
    claimed = orphan.path.with_name(
        f".{orphan.stem}.{orphan.owner}.partial.ipynb.adopted-by-{owner()}"
    )
    try:
        orphan.path.rename(claimed)
    except FileNotFoundError:
        return None
    return claimed


def adopt_orphans(folder: Path) -> list[Path]:
    """Publish what runs killed outright left in their hidden files: a record is never lost, and
    reads as incomplete (its unfinished cells are marked pending)."""
    adopted: list[Path] = []
    for orphan in orphans(folder):
        claimed = claim(orphan)
        if claimed is not None:
            adopted.append(publish(claimed, folder / f"{orphan.stem}.ipynb"))
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
    """Write `text` beside `path` and publish it under `path` (or `path-2`, …). A write that
    fails (a full disk) leaves nothing behind: no half file, no name taken."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.partial")
    try:
        # Left by a killed process that had this pid: no live process but this one has it.
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        safefiles.write_new(tmp, text.encode())
        return publish(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def save_whole(nb: Any, path: Path) -> OSError | None:
    """Write the notebook `nb` over `path` (a run's own hidden file) whole or not at all: on
    failure `path` is removed too (it may hold a half write) and the reason returned."""
    import nbformat

    writing = path.with_name(f"{path.name}.writing")
    try:
        with contextlib.suppress(FileNotFoundError):
            writing.unlink()
        safefiles.write_new(writing, nbformat.writes(nb).encode())
        os.replace(writing, path)
    except OSError as exc:
        for leftover in (writing, path):
            with contextlib.suppress(OSError):
                leftover.unlink()
        return exc
    return None


class RecordNotWritten(IrkitError):
    """The run went on, but its record could not be written (a full or read-only disk):
    `record` holds what it found, from memory, for the caller to show."""

    def __init__(self, record: Record, reason: OSError) -> None:
        why = reason.strerror or str(reason)
        super().__init__(
            f"the record could not be written in {record.path.parent} ({why}); "
            "nothing of this run was kept"
        )
        self.record = record


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
    # The environment it ran for (its `environment` parameter), "" when none was named.
    environment: str = ""

    @property
    def incident(self) -> dict[str, Any]:
        """The incident fields this notebook sets, later outputs overriding earlier ones."""
        merged: dict[str, Any] = {}
        for _, fields in self.updates:
            merged.update(fields)
        return merged

    @property
    def latest(self) -> list[Result]:
        """The last verdict for each (probe, target): a check re-measured after a mitigation
        counts as it was last seen, not as it was before."""
        last: dict[tuple[str, str], Result] = {}
        for result in self.results:
            last.pop((result.probe, result.target), None)  # ordered by when last measured
            last[(result.probe, result.target)] = result
        return list(last.values())

    @property
    def status(self) -> Status:
        """The state the run left things in: the worst of the latest verdicts (UNKNOWN if the
        run did not finish or judged nothing)."""
        statuses = [r.status for r in self.latest]
        if not self.complete or not statuses:
            statuses.append(Status.UNKNOWN)
        return Status.worst(statuses)


def read(path: Path) -> Record:
    try:
        nb = json.loads(safefiles.read_regular(path).decode("utf-8"))
    except safefiles.NotRead as exc:
        return Record(path, complete=False, corrupt=True, error=f"not read: {exc}")
    except (OSError, ValueError) as exc:
        return Record(path, complete=False, corrupt=True, error=f"unreadable notebook: {exc}")
    try:
        return from_notebook(path, nb)
    except (AttributeError, TypeError, KeyError) as exc:
        # Valid JSON, but not shaped like a notebook (a cell's metadata null, outputs not a
        # list): one corrupt file, not the end of `incident show` or the monthly analysis.
        return Record(path, complete=False, corrupt=True, error=f"not a notebook: {exc}")


def from_notebook(path: Path, nb: Any) -> Record:
    """What a notebook (as read from `path`, or still in memory) says."""
    cells = nb.get("cells") if isinstance(nb, dict) else None
    if not isinstance(cells, list):
        return Record(path, complete=False, corrupt=True, error="unreadable notebook: no cells")
    record = Record(path)
    metadata = nb.get("metadata") if isinstance(nb.get("metadata"), dict) else {}
    papermill = (metadata or {}).get("papermill") or {}
    papermill = papermill if isinstance(papermill, dict) else {}
    record.started_at = str(papermill.get("start_time") or "")
    given = papermill.get("parameters")
    record.environment = str(given.get("environment") or "") if isinstance(given, dict) else ""
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
