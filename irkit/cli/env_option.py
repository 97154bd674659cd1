"""`--env NAME`: the environment's parameter file under the command's own -f and -p, and its
name stamped on every verdict and record. A command that only reads records (`incident list`,
`incident show`, `report monthly`) also takes an environment the records name, on a machine that
does not hold its parameter file."""

from __future__ import annotations

import argparse
from pathlib import Path

from irkit import environments
from irkit.errors import IrkitError


def apply(args: argparse.Namespace) -> None:
    """Put the environment's file under `args.files` and its name first in `args.pairs`; an
    environment neither on disk nor (for readers) in the records is a one-line error."""
    file = environments.existing_file(args.env)
    if file is None:
        recorded = recorded_environments(args) if getattr(args, "reads_records", False) else set()
        if args.env not in recorded:
            raise environments.unknown(args.env, recorded)
    # The lowest parameter file: -f files and -p values win over it.
    args.files = [*([file] if file else []), *getattr(args, "files", [])]
    # Stamped on every verdict and record of the run (a -p of its own still wins).
    args.pairs = [f"environment={args.env}", *getattr(args, "pairs", [])]


def recorded_environments(args: argparse.Namespace) -> set[str]:
    """The environments the records name: each health history (reports/health/NAME/) and each
    incident's (read from the parameters it was opened with), here and in --reports DIR."""
    from irkit.home import reports_dir
    from irkit.incident import store

    health = reports_dir() / "health"
    found = {p.name for p in health.iterdir() if p.is_dir()} if health.is_dir() else set()
    roots = [store.incidents_dir()]
    if getattr(args, "reports", None) is not None:
        roots += [args.reports / "incidents", args.reports]
    for root in filter(Path.is_dir, roots):
        for folder in store.incident_folders(root)[0]:
            try:
                kept = store.stored_parameters(folder)
            except IrkitError:
                continue  # the list or the analysis says what is wrong with it
            if kept is not None and isinstance(kept[1].get("environment"), str):
                found.add(kept[1]["environment"])
    return {name for name in found if environments.NAME_PATTERN.fullmatch(name)}
