"""Parameters: declared by each notebook's `parameters` cell, checked before any probe runs.

papermill only warns about a parameter the notebook does not declare and never checks types, so a
typo silently runs the notebook on its defaults. irkit refuses both, in the CLI before a kernel
starts and again inside the notebook (for plain `papermill` runs), with the same rules:

- a parameter file is a YAML mapping; its top-level keys apply to every section that declares them
  and must be declared by at least one; `sections: {db: {...}}` holds keys for one section only;
- `-p name=value` must name a parameter of the section being run;
- values must match the declared type (`str`, `int`, `float`, `bool`, `list[str]`); an int is
  accepted for a float, nan and inf are not; a flag may also be spelled true/false, yes/no,
  on/off or 1/0 in any case (text is all papermill's `-p` passes for most of them);
- numbers must lie in their range and action parameters must name real actions and pids
  (`check_values`, see `irkit.bounds` and `irkit.actions.catalogue`).
"""

from __future__ import annotations

import ast
import difflib
import functools
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from irkit import bounds, environments
from irkit.errors import ConfigError, ParameterError

SECTIONS_KEY = "sections"

# The spellings of a flag that arrive as text: `-p notify=yes` here, `papermill -p notify true`
# (papermill turns only `True`/`False` into booleans, and `1`/`0` into integers), a YAML `"on"`.
# Nothing else is guessed at: `notify=maybe` is refused.
FLAG_WORDS = {
    **dict.fromkeys(("true", "yes", "on", "1"), True),
    **dict.fromkeys(("false", "no", "off", "0"), False),
}


@dataclass(frozen=True)
class Declared:
    name: str
    type: str
    default: Any


def declared_in_notebook(path: Path) -> dict[str, Declared]:
    """The parameters a notebook declares: annotated literals in its cell tagged `parameters`."""
    try:
        nb = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read notebook {path}: {exc}") from None
    for cell in nb.get("cells", []):
        if cell.get("cell_type") == "code" and "parameters" in cell.get("metadata", {}).get(
            "tags", []
        ):
            source = cell["source"]
            return declared_in_source("".join(source) if isinstance(source, list) else source)
    return {}


@functools.lru_cache(maxsize=1)
def known() -> dict[str, dict[str, Declared]]:
    """Every section's declared parameters, read from the kit's notebooks."""
    from irkit.home import notebooks_dir

    return {
        path.stem: declared_in_notebook(path) for path in sorted(notebooks_dir().glob("*.ipynb"))
    }


def declared_in_source(source: str) -> dict[str, Declared]:
    declared: dict[str, Declared] = {}
    for node in ast.parse(source).body:
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            default = ast.literal_eval(node.value) if node.value is not None else None
            declared[node.target.id] = Declared(
                node.target.id, ast.unparse(node.annotation), default
            )
    return declared


def type_name(annotation: Any) -> str:
    """`int` → "int", `list[str]` → "list[str]": the same spelling papermill reports."""
    if isinstance(annotation, str):
        return annotation
    if isinstance(annotation, type):
        return annotation.__name__
    return str(annotation)


def check_value(name: str, declared_type: str, value: Any) -> Any:
    """Return the value in its declared type, or raise ParameterError saying what was expected."""
    ok: bool
    if declared_type == "str":
        ok = isinstance(value, str)
    elif declared_type == "bool":
        value = _flag(value)
        ok = isinstance(value, bool)
    elif declared_type == "int":
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif declared_type == "float":
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        if ok:
            try:
                value = bounds.finite(name, float(value))
            except OverflowError:  # an int too large for a float
                ok = False
    elif declared_type == "list[str]":
        ok = isinstance(value, list) and all(isinstance(v, str) for v in value)
    else:
        raise ParameterError(f"parameter {name} has an unsupported type {declared_type!r}")
    if not ok:
        raise ParameterError(
            f"parameter {name} must be {_a(declared_type)}, "
            f"got {type(value).__name__} {_shown(value)}"
        )
    return value


def _flag(value: Any) -> Any:
    """A flag spelled as text (or papermill's 1 and 0) as a bool; anything else as it came."""
    if isinstance(value, str):
        return FLAG_WORDS.get(value.strip().lower(), value)
    if type(value) is int and value in (0, 1):
        return bool(value)
    return value


