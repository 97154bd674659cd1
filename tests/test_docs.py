"""The README and the project files say what the kit does, and agree with it."""

from __future__ import annotations

import re
import tomllib

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
