"""A parameter is declared once (irkit/catalogue/parameters.py): the notebooks' cells are generated
from it, and no other place in the kit writes its default again."""

from __future__ import annotations

import ast
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from irkit import generate
from irkit.catalogue import cells, parameters
from tests.helpers import ROOT

DECLARATIONS = ROOT / "irkit" / "catalogue" / "parameters.py"

# Keyword defaults that look like a parameter's but are not one (same name ending, same value).
NOT_A_PARAMETER = {
    # the deployed repository's git log has no parameter of its own: a fixed, short bound
    ("irkit/targets.py", "timeout_s"),
    # the practice stack's own worker listens on Celery's default queue
    ("irkit/sandbox/worker.py", "queues"),
}


def literal(node: ast.expr | None) -> tuple[bool, Any]:
    try:
        return True, ast.literal_eval(node) if node is not None else None
    except ValueError:
        return False, None


def same(a: Any, b: Any) -> bool:
    a = list(a) if isinstance(a, tuple) else a
    b = list(b) if isinstance(b, tuple) else b
    return (type(a) is type(b) and a == b) or (isinstance(a, int | float) and a == b and a != 0)


def written_again() -> list[str]:
    """Places in irkit/ that write a declared default a second time: a keyword default or a
    dataclass field named like a parameter (its name ends the parameter's) with the same value,
    or a `.get("parameter", value)`-style call giving one."""
    found = []
    by_name = parameters.BY_NAME
    for path in sorted((ROOT / "irkit").rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        if path == DECLARATIONS or "/sandbox/himalytix/" in rel:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            pairs: list[tuple[str, ast.expr | None]] = []
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                args = node.args
                positional = args.posonlyargs + args.args
                pairs += zip(
                    [a.arg for a in positional[len(positional) - len(args.defaults) :]],
                    args.defaults,
                    strict=True,
                )
                pairs += [
                    (a.arg, d)
                    for a, d in zip(args.kwonlyargs, args.kw_defaults, strict=True)
                    if d is not None
                ]
            elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
                pairs.append((node.target.id, node.value))
            elif isinstance(node, ast.Call):
                for first, second in zip(node.args, node.args[1:], strict=False):
                    if (
                        isinstance(first, ast.Constant)
                        and first.value in by_name
                        and isinstance(second, ast.Constant)
                        and second.value not in ("", 0, False)
                        and same(by_name[first.value].default, second.value)
                    ):
                        found.append(f"{rel}:{node.lineno}: {first.value} given {second.value!r}")
            for name, value in pairs:
                if value is None or (rel, name) in NOT_A_PARAMETER:
                    continue
                ok, value = literal(value)
                if not ok or value in (None, "", (), [], False, True, 0):
                    continue
                for parameter in by_name.values():
                    if parameter.name.endswith(name) and same(parameter.default, value):
                        found.append(
                            f"{rel}:{node.lineno}: {name}={value!r} repeats {parameter.name}"
                        )
    return found


def test_no_default_is_written_twice() -> None:
    assert written_again() == []


def test_every_parameter_of_every_notebook_is_generated_from_its_declaration() -> None:
    assert cells.stale(ROOT / "notebooks") == []
    for section in cells.LAYOUTS:
        for parameter in cells.declared_in(section):
            assert parameters.get(parameter.name) is parameter


def test_no_other_cell_of_a_notebook_sets_a_parameter() -> None:
    """A default set again further down a notebook would silently win over the declaration."""
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        for cell in json.loads(path.read_text())["cells"]:
            tags = cell.get("metadata", {}).get("tags", [])
            if cell["cell_type"] != "code" or "parameters" in tags:
                continue
            for node in ast.walk(ast.parse("".join(cell["source"]))):
                if isinstance(node, ast.Assign | ast.AnnAssign):
                    targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                    names = {t.id for t in targets if isinstance(t, ast.Name)}
                    assert not names & set(parameters.BY_NAME), (path.stem, names)


def test_each_declaration_is_complete() -> None:
    for parameter in parameters.BY_NAME.values():
        assert parameter.type in parameters.TYPES, parameter.name
        assert parameter.help, f"{parameter.name} has no help"
        if parameter.type in ("int", "float"):
            bound = parameter.range
            assert bound is not None, f"{parameter.name} has no range"
            assert bound.admits(parameter.default), parameter.name


def test_every_declared_parameter_is_used_by_a_notebook() -> None:
    used = {p.name for section in cells.LAYOUTS for p in cells.declared_in(section)}
    assert used == set(parameters.BY_NAME)


@pytest.fixture
def kit(tmp_path: Path) -> Path:
    shutil.copytree(ROOT / "notebooks", tmp_path / "notebooks")
    shutil.copy(ROOT / "README.md", tmp_path / "README.md")
    return tmp_path


def test_the_generator_finds_and_rewrites_a_stale_cell_and_table(
    kit: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = kit / "notebooks" / "db.ipynb"
    db.write_text(db.read_text().replace("pg_connections_warn_pct: float = 80.0", "pg_x: int = 1"))
    readme = kit / "README.md"
    readme.write_text(readme.read_text().replace("| 80 % / 95 % |", "| 70 % / 95 % |", 1))
    assert generate.main(["--check", str(kit)]) == 1
    err = capsys.readouterr().err
    assert "db.ipynb: its parameters cell differs" in err
    assert "README.md: its table of probes differs" in err
    assert generate.main([str(kit)]) == 0
    assert generate.main(["--check", str(kit)]) == 0
    assert db.read_bytes() == (ROOT / "notebooks" / "db.ipynb").read_bytes()
    assert readme.read_text() == (ROOT / "README.md").read_text()
