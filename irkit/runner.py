"""Run a section notebook with papermill: parameters checked first, the record kept always."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jupyter_client.kernelspec import NoSuchKernel

from irkit import bounds, interrupt, parameters, records, target_builders
from irkit.catalogue import parameters as catalogue
from irkit.errors import ConfigError
from irkit.home import kit_home, notebook_path, reports_dir
from irkit.secrets import redact

KERNEL = "python3"
CELL_TIMEOUT_S = bounds.CELL_TIMEOUT_S
# What a section's kernel loads while it starts, before its first cell: a module, or
# "module:function" to import it and call the function. The health report's starts loading the
# client libraries of every check then (a seventh of a second earlier than its first cell would).
PRELOAD = {"health": "irkit.health:warm_up"}


@dataclass(frozen=True)
class Plan:
    """A section run, fully checked: nothing about it can fail as a user error any more."""

    section: str
    notebook: Path
    values: dict[str, Any]
    output: Path
    exact_output: bool
    # The incident folder the run joins as its next numbered notebook.
    incident: Path | None = None


def _preload(section: str) -> list[str]:
    """The kernel option that loads the section's module at start-up (and calls its function, if
    named), leaving no name behind in the notebook's namespace."""
    preload = PRELOAD.get(section)
    if preload is None:
        return []
    module, _, function = preload.partition(":")
    call = f".{function}()" if function else ""
    # One item per option: traitlets deprecates a whole list written as one value.
    line = f"import importlib; importlib.import_module({module!r}){call}; del importlib"
    return [f"--IPKernelApp.exec_lines={line}"]


def plan(
    section: str,
    files: Sequence[Path] = (),
    pairs: Sequence[str] = (),
    output: Path | None = None,
    incident: str | None = None,
    *,
    folder: Path | None = None,
) -> Plan:
    """Check everything a user can get wrong before a kernel starts or a file is written."""
    notebook = notebook_path(section)
    declared = parameters.known()[section]
    layers = [(str(file), parameters.load_file(file)) for file in files]
    values = section_values(section, layers, pairs)
    if incident is None and values.get("incident_id"):
        incident = str(values["incident_id"])  # -p incident_id=… means --incident …
    if incident is not None:
        from irkit.incident import store

        folder = store.folder(incident)
        kept = store.stored_parameters(folder)
        if kept is not None:
            # The parameters the incident was opened with, under this run's own -f and -p.
            values = section_values(section, [kept, *layers], pairs)
            opened_in, named = kept[1].get("environment"), values.get("environment")
            if opened_in and named != opened_in:
                # Another environment's targets would be checked and filed in this incident.
                raise ConfigError(
                    f"incident {incident} is of environment {opened_in!r}, not {named!r}: "
                    f"run it with --env {opened_in} or without --env"
                )
        if "incident_id" not in declared:
            raise ConfigError(f"the {section} notebook does not take part in incidents")
        if values.get("incident_id", incident) != incident:
            raise ConfigError(
                f"incident_id={values['incident_id']!r} contradicts --incident {incident}"
            )
        if output is not None:
            raise ConfigError(
                "--output and --incident exclude each other: an incident's "
                "notebooks are numbered in its folder"
            )
        values["incident_id"] = incident
        return Plan(section, notebook, values, store.running_path(folder, section), False, folder)
    if output is None:
        folder = folder or reports_dir() / "runs"
        wanted = folder / f"{records.stamp()}-{section}.ipynb"
        exact = False
    else:
        wanted = exact_output(output)
        folder = wanted.parent
        exact = True
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot create the report folder {folder}: {exc}") from None
    return Plan(section, notebook, values, wanted, exact)


def section_values(
    section: str, layers: Sequence[tuple[str, Mapping[str, Any]]], pairs: Sequence[str] = ()
) -> dict[str, Any]:
    """The values a section is given by parameter mappings (each named by where it came from,
    later ones winning) and `-p` pairs, checked: names, types, ranges, the actions named."""
    known = parameters.known()
    declared_full = known[section]
    declared = {name: d.type for name, d in declared_full.items()}
    values: dict[str, Any] = {}
    for source, data in layers:
        values.update(parameters.for_section(section, data, declared, known, source))
    values.update(parameters.from_cli(section, pairs, declared))
    parameters.check_values(values, declared_full)
    # Building the targets refuses passwords in URLs and malformed URLs, before papermill would
    # write them into the notebook.
    target_builders.check_all(values, declared)
    return values


def incident_parameters(files: Sequence[Path], pairs: Sequence[str]) -> dict[str, Any]:
    """One parameter mapping for every run of an incident, from the `-f` files and `-p` pairs it
    is opened with: checked for every section as its run would check it, so that nothing is
    written when any is wrong (and no password can be kept: each is refused)."""
    known = parameters.known()
    layers = [(str(file), parameters.load_file(file)) for file in files]
    layers.append(("-p", parameters.from_cli_for_any(pairs, known)))
    for where, data in layers:
        for name, _ in _named(data):
            _not_one_runs(where, name)
    for section in known:
        section_values(section, layers)  # a password in a URL is refused here, by name
    for where, data in layers:
        for name, value in _named(data):
            if redact(value) != value:
                raise ConfigError(
                    f"{where}: {name} holds a secret (a password, token or webhook this "
                    "process knows); secrets come only from the environment"
                )
    return parameters.stacked(data for _, data in layers)


def _named(data: Mapping[str, Any]) -> list[tuple[str, Any]]:
    """Every name and value of a parameter layer, its `sections:` overrides included."""
    sections = data.get(parameters.SECTIONS_KEY) or {}
    named = [(name, value) for name, value in data.items() if name != parameters.SECTIONS_KEY]
    return named + [(n, v) for values in sections.values() for n, v in dict(values).items()]


