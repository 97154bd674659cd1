"""Guarded mitigations against real servers: each acts exactly on its plan, refuses what it must,
and changes nothing unless allowed or confirmed."""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from irkit.actions import guard
from irkit.actions.guard import Plan
from irkit.actions.postgres import Backends
from irkit.errors import ConfigError
from irkit.incident.log import IncidentLog
from irkit.probes.redis import session
from irkit.sandbox.stack import BROKER_DB, Stack
from irkit.targets import CeleryTarget, PostgresTarget, RedisTarget
from tests.helpers import idle_for, irkit, running_for, tls_endpoints, wait_for


@contextlib.contextmanager
def redis_client(target: RedisTarget) -> Iterator[Any]:
    with session(target) as r:
        yield r


def pids_running(stack: Stack, needle: str) -> set[int]:
    with psycopg.connect(**stack.postgres.conninfo(dbname="himalytix")) as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE query LIKE %s AND pid <> pg_backend_pid()",
            [f"%{needle}%"],
        ).fetchall()
    return {int(r[0]) for r in rows}


def log() -> IncidentLog:
    return IncidentLog("", "test")


def test_terminate_ends_the_old_statement_and_spares_the_others(
    pg: PostgresTarget, stack: Stack, hold: Any
) -> None:
    old, young, idle = hold(3)
    hold.background(old, "SELECT pg_sleep(60) /* old */")
    wait_for(lambda: running_for(stack, "/* old */") > 1.0, "the old statement is over 1 s")
    hold.background(young, "SELECT pg_sleep(60) /* young */")
    wait_for(lambda: pids_running(stack, "/* young */"))
    action = Backends(pg, older_than_s=1.0)
    plan = action.plan()
    assert [i.details["query"] for i in plan.items] == ["SELECT pg_sleep(60) /* old */"]
    assert plan.items[0].details["user"] == "erp"
    outcome = action.act(plan)
    assert outcome.done[0][1] == "ended"
    assert outcome.summary == "terminate: 1 of 1 done"
    assert not pids_running(stack, "/* old */")
    assert pids_running(stack, "/* young */")  # spared: younger than the threshold
    assert idle.execute("SELECT 1").fetchone() == (1,)  # spared: idle


def test_without_allow_actions_nothing_changes(pg: PostgresTarget, stack: Stack, hold: Any) -> None:
    (conn,) = hold(1)
    hold.background(conn, "SELECT pg_sleep(60) /* dry */")
    wait_for(lambda: running_for(stack, "/* dry */") > 0.2, "the statement is over 0.2 s")
    record = log()
    assert guard.guarded(record, Backends(pg, older_than_s=0.2)) is None
    assert pids_running(stack, "/* dry */")  # re-read from the server: still there
    outcome = guard.guarded(
        record, Backends(pg, older_than_s=0.2), allow_actions=["postgres.terminate"]
    )
    assert outcome is not None
    assert not pids_running(stack, "/* dry */")


def test_a_backend_that_moved_on_is_left_alone(pg: PostgresTarget, stack: Stack, hold: Any) -> None:
    (conn,) = hold(1, autocommit=True)
    hold.background(conn, "SELECT pg_sleep(60) /* first */")
    wait_for(lambda: running_for(stack, "/* first */") > 0.2, "the statement is over 0.2 s")
    action = Backends(pg, older_than_s=0.2)
    plan = action.plan()
    assert len(plan.items) == 1
    conn.cancel()
    hold.threads[-1].join(5)
    hold.background(conn, "SELECT pg_sleep(60) /* second */")
    wait_for(lambda: pids_running(stack, "/* second */"))
    outcome = action.act(plan)
    assert outcome.done == ()
    assert "moved on since the plan" in outcome.skipped[0][1]
    assert pids_running(stack, "/* second */")  # the new statement is not killed