def _shown(value: Any) -> str:
    """A wrong value quoted in a one-line message: its start, when it is long."""
    text = repr(value) if not isinstance(value, int) or abs(value) < 10**30 else "a huge number"
    return text if len(text) <= 80 else f"{text[:77]}..."


def parse_cli_value(name: str, declared_type: str, raw: str) -> Any:
    """`-p` values arrive as text; read them in the declared type."""
    try:
        if declared_type == "str":
            return raw
        if declared_type == "int":
            return int(raw)
        if declared_type == "float":
            return check_value(name, declared_type, float(raw))
        if declared_type == "bool":
            flag = _flag(raw)
            if isinstance(flag, bool):
                return flag
            raise ValueError(raw)
        if declared_type == "list[str]":
            if raw.lstrip().startswith("["):
                return check_value(name, declared_type, _yaml_value(raw))
            return [item.strip() for item in raw.split(",") if item.strip()]
    except ValueError:
        pass
    else:
        raise ParameterError(f"parameter {name} has an unsupported type {declared_type!r}")
    raise ParameterError(f"parameter {name} must be {_a(declared_type)}, got {_shown(raw)}")


def _yaml_value(raw: str) -> Any:
    import yaml

    try:
        return yaml.safe_load(raw)
    except yaml.YAMLError:
        raise ValueError(raw) from None


def load_file(path: Path) -> dict[str, Any]:
    """Read a YAML parameter file; every way it can be wrong is a ConfigError naming the file."""
    import yaml  # only here: a notebook's kernel never reads parameter files

    text = bounds.read_text(path, "parameter file", bounds.PARAMETER_FILE_MAX_BYTES)
    try:
        data = yaml.safe_load(text)
    except ValueError:  # an integer of thousands of digits: Python refuses to read it
        raise ConfigError(
            f"parameter file {path} holds a number of thousands of digits, which no parameter takes"
        ) from None
    except yaml.YAMLError as exc:
        where = ""
        mark = getattr(exc, "problem_mark", None)
        if mark is not None:
            where = f" at line {mark.line + 1}, column {mark.column + 1}"
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise ConfigError(f"parameter file {path} is not valid YAML{where}: {problem}") from None
    if data is None:
        return {}
    if not isinstance(data, dict) or not all(isinstance(k, str) for k in data):
        raise ConfigError(
            f"parameter file {path} must be a mapping of parameter names to values, "
            f"not {type(data).__name__}"
        )
    sections = data.get(SECTIONS_KEY, {})
    if not isinstance(sections, dict) or not all(isinstance(v, dict) for v in sections.values()):
        raise ConfigError(
            f"parameter file {path}: '{SECTIONS_KEY}' must map section names to mappings, "
            "e.g. sections: {db: {long_query_warn_s: 2}}"
        )
    return data


def for_section(
    section: str,
    data: Mapping[str, Any],
    declared: Mapping[str, str],
    known: Mapping[str, Iterable[str]],
    source: str,
) -> dict[str, Any]:
    """The values a parameter mapping gives one section.

    `declared` maps this section's parameter names to types; `known` maps every section to its
    parameter names, so that a shared file may carry keys for other sections but not typos."""
    every_name = {name for names in known.values() for name in names}
    values: dict[str, Any] = {}
    for name, value in data.items():
        if name == SECTIONS_KEY:
            continue
        if name not in every_name:
            raise _unknown("parameter", name, every_name, f"in {source}", "no section declares it")
        if name in declared:
            values[name] = _checked(source, name, declared[name], value)
    for other, overrides in dict(data.get(SECTIONS_KEY) or {}).items():
        if other not in known:
            where = f"in {source} under '{SECTIONS_KEY}'"
            raise _unknown("section", other, set(known), where, "there is no notebook of that name")
        if other != section:
            continue
        for name, value in overrides.items():
            if name not in declared:
                why = f"section {section} has none"
                raise _unknown("parameter", name, set(declared), f"in {source}", why)
            values[name] = _checked(source, name, declared[name], value)
    return values