def _not_one_runs(where: str, name: str) -> None:
    """What is kept for every later run describes the deployment, not one run's decision (an
    action allowed, a resolution). (Nor a secret: see `incident_parameters`.)"""
    if name == "incident_id":
        raise ConfigError(f"{where}: incident_id is the incident's own id (--id), not kept")
    if name in catalogue.PER_RUN:
        raise ConfigError(
            f"{where}: {name} is one run's decision, never kept for later runs; give it to "
            f"the run that needs it (irkit run SECTION --incident ID -p {name}=…)"
        )


def exact_output(output: Path) -> Path:
    """Where `--output` puts the notebook, refused before the run for every way the final
    write would fail or overwrite: the run's probes would be spent and the record left hidden."""
    if output.is_dir():
        raise ConfigError(
            f"--output {output} is a folder: give the notebook's file name in it, "
            f"e.g. {output / 'run.ipynb'}"
        )
    wanted = output if output.suffix == ".ipynb" else output.with_suffix(".ipynb")
    if wanted.is_symlink():
        raise ConfigError(
            f"--output {wanted} is a symbolic link; irkit writes reports only to "
            "a new file: give another name"
        )
    if wanted.exists():
        raise ConfigError(f"{wanted} already exists; irkit never overwrites a report")
    folder = wanted.parent
    if not folder.is_dir():
        # A typo in a folder name would otherwise put the report where nobody looks for it.
        raise ConfigError(
            f"--output {wanted}: the folder {folder} does not exist; create it "
            "first, or leave out --output to write into reports/runs/"
        )
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ConfigError(f"--output {wanted}: cannot write in the folder {folder}")
    return wanted


def execute(
    run: Plan,
    *,
    meanwhile: Callable[[], object] | None = None,
    on_output: Callable[[Mapping[str, Any]], object] | None = None,
) -> records.Record:
    """Execute the planned run. A notebook that raised is kept and read as incomplete; an
    interrupted run keeps what was written so far. `meanwhile` is called once papermill is
    loaded, as the kernel starts: for work on a thread of its own (after the import, which it
    would otherwise slow down by waiting on the same import locks). `on_output` is called with
    each output of the notebook the moment the kernel sends it (irkit.cli.stream shows them)."""
    # papermill saves the whole notebook at the start and end of every cell, and nbformat
    # validates each save; its fastjsonschema validator does that in half the time.
    os.environ.setdefault("NBFORMAT_VALIDATOR", "fastjsonschema")
    import papermill

    if meanwhile is not None:
        meanwhile()

    from irkit import engine

    tmp = run.output if run.incident else records.temporary_path(run.output)
    # papermill logs each cell at INFO; the CLI shows its own summary instead.
    logging.getLogger("papermill").setLevel(logging.WARNING)
    failure = ""
    # The notebook as it ran (papermill's manager), and a write that failed (a full disk).
    kept: list[Any] = []
    write_error: OSError | None = None
    try:
        papermill.execute_notebook(
            str(run.notebook),
            str(tmp),
            parameters=run.values,
            kernel_name=KERNEL,
            engine_name=engine.register(),
            # What a run shows as it goes is its outputs (`on_output`), not a bar of cells.
            progress_bar=False,
            cwd=str(kit_home()),
            kernel_manager_class=engine.KernelManager,
            # The kernel's own start-up warnings are noise on a responder's terminal; its errors
            # still show.
            extra_arguments=["--IPKernelApp.log_level=ERROR", *_preload(run.section)],
            # Every probe has its own timeouts; this bounds a run even if one of them fails.
            execution_timeout=CELL_TIMEOUT_S,
            irkit_kept=kept,
            irkit_on_output=on_output,
        )
    except papermill.PapermillExecutionError:
        pass  # the notebook is written with the error in it; read() marks it incomplete
    except NoSuchKernel:
        raise ConfigError(
            f"no Jupyter kernel named {KERNEL!r}: install ipykernel in this environment "
            "(./kit demo and ./kit test set it up)"
        ) from None
    except Exception as exc:
        # The kernel died or a cell outran the timeout: keep what was written, say why.
        failure = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc) else ''}"
        if isinstance(exc, OSError) and exc.errno is not None:
            write_error = exc
    finally:
        if kept and (kept[0].unsaved or write_error):
            # A save failed on the way: the file may be stale or half written. The whole
            # notebook is in memory; if it cannot be written either, nothing half is left.
            unsaved = records.save_whole(kept[0].nb, tmp)
            # A stop (SIGTERM, Ctrl-C) already unwinding stays what it is: "interrupted".
            if unsaved is not None and not isinstance(sys.exc_info()[1], KeyboardInterrupt):
                raise records.RecordNotWritten(records.from_notebook(tmp, kept[0].nb), unsaved)
        # Only a file this run wrote is its record: never another run's of the same name.
        final = None
        if tmp.exists():
            final = _publish(run, tmp)
            stopping = sys.exc_info()[1]
            if isinstance(stopping, KeyboardInterrupt):
                # A run stopped (SIGTERM, Ctrl-C) still says where its record is.
                raise interrupt.Stopped(final) from stopping
    if final is None:
        raise ConfigError(f"the notebook did not start ({failure or 'no output was written'})")
    record = records.read(final)
    if failure:
        record.complete = False
        record.error = record.error or failure
    return record


def _publish(run: Plan, tmp: Path) -> Path:
    if run.incident is not None:
        from irkit.incident import store

        return store.publish_numbered(tmp, run.incident, run.section)
    if run.exact_output:
        return records.publish_exact(tmp, run.output)
    # What runs killed outright left in this folder goes out first: it started earlier.
    records.adopt_orphans(run.output.parent)
    return records.publish(tmp, run.output)
