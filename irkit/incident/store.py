"""Incident folders: where they live, opening one, and adding the next numbered notebook without
ever overwriting or reusing a number."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import shutil
import stat
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from irkit import records, safefiles
from irkit.errors import ConfigError
from irkit.home import reports_dir
from irkit.incident import schema
from irkit.incident.log import JOURNAL
from irkit.result import utc_now

OPENER = "irkit incident open"
# A detection time this far ahead of the clock is a typing or time-zone mistake.
CLOCK_SKEW = schema.CLOCK_SKEW
NUMBERED = re.compile(r"(\d+)-([A-Za-z0-9_.-]+)\.ipynb")
_LOCK = ".lock"
# The parameters the incident was opened with (`incident open -f/-p/--env`): every later run of
# it starts from them. They hold no secret: a password anywhere in a parameter is refused.
PARAMETERS = "parameters.yaml"


def incidents_dir() -> Path:
    return reports_dir() / "incidents"


def folder(incident_id: str) -> Path:
    """The folder of an existing incident: a real folder, never a symlink (runs and the
    postmortem write into it, and must not land outside the reports folder)."""
    path = incidents_dir() / schema.check_id(incident_id)
    check_not_symlink(incidents_dir())
    try:
        mode = path.lstat().st_mode
    except FileNotFoundError:
        mode = 0
    if stat.S_ISLNK(mode):
        raise ConfigError(
            f"{path} is a symlink, not an incident folder: irkit never writes or reads an "
            "incident through a symlink; remove it, or set IRKIT_REPORTS to keep the record "
            "elsewhere"
        )
    if not stat.S_ISDIR(mode):
        raise ConfigError(
            f"no incident {incident_id!r} in {incidents_dir()}; "
            "see: irkit incident list, or start one with: irkit incident open --title …"
        )
    return path


def folder_of_run(incident_id: str) -> Path:
    """The incident's folder as a notebook's kernel finds it: the folder it runs in when that is
    the incident's (JupyterLab starts a kernel in its notebook's folder, whatever the server's
    environment says of where the reports are), else the one under the reports folder."""
    here = Path.cwd()  # already resolved: no symlink in it
    if here.name == schema.check_id(incident_id) and (here / JOURNAL).is_file():
        return here
    return folder(incident_id)


def stored_parameters(path: Path) -> tuple[str, dict[str, Any]] | None:
    """The incident's parameters as a named mapping, or None when it was opened without."""
    from irkit import parameters

    file = path / PARAMETERS
    if not file.exists() and not file.is_symlink():
        return None
    if file.is_symlink():
        raise ConfigError(f"{file} is a symlink: irkit never reads the record through one")
    return (f"the incident's {file}", parameters.load_file(file))


def check_not_symlink(root: Path) -> None:
    """The incidents folder itself: where the record lives is chosen with IRKIT_REPORTS (or the
    reports folder, which may be anywhere); a symlink planted inside it is not followed."""
    if root.is_symlink():
        raise ConfigError(
            f"{root} is a symlink: irkit never keeps incidents through one; set IRKIT_REPORTS "
            "to the folder that should hold the record"
        )


def incident_folders(root: Path) -> tuple[list[Path], list[str]]:
    """The incident folders under `root` (reports/incidents/), by name, and why each other entry
    there is not one (a symlink is never followed; a name that is not an id is skipped)."""
    check_not_symlink(root)
    if not root.exists():
        return [], []
    folders, problems = [], []
    for path in sorted(p for p in root.iterdir() if not p.name.startswith(".")):
        if path.is_symlink():
            problems.append(f"{path.name}: a symlink, not an incident folder; not followed")
        elif not path.is_dir():
            continue
        elif not schema.ID_PATTERN.fullmatch(path.name):
            problems.append(f"{path.name}: not an incident id; skipped")
        else:
            folders.append(path)
    return folders, problems


