"""Guarded mitigations against real servers: each acts exactly on its plan, refuses what it must,
and changes nothing unless allowed or confirmed."""

from __future__ import annotations

import time
from typing import Any

import psycopg
import pytest

from irkit.actions import guard
from irkit.actions.postgres import Backends
from irkit.errors import ConfigError
from irkit.incident.log import IncidentLog
from irkit.sandbox.stack import Stack
from irkit.targets import PostgresTarget


def pids_running(stack: Stack, needle: str) -> set[int]:
    with psycopg.connect(**stack.postgres.conninfo(dbname="himalytix")) as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE query LIKE %s AND pid <> pg_backend_pid()",
            [f"%{needle}%"],
        ).fetchall()
    return {int(r[0]) for r in rows}


def wait_for(predicate: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def log() -> IncidentLog:
    return IncidentLog("", "test")


def test_terminate_ends_the_old_statement_and_spares_the_others(
    pg: PostgresTarget, stack: Stack, hold: Any
) -> None:
    old, young, idle = hold(3)
    hold.background(old, "SELECT pg_sleep(60) /* old */")
    wait_for(lambda: pids_running(stack, "/* old */"))
    time.sleep(1.2)
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
    wait_for(lambda: pids_running(stack, "/* dry */"))
    time.sleep(1.1)
    record = log()
    assert guard.guarded(record, Backends(pg, older_than_s=1.0)) is None
    assert pids_running(stack, "/* dry */")  # re-read from the server: still there
    outcome = guard.guarded(
        record, Backends(pg, older_than_s=1.0), allow_actions=["postgres.terminate"]
    )
    assert outcome is not None
    assert not pids_running(stack, "/* dry */")


def test_a_backend_that_moved_on_is_left_alone(pg: PostgresTarget, stack: Stack, hold: Any) -> None:
    (conn,) = hold(1, autocommit=True)
    hold.background(conn, "SELECT pg_sleep(60) /* first */")
    wait_for(lambda: pids_running(stack, "/* first */"))
    time.sleep(1.1)
    action = Backends(pg, older_than_s=1.0)
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
        workers = [r[0] for r in admin.execute(
            "SELECT pid FROM pg_stat_activity WHERE backend_type <> 'client backend'"
        ).fetchall()]  # fmt: skip
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