def check_values(values: Mapping[str, Any], declared: Mapping[str, Declared]) -> None:
    """What a value cannot be told alone: its range, its pair, the actions it names. `values`
    are the ones given; the rest take their declared defaults."""
    bounds.check(values, {name: d.type for name, d in declared.items()})
    check_threshold_pairs(values, declared)
    if values.get("environment"):
        # A folder name too (the health reports' history): never a path.
        environments.check_name(str(values["environment"]))
    from irkit.actions import catalogue

    catalogue.check_parameters({**{n: d.default for n, d in declared.items()}, **values})


def check_threshold_pairs(values: Mapping[str, Any], declared: Mapping[str, Declared]) -> None:
    """A WARN threshold beyond its CRIT one would never fire as meant: refuse it before any
    probe runs. Pairs are found by name (`…_warn…` and `…_crit…`); which way is worse is read
    from their defaults (for available memory, lower is worse)."""
    for name, warn_decl in declared.items():
        pair = name.replace("_warn", "_crit", 1)
        if "_warn" not in name or pair not in declared:
            continue
        crit_decl = declared[pair]
        warn = values.get(name, warn_decl.default)
        crit = values.get(pair, crit_decl.default)
        higher_is_worse = warn_decl.default <= crit_decl.default
        if (warn > crit) if higher_is_worse else (warn < crit):
            side = "above" if higher_is_worse else "below"
            raise ParameterError(
                f"{name} ({warn:g}) is {side} {pair} ({crit:g}): the WARN threshold must come "
                "before the CRIT one"
            )


def _checked(source: str, name: str, declared_type: str, value: Any) -> Any:
    try:
        return check_value(name, declared_type, value)
    except ParameterError as exc:
        raise ParameterError(f"{source}: {exc}") from None


def from_cli(section: str, pairs: Iterable[str], declared: Mapping[str, str]) -> dict[str, Any]:
    return _from_pairs(pairs, declared, f"section {section} has none")


def from_cli_for_any(
    pairs: Iterable[str], known: Mapping[str, Mapping[str, Declared]]
) -> dict[str, Any]:
    """`-p` values for a command that serves several sections (an incident's runs): each must
    name a parameter some section declares, and is read in its declared type."""
    types = {name: d.type for declared in known.values() for name, d in declared.items()}
    return _from_pairs(pairs, types, "no section declares it")


def _from_pairs(pairs: Iterable[str], types: Mapping[str, str], nowhere: str) -> dict[str, Any]:
    """`-p name=value` pairs, each read in the type `types` gives its name; `nowhere` says where
    an unknown name was looked for."""
    values: dict[str, Any] = {}
    for pair in pairs:
        name, sep, raw = pair.partition("=")
        name = name.strip()
        if not sep or not name:
            raise ParameterError(f"-p expects name=value, got {pair!r}")
        if name not in types:
            raise _unknown("parameter", name, set(types), "", nowhere)
        values[name] = parse_cli_value(name, types[name], raw)
    return values


def stacked(layers: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Parameter mappings stacked into one that gives every section what the layers in turn
    would: a later top-level value beats an earlier one and an earlier `sections:` entry."""
    merged: dict[str, Any] = {}
    sections: dict[str, dict[str, Any]] = {}
    for layer in layers:
        for name, value in layer.items():
            if name == SECTIONS_KEY:
                continue
            merged[name] = value
            for overrides in sections.values():
                overrides.pop(name, None)
        for section, overrides in dict(layer.get(SECTIONS_KEY) or {}).items():
            sections.setdefault(section, {}).update(overrides)
    kept = {section: overrides for section, overrides in sections.items() if overrides}
    return {**merged, SECTIONS_KEY: kept} if kept else merged


def _unknown(noun: str, name: str, candidates: set[str], where: str, why: str) -> ParameterError:
    close = difflib.get_close_matches(name, sorted(candidates), n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    where = f" {where}" if where else ""
    return ParameterError(f"unknown {noun} {name!r}{where} ({why}){hint}")


def _a(type_: str) -> str:
    return {
        "str": "a string",
        "int": "an integer",
        "float": "a number",
        "bool": "true or false (or yes/no, on/off, 1/0)",
        "list[str]": "a list of strings",
    }.get(type_, type_)
