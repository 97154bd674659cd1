"""Every drill end to end on the practice stack: start it, run the notebook the runbook points to
(papermill, real services), see the expected probe turn WARN or CRIT with the evidence that names
the cause; stop it, and see the same probe OK again."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import pytest
import yaml

from irkit import drills, parameters, records
from irkit.errors import SandboxError
from irkit.probes import host, postgres, prometheus
from irkit.result import Result, Status
from irkit.sandbox.stack import Stack
from irkit.targets import HttpTarget, Machine, PostgresTarget
from tests.helpers import ROOT, irkit, run_notebook, targets, verdict_lines, wait_for

BAD = {Status.WARN, Status.CRIT}
Check = Callable[[Result, dict[str, Any]], None]


@dataclass(frozen=True)
class Case:
    probe: str
    check: Check
    during: dict[str, Any] = field(default_factory=dict)  # parameters while the drill runs
    after: dict[str, Any] = field(default_factory=dict)  # parameters once it is stopped
    # What the fault needs before the notebook can see it (age past a threshold, reach
    # Prometheus), asked of the probe itself; None: it shows as soon as `start` returns.
    # Both are given the run's parameters (`during`, `after`), with what `tune` chose.
    shows: Callable[[Stack, dict[str, Any]], bool] | None = None
    # Likewise once it is stopped, for what lingers (a rate window, busy processes winding down),
    # and how long that may take.
    cleared: Callable[[Stack, dict[str, Any]], bool] | None = None
    recover_s: float = 0.0
    # The drill's settings and the thresholds to judge it by, chosen as the test starts.
    tune: Callable[[], tuple[dict[str, str], dict[str, Any]]] | None = None


def _pool(r: Result, state: dict[str, Any]) -> None:
    if r.probe == "postgres.connect":  # the last free slot was taken by the app meanwhile
        assert r.evidence.get("pool_exhausted"), r.summary
        return
    assert r.evidence["used"] >= r.evidence["available"] - 2
    apps = {row["application"] for row in r.evidence["rows"]}
    assert "himalytix-web" in apps


def _slow(r: Result, state: dict[str, Any]) -> None:
    assert any("reports.generate" in row["query"] for row in r.evidence["rows"])


def _idle(r: Result, state: dict[str, Any]) -> None:
    assert state["blocker_pid"] in {row["pid"] for row in r.evidence["rows"]}


def _migration(r: Result, state: dict[str, Any]) -> None:
    assert r.status is Status.CRIT
    assert r.evidence["missing"] == ["accounting.0002_invoice"]


def _redis(r: Result, state: dict[str, Any]) -> None:
    assert r.status is Status.CRIT
    assert r.evidence["maxmemory_policy"] == "noeviction"
    assert r.evidence["percent"] >= 95


def _backlog(r: Result, state: dict[str, Any]) -> None:
    assert r.status is Status.CRIT
    assert r.evidence["total"] >= 5000


def _disk(r: Result, state: dict[str, Any]) -> None:
    assert r.status is Status.CRIT
    row = next(row for row in r.evidence["rows"] if row["path"] == state["mounted"])
    assert row["used_pct"] >= 90


def _cpu(r: Result, state: dict[str, Any]) -> None:
    assert set(state["pids"]) & {row["pid"] for row in r.evidence["rows"]}


def _memory(r: Result, state: dict[str, Any]) -> None:
    assert r.evidence["available_pct"] <= r.evidence["warn_pct"]
    assert r.evidence["rows"][0]["pid"] == state["agent_pid"]


# The drill takes this share of the machine's memory, not the default's nearly all of it, and
# the test judges by thresholds just above what it leaves: the same fault, the same code, seconds
# instead of a minute to fill a large machine (`irkit drill start high-memory` fills to 7 %).
MEMORY_TAKEN_PCT = 15.0


def _memory_taken(pct: float) -> tuple[dict[str, str], dict[str, Any]]:
    now = psutil.virtual_memory()
    target = now.available / now.total * 100 - pct
    assert target >= 2, f"the machine has too little memory available for the drill: {now}"
    thresholds = {
        "host_memory_available_warn_pct": round(target + pct / 2, 1),
        "host_memory_available_crit_pct": round(target + pct / 4, 1),
    }
    return {"target_available_pct": f"{target:.1f}"}, thresholds


def _memory_status(stack: Stack, params: dict[str, Any]) -> Status:
    return host.memory(
        _machine(stack),
        window_min=params["host_window_min"],
        warn_pct=params["host_memory_available_warn_pct"],
        crit_pct=params["host_memory_available_crit_pct"],
    ).status


def _web_down(r: Result, state: dict[str, Any]) -> None:
    assert r.status is Status.CRIT
    assert "connection refused" in r.summary


def _health(r: Result, state: dict[str, Any]) -> None:
    assert r.status is Status.CRIT
    assert [c.split("(")[0] for c in r.evidence["failing"]] == ["Storage"]
    assert r.evidence["status_code"] == 500


def _errors(r: Result, state: dict[str, Any]) -> None:
    assert r.status is Status.CRIT
    assert r.evidence["failing_views"][0]["view"] == "api-journal"


def _certs(r: Result, state: dict[str, Any]) -> None:
    assert r.status is Status.CRIT
    days = {row["server_name"]: row["days_left"] for row in r.evidence["certificates"]}
    assert days["api.himalytix.test"] < 0
    assert 2 < days["himalytix.test"] <= 3


def _pg(stack: Stack) -> PostgresTarget:
    return PostgresTarget(
        host=stack.postgres.host, port=stack.postgres.port, user="erp", dbname="himalytix"
    )


def _prom(stack: Stack) -> HttpTarget:
    return HttpTarget(base_url=stack.prometheus.url)


HOST_WINDOW_MIN = 0.1


def _machine(stack: Stack) -> Machine:
    """The practice app's machine, as the notebooks see it: through Prometheus' node_exporter."""
    return Machine(prometheus=_prom(stack))


CASES = {
    "pool-exhaustion": Case("postgres.connections", _pool),
    "slow-queries": Case(
        "postgres.long_queries",
        _slow,
        # The notebook's default threshold, 1 s: the queries must have run that long.
        shows=lambda stack, _: postgres.long_queries(_pg(stack)).status in BAD,
    ),
    "idle-transactions": Case(
        "postgres.idle_in_transaction",
        _idle,
        during={"pg_idle_in_transaction_warn_s": 1.0, "pg_lock_wait_warn_s": 1.0},
        after={"pg_idle_in_transaction_warn_s": 1.0},
        shows=lambda stack, _: (
            postgres.idle_in_transaction(_pg(stack), warn_s=1.0).status in BAD
            and postgres.blocking(_pg(stack), warn_s=1.0).status in BAD
        ),
    ),
    "migration-failure": Case("postgres.migrations", _migration),
    "redis-memory": Case("redis.memory", _redis),
    "celery-backlog": Case("celery.queues", _backlog),
    "disk-full": Case("disk.usage", _disk),
    # The host checks judge over `host_window_min` (the runbook's 5 min) through node_exporter:
    # a 6 s window (the rate inside it over 2 s, with 1 s scrapes) lets the drill show, and clear,
    # within seconds.
    "high-cpu": Case(
        "host.cpu",
        _cpu,
        during={"host_window_min": HOST_WINDOW_MIN},
        shows=lambda stack, _: (
            host.cpu(_machine(stack), window_min=HOST_WINDOW_MIN).status is Status.CRIT
        ),
        after={"host_window_min": HOST_WINDOW_MIN},
        cleared=lambda stack, _: (
            host.cpu(_machine(stack), window_min=HOST_WINDOW_MIN).status is Status.OK
        ),
        recover_s=60,
    ),
    "high-memory": Case(
        "host.memory",
        _memory,
        during={"host_window_min": HOST_WINDOW_MIN},
        shows=lambda stack, params: _memory_status(stack, params) in BAD,
        after={"host_window_min": HOST_WINDOW_MIN},
        cleared=lambda stack, params: _memory_status(stack, params) is Status.OK,
        recover_s=60,
        tune=lambda: _memory_taken(MEMORY_TAKEN_PCT),
    ),
    "web-down": Case("http.health", _web_down),
    "health-fail": Case("http.health", _health),
    "error-spike": Case(
        "prometheus.query",
        _errors,
        # The notebooks' 15 s window (tests.helpers.targets) has the errors.
        shows=lambda stack, _: (
            prometheus.error_rate(_prom(stack), window="15s").status is Status.CRIT
        ),
        after={"prom_window": "5s"},
        cleared=lambda stack, _: (
            prometheus.error_rate(_prom(stack), window="5s").status is Status.OK
        ),
        recover_s=30,
    ),
    "cert-expiry": Case("tls.expiry", _certs),
}


def test_every_drill_has_an_end_to_end_test() -> None:
    # The Compose stack's drills: tests/test_compose_stack.py.
    embedded = [n for n, d in drills.catalogue().items() if d.stack != "compose"]
    assert sorted(CASES) == sorted(embedded)


def section_parameters(stack: Stack, section: str, extra: dict[str, Any]) -> dict[str, Any]:
    declared = parameters.declared_in_notebook(ROOT / "notebooks" / f"{section}.ipynb")
    given = {
        **targets(stack),
        "pg_expected_migrations": ["accounting.0002_invoice"],
        "disk_paths": [str(stack.media_dir)],
        "disk_log_dirs": [],
        **extra,
    }
    return {k: v for k, v in given.items() if k in declared}


def verdict(stack: Stack, folder: Path, section: str, extra: dict[str, Any]) -> Any:
    folder.mkdir(parents=True, exist_ok=True)
    params = section_parameters(stack, section, extra)
    record = run_notebook(ROOT / "notebooks" / f"{section}.ipynb", folder, **params)
    assert record.complete, record.error
    return record, {r.probe: r for r in record.results}


@pytest.fixture
def drill_stack(stack: Stack) -> Iterator[Stack]:
    yield stack
    for active in drills.active(stack):  # a failed test must not leave its fault behind
        drills.stop(stack, active.name)
    # What Prometheus still counts of the fault is waited out before the next test that is not a
    # drill test (tests/conftest.py, _quiet_after_drills), once, rather than after every drill.


# These change the whole machine (every CPU busy, nearly all memory held): run alone under -n,
# and last, one after the other (the other workers' tests are waited for once; at the start of
# the run they would be waited for while they start their stacks).
HOST_WIDE = ("high-cpu", "high-memory")


@pytest.mark.parametrize(
    "name",
    [
        *(n for n in CASES if n not in HOST_WIDE),
        *(pytest.param(n, marks=[pytest.mark.host_wide]) for n in HOST_WIDE),
    ],
)
def test_drill_end_to_end(name: str, drill_stack: Stack, tmp_path: Path) -> None:
    drill, case = drills.get(name), CASES[name]
    if drill.needs_root and os.geteuid() != 0:
        with pytest.raises(SandboxError, match="needs root"):
            drills.start(drill_stack, name)
        return
    settings, tuned = case.tune() if case.tune else ({}, {})
    during, after = {**case.during, **tuned}, {**case.after, **tuned}
    active = drills.start(drill_stack, name, settings)
    if case.shows:
        wait_for(lambda: case.shows(drill_stack, during), f"{name} shows in {case.probe}")
    record, results = verdict(drill_stack, tmp_path / "during", drill.section, during)
    # The pool may be so full that only the connection check could run.
    shown = results.get(case.probe)
    if name == "pool-exhaustion" and shown and shown.status is Status.UNKNOWN:
        shown = results["postgres.connect"]
    assert shown is not None, [str(r) for r in record.results]
    assert shown.status in BAD, [str(r) for r in record.results]
    case.check(shown, active.state)
    # The record says it was a drill, so the metrics leave it out.
    assert record.incident.get("drill") is True
    # The scheduled report names the same probe, and exits with the worst status it found.
    health_says(drill_stack, tmp_path, case, name, during)

    assert drills.stop(drill_stack, name)
    assert drills.active(drill_stack) == []
    if case.cleared:
        wait_for(lambda: case.cleared(drill_stack, after), f"{case.probe} OK again", case.recover_s)
    record, results = verdict(drill_stack, tmp_path / "after", drill.section, after)
    assert results[case.probe].status is Status.OK, str(results[case.probe])
    assert not record.incident.get("drill")


# Drills whose area has a chart in the health report: disk use, queue depths, sessions by state.
CHARTED = {"disk-full", "celery-backlog", "pool-exhaustion"}


def health_says(
    stack: Stack, tmp_path: Path, case: Case, name: str, during: dict[str, Any]
) -> None:
    values = section_parameters(stack, "health", {"celery_expected_workers": 1, **during})
    params = tmp_path / "health.yaml"
    params.write_text(yaml.safe_dump(values))
    done = irkit("health", "-f", str(params), reports=tmp_path / "reports")
    (path,) = (tmp_path / "reports" / "health").glob("[0-9]*-health.ipynb")
    record = records.read(path)
    assert record.complete, record.error
    assert done.returncode == record.status.exit_code, done.stdout + done.stderr
    assert done.returncode in (1, 2), done.stdout
    flagged = {r.probe for r in record.results if r.status in BAD}
    expected = {case.probe} | ({"postgres.connect"} if name == "pool-exhaustion" else set())
    assert flagged & expected, done.stdout
    assert any(
        any(p in line for p in expected) for line in verdict_lines(done.stdout, "WARN", "CRIT")
    ), done.stdout
    if name in CHARTED:  # the area needs attention: its chart shows where
        assert '<img alt="chart"' in path.with_suffix(".html").read_text()


def test_the_done_when_sequence_through_the_command_line(
    drill_stack: Stack, tmp_path: Path
) -> None:
    """`irkit drill start pool-exhaustion && irkit run db` shows the pool problem, and
    `irkit drill stop pool-exhaustion` clears it."""
    env = {"IRKIT_SANDBOX_DIR": str(drill_stack.base)}
    pairs = [f"-p{k}={v}" for k, v in targets(drill_stack).items() if k.startswith("pg_")]
    started = irkit("drill", "start", "pool-exhaustion", reports=tmp_path, env=env)
    assert started.returncode == 0, started.stderr
    assert "irkit run db" in started.stdout
    listed = irkit("drill", "status", reports=tmp_path, env=env)
    assert "pool-exhaustion" in listed.stdout
    during = irkit("run", "db", *pairs, reports=tmp_path, env=env)
    # The test stack has 17 usable slots, so 16 held is WARN here (the practice stack's 96 of 97
    # is CRIT); a connection refused for want of a slot is CRIT.
    assert during.returncode in (1, 2), during.stdout + during.stderr
    flagged = verdict_lines(during.stdout, "WARN", "CRIT")
    assert any("postgres.conn" in line for line in flagged), during.stdout
    stopped = irkit("drill", "stop", "pool-exhaustion", reports=tmp_path, env=env)
    assert stopped.returncode == 0
    assert "healthy again" in stopped.stdout
    after = irkit("run", "db", *pairs, reports=tmp_path, env=env)
    assert "OK      postgres.connections" in after.stdout


def test_drill_errors_are_clear(drill_stack: Stack, tmp_path: Path) -> None:
    env = {"IRKIT_SANDBOX_DIR": str(drill_stack.base)}
    unknown = irkit("drill", "start", "pool-exhaustionn", reports=tmp_path, env=env)
    assert unknown.returncode == 3
    assert "no drill named 'pool-exhaustionn'; the drills are: pool-exhaustion" in unknown.stderr
    assert "Traceback" not in unknown.stderr
    nameless = irkit("drill", "start", reports=tmp_path, env=env)
    assert nameless.returncode == 3
    assert "needs a drill name" in nameless.stderr
    idle = irkit("drill", "stop", "web-down", reports=tmp_path, env=env)
    assert idle.returncode == 0
    assert "was not active" in idle.stdout
    listed = irkit("drill", "list", reports=tmp_path, env=env)
    assert all(name in listed.stdout for name in drills.catalogue())
    assert "--set target_available_pct=N" in listed.stdout
    for wrong, says in [
        ("bogus=1", "drill high-memory has no setting 'bogus'; its settings are: target_avail"),
        ("target_available_pct=lots", "target_available_pct must be a number, got 'lots'"),
        ("target_available_pct=0", "target_available_pct must be between 1 and 95"),
        ("target_available_pct", "--set takes KEY=VALUE, got 'target_available_pct'"),
    ]:
        refused = irkit("drill", "start", "high-memory", "--set", wrong, reports=tmp_path, env=env)
        assert refused.returncode == 3, refused.stdout
        assert says in refused.stderr
        assert "Traceback" not in refused.stderr
    assert drills.active(drill_stack) == []  # refused before anything started
    untunable = irkit("drill", "start", "web-down", "--set", "x=1", reports=tmp_path, env=env)
    assert "drill web-down has no setting 'x'; it has no settings" in untunable.stderr


def test_a_drill_setting_is_its_default_unless_given() -> None:
    memory = drills.get("high-memory")
    assert memory.chosen({}) == {"target_available_pct": 7.0}
    assert memory.chosen({"target_available_pct": "40"}) == {"target_available_pct": 40.0}
    assert drills.get("web-down").chosen({}) == {}
