"""Run a section notebook with papermill: parameters checked first, the record kept always."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from irkit import parameters, reports, targets
from irkit.errors import ConfigError
from irkit.home import kit_home, notebook_path, reports_dir
from irkit.section import known_parameters

KERNEL = "python3"


@dataclass(frozen=True)
class Plan:
    """A section run, fully checked: nothing about it can fail as a user error any more."""

    section: str
    notebook: Path
    values: dict[str, Any]
    output: Path
    exact_output: bool


def plan(
    section: str,
    files: Sequence[Path] = (),
    pairs: Sequence[str] = (),
    output: Path | None = None,
) -> Plan:
    """Check everything a user can get wrong before a kernel starts or a file is written."""
    notebook = notebook_path(section)
    declared = {name: d.type for name, d in parameters.declared_in_notebook(notebook).items()}
    known = known_parameters()
    values: dict[str, Any] = {}
    for file in files:
        data = parameters.load_file(file)
        values.update(parameters.for_section(section, data, declared, known, str(file)))
    values.update(parameters.from_cli(section, pairs, declared))
    # Building the targets refuses passwords in URLs and malformed URLs, before papermill would
    # write them into the notebook.
    if "redis_url" in declared:
        targets.redis_target(values)
    if "celery_broker_url" in declared:
        targets.celery_target(values)
    if output is None:
        folder = reports_dir() / "runs"
        wanted = folder / f"{reports.stamp()}-{section}.ipynb"
        exact = False
    else:
        wanted = output if output.suffix == ".ipynb" else output.with_suffix(".ipynb")
        if wanted.exists():
            raise ConfigError(f"{wanted} already exists; irkit never overwrites a report")
        folder = wanted.parent
        exact = True
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot create the report folder {folder}: {exc}") from None
    return Plan(section, notebook, values, wanted, exact)


def execute(run: Plan, *, progress: bool = False) -> reports.Record:
    """Execute the planned run. A notebook that raised is kept and read as incomplete; an
    interrupted run keeps what was written so far."""
    import papermill

    tmp = reports.temporary_path(run.output)
    # papermill logs each cell at INFO; the CLI shows its own summary instead.
    logging.getLogger("papermill").setLevel(logging.WARNING)
    try:
        papermill.execute_notebook(
            str(run.notebook),
            str(tmp),
            parameters=run.values,
            kernel_name=KERNEL,
            progress_bar=progress,
            cwd=str(kit_home()),
            # The kernel's own start-up warnings (plain-TCP transport on loopback) are noise on a
            # responder's terminal; its errors still show.
            extra_arguments=["--IPKernelApp.log_level=ERROR"],
        )
    except papermill.PapermillExecutionError:
        pass  # the notebook is written with the error in it; read() marks it incomplete
    finally:
        if tmp.exists():
            final = (reports.publish_exact if run.exact_output else reports.publish)(
                tmp, run.output
            )
        else:
            final = run.output
    return reports.read(final)


def write_html(notebook: Path) -> Path:
    """An HTML copy beside the notebook, for people without Jupyter."""
    import nbformat
    from nbconvert import HTMLExporter

    body, _ = HTMLExporter().from_notebook_node(nbformat.read(notebook, as_version=4))
    return reports.write_text_atomically(notebook.with_suffix(".html"), body)
