"""The section notebooks: stored clean and thin, coherent parameters, run for real by papermill."""

from __future__ import annotations

import ast
import importlib
import json
import os
import re
from pathlib import Path
from typing import Any

import papermill
import pytest
import yaml

from irkit import parameters, probes, records
from irkit.catalogue import parameters as declarations
from irkit.health.checks import report_checks
from irkit.result import RESULT_MIME, Status
from irkit.sandbox.stack import Stack
from tests.helpers import ROOT, run_notebook, targets

NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
EXPECTED = {
    "db": [
        "postgres.connect",
        "postgres.connections",
        "postgres.long_queries",
        "postgres.idle_in_transaction",
        "postgres.blocking",
        "postgres.migrations",
        "postgres.impact",
        # "Did it help?" measures again only once a mitigation changed something.
    ],
    "redis": ["redis.ping", "redis.memory", "redis.clients"],
    "celery": ["celery.queues", "celery.workers"],
    "containers": ["compose.services", "compose.stats", "logs.errors", "deploy.recent"],
    "disk": ["disk.usage", "disk.old_files", "host.memory", "host.cpu"],
    "alerts": [
        "prometheus.alerts",
        "host.cpu",
        "celery.workers",
        "deploy.recent",
        "prometheus.query",
        "logs.errors",
        "postgres.long_queries",
        "http.health",
        "command.check",
        "postgres.connect",
        "redis.ping",
        "http.smoke",
        "tls.expiry",
    ],
    # Every check at once, in one call (irkit.health.run); none of its own.
    "health": [],
    "triage": [
        "prometheus.alerts",
        "http.health",
        "http.smoke",
        "compose.services",
        "prometheus.query",
        "postgres.impact",
    ],
    "resolve": ["http.health", "http.smoke", "prometheus.query", "http.load"],
    "postmortem": [],
    "metrics": [],
}
# Not configured on the test stack (no log file, checkout, diagnostic or Compose project given).
OPTIONAL = {"logs.errors", "deploy.recent", "command.check", "compose.services", "compose.stats"}
# The resolve notebook re-runs, in one call after its own, every probe the catalogue marks for it.
RECHECK = [
    "compose.services",
    "compose.stats",
    "postgres.connect",
    "postgres.connections",
    "postgres.long_queries",
    "postgres.idle_in_transaction",
    "postgres.blocking",
    "redis.ping",
    "redis.memory",
    "redis.clients",
    "celery.queues",
    "celery.workers",
    "disk.usage",
    "host.memory",
    "host.cpu",
    "tls.expiry",
    "prometheus.alerts",
]


def code_cells(path: Path) -> list[dict[str, Any]]:
    nb = json.loads(path.read_text())
    return [c for c in nb["cells"] if c["cell_type"] == "code"]


def source(cell: dict[str, Any]) -> str:
    text = cell["source"]
    return "".join(text) if isinstance(text, list) else str(text)


def test_the_sections_are_the_runbook_notebooks() -> None:
    assert [p.stem for p in NOTEBOOKS] == sorted(EXPECTED)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_stored_without_outputs(path: Path) -> None:
    for cell in code_cells(path):
        assert cell["outputs"] == []
        assert cell["execution_count"] is None


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_thin_one_call_per_check(path: Path) -> None:
    cells = code_cells(path)
    tagged = [c for c in cells if "parameters" in c["metadata"].get("tags", [])]
    assert len(tagged) == 1
    for cell in cells:
        tree = ast.parse(source(cell))
        banned = (ast.FunctionDef, ast.ClassDef, ast.For, ast.While, ast.Lambda, ast.With)
        assert not [n for n in ast.walk(tree) if isinstance(n, banned)], source(cell)
    checks = [source(c) for c in cells if "section.check(" in source(c)]
    assert all(len(ast.parse(s).body) == 1 for s in checks)
    used = [ast.unparse(ast.parse(s).body[0].value.args[0]) for s in checks]  # type: ignore[attr-defined]
    # Each probe is called by its module and function: `postgres.connect` is also its name, but for
    # prometheus.query, whose function is error_rate.
    names = {
        "prometheus.error_rate": "prometheus.query",
        "logs.errors": "logs.errors",
        "diagnostics.check": "command.check",
        "deploy.recent": "deploy.recent",
    }
    assert [names.get(u, u) for u in used] == EXPECTED[path.stem]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_parameters_are_typed_documented_and_agree_with_papermill(path: Path) -> None:
    ours = parameters.declared_in_notebook(path)
    theirs = papermill.inspect_notebook(str(path))
    assert list(ours) == list(theirs)
    for name, declared in ours.items():
        assert declared.type in declarations.TYPES, name
        assert theirs[name]["inferred_type_name"] == declared.type
        assert theirs[name]["help"], f"{name} has no help comment"
        parameters.check_value(name, declared.type, declared.default)


