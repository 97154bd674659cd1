"""Database drills: runbook Scenario 2 (connection pool exhausted), the Slow Query alert, sessions
idle in a transaction, and Common Incident 1 (a migration that did not apply)."""

from __future__ import annotations

from irkit.drills import Drill, State, agent
from irkit.sandbox.postgres import APP_DATABASE, APP_USER
from irkit.sandbox.stack import Stack

# The migration the drill takes away, with the relation it created. The relation is moved into
# a schema of its own (indexes and sequences go with it), so that `manage.py migrate`, the
# runbook's fix, can create it afresh without colliding with anything left behind.
MIGRATION = ("accounting", "0002_invoice")
RELATION = "accounting_invoice"
HIDDEN_SCHEMA = "irkit_drill_hidden"


def _sessions(name: str, kind: str) -> tuple[agent.Step, agent.Step]:
    """A drill whose fault is database sessions held by an agent, as the application's role."""

    def start(stack: Stack, state: State) -> None:
        pg = stack.postgres
        app = {"host": pg.host, "port": pg.port, "user": APP_USER, "dbname": APP_DATABASE}
        state.update(agent.spawn(stack, name, kind, **app))

    def stop(stack: Stack, state: State) -> None:
        agent.end(stack, name)
        # A backend busy in pg_sleep does not notice that its client went away: end it too.
        if pids := state.get("backend_pids"):
            with stack.postgres.connect() as conn:
                conn.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE pid = ANY(%s) AND usename = %s",
                    [pids, APP_USER],
                )

    return start, stop


def _hide_migration(stack: Stack, state: State) -> None:
    with stack.postgres.connect(APP_DATABASE) as conn:
        row = conn.execute(
            "DELETE FROM django_migrations WHERE app = %s AND name = %s RETURNING applied",
            MIGRATION,
        ).fetchone()
        state["applied"] = row[0].isoformat() if row else None
        conn.execute(f"CREATE SCHEMA IF NOT EXISTS {HIDDEN_SCHEMA}")
        conn.execute(f"ALTER TABLE IF EXISTS public.{RELATION} SET SCHEMA {HIDDEN_SCHEMA}")
        state["hidden"] = True


def _restore_migration(stack: Stack, state: State) -> None:
    with stack.postgres.connect(APP_DATABASE) as conn:
        hidden = conn.execute("SELECT to_regclass(%s)", [f"{HIDDEN_SCHEMA}.{RELATION}"]).fetchone()
        if hidden != (None,):
            if conn.execute("SELECT to_regclass(%s)", [f"public.{RELATION}"]).fetchone() != (None,):
                # The responder re-applied the migration: theirs stays.
                conn.execute(f"DROP TABLE {HIDDEN_SCHEMA}.{RELATION}")
            else:
                conn.execute(f"ALTER TABLE {HIDDEN_SCHEMA}.{RELATION} SET SCHEMA public")
        conn.execute(f"DROP SCHEMA IF EXISTS {HIDDEN_SCHEMA}")
        conn.execute(
            "INSERT INTO django_migrations (app, name, applied)"
            " SELECT %s, %s, coalesce(%s::timestamptz, now())"
            " WHERE NOT EXISTS (SELECT 1 FROM django_migrations WHERE app = %s AND name = %s)",
            [*MIGRATION, state.get("applied"), *MIGRATION],
        )


DRILLS = [
    Drill(
        "pool-exhaustion",
        "Scenario 2: Database Connection Pool Exhausted",
        "db",
        "postgres.connections at its limit, held by himalytix-web sessions (some running long "
        "queries, some idle in a transaction); the app's own requests start failing",
        *_sessions("pool-exhaustion", "hold-connections"),
    ),
    Drill(
        "slow-queries",
        "Alert Triage: Slow Query Alert (>1s avg)",
        "db",
        "postgres.long_queries lists report queries running pg_sleep for ever",
        *_sessions("slow-queries", "slow-queries"),
    ),
    Drill(
        "idle-transactions",
        "Scenario 2: idle connections; a transaction left open holds a row lock",
        "db",
        "postgres.idle_in_transaction shows the open transaction, postgres.blocking the session "
        "waiting on its lock (WARN after 1 min, CRIT after 5 by default)",
        *_sessions("idle-transactions", "idle-transaction"),
    ),
    Drill(
        "migration-failure",
        "Common Incident 1: Database Migration Failure",
        "db",
        "postgres.migrations: accounting.0002_invoice not applied; pages fail with relation "
        '"accounting_invoice" does not exist',
        _hide_migration,
        _restore_migration,
        holds_down=("schema",),
    ),
]