def test_cancel_stops_the_statement_and_keeps_the_session(
    pg: PostgresTarget, stack: Stack, hold: Any
) -> None:
    (conn,) = hold(1, autocommit=True)
    pid = conn.info.backend_pid
    hold.background(conn, "SELECT pg_sleep(60) /* cancel me */")
    wait_for(lambda: pids_running(stack, "/* cancel me */"))
    outcome = Backends(pg, mode="cancel", pids=[pid]).act(
        Backends(pg, mode="cancel", pids=[pid]).plan()
    )
    assert outcome.done[0][1] == "cancelled (the session stays)"
    hold.threads[-1].join(5)
    assert conn.execute("SELECT pg_backend_pid()").fetchone() == (pid,)


def test_refusals_own_sessions_background_workers_and_superusers(
    pg: PostgresTarget, stack: Stack, hold: Any
) -> None:
    with psycopg.connect(**stack.postgres.conninfo(dbname="himalytix")) as admin:
        workers = [
            r[0]
            for r in admin.execute(
                "SELECT pid FROM pg_stat_activity WHERE backend_type <> 'client backend'"
            ).fetchall()
        ]
        superuser_pid = admin.info.backend_pid
        (own,) = hold(1, application_name="irkit-other-check")
        plan = Backends(pg, pids=[*workers[:2], superuser_pid, own.info.backend_pid]).plan()
        assert plan.items == ()
        reasons = [why for _, why in plan.refused]
        assert sum("not a client session" in r for r in reasons) == len(workers[:2])
        assert any(r.startswith("a superuser's session") for r in reasons)
        assert "one of this kit's own sessions" in reasons
        allowed = Backends(pg, pids=[superuser_pid], allow_superuser=True).plan()
        assert [i.key for i in allowed.items] == [str(superuser_pid)]


def test_a_filter_is_required() -> None:
    with pytest.raises(ConfigError, match="give pids"):
        Backends(PostgresTarget(), older_than_s=0)
    with pytest.raises(ConfigError, match="mode 'kill'"):
        Backends(PostgresTarget(), mode="kill")


def test_idle_sessions_of_the_apps_role_are_selected_by_their_minutes(
    pg: PostgresTarget, stack: Stack, hold: Any
) -> None:
    """Scenario 2's "kill idle connections": plain idle sessions of the app's role only."""
    idle = hold(2, autocommit=True)
    (in_transaction,) = hold(1)
    in_transaction.execute("SELECT 1")  # idle in transaction: not a plain idle session
    with psycopg.connect(**stack.postgres.conninfo(dbname="himalytix")) as other_role:
        other_role.execute("SELECT 1")
        ours = {c.info.backend_pid for c in idle}
        for pid in ours:
            wait_for(lambda pid=pid: idle_for(stack, pid) > 1.5, "idle for 1.5 s")
        action = Backends(pg, older_than_s=0, idle_min=0.02)  # 1.2 s
        plan = action.plan()
        picked = {int(i.key) for i in plan.items}
        assert ours <= picked
        assert in_transaction.info.backend_pid not in picked
        assert other_role.info.backend_pid not in picked
        assert {(i.details["state"], i.details["user"]) for i in plan.items} == {("idle", "erp")}
        # Left empty, the role is the one irkit connects as, and the plan says so.
        assert "idle sessions of erp (the role irkit connects as; " in plan.what
        assert "over 1.2 s" in plan.what
        named = Backends(pg, older_than_s=0, idle_min=0.02, idle_role="erp").plan()
        assert "idle sessions of erp over 1.2 s" in named.what
        # Act on this test's own sessions only: the practice app's are not ours to end.
        mine = Plan(
            plan.action, plan.target, plan.what, tuple(i for i in plan.items if int(i.key) in ours)
        )
        outcome = action.act(mine)
        assert [r for _, r in outcome.done] == ["ended", "ended"]
        wait_for(lambda: all(idle_for(stack, pid) == 0.0 for pid in ours), "the sessions ended")


