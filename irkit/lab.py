"""`./kit lab --env NAME` / `-f FILE` / `-p NAME=VALUE`: the section notebooks prepared for a
deployment, then JupyterLab on them.

Each notebook gets the parameters written into its injected-parameters cell, as papermill does
(nothing is run), in a new folder `reports/lab/<UTC time>-<env>/`: opened there, the notebooks
reach the deployment with no environment variable but the passwords. The parameters are checked
for every section first, as `irkit run` checks them; nothing is written when one is wrong."""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

from irkit import environments, records, runner
from irkit.errors import ConfigError, IrkitError
from irkit.home import kit_home, notebook_path, reports_dir
from irkit.secrets import redact

# The notebooks a responder steps through outside an incident (an incident's come prepared by
# `irkit incident open`).
SECTIONS = ("db", "redis", "celery", "disk", "alerts", "health")


def parse(argv: Sequence[str]) -> tuple[argparse.Namespace, list[str]]:
    """The kit's own options; the rest is JupyterLab's."""
    parser = argparse.ArgumentParser(prog="./kit lab", add_help=False)
    parser.add_argument("--env", metavar="NAME")
    parser.add_argument("-f", "--file", dest="files", action="append", type=Path, default=[])
    parser.add_argument("-p", "--parameter", dest="pairs", action="append", default=[])
    return parser.parse_known_args(list(argv))


def prepare(files: Sequence[Path], pairs: Sequence[str], name: str = "prepared") -> Path:
    """Write every section notebook with its parameters in, into a new folder; return it."""
    import papermill

    kept = runner.incident_parameters(files, pairs)
    values = {s: runner.section_values(s, [("the parameters", kept)]) for s in SECTIONS}
    folder = _new_folder(reports_dir() / "lab", f"{records.stamp()}-{name}")
    try:
        for section in SECTIONS:
            papermill.execute_notebook(
                str(notebook_path(section)),
                str(folder / f"{section}.ipynb"),
                parameters=values[section],
                prepare_only=True,
                progress_bar=False,
                log_output=False,
            )
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return folder


def _new_folder(parent: Path, name: str) -> Path:
    """A folder of its own: a second preparation in the same second never writes into the
    first (`-2`, `-3`, … as the reports are named)."""
    parent.mkdir(parents=True, exist_ok=True)
    for n in range(1, 1000):
        folder = parent / (name if n == 1 else f"{name}-{n}")
        try:
            folder.mkdir()
        except FileExistsError:
            continue
        return folder
    raise ConfigError(f"no free folder name for {name} in {parent}")


def main(argv: Sequence[str]) -> int:
    options, rest = parse(argv)
    folder: Path | None = None
    try:
        files = list(options.files)
        if options.env:
            files.insert(0, environments.parameter_file(options.env))
        if files or options.pairs:
            folder = prepare(files, options.pairs, options.env or "prepared")
    except IrkitError as exc:
        print(f"kit: {redact(str(exc))}", file=sys.stderr)
        return 3
    except OSError as exc:  # a read-only or full reports folder
        where = exc.filename or reports_dir()
        print(f"kit: cannot prepare the notebooks in {where}: {exc.strerror}", file=sys.stderr)
        return 3
    jupyter = str(Path(sys.executable).parent / "jupyter")
    opening = []
    if folder is not None:
        print(f"kit: the section notebooks, prepared: {folder}")
        try:
            where = folder.relative_to(kit_home())
            opening = [f"--ServerApp.default_url=/lab/tree/{where}"]
        except ValueError:  # reports kept outside the kit (IRKIT_REPORTS): serve them from there
            opening = [f"--ServerApp.root_dir={folder}"]
    # JupyterLab takes this process over, as the exec in ./kit did before.
    os.execv(jupyter, [jupyter, "lab", *opening, *rest])  # noqa: S606
    return 0  # not reached


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
