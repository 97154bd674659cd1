"""Named environments: `--env prod` is the parameter file `parameters/prod.yaml` of the kit,
stacked under the `-f` files and `-p` values of the same command."""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

from irkit.errors import ConfigError, ParameterError
from irkit.home import kit_home

SUFFIX = ".yaml"
# A name, never a path: `--env ../x` must not read a file outside parameters/.
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,80}")


def parameters_dir() -> Path:
    return kit_home() / "parameters"


def names() -> list[str]:
    """The environments there are: each `parameters/NAME.yaml`, examples left out."""
    return sorted(
        p.name.removesuffix(SUFFIX)
        for p in parameters_dir().glob(f"*{SUFFIX}")
        if not p.name.endswith(f".example{SUFFIX}")
    )


def check_name(name: str) -> str:
    """An environment's name as a run is stamped with it: letters, digits, '.', '_', '-'."""
    if not NAME_PATTERN.fullmatch(name):
        raise ParameterError(
            f"environment {name[:40]!r} is not a name: use letters, digits, '.', '_' and '-', "
            "starting with a letter or digit, at most 81 characters"
        )
    return name


def parameter_file(name: str) -> Path:
    """The parameter file of environment `name`; an unknown name is refused with the known ones."""
    path = existing_file(name)
    if path is None:
        raise unknown(name)
    return path


def existing_file(name: str) -> Path | None:
    """`parameters/NAME.yaml` if `name` is an environment's name and the file is there."""
    path = parameters_dir() / f"{name}{SUFFIX}"
    if NAME_PATTERN.fullmatch(name) and not name.endswith(".example") and path.is_file():
        return path
    return None


def unknown(name: str, recorded: Iterable[str] = ()) -> ConfigError:
    """The one-line error of an environment that is neither a parameter file nor, for the
    commands that only read records, the environment of any record (`recorded`)."""
    known = ", ".join(names()) or "none"
    seen = sorted(set(recorded) - set(names()))
    also = f"; in the records also: {', '.join(seen)}" if seen else ""
    return ConfigError(
        f"unknown environment {name!r}: --env NAME reads parameters/NAME{SUFFIX} "
        f"(there: {known}{also}); for production, copy parameters/prod.example{SUFFIX} "
        f"to parameters/prod{SUFFIX} and edit it"
    )