def test_an_empty_plan_says_who_holds_the_pool_and_what_would_select_them(
    pg: PostgresTarget, hold: Any
) -> None:
    hold(4, autocommit=True)  # young idle sessions: the runbook's 5-minute filter takes none
    plan = Backends(pg).plan()
    assert plan.items == ()
    assert plan.notes[0].startswith("no session matches the filters; the ")
    assert " idle" in plan.notes[0].split("by state: ")[1]
    assert " erp" in plan.notes[0].split("by user: ")[1]
    assert "by application: " in plan.notes[0]
    assert plan.notes[1].startswith("the oldest: pid ")
    assert "pg_kill_idle_min" in plan.notes[2]
    shown = plan._repr_mimebundle_()["text/plain"]
    assert "note: no session matches the filters" in shown


def test_prune_leaves_out_volumes_unless_allowed_apart() -> None:
    from irkit.actions.deployment import Prune

    commands = ["prune_docker: echo docker system prune -a --volumes -f"]
    plain = Prune(commands, allow_actions=["command.prune_docker"])
    plan = plain.plan()
    assert plan.items[0].summary == "run: echo docker system prune -a -f"
    assert plan.notes[0].startswith("--volumes left out: --volumes deletes every volume")
    assert "command.prune_docker_volumes" in plan.notes[0]
    outcome = guard.guarded(log(), plain, allow_actions=["command.prune_docker"])
    assert outcome is not None
    assert outcome.done[0][1] == "exit code 0: docker system prune -a -f"
    both = ["command.prune_docker", "command.prune_docker_volumes"]
    volumes = Prune(commands, allow_actions=both)
    assert volumes.plan().notes[0].startswith("WARNING: --volumes deletes")
    outcome = guard.guarded(log(), volumes, allow_actions=both)
    assert outcome is not None
    assert outcome.done[0][1] == "exit code 0: docker system prune -a --volumes -f"


def test_migrate_fake_takes_the_app_and_migration_from_a_parameter(tmp_path: Path) -> None:
    from irkit.actions.deployment import FakeMigration

    commands = ["migrate_fake: echo manage.py migrate --fake"]
    fake = FakeMigration(commands, "accounting.0002_invoice")
    outcome = guard.guarded(log(), fake, allow_actions=["command.migrate_fake"])
    assert outcome is not None
    assert outcome.done[0][1] == "exit code 0: manage.py migrate --fake accounting 0002_invoice"
    unnamed = FakeMigration(commands, "").plan()
    assert unnamed.items == ()
    assert "name the migration to mark as applied in pg_fake_migration" in unnamed.what
    for bad in ("accounting", "accounting.0002; rm -rf /", "-x.0002", "accounting.--settings=x"):
        with pytest.raises(ConfigError, match="is not a migration"):
            FakeMigration(commands, bad)
    # Refused before anything runs, like every action parameter.
    done = irkit("run", "db", "-p", "pg_fake_migration=accounting.0002 x", reports=tmp_path)
    assert done.returncode == 3
    assert "pg_fake_migration: 'accounting.0002 x' is not a migration" in done.stderr
    assert "Traceback" not in done.stderr


# --- Redis -------------------------------------------------------------------------------------


def test_flush_refuses_the_broker_db_and_empties_a_cache_db(
    redis_target: RedisTarget, stack: Stack
) -> None:
    import re

    from irkit.actions.redis import FlushDb

    broker_db = RedisTarget(url=stack.redis.url(BROKER_DB))
    binding = "_kombu.binding.celery"
    with redis_client(broker_db) as r:
        r.set("irkit-test:broker-marker", 1)
        assert r.exists(binding)
    plan = FlushDb(broker_db).plan()
    assert plan.items == ()
    assert "holds Celery/kombu keys" in plan.refused[0][1]
    assert guard.guarded(log(), FlushDb(broker_db), allow_actions=["redis.flushdb"]) is None
    with redis_client(broker_db) as r:
        # Nothing happened, even though allowed (the worker may change its own keys meanwhile).
        assert r.exists(binding, "irkit-test:broker-marker") == 2
        r.delete("irkit-test:broker-marker")

    with redis_client(redis_target) as r:
        r.mset({f"irkit-test:{n}": n for n in range(25)})
    plan = FlushDb(redis_target).plan()
    assert plan.items[0].details["keys"] >= 25
    outcome = FlushDb(redis_target).act(plan)
    # The practice app's cache may gain a key while this runs: count ours.
    assert re.fullmatch(r"\d+ keys removed \(\d+ now\)", outcome.summary), outcome.summary
    with redis_client(redis_target) as r:
        assert list(r.scan_iter(match="irkit-test:*")) == []