def test_a_name_shared_by_two_notebooks_means_the_same_there() -> None:
    seen: dict[str, tuple[str, Any, str]] = {}
    for path in NOTEBOOKS:
        for name, d in parameters.declared_in_notebook(path).items():
            if name in seen:
                assert seen[name][:2] == (d.type, d.default), (name, seen[name][2], path.stem)
            seen[name] = (d.type, d.default, path.stem)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_a_threshold_comes_from_the_parameter_the_catalogue_names(path: Path) -> None:
    """A notebook passes each probe keyword the parameter its catalogue entry maps it to: the
    declared default is then the probe's default, with no second copy to drift."""
    for cell in code_cells(path):
        call = ast.parse(source(cell)).body[0]
        if not (isinstance(call, ast.Expr) and "section.check(" in source(cell)):
            continue
        assert isinstance(call.value, ast.Call)
        fn = ast.unparse(call.value.args[0])
        module, attr = fn.split(".")
        entry = getattr(importlib.import_module(f"irkit.probes.{module}"), attr).entry
        for kw in call.value.keywords:
            if isinstance(kw.value, ast.Name) and kw.arg in entry.thresholds:
                assert kw.value.id == entry.thresholds[kw.arg], (path.stem, fn, kw.arg)


# The containers notebook needs a Docker engine and a project: tests/test_containers_notebook.py.
@pytest.mark.parametrize(
    "path", [p for p in NOTEBOOKS if p.stem != "containers"], ids=lambda p: p.stem
)
def test_each_notebook_runs_against_the_practice_servers(
    path: Path, tmp_path: Path, stack: Stack
) -> None:
    """Each notebook as stored, run once: its targets are its defaults, which read the
    environment the test stack set (PGHOST, IRKIT_REDIS_URL, ...), as a scheduler's would. Only
    the Prometheus window is given, short (an earlier drill's errors would stay in five minutes).
    Papermill's injection of every target parameter is what the drill and CLI tests exercise."""
    assert os.environ["PGPORT"] == str(stack.postgres.port)  # the defaults point at this stack
    declared = parameters.declared_in_notebook(path)
    params = {"prom_window": targets(stack)["prom_window"]} if "prom_window" in declared else {}
    record = run_notebook(path, tmp_path, **params)
    assert record.complete, record.error
    expected = EXPECTED[path.stem] + (RECHECK if path.stem == "resolve" else [])
    if path.stem == "health":
        expected = [c.name for c in report_checks() if not c.needs]
    # Sources not given here (log files, the deployed checkout, diagnostics) are not judged.
    expected = [p for p in expected if p not in OPTIONAL]
    assert [r.probe for r in record.results] == expected
    nb = json.loads(record.path.read_text())
    assert nb["metadata"]["papermill"]["parameters"] == params
    # Every target the defaults resolved to is this stack's (not a server on a default port).
    ours = {str(s.port) for s in (stack.postgres, stack.redis, stack.web, stack.web_tls)}
    ours.add(str(stack.prometheus.port))
    for r in record.results:
        assert set(re.findall(r":(\d+)", r.target)) <= ours, (r.probe, r.target)
    # The disk notebook and resolve's re-check judge this machine, whatever it holds.
    judged = [r for r in record.results if not r.probe.startswith(("disk.", "host."))]
    assert {r.status for r in judged} <= {Status.OK}, [str(r) for r in judged]
    # Without an incident, nothing is written beside the notebook.
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"{path.stem}.ipynb"]
    if path.stem == "metrics":
        outputs = [o for c in code_cells(record.path) for o in c["outputs"]]
        assert any("application/vnd.irkit.metrics+json" in o.get("data", {}) for o in outputs)
        return
    if path.stem == "postmortem":
        out = code_cells(record.path)[-1]["outputs"][0]["data"]["text/plain"]
        assert "No incident given" in "".join(out)
        return
    # The closing summary is there, and it is not counted as another verdict.
    last = code_cells(record.path)[-1]["outputs"][0]["data"]
    assert RESULT_MIME not in last
    assert "".join(last["text/plain"]).startswith(f"{path.stem}: ")


def test_a_held_pool_shows_in_the_db_notebook(tmp_path: Path, stack: Stack, hold: Any) -> None:
    hold(14)
    record = run_notebook(
        ROOT / "notebooks" / "db.ipynb",
        tmp_path,
        **{k: v for k, v in targets(stack).items() if k.startswith("pg_")},
    )
    pool = next(r for r in record.results if r.probe == "postgres.connections")
    assert pool.status in {Status.WARN, Status.CRIT}
    assert pool.evidence["used"] >= 15
    assert pool.evidence["available"] == 17
    summary = "".join(code_cells(record.path)[-1]["outputs"][0]["data"]["text/plain"])
    assert "Scenario 2" in summary
    # The runbook's 5-minute filter takes none of these young sessions: the plan says who holds
    # the pool, and what would select them.
    shown = text_of(record.path)
    assert "PLAN postgres.terminate" in shown
    assert "note: no session matches the filters; the " in shown
    assert "pg_kill_idle_min" in shown


