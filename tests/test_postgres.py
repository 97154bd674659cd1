"""PostgreSQL probes against a real server, with the faults made for real."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import psycopg
import pytest

from irkit.probes import postgres
from irkit.result import Status
from irkit.sandbox.stack import Stack
from irkit.targets import PostgresTarget
from tests.helpers import MAX_CONNECTIONS, idle_for, running_for, wait_for

# superuser_reserved_connections is 3 by default: the slots an ordinary role may use.
USABLE = MAX_CONNECTIONS - 3


def test_connect_ok(pg: PostgresTarget) -> None:
    result = postgres.connect(pg)
    assert result.status is Status.OK
    assert result.evidence["server_version"]
    assert result.evidence["replica"] is False
    assert result.target == f"postgresql://erp@127.0.0.1:{pg.port}/himalytix"


def test_connect_names_a_missing_database(pg: PostgresTarget) -> None:
    result = postgres.connect(replace(pg, dbname="nope"))
    assert result.status is Status.CRIT
    assert 'database "nope" does not exist' in result.summary


def test_connections_ok_then_warn_then_crit_with_the_numbers(pg: PostgresTarget, hold: Any) -> None:
    healthy = postgres.connections(pg)
    assert healthy.status is Status.OK
    assert healthy.evidence["available"] == USABLE

    hold(USABLE - 3)  # with the probe's own session: 15 of 17, 88 %
    warn = postgres.connections(pg)
    assert warn.status is Status.WARN
    assert warn.evidence["used"] == USABLE - 2
    assert warn.evidence["available"] == USABLE
    assert warn.evidence["by_state"]["idle"] == USABLE - 3
    assert f"{USABLE - 2} of {USABLE} usable connections" in warn.summary

    # The last probe's session must be gone, or its slot makes the next probe find no room.
    hold.settle()
    hold(2)  # 17 of 17
    # Prometheus' scrape of the app's health check takes a database session for a moment each
    # second: if it holds the last slot as the probe connects, the probe finds no room at all
    # (CRIT too, but without the count). Measure again until the probe got its slot.
    measured: list[Any] = []

    def counted() -> bool:
        measured.append(postgres.connections(pg))
        return "percent" in measured[-1].evidence

    wait_for(counted, "the probe connected and counted the sessions", 10)
    crit = measured[-1]
    assert crit.status is Status.CRIT
    assert crit.evidence["percent"] == 100.0


def test_an_exhausted_pool_is_named_as_such(pg: PostgresTarget, hold: Any) -> None:
    hold.settle()  # sessions of earlier tests leave the server a moment after they close
    hold(USABLE)
    result = postgres.connect(pg)
    assert result.status is Status.CRIT
    assert "connection pool exhausted" in result.summary
    assert result.evidence["pool_exhausted"] is True
    assert result.evidence["reachable"] is False


def test_without_pg_monitor_hidden_sessions_are_said_not_guessed(
    stack: Stack, pg: PostgresTarget, hold: Any
) -> None:
    with psycopg.connect(**stack.postgres.conninfo(), autocommit=True) as admin:
        admin.execute("DROP ROLE IF EXISTS readonly_probe")
        admin.execute("CREATE ROLE readonly_probe LOGIN")
    try:
        hold(1)
        limited = replace(pg, user="readonly_probe")
        result = postgres.long_queries(limited)
        assert result.status is Status.UNKNOWN
        assert "GRANT pg_monitor TO readonly_probe" in result.summary
        assert result.evidence["hidden_sessions"] >= 1
        counted = postgres.connections(limited)
        assert counted.evidence["by_state"].get("(hidden)", 0) >= 1
        assert "hidden" in counted.summary
    finally:
        with psycopg.connect(**stack.postgres.conninfo(), autocommit=True) as admin:
            admin.execute("DROP ROLE readonly_probe")


def test_long_queries_ok_then_warn_then_crit(pg: PostgresTarget, stack: Stack, hold: Any) -> None:
    assert postgres.long_queries(pg).status is Status.OK
    (conn,) = hold(1, autocommit=True)
    hold.background(conn, "SELECT pg_sleep(30) /* report export */")
    wait_for(lambda: postgres.long_queries(pg, warn_s=0.5).status is not Status.OK)
    warn = postgres.long_queries(pg, warn_s=0.5, crit_s=60)
    assert warn.status is Status.WARN
    row = warn.evidence["rows"][0]
    assert row["pid"] == conn.info.backend_pid
    assert "pg_sleep(30)" in row["query"]
    wait_for(lambda: running_for(stack, "/* report export */") > 1.0, "the export is over 1 s")
    crit = postgres.long_queries(pg, warn_s=0.5, crit_s=1)
    assert crit.status is Status.CRIT
    assert crit.evidence["over_crit"] == 1
    assert str(conn.info.backend_pid) in crit.summary


@pytest.mark.parametrize(
    "query",
    [
        "ALTER ROLE app PASSWORD 'it''s-secret' VALID UNTIL 'x'",
        "CREATE USER app PASSWORD E'it\\'s-secret'",
        "SELECT dblink_connect('host=db password=its-secret user=u')",
        "SELECT dblink_connect('host=db password=''its secret'' user=u')",
    ],
)
def test_passwords_are_masked_in_query_text(query: str) -> None:
    masked = postgres.mask_query(query)
    assert "secret" not in masked
    assert "****" in masked


def test_idle_in_transaction(pg: PostgresTarget, stack: Stack, hold: Any) -> None:
    assert postgres.idle_in_transaction(pg).status is Status.OK
    (conn,) = hold(1)  # not autocommit: the SELECT opens a transaction left open
    conn.execute("SELECT 1")
    pid = conn.info.backend_pid
    wait_for(lambda: idle_for(stack, pid) > 1.0, "the transaction is idle over 1 s")
    result = postgres.idle_in_transaction(pg, warn_s=0.5, crit_s=1)
    assert result.status is Status.CRIT
    assert result.evidence["rows"][0]["pid"] == conn.info.backend_pid
    assert result.evidence["rows"][0]["state"] == "idle in transaction"


@pytest.fixture
def locked_table(stack: Stack) -> Iterator[None]:
    with psycopg.connect(**stack.postgres.conninfo(user="erp", dbname="himalytix")) as c:
        c.execute("CREATE TABLE IF NOT EXISTS lock_demo (id int)")
        c.commit()
    yield
    with psycopg.connect(**stack.postgres.conninfo(user="erp", dbname="himalytix")) as c:
        c.execute("DROP TABLE IF EXISTS lock_demo")


def test_blocking_shows_who_blocks_whom(
    locked_table: None, pg: PostgresTarget, stack: Stack, hold: Any
) -> None:
    assert postgres.blocking(pg).status is Status.OK
    blocker, waiter = hold(2)
    blocker.execute("LOCK TABLE lock_demo IN ACCESS EXCLUSIVE MODE")  # transaction stays open
    waiter.autocommit = True
    hold.background(waiter, "SELECT count(*) FROM lock_demo")
    wait_for(lambda: postgres.blocking(pg).evidence["waiting"] == 1)
    # The lock wait starts a moment after the statement: a margin over the 0.5 s threshold.
    wait_for(lambda: running_for(stack, "FROM lock_demo") > 0.6, "the wait is over 0.5 s")
    result = postgres.blocking(pg, warn_s=0.5, crit_s=60)
    assert result.status is Status.WARN
    assert result.evidence["blockers"] == [blocker.info.backend_pid]
    assert result.evidence["rows"][0]["pid"] == waiter.info.backend_pid
    assert result.evidence["rows"][0]["blocked_by"] == [blocker.info.backend_pid]
    assert postgres.blocking(pg, warn_s=0.2, crit_s=0.5).status is Status.CRIT


def test_migrations(pg: PostgresTarget, stack: Stack) -> None:
    ok = postgres.migrations(pg, expected=["auth.0001_initial"])
    assert ok.status is Status.OK
    assert ok.evidence["applied"] >= 8
    missing = postgres.migrations(pg, expected=["auth.0001_initial", "ledger.0042_new_index"])
    assert missing.status is Status.CRIT
    assert missing.evidence["missing"] == ["ledger.0042_new_index"]
    # A database where migrations never ran.
    with psycopg.connect(**stack.postgres.conninfo(), autocommit=True) as admin:
        admin.execute("DROP DATABASE IF EXISTS empty_db")
        admin.execute("CREATE DATABASE empty_db")
    no_table = postgres.migrations(replace(pg, dbname="empty_db"))
    assert no_table.status is Status.CRIT
    assert "django_migrations table does not exist" in no_table.summary


def test_impact_counts_recent_users_and_tenants(pg: PostgresTarget) -> None:
    # The practice data's logins are as old as the test stack: three users log in now.
    with psycopg.connect(**pg.connect_kwargs(), autocommit=True) as conn:
        conn.execute(
            "UPDATE auth_user SET last_login = now() WHERE id IN "
            "(SELECT id FROM auth_user ORDER BY id LIMIT 3)"
        )
    result = postgres.impact(pg, window_min=5)
    assert result.status is Status.OK
    assert result.evidence["tenants"] == 4
    assert 1 <= result.evidence["active_users"] <= 40
    wrong = postgres.impact(pg, users_table="accounts_user")
    assert wrong.status is Status.UNKNOWN
    assert "impact_" in wrong.summary


def test_a_locked_table_cannot_hang_a_probe(pg: PostgresTarget, hold: Any) -> None:
    (blocker,) = hold(1)
    blocker.execute("LOCK TABLE auth_user IN ACCESS EXCLUSIVE MODE")
    started = time.monotonic()
    result = postgres.impact(replace(pg, statement_timeout_s=0.5))
    assert time.monotonic() - started < 3
    assert result.status is Status.CRIT
    assert "lock" in result.summary