def test_maxmemory_is_changed_and_a_too_small_value_refused(redis_target: RedisTarget) -> None:
    from irkit.actions.redis import MaxMemory, parse_size

    assert parse_size("512mb") == 512 * 2**20
    assert parse_size("1k") == 1000
    with redis_client(redis_target) as r:
        original = int(r.config_get("maxmemory")["maxmemory"])
        try:
            assert MaxMemory(redis_target, "1kb").plan().refused  # below what is in use
            action = MaxMemory(redis_target, "300mb")
            outcome = guard.guarded(log(), action, allow_actions=["redis.maxmemory"])
            assert outcome is not None
            assert int(r.config_get("maxmemory")["maxmemory"]) == 300 * 2**20
        finally:
            r.config_set("maxmemory", original)


# --- Celery ------------------------------------------------------------------------------------


def test_purge_empties_a_real_queue_of_known_size(broker: CeleryTarget) -> None:
    from celery import Celery

    from irkit.actions.celery import Purge

    queue = "irkit-test-purge"  # no worker consumes it
    app = Celery("t", broker=broker.broker_url, set_as_current=False)
    try:
        for n in range(30):
            app.send_task("nothing.here", queue=queue, priority=[0, 5, 9][n % 3])
    finally:
        app.close()
    action = Purge(broker, [queue])
    plan = action.plan()
    assert plan.items[0].details["waiting"] == 30
    assert guard.guarded(log(), action) is None  # not allowed: a dry run
    assert Purge(broker, [queue]).plan().items[0].details["waiting"] == 30
    outcome = action.act(plan)
    assert outcome.summary == "30 tasks discarded from 1 queue(s)"
    assert Purge(broker, [queue]).plan().items == ()  # every priority sub-queue is empty


def test_pool_grow_changes_a_real_workers_pool(broker: CeleryTarget) -> None:
    from irkit.actions.celery import Pool, pool_sizes

    before = pool_sizes(broker)
    assert before, "the practice worker answers"
    worker, size = next(iter(before.items()))
    try:
        outcome = guard.guarded(
            log(), Pool(broker, 1, [worker]), allow_actions=["celery.pool_grow"]
        )
        assert outcome is not None
        assert outcome.done == ((f"{worker}: pool {size} → {size + 1}", f"pool is now {size + 1}"),)
        assert pool_sizes(broker)[worker] == size + 1
        refused = Pool(broker, -(size + 5), [worker]).plan()
        assert "cannot lose" in refused.refused[0][1]
    finally:
        shrink = Pool(broker, -1, [worker])
        shrink.act(shrink.plan())
    assert pool_sizes(broker)[worker] == size


# --- disk ----------------------------------------------------------------------------------