def numbered_notebooks(path: Path) -> list[Path]:
    """The incident's notebooks in run order (hidden partial files of running runs excluded)."""
    found = [(int(m.group(1)), p) for p in path.iterdir() if (m := NUMBERED.fullmatch(p.name))]
    return [p for _, p in sorted(found, key=lambda item: (item[0], item[1].name))]


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Serialise numbering among concurrent runs on this incident (a short critical section)."""
    try:
        fd = safefiles.open_lock(path / _LOCK)
    except safefiles.NotRead as exc:
        raise ConfigError(str(exc)) from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def publish_numbered(tmp: Path, path: Path, section: str) -> Path:
    """Give a finished run the next number in its incident: `03-db.ipynb`. What runs killed
    outright left behind is numbered first (it started earlier), so it is never lost."""
    with _locked(path):
        _adopt(path)
        final = _link_next(tmp, path, section)
    return final


def adopt_orphans(path: Path) -> list[Path]:
    """Number what runs killed outright left in the incident `path` (a worker lost mid-run),
    without waiting for the incident's next run."""
    with _locked(path):
        return _adopt(path)


def _adopt(path: Path) -> list[Path]:
    adopted = []
    for orphan in records.orphans(path):
        claimed = records.claim(orphan)
        if claimed is not None:
            adopted.append(_link_next(claimed, path, orphan.stem))
    return adopted


def _link_next(tmp: Path, path: Path, section: str) -> Path:
    taken = [int(m.group(1)) for p in path.iterdir() if (m := NUMBERED.fullmatch(p.name))]
    number = max(taken, default=0) + 1
    # The lock orders runs on one machine and on a shared folder whose locks reach every machine
    # (NFSv4); where they do not, a link never overwrites: a number taken meanwhile is passed by.
    for _ in range(1000):
        final = path / f"{number:02d}-{section}.ipynb"
        try:
            os.link(tmp, final)
        except FileExistsError:
            number += 1
            continue
        tmp.unlink()
        return final
    raise ConfigError(f"cannot number a run in {path}: 1000 numbers taken meanwhile")


def running_path(path: Path, section: str) -> Path:
    """Where a run writes while it goes on: hidden, so readers skip it."""
    return path / f".{section}.{records.owner()}.partial.ipynb"


@dataclass(frozen=True)
class Opened:
    incident_id: str
    folder: Path
    notebook: Path


def open_incident(
    title: str,
    *,
    category: str = "",
    severity: str = "",
    responder: str = "",
    detected_at: datetime | None = None,
    impact_started_at: str = "",
    detection_source: str = "",
    drill: bool = False,
    incident_id: str | None = None,
    parameters: Mapping[str, Any] | None = None,
    triage_values: Mapping[str, Any] | None = None,
    parameters_from: str = "",
    extra: Mapping[str, Any] | None = None,
) -> Opened:
    """Create the incident's folder, its opening record, and `01-triage.ipynb` ready to step
    through in JupyterLab (papermill's prepare-only: parameters in, nothing run). `parameters`
    (checked by the caller for every section, named by `parameters_from`) are kept with the
    incident for its later runs, and `triage_values`, what they give the triage section, are
    written into the prepared notebook. Everything is checked before the first write; a write
    that fails (a full disk) removes what it started, so the id stays free."""
    if incident_id is not None:
        schema.check_id(incident_id)  # an empty id too: only no id at all means "make one up"
    if not title.strip():
        raise ConfigError(
            "an incident needs a title: irkit incident open --title 'Login returns 500'"
        )
    if category:
        schema.check_choice("category", category, schema.CATEGORIES)
    if severity:
        schema.check_choice("severity", severity, schema.SEVERITIES)
    now = utc_now()
    detected = detected_at or now
    if detected > now + CLOCK_SKEW:
        raise ConfigError(
            f"detected at {schema.format_time(detected)} is in the future (now "
            f"{schema.format_time(now)}): give UTC, or add the zone, e.g. +01:00"
        )
    impact_started = schema.parse_time(
        schema.time_parameter("impact_started_at", impact_started_at)
    )
    if impact_started and impact_started > detected:
        raise ConfigError(
            f"impact started at {schema.format_time(impact_started)}, after it was detected "
            f"({schema.format_time(detected)}): check both times"
        )
    fields: dict[str, Any] = {
        "title": title.strip(),
        "status": "investigating",
        "detected_at": schema.format_time(detected),
        "drill": drill,
    }
    for name, value in (
        ("category", category),
        ("severity", severity),
        ("responder", responder),
        ("impact_started_at", schema.format_time(impact_started) if impact_started else ""),
        ("detection_source", detection_source),
    ):
        if value:
            fields[name] = value
    if severity:
        fields["severity_source"] = "responder"
    if parameters and parameters.get("environment"):
        fields["environment"] = str(parameters["environment"])
    for name, value in (extra or {}).items():
        if name not in schema.EXTRA_FIELDS:
            raise ValueError(f"{name} is not an incident field")
        fields[name] = value
    root = incidents_dir()
    check_not_symlink(root)
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot create the incidents folder {root}: {exc}") from None
    try:
        path = _new_folder(root, incident_id, title, detected)
    except OSError as exc:
        raise ConfigError(f"cannot create the incident's folder in {root}: {exc}") from None
    try:
        if parameters:
            _write_parameters(path, parameters, parameters_from)
        values = {**(triage_values or {}), "incident_id": path.name}
        return _write_opening(path, {"incident_id": path.name, **fields}, values, now)
    except BaseException as exc:
        # Only what this command created is there: the folder was new (mkdir claimed it).
        shutil.rmtree(path, ignore_errors=True)
        if isinstance(exc, OSError):
            raise ConfigError(
                f"could not write the incident record in {path}: {exc.strerror or exc}; "
                f"nothing was kept, and the id {path.name} is still free"
            ) from None
        raise


