"""The README and the project files say what the kit does, and agree with it."""

from __future__ import annotations

import ast
import re
import subprocess
import tomllib
from pathlib import Path

import pytest
import yaml

from irkit import probes
from irkit.cli.parser import build as build_parser
from tests.helpers import ROOT

README = (ROOT / "README.md").read_text()


def test_readme_opens_with_the_two_commands() -> None:
    first_block = README.split("```sh", 1)[1].split("```", 1)[0]
    assert "./kit demo" in first_block
    assert "./kit test" in first_block
    assert README.index("./kit demo") < README.index("## ")


def test_ci_runs_the_readme_test_command() -> None:
    ci = (ROOT / ".ci" / "run").read_text()
    assert "./kit test" in ci
    assert "./kit lint" in ci


def test_every_probe_is_documented() -> None:
    for name in probes.names():
        assert f"`{name}`" in README, name


def test_every_command_is_documented() -> None:
    commands = build_parser()._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    for name, sub in commands.items():
        assert f"irkit {name}" in README, name
        for action in sub._actions:
            if action.choices and action.dest == "action":
                for choice in action.choices:
                    assert re.search(rf"irkit {name} [^`]*\b{choice}\b", README), (name, choice)
            flags = [f for f in action.option_strings if f not in ("-h", "--help")]
            if flags:
                assert any(f"{f} " in README or f"{f}]" in README for f in flags), flags


def test_every_notebook_is_documented() -> None:
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        assert f"`notebooks/{path.name}`" in README


def test_environment_yml_lists_the_pyproject_dependencies() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = set(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        declared.update(extra)
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert set(pip) == declared


# What names an environment variable in the code: a name of irkit's or libpq's anywhere, and the
# first argument of every read of os.environ.
_ENV_NAME = re.compile(r"(IRKIT_[A-Z0-9_]+|PG[A-Z]+)")


def _reads_environment(node: ast.AST) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value if _ENV_NAME.fullmatch(node.value) else None
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.args:
        func, first = node.func, node.args[0]
        on_environ = isinstance(func.value, ast.Attribute | ast.Name) and (
            getattr(func.value, "attr", None) == "environ"
            or getattr(func.value, "id", "") == "environ"
        )
        if (on_environ and func.attr in ("get", "setdefault", "pop")) or func.attr == "getenv":
            return first.value if isinstance(first, ast.Constant) else None
    if isinstance(node, ast.Subscript) and getattr(node.value, "attr", None) == "environ":
        return node.slice.value if isinstance(node.slice, ast.Constant) else None
    return None


def environment_variables_read(folder: Path) -> set[str]:
    found: set[str] = set()
    for path in folder.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            name = _reads_environment(node)
            if isinstance(name, str):
                found.add(name)
    return found


def test_every_environment_variable_is_documented_once() -> None:
    """The README's table names every variable the package reads, and only those (the tests'
    own browser variable aside)."""
    table = README.split("<!-- environment variables: checked by tests/test_docs.py -->")[1]
    table = table.split("<!-- environment variables: end -->")[0]
    rows = [line for line in table.splitlines() if line.startswith("| `")]
    documented = [
        name for row in rows for name in re.findall(r"`([A-Z][A-Z0-9_]+)`", row.split(" | ")[0])
    ]
    read = environment_variables_read(ROOT / "irkit")
    assert read - set(documented) == set(), "add them to the README's environment table"
    tests_read = environment_variables_read(ROOT / "tests")
    assert set(documented) - read - tests_read == set(), "irkit reads them no longer"
    assert len(documented) == len(set(documented))
    assert {"IRKIT_BASE_URL", "IRKIT_PROMETHEUS_URL", "IRKIT_REPORTS"} <= read


# --- docs/airflow.md: the DAG parses, and its command fails the task on CRIT ------------------

AIRFLOW = (ROOT / "docs" / "airflow.md").read_text()


def _airflow_dag() -> ast.Module:
    (block,) = re.findall(r"```python\n(.*?)```", AIRFLOW, re.DOTALL)
    return ast.parse(compile(block, "docs/airflow.md", "exec", ast.PyCF_ONLY_AST))


def _airflow_command() -> str:
    for node in _airflow_dag().body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "COMMAND":
            command = ast.literal_eval(node.value)
            assert isinstance(command, str)
            return command
    raise AssertionError("no COMMAND in the DAG of docs/airflow.md")


def test_the_airflow_dag_parses_and_passes_notify() -> None:
    tree = _airflow_dag()
    calls = {
        node.func.id: {k.arg: k.value for k in node.keywords}
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
    }
    assert ast.unparse(calls["BashOperator"]["bash_command"]) == "COMMAND"
    assert "--notify" in _airflow_command()
    assert "IRKIT_SLACK_WEBHOOK" in ast.unparse(calls["BashOperator"]["env"])
    assert ast.literal_eval(calls["DAG"]["catchup"]) is False


@pytest.mark.parametrize(("irkit_exit", "task_exit"), [(0, 0), (1, 0), (2, 2), (3, 3), (130, 130)])
def test_the_airflow_command_fails_the_task_on_crit_not_on_warn(
    irkit_exit: int, task_exit: int
) -> None:
    """What BashOperator sees (it fails the task on any exit code but 0), with the documented
    table of exit codes."""
    irkit_line = _airflow_command().strip().splitlines()[0]
    command = _airflow_command().replace(irkit_line, f"sh -c 'exit {irkit_exit}'")
    done = subprocess.run(["bash", "-c", command], check=False)
    assert done.returncode == task_exit
    assert f"| {irkit_exit} |" in AIRFLOW
