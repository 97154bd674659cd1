"""The probe catalogue: each probe declares its entry beside its code, and every list of probes
(the health report, the resolve re-check, the README's table, the notebooks) comes from it."""

from __future__ import annotations

import ast
import inspect
import json
import re

import pytest

from irkit import generate, probes
from irkit.catalogue import parameters
from irkit.catalogue.areas import AREAS
from irkit.health.checks import report_checks
from irkit.probes.contract import Entry, probe
from irkit.result import Status
from irkit.section import Section
from tests.helpers import ROOT

README = ROOT / "README.md"


def notebook_calls() -> dict[str, set[str]]:
    """Each probe a notebook calls by name (`section.check(postgres.connect, …)`), by notebook."""
    calls: dict[str, set[str]] = {}
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        for cell in json.loads(path.read_text())["cells"]:
            if cell["cell_type"] != "code":
                continue
            for node in ast.walk(ast.parse("".join(cell["source"]))):
                if (
                    isinstance(node, ast.Call)
                    and ast.unparse(node.func) in ("section.check", "section.measure")
                    and node.args
                ):
                    module, _, attr = ast.unparse(node.args[0]).partition(".")
                    fn = getattr(__import__(f"irkit.probes.{module}", fromlist=[attr]), attr)
                    calls.setdefault(fn.entry.name, set()).add(path.stem)
    return calls


def test_every_entry_appears_everywhere_it_belongs() -> None:
    catalogue = probes.catalogue()
    in_report = {c.name for c in report_checks()}
    in_table = generate.table(catalogue)
    called = notebook_calls()
    for entry in catalogue:
        # the health report, when it has an area; the resolve re-check when marked; and the
        # reason written down when it is in neither
        assert (entry.name in in_report) == bool(entry.area), entry.name
        assert entry.area or entry.recheck or entry.left_out, entry.name
        assert entry.measures, f"{entry.name}: say what it measures"
        assert entry.grades, f"{entry.name}: say when it warns"
        # the README's table, and a notebook cell with the runbook's words around it
        assert f"| `{entry.name}` |" in in_table, entry.name
        assert entry.name in called, f"{entry.name} is called from no notebook"
    # the health notebook runs the whole report and the resolve notebook the whole re-check
    health = (ROOT / "notebooks" / "health.ipynb").read_text()
    resolve = (ROOT / "notebooks" / "resolve.ipynb").read_text()
    assert "health.run(section" in health
    assert "resolve.recheck(section)" in resolve
    assert not generate.stale(README, catalogue), "run ./kit generate"


def test_thresholds_come_from_declared_parameters_only() -> None:
    for entry in probes.catalogue():
        fn = inspect.unwrap(probes.get(entry.name))
        signature = inspect.signature(fn)
        for keyword, name in entry.thresholds.items():
            assert name in parameters.BY_NAME, (entry.name, name)
            assert keyword in signature.parameters, (entry.name, keyword)
            # no default of its own: the declared one is filled in when the keyword is left out
            assert signature.parameters[keyword].default is inspect.Parameter.empty, (
                entry.name,
                keyword,
            )
        for name in entry.needs:
            assert name in parameters.BY_NAME, (entry.name, name)
        for target in [entry.target, *entry.uses.values()]:
            assert target == "command" or hasattr(Section, target), (entry.name, target)
        assert entry.area in ("", *AREAS)
        generate.filled(entry.measures + entry.grades)  # each {parameter} names a declared one


def test_every_probe_module_is_listed() -> None:
    defined = {
        path.stem
        for path in (ROOT / "irkit" / "probes").glob("*.py")
        if re.search(r"^@probe\(", path.read_text(), re.M)
    }
    assert defined == set(probes.MODULES)


def test_a_left_out_keyword_takes_the_declared_default() -> None:
    seen: dict[str, object] = {}

    @probe(
        "test.defaults",
        target="t",
        measures="nothing",
        grades="—",
        thresholds={"warn_pct": "pg_connections_warn_pct", "paths": "disk_paths"},
        left_out="a test",
    )
    def defaults(target: object, *, warn_pct: float, paths: list[str]) -> object:
        from irkit.probes.contract import Finding

        seen.update(warn_pct=warn_pct, paths=paths)
        return Finding(Status.OK, "ok")

    class Target:
        display = "t"
        deadline_s = 5.0

    assert defaults(Target()).status is Status.OK
    assert seen == {"warn_pct": 80.0, "paths": ["/"]}
    defaults(Target(), warn_pct=50.0)
    assert seen["warn_pct"] == 50.0
    # a probe defined outside the kit's modules is callable, not catalogued
    assert "test.defaults" not in probes.names()


def test_a_probe_must_say_where_it_runs() -> None:
    with pytest.raises(TypeError, match="neither the health report nor the recheck"):
        probe("test.nowhere", target="t", measures="", grades="")
    with pytest.raises(TypeError, match="no area 'nope'"):
        probe("test.area", target="t", measures="", grades="", area="nope")
    with pytest.raises(TypeError, match="no parameter declared as pg_warn_typo"):
        probe("test.typo", target="t", thresholds={"warn": "pg_warn_typo"}, left_out="a test")


def test_entries_are_plain_data() -> None:
    entry = probes.entry("postgres.connections")
    assert isinstance(entry, Entry)
    assert entry.keywords({"pg_connections_warn_pct": 70.0, "other": 1}) == {"warn_pct": 70.0}