def test_cleanup_deletes_exactly_the_old_files_and_nothing_behind_a_symlink(
    tmp_path: Path,
) -> None:
    from irkit.actions.disk import OldFiles

    root, outside = tmp_path / "logs", tmp_path / "keep"
    (root / "sub").mkdir(parents=True)
    outside.mkdir()
    old = time.time() - 10 * 86400
    files = {
        "old": root / "app.log",
        "old_sub": root / "sub" / "worker.log",
        "new": root / "today.log",
        "other": root / "notes.txt",
        "target": outside / "precious.log",
    }
    for name, path in files.items():
        path.write_bytes(b"x" * 1000)
        if name != "new":
            os.utime(path, (old, old))
    (root / "link.log").symlink_to(files["target"])
    (root / "linked-dir").symlink_to(outside, target_is_directory=True)
    action = OldFiles([str(root)], max_age_days=7, pattern="*.log")
    plan = action.plan()
    assert sorted(i.key for i in plan.items) == sorted([str(files["old"]), str(files["old_sub"])])
    files["old_sub"].write_bytes(b"changed")  # after the plan: left alone
    os.utime(files["old_sub"], (old, old))
    outcome = action.act(plan)
    assert not files["old"].exists()
    assert outcome.skipped[0][1] == "changed since the plan"
    for name in ("old_sub", "new", "other", "target"):
        assert files[name].exists(), name
    assert (root / "link.log").is_symlink()


@pytest.mark.parametrize("root", ["/", "~", "/root"])
def test_cleanup_refuses_root_and_home_folders(root: str) -> None:
    from irkit.actions.disk import OldFiles

    plan = OldFiles([os.path.expanduser(root)], max_age_days=7).plan()
    assert plan.items == ()
    assert plan.refused[0][1] in ("it is /", "it is a home folder")


# --- in the notebooks, headless ----------------------------------------------------------------


def test_headless_db_notebook_acts_only_when_allowed_and_records_it(
    tmp_path: Path, stack: Stack, hold: Any
) -> None:
    from irkit.incident import load

    (conn,) = hold(1)
    hold.background(conn, "SELECT pg_sleep(120) /* runaway report */")
    assert irkit("incident", "open", "--title", "t", "--id", "A1", reports=tmp_path).returncode == 0
    wait_for(lambda: running_for(stack, "/* runaway report */") > 1.0, "the report is over 1 s")
    kill = ["-p", "pg_kill_older_than_s=1"]
    dry = irkit("run", "db", "--incident", "A1", *kill, reports=tmp_path)
    assert dry.returncode < 3, dry.stdout + dry.stderr
    assert pids_running(stack, "/* runaway report */")  # re-read: nothing changed
    allowed = irkit(
        "run",
        "db",
        "--incident",
        "A1",
        *kill,
        "-p",
        "confirmed_by=jane",
        "-p",
        'allow_actions=["postgres.terminate"]',
        reports=tmp_path,
    )
    assert allowed.returncode < 3, allowed.stdout + allowed.stderr
    assert not pids_running(stack, "/* runaway report */")
    timeline = load.load_folder(tmp_path / "incidents" / "A1").timeline
    kinds = [e["kind"] for e in timeline if "postgres.terminate" in e["text"]]
    assert kinds == [
        "action-plan",
        "action-dry-run",
        "action-plan",
        "action-confirmed",
        "action-result",
    ]
    confirmed = next(e for e in timeline if e["kind"] == "action-confirmed")
    assert "confirmed by jane (allow_actions)" in confirmed["text"]
    result = next(e for e in timeline if e["kind"] == "action-result")
    assert result["text"] == "postgres.terminate: terminate: 1 of 1 done"
    assert "runaway report" in json.dumps(result["data"])
    pm = irkit("postmortem", "A1", reports=tmp_path)
    assert pm.returncode == 0
    assert (
        "postgres.terminate: terminate: 1 of 1 done"
        in (tmp_path / "incidents" / "A1" / "postmortem.md").read_text()
    )


# --- deployment commands -----------------------------------------------------------------------


def test_commands_are_parsed_and_an_unconfigured_one_says_how() -> None:
    from irkit.actions.deployment import Named
    from irkit.programs import parse_named as parse

    assert parse(["restart_web: docker compose restart web"]) == {
        "restart_web": ["docker", "compose", "restart", "web"]
    }
    for bad in ("restart web", "Restart: x", "x:", "q: echo 'unclosed"):
        with pytest.raises(ConfigError):
            parse([bad])
    plan = Named("renew_cert", []).plan()
    assert plan.items == ()
    assert "add 'renew_cert: <command>' to deploy_commands" in plan.what


