"""Cancel or terminate PostgreSQL backends: the runbook's "kill long-running queries (> 5 min)"
(Scenario 2) and "terminate specific query" (Slow Query Alert), guarded.

Only client backends are ever touched: never this kit's own sessions, nor replication, autovacuum
or other background workers, nor a superuser's session unless `allow_superuser`. Before each
signal the backend is read again: a pid that now runs another statement (or began another
transaction) than the one planned is left alone.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from irkit.actions import holders
from irkit.actions.guard import Item, Outcome, Plan, act_on
from irkit.catalogue.parameters import default
from irkit.errors import ConfigError
from irkit.probes.postgres import connect_error, mask_query
from irkit.secrets import scrub
from irkit.targets import PostgresTarget
from irkit.units import human_age

_COLUMNS = """
    a.pid, a.usename AS user, coalesce(a.application_name, '') AS application, a.state,
    a.backend_type, a.backend_start, a.query_start, a.state_change, a.xact_start,
    left(a.query, 300) AS query, coalesce(r.rolsuper, false) AS superuser,
    extract(epoch FROM now() - a.query_start)::float AS query_age_s,
    extract(epoch FROM now() - a.state_change)::float AS state_age_s
FROM pg_stat_activity a LEFT JOIN pg_roles r ON r.oid = a.usesysid
"""
MODES = ("cancel", "terminate")


def _connect(target: PostgresTarget) -> psycopg.Connection[dict[str, Any]]:
    try:
        conn = psycopg.connect(**target.connect_kwargs(), autocommit=True, row_factory=dict_row)
    except psycopg.Error as exc:
        raise connect_error(target, exc) from None
    timeout_ms = int(target.statement_timeout_s * 1000)
    conn.execute(sql.SQL("SET statement_timeout = {t}").format(t=sql.Literal(timeout_ms)))
    return conn


class Backends:
    """`mode` "cancel" (pg_cancel_backend: the statement stops, the session stays) or
    "terminate" (pg_terminate_backend: the session ends), on either the `pids` given or those
    matching the filters: statements running longer than `older_than_s` (runbook: 5 min) and,
    if `idle_in_transaction_s` > 0, sessions idle in a transaction that long."""

    def __init__(
        self,
        target: PostgresTarget,
        *,
        mode: str = default("pg_kill_mode"),
        older_than_s: float = default("pg_kill_older_than_s"),
        idle_in_transaction_s: float = 0.0,
        idle_min: float = 0.0,
        idle_role: str = "",
        pids: Sequence[int | str] = (),
        allow_superuser: bool = False,
        wait_s: float = 5.0,
    ) -> None:
        if mode not in MODES:
            raise ConfigError(f"mode {mode!r} is not one of: {', '.join(MODES)}")
        if older_than_s <= 0 and idle_in_transaction_s <= 0 and idle_min <= 0 and not pids:
            raise ConfigError(
                "give pids, or a positive older_than_s, idle_in_transaction_s or idle_min"
            )
        self.name = f"postgres.{mode}"
        self.target = target
        self.mode = mode
        self.older_than_s = older_than_s
        self.idle_in_transaction_s = idle_in_transaction_s
        self.idle_s = idle_min * 60
        # Empty: the role this kit connects as, known once connected.
        self.idle_role = idle_role
        # Left empty, it is the role irkit connects as, which the plan says: with a monitoring
        # role of its own, that selects none of the app's sessions.
        self.idle_role_given = bool(idle_role)
        try:
            self.pids = [int(p) for p in pids]
        except ValueError:
            raise ConfigError(f"pids must be numbers, got {list(pids)}") from None
        self.allow_superuser = allow_superuser
        self.wait_s = wait_s

    def _wanted(self, row: dict[str, Any]) -> bool:
        if self.pids:
            return int(row["pid"]) in self.pids
        if row["state"] == "active" and (row["query_age_s"] or 0) >= self.older_than_s > 0:
            return True
        if (
            self.idle_s > 0
            and row["state"] == "idle"
            and row["user"] == self.idle_role
            and (row["state_age_s"] or 0) >= self.idle_s
        ):
            # Runbook Scenario 2, "kill idle connections": a plain idle session holds a slot
            # and nothing else (no transaction, no lock).
            return True
        return (
            self.idle_in_transaction_s > 0
            and str(row["state"] or "").startswith("idle in transaction")
            and (row["state_age_s"] or 0) >= self.idle_in_transaction_s
        )

    def _refusal(self, row: dict[str, Any]) -> str | None:
        if self.mode == "cancel" and str(row["state"] or "").startswith("idle"):
            return f"{row['state']}: no statement to cancel (terminate ends the session)"
        if row["backend_type"] != "client backend":
            return f"a {row['backend_type']}, not a client session: never signalled"
        if str(row["application"]).startswith("irkit"):
            return "one of this kit's own sessions"
        if row["superuser"] and not self.allow_superuser:
            return f"a superuser's session ({row['user']}): set allow_superuser to include it"
        return None

    def plan(self) -> Plan:
        with _connect(self.target) as conn:
            rows = conn.execute(
                sql.SQL("SELECT " + _COLUMNS + " WHERE a.pid <> pg_backend_pid() ORDER BY a.pid")
            ).fetchall()
            self.idle_role = self.idle_role or str(conn.info.user)
        items, refused = [], []
        for row in rows:
            if not self._wanted(row):
                continue
            label = _label(row)
            why = self._refusal(row)
            if why:
                refused.append((label, why))
                continue
            items.append(
                Item(
                    key=str(row["pid"]),
                    summary=label,
                    details={
                        "pid": row["pid"],
                        "user": row["user"],
                        "application": row["application"],
                        "state": row["state"],
                        "query": row["query"],
                        "age_s": round(_age(row), 1),
                        # What must still hold when acting: the same session, statement and
                        # transaction.
                        "backend_start": _iso(row["backend_start"]),
                        "query_start": _iso(row["query_start"]),
                        "xact_start": _iso(row["xact_start"]),
                    },
                )
            )
        found = {int(r["pid"]) for r in rows}
        refused += [
            (f"pid {p}", "no such backend (or it is this kit's own)")
            for p in self.pids
            if p not in found
        ]
        what = (
            f"{self.mode} {len(items)} backend{'s' if len(items) != 1 else ''} ({self._filter()})"
        )
        notes = () if items or self.pids else holders.who_holds(rows, self.idle_role)
        return Plan(self.name, self.target.display, what, tuple(items), tuple(refused), notes=notes)

    def _filter(self) -> str:
        if self.pids:
            return "pids " + ", ".join(map(str, self.pids))
        parts = []
        if self.older_than_s > 0:
            parts.append(f"statements running over {human_age(self.older_than_s)}")
        if self.idle_in_transaction_s > 0:
            parts.append(f"idle in a transaction over {human_age(self.idle_in_transaction_s)}")
        if self.idle_s > 0:
            whose = self.idle_role + (
                ""
                if self.idle_role_given
                else " (the role irkit connects as; pg_kill_idle_role names the app's)"
            )
            parts.append(f"idle sessions of {whose} over {human_age(self.idle_s)}")
        return " or ".join(parts)

    def act(self, plan: Plan) -> Outcome:
        with _connect(self.target) as conn:

            def current(item: Item) -> dict[str, Any] | None:
                return conn.execute(
                    sql.SQL("SELECT " + _COLUMNS + " WHERE a.pid = %s"), [int(item.key)]
                ).fetchone()

            def still_matches(item: Item) -> str | None:
                row = current(item)
                if row is None:
                    return "already gone"
                d = item.details
                if _iso(row["backend_start"]) != d["backend_start"]:
                    return "the pid now belongs to another session"
                if (_iso(row["query_start"]), _iso(row["xact_start"]), row["state"]) != (
                    d["query_start"],
                    d["xact_start"],
                    d["state"],
                ):
                    return f"it moved on since the plan: now {_label(row)}"
                return self._refusal(row)

            def signal(item: Item) -> str:
                pid = int(item.key)
                if self.mode == "terminate":
                    return _terminate(conn, pid, self.wait_s)
                conn.execute("SELECT pg_cancel_backend(%s)", [pid])
                return _wait_cancelled(conn, pid, item.details["query_start"], self.wait_s)

            done, skipped, failed = act_on(plan, still_matches, signal)
        ended = sum(1 for _, r in done if r.startswith(("ended", "cancelled")))
        summary = f"{self.mode}: {ended} of {len(plan.items)} done"
        if skipped:
            summary += f", {len(skipped)} left alone (changed since the plan)"
        if failed or ended < len(done):
            summary += f", {len(failed) + len(done) - ended} did not end in {self.wait_s:g} s"
        return Outcome(self.name, plan.target, tuple(done), tuple(skipped), tuple(failed), summary)


def _terminate(conn: psycopg.Connection[dict[str, Any]], pid: int, wait_s: float) -> str:
    """pg_terminate_backend with a timeout (PostgreSQL 14+) waits and says whether the backend
    really ended; older servers are polled."""
    if conn.info.server_version >= 140000:
        row = conn.execute(
            "SELECT pg_terminate_backend(%s, %s) AS ended", [pid, int(wait_s * 1000)]
        ).fetchone()
        ended = bool(row and row["ended"])
    else:
        conn.execute("SELECT pg_terminate_backend(%s)", [pid])
        ended = _gone(conn, pid, wait_s)
    return "ended" if ended else f"signalled, still there after {wait_s:g} s"


def _gone(conn: psycopg.Connection[dict[str, Any]], pid: int, wait_s: float) -> bool:
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        if conn.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", [pid]).fetchone() is None:
            return True
        time.sleep(0.05)
    return False


def _wait_cancelled(
    conn: psycopg.Connection[dict[str, Any]], pid: int, query_start: str, wait_s: float
) -> str:
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        row = conn.execute(
            "SELECT state, query_start FROM pg_stat_activity WHERE pid = %s", [pid]
        ).fetchone()
        if row is None or row["state"] != "active" or _iso(row["query_start"]) != query_start:
            return "cancelled (the session stays)"
        time.sleep(0.05)
    return f"cancel sent, statement still running after {wait_s:g} s"


def _age(row: dict[str, Any]) -> float:
    key = "query_age_s" if row["state"] == "active" else "state_age_s"
    return float(row[key] or 0.0)


def _label(row: dict[str, Any]) -> str:
    query = scrub(mask_query(" ".join(str(row["query"] or "").split())))[:120]
    return (
        f"pid {row['pid']} {row['user']}"
        + (f" ({row['application']})" if row["application"] else "")
        + f", {row['state']} for {human_age(_age(row))}: {query}"
    )


def _iso(value: Any) -> str:
    return value.isoformat() if value is not None else ""