def test_the_db_notebook_offers_only_what_applies_and_measures_again_after_acting(
    tmp_path: Path, stack: Stack
) -> None:
    """Runbook Incident 1 on the practice stack: with the migrations applied, no migration step
    is offered; with one missing, `migrate` runs and the migrations are measured again at once,
    so the notebook does not end on the CRIT that migrate mended."""
    from irkit import drills

    sandbox = yaml.safe_load((ROOT / "parameters" / "sandbox.yaml").read_text())
    params = {
        **{k: v for k, v in targets(stack).items() if k.startswith("pg_")},
        "pg_expected_migrations": ["accounting.0001_initial", "accounting.0002_invoice"],
        "deploy_commands": sandbox["deploy_commands"],
        "allow_actions": ["command.migrate"],
    }
    notebook = ROOT / "notebooks" / "db.ipynb"
    (tmp_path / "fine").mkdir()
    (tmp_path / "drill").mkdir()
    fine = run_notebook(notebook, tmp_path / "fine", **params)
    shown = text_of(fine.path)
    for step in ("showmigrations", "migrate", "migrate_fake", "restart_web"):
        assert f"command.{step} not needed: postgres." in shown, step
    assert "PLAN command." not in shown
    drills.start(stack, "migration-failure")
    try:
        record = run_notebook(notebook, tmp_path / "drill", **params)
    finally:
        drills.stop(stack, "migration-failure")
    shown = text_of(record.path)
    migrations = [r.status for r in record.results if r.probe == "postgres.migrations"]
    # Found missing; measured again right after migrate; and in "Did it help?".
    assert migrations == [Status.CRIT, Status.OK, Status.OK]
    assert "PLAN command.showmigrations" in shown  # offered while the finding was present
    assert shown.index("DONE command.migrate") < shown.index("command.migrate_fake not needed")
    closing = "".join(code_cells(record.path)[-1]["outputs"][0]["data"]["text/plain"])
    assert "postgres.migrations" not in closing  # no step left for a mended finding


def test_the_celery_notebook_restarts_workers_that_do_not_answer(
    tmp_path: Path, stack: Stack
) -> None:
    """Runbook Incident 2, "restart the workers": offered only when none answers, done through
    the deployment's own command, and the workers measured again right after it."""
    sandbox = yaml.safe_load((ROOT / "parameters" / "sandbox.yaml").read_text())
    params = {
        "celery_broker_url": targets(stack)["celery_broker_url"],
        "celery_expected_workers": 1,
        "deploy_commands": sandbox["deploy_commands"],
        "allow_actions": ["command.restart_worker"],
    }
    stack.worker.stop()
    try:
        record = run_notebook(ROOT / "notebooks" / "celery.ipynb", tmp_path, **params)
    finally:
        stack.worker.start()
    workers = [r.status for r in record.results if r.probe == "celery.workers"]
    assert workers == [Status.CRIT, Status.OK, Status.OK]
    shown = text_of(record.path)
    assert (
        "DONE command.restart_worker on deployment: exit code 0: restarted celery-worker" in shown
    )
    assert "command.scale_workers not needed: celery.queues is OK, celery.workers is OK" in shown
    assert "celery.purge not needed: celery.queues is OK" in shown


def text_of(path: Path) -> str:
    """Every text output of an executed notebook, in order."""
    return "\n".join(
        "".join(o.get("data", {}).get("text/plain", "")) + "".join(o.get("text", ""))
        for cell in code_cells(path)
        for o in cell["outputs"]
    )


def test_a_hung_database_does_not_hang_the_notebook(tmp_path: Path, hanging_port: int) -> None:
    record = run_notebook(
        ROOT / "notebooks" / "db.ipynb", tmp_path, pg_host="127.0.0.1", pg_port=hanging_port
    )
    statuses = {r.probe: r.status for r in record.results}
    assert statuses["postgres.connect"] is Status.CRIT
    assert {s for p, s in statuses.items() if p != "postgres.connect"} == {Status.UNKNOWN}
    nb = json.loads(record.path.read_text())
    assert nb["metadata"]["papermill"]["duration"] < 15


def test_plain_papermill_with_an_unknown_parameter_stops_before_any_probe(tmp_path: Path) -> None:
    with pytest.raises(papermill.PapermillExecutionError, match="unknown parameter 'redis_urll'"):
        run_notebook(ROOT / "notebooks" / "redis.ipynb", tmp_path, redis_urll="redis://x:1/0")
    record = records.read(tmp_path / "redis.ipynb")
    assert not record.complete
    assert record.results == []
    assert record.status is Status.UNKNOWN


def test_the_health_notebook_declares_every_parameter_its_checks_take() -> None:
    declared = parameters.declared_in_notebook(ROOT / "notebooks" / "health.ipynb")
    for check in report_checks():
        for name in [*check.thresholds.values(), *check.needs]:
            assert name in declared, (check.name, name)


def test_the_recheck_is_what_the_catalogue_marks() -> None:
    assert [e.name for e in probes.catalogue() if e.recheck] == RECHECK