def test_a_command_runs_once_allowed_with_exit_code_output_and_timeout(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from irkit.actions.deployment import Named

    secret = "webhook-secret-5f4e3d2c1b"
    monkeypatch.setenv("IRKIT_SLACK_WEBHOOK", secret)
    ok = Named("say", ["say: sh -c 'echo hello; echo $IRKIT_SLACK_WEBHOOK'"])
    assert guard.guarded(log(), ok) is None  # a dry run: not allowed
    outcome = guard.guarded(log(), ok, allow_actions=["command.say"])
    assert outcome is not None
    assert outcome.done[0][1] == "exit code 0: hello\n****"  # the secret is masked
    failing = Named("fail", ["fail: sh -c 'echo broken >&2; exit 3'"])
    outcome = failing.act(failing.plan())
    assert outcome.failed[0][1] == "exit code 3: broken"
    assert outcome.verdict == "FAILED"
    # The command and what it started in the background: both stopped at the timeout.
    slow = Named("slow", ["slow: sh -c 'sleep 30 & sleep 30'"], timeout_s=0.5)
    started = time.monotonic()
    outcome = slow.act(slow.plan())
    assert "still running after 0.5 s: stopped" in outcome.failed[0][1]
    assert time.monotonic() - started < 5


def acted(outcome: guard.Outcome | None) -> bool:
    assert outcome is not None
    assert outcome.done, outcome
    return True


SANDBOX_COMMANDS = [
    "restart_web: irkit sandbox restart web",
    "migrate: irkit sandbox manage migrate",
    "renew_cert: irkit sandbox renew-cert",
]


def test_the_practice_stacks_own_commands_mend_its_drills(stack: Stack, pg: PostgresTarget) -> None:
    """Incident 1 and Incident 3 on the practice stack, mended by its deployment commands."""
    from irkit import drills
    from irkit.actions.deployment import Named
    from irkit.probes import postgres, tls
    from irkit.result import Status
    from irkit.target_builders import parse_endpoint
    from irkit.targets import TlsTarget

    expected = ["accounting.0001_initial", "accounting.0002_invoice"]
    certificates = TlsTarget(endpoints=tuple(parse_endpoint(e) for e in tls_endpoints(stack)))
    allow = ["command.migrate", "command.renew_cert", "command.restart_web"]
    try:
        drills.start(stack, "migration-failure")
        assert postgres.migrations(pg, expected=expected).status is Status.CRIT
        outcome = guard.guarded(log(), Named("migrate", SANDBOX_COMMANDS), allow_actions=allow)
        assert acted(outcome)
        assert postgres.migrations(pg, expected=expected).status is Status.OK
    finally:
        drills.stop(stack, "migration-failure")
    try:
        drills.start(stack, "cert-expiry")
        assert tls.expiry(certificates).status is Status.CRIT
        outcome = guard.guarded(log(), Named("renew_cert", SANDBOX_COMMANDS), allow_actions=allow)
        assert acted(outcome)
        assert tls.expiry(certificates).status is Status.OK
    finally:
        drills.stop(stack, "cert-expiry")
    inspect = Named(
        "inspect_active",
        [
            f"inspect_active: celery -A irkit.sandbox.tasks -b {stack.redis.url(BROKER_DB)} "
            "inspect active"
        ],
    )
    outcome = inspect.act(inspect.plan())
    assert "irkit-sandbox@localhost" in outcome.done[0][1]
    # Scale the workers the practice way: the real `celery control pool_grow`.
    from irkit.actions.celery import Pool, pool_sizes

    broker = CeleryTarget(broker_url=stack.redis.url(BROKER_DB))
    size = pool_sizes(broker)["irkit-sandbox@localhost"]
    grow = Named(
        "scale_workers",
        [
            f"scale_workers: celery -A irkit.sandbox.tasks -b {stack.redis.url(BROKER_DB)} "
            "control pool_grow 1"
        ],
    )
    assert acted(grow.act(grow.plan()))
    wait_for(lambda: pool_sizes(broker)["irkit-sandbox@localhost"] == size + 1)
    shrink = Pool(broker, -1)
    shrink.act(shrink.plan())
    before = stack.web.pid
    outcome = guard.guarded(log(), Named("restart_web", SANDBOX_COMMANDS), allow_actions=allow)
    assert acted(outcome)
    assert stack.web.pid != before
    assert stack.web.answers()


def test_headless_redis_celery_and_disk_notebooks_change_nothing_unless_allowed(
    tmp_path: Path, stack: Stack, redis_target: RedisTarget, broker: CeleryTarget
) -> None:
    from celery import Celery

    from irkit.actions.celery import Purge

    queue = "irkit-test-headless"
    app = Celery("t", broker=broker.broker_url, set_as_current=False)
    try:
        for _ in range(12):
            app.send_task("nothing.here", queue=queue)
    finally:
        app.close()
    with redis_client(redis_target) as r:
        r.mset({f"irkit-test:{n}": n for n in range(7)})
    logs = tmp_path / "logs"
    logs.mkdir()
    old_log = logs / "app.log"
    old_log.write_text("x")
    os.utime(old_log, (time.time() - 9 * 86400,) * 2)
    # Thresholds low enough that each mitigation's finding is present (else it is not needed).
    runs = {
        "redis": ["-p", "redis_memory_warn_pct=0.01", "-p", "redis_memory_crit_pct=100"],
        "celery": ["-p", f'celery_queues=["{queue}"]', "-p", "celery_queue_warn=10"],
        "disk": ["-p", f'disk_log_dirs=["{logs}"]', "-p", "disk_warn_pct=1"],
    }
    allow = {"redis": "redis.flushdb", "celery": "celery.purge", "disk": "disk.cleanup_logs"}
    reports = tmp_path / "reports"

    def state() -> tuple[int, int, bool]:
        with redis_client(redis_target) as r:
            keys = len(list(r.scan_iter(match="irkit-test:*")))
        waiting = Purge(broker, [queue]).plan().items
        return keys, int(waiting[0].details["waiting"]) if waiting else 0, old_log.exists()

    before = state()
    assert before[1:] == (12, True)
    for section, args in runs.items():
        done = irkit("run", section, *args, reports=reports)
        assert "Dry run: nothing was changed" in (done.stdout + done.stderr) or done.returncode < 3
    assert state() == before  # re-read from the servers and the disk: nothing changed
    for section, args in runs.items():
        done = irkit(
            "run", section, *args, "-p", f'allow_actions=["{allow[section]}"]', reports=reports
        )
        assert done.returncode < 3, done.stdout + done.stderr
    assert state() == (0, 0, False)


# --- what a second look found ----------------------------------------------------------------


def test_a_folder_swapped_for_a_symlink_after_the_plan_is_not_followed(tmp_path: Path) -> None:
    from irkit.actions.disk import OldFiles

    root, outside = tmp_path / "logs", tmp_path / "etc"
    (root / "sub").mkdir(parents=True)
    outside.mkdir()
    old = time.time() - 10 * 86400
    for path in (root / "sub" / "app.log", outside / "app.log"):
        path.write_text("x")
        os.utime(path, (old, old))
    action = OldFiles([str(root)], max_age_days=7, pattern="*.log")
    plan = action.plan()
    assert len(plan.items) == 1
    (root / "sub").rename(root / "sub-moved")
    (root / "sub").symlink_to(outside, target_is_directory=True)
    outcome = action.act(plan)
    assert outcome.done == ()
    assert outcome.skipped[0][1] == "a folder on its path was replaced (by a symlink or a file)"
    assert (outside / "app.log").exists()
    assert (root / "sub-moved" / "app.log").exists()


@pytest.mark.parametrize(("root", "why"), [("", "an empty path"), ("/home", "it is a home folder")])
def test_cleanup_refuses_an_empty_root_and_home_parents(root: str, why: str) -> None:
    from irkit.actions.disk import OldFiles

    assert OldFiles([root], max_age_days=7).plan().refused[0][1] == why


def test_purge_leaves_a_queue_that_grew_since_the_plan(broker: CeleryTarget) -> None:
    from celery import Celery

    from irkit.actions.celery import Purge

    queue = "irkit-test-grew"
    app = Celery("t", broker=broker.broker_url, set_as_current=False)
    try:
        for _ in range(5):
            app.send_task("nothing.here", queue=queue)
        action = Purge(broker, [queue])
        plan = action.plan()
        for _ in range(3):
            app.send_task("nothing.here", queue=queue)
    finally:
        app.close()
    outcome = action.act(plan)
    assert outcome.done == ()
    assert "8 tasks wait now, the plan was for 5" in outcome.skipped[0][1]
    fresh = Purge(broker, [queue])
    assert fresh.act(fresh.plan()).summary == "8 tasks discarded from 1 queue(s)"


def test_cancel_refuses_a_session_with_no_statement(pg: PostgresTarget, hold: Any) -> None:
    (conn,) = hold(1)
    conn.execute("SELECT 1")  # and the transaction stays open, idle
    plan = Backends(pg, mode="cancel", pids=[conn.info.backend_pid]).plan()
    assert plan.items == ()
    assert "no statement to cancel" in plan.refused[0][1]


def test_plans_and_results_are_recorded_without_secrets(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    secret = "statuspage-token-9a8b7c6d"
    monkeypatch.setenv("IRKIT_STATUSPAGE_TOKEN", secret)

    class Leaky:
        """Pure logic: a plan whose items quote a secret, as a query text might."""

        name = "test.leaky"

        def plan(self) -> guard.Plan:
            item = guard.Item("1", f"ALTER ROLE app PASSWORD '{secret}'", {"query": secret})
            return guard.Plan(self.name, "t", "one", (item,))

        def act(self, plan: guard.Plan) -> guard.Outcome:
            return guard.Outcome(self.name, "t", done=((secret, secret),), summary=secret)

    guard.guarded(log(), Leaky(), allow_actions=["test.leaky"])
    assert secret not in capsys.readouterr().out


def test_autoscale_is_refused_by_a_worker_without_an_autoscaler(broker: CeleryTarget) -> None:
    """The practice worker runs a fixed pool: the real worker's refusal is the outcome."""
    from irkit.actions.celery import Autoscale

    assert Autoscale(broker, 0, 0).plan().items == ()
    with pytest.raises(ConfigError, match="need 0 <= min <= max"):
        Autoscale(broker, 2, 5)
    action = Autoscale(broker, 4, 1)
    plan = action.plan()
    assert [i.key for i in plan.items] == ["irkit-sandbox@localhost"]
    outcome = action.act(plan)
    assert outcome.done == ()
    assert "the worker refused" in outcome.failed[0][1]


def test_who_holds_the_pool_when_this_role_cannot_see_the_others() -> None:
    """Without pg_monitor, other roles' sessions show with no state: the note says so instead of
    failing the plan."""
    from irkit.actions import holders

    def row(pid: int, user: str, state: str | None) -> dict[str, Any]:
        return {
            "pid": pid,
            "user": user,
            "state": state,
            "application": None,
            "backend_type": "client backend",
            "query_age_s": None,
            "state_age_s": None,
        }

    rows = [row(100 + i, "erp", None) for i in range(5)] + [row(200, "monitor", "active")]
    notes = holders.who_holds(rows, "monitor")
    assert notes[0].startswith("no session matches the filters; the 6 client sessions are")
    assert notes[-1] == (
        "5 sessions of other roles are hidden from this role (5 erp): grant it pg_monitor to "
        "see and select them"
    )