def _write_parameters(path: Path, values: Mapping[str, Any], source: str) -> None:
    import yaml

    header = (
        f"# The parameters this incident was opened with{f' ({source})' if source else ''}.\n"
        "# `irkit run SECTION --incident ID` starts from them; its own -f and -p win.\n"
    )
    text = header + yaml.safe_dump(dict(values), sort_keys=False, allow_unicode=True)
    safefiles.write_new(path / PARAMETERS, text.encode())


def _write_opening(
    path: Path, fields: dict[str, Any], values: dict[str, Any], now: datetime
) -> Opened:
    """The opening journal entries and the prepared triage notebook."""
    incident_id = path.name
    severity, responder = fields.get("severity"), fields.get("responder")
    # The journal is ordered by when things were written; the moments the responder gave are
    # events at their own times.
    opened = schema.format_time(now)
    events = [
        (fields.get("impact_started_at"), "impact", "impact started"),
        (
            fields["detected_at"],
            "detected",
            # How it was detected, only if the responder said: never an invented "alert".
            f"detected: {fields['detection_source']}"
            if fields.get("detection_source")
            else "detected",
        ),
        (
            opened,
            "declared",
            f"incident declared: {fields['title']}"
            + (f" ({severity})" if severity else "")
            + (f", responder {responder}" if responder else ""),
        ),
    ]
    entries: list[dict[str, Any]] = [{"at": opened, "incident": fields, "source": OPENER}]
    entries += [
        {
            "at": opened,
            "event": {
                "at": at,
                "kind": kind,
                "text": text,
                "source": OPENER,
                "id": f"{incident_id}-{kind}",
            },
            "source": OPENER,
        }
        for at, kind, text in events
        if at
    ]
    safefiles.write_new(path / JOURNAL, "".join(json.dumps(e) + "\n" for e in entries).encode())
    notebook = _prepare_triage(path, values, opened)
    return Opened(incident_id, path, notebook)


def _new_folder(root: Path, wanted: str | None, title: str, at: datetime) -> Path:
    if wanted is not None:
        path = root / schema.check_id(wanted)
        try:
            path.mkdir()
        except FileExistsError:
            raise ConfigError(
                f"incident {wanted!r} already exists; pick another id or continue it with: "
                f"irkit run SECTION --incident {wanted}"
            ) from None
        return path
    base = f"{at:%Y%m%d-%H%M}-{schema.slug(title)}"
    for n in range(1, 1000):
        path = root / (base if n == 1 else f"{base}-{n}")
        try:
            path.mkdir()
        except FileExistsError:
            continue
        return path
    raise ConfigError(f"too many incidents named {base}* in {root}")


def _prepare_triage(path: Path, values: dict[str, Any], prepared_at: str) -> Path:
    import nbformat
    import papermill

    from irkit.home import notebook_path

    tmp = running_path(path, "triage")
    papermill.execute_notebook(
        str(notebook_path("triage")),
        str(tmp),
        parameters=values,
        prepare_only=True,
        progress_bar=False,
        log_output=False,
    )
    nb = nbformat.read(tmp, as_version=4)
    nb.metadata["irkit"] = {"prepared_at": prepared_at, "incident_id": values["incident_id"]}
    nbformat.write(nb, tmp)
    return records.publish_exact(tmp, path / "01-triage.ipynb")
