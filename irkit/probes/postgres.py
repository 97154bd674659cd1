"""PostgreSQL probes: can we connect, how full is the pool, what is slow, idle or blocked, are the
migrations applied, and how many users and tenants are there.

Every probe opens its own short autocommit session (pg_stat_activity is snapshotted per
transaction), read-only, with a statement and lock timeout. Lists of sessions leave the probe's
own out; the pool count includes it, because it takes a slot like any client.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from irkit import reasons
from irkit.errors import NotVisible, ServiceError, Unreachable
from irkit.probes.contract import Finding, check_thresholds, grade, probe
from irkit.result import Result, Status
from irkit.targets import PostgresTarget
from irkit.units import count, human_age

Conn = psycopg.Connection[dict[str, Any]]

_QUERY_CHARS = 300
_ROWS = 50


@contextmanager
def session(target: PostgresTarget) -> Iterator[Conn]:
    """A read-only autocommit session whose driver errors come out as irkit's own."""
    try:
        conn = psycopg.connect(**target.connect_kwargs(), autocommit=True, row_factory=dict_row)
    except psycopg.Error as exc:
        raise connect_error(target, exc) from None
    try:
        timeout_ms = int(target.statement_timeout_s * 1000)
        conn.execute(
            sql.SQL(
                "SET statement_timeout = {t}; SET lock_timeout = {t}; "
                "SET default_transaction_read_only = on"
            ).format(t=sql.Literal(timeout_ms))
        )
        yield conn
    except psycopg.errors.LockNotAvailable:
        raise ServiceError(
            f"a monitoring query waited longer than {target.statement_timeout_s:g} s for a lock: "
            "another session holds it (see postgres.blocking)"
        ) from None
    except psycopg.errors.QueryCanceled:
        raise ServiceError(
            f"a monitoring query took longer than the {target.statement_timeout_s:g} s statement "
            "timeout: the server is overloaded or locked"
        ) from None
    except psycopg.errors.InsufficientPrivilege as exc:
        raise NotVisible(f"permission denied: {_first_line(exc)}") from None
    except psycopg.OperationalError as exc:
        raise ServiceError(f"the session failed: {_first_line(exc)}") from None
    finally:
        conn.close()


def connect_error(target: PostgresTarget, exc: psycopg.Error) -> ServiceError:
    """Name the failure the way a responder thinks of it."""
    text = str(exc)
    where = target.display
    if "too many clients" in text or "connection slots are reserved" in text:
        return Unreachable(
            f"connection pool exhausted: {where} refuses new connections ({_first_line(exc)})",
            pool_exhausted=True,
        )
    if "password authentication failed" in text or "no password supplied" in text:
        return Unreachable(
            f"authentication failed at {where}: check PGPASSWORD/PGPASSFILE and the role",
            auth_failed=True,
        )
    if "no pg_hba.conf entry" in text:
        return Unreachable(f"{where} does not admit this client (pg_hba.conf)", auth_failed=True)
    if "does not exist" in text:
        return Unreachable(f"{where}: {_first_line(exc)}")
    if "timeout" in text.lower():
        return Unreachable(
            f"no answer from {where} within {target.connect_kwargs()['connect_timeout']} s "
            "(connect timeout): the server is hung, overloaded or firewalled"
        )
    if "Connection refused" in text or "No such file or directory" in text:
        return Unreachable(f"nothing accepts connections at {where}: is PostgreSQL running?")
    return Unreachable(f"cannot connect to {where}: {_first_line(exc)}")


def _pids(result: Result, key: str = "rows", limit: int = 10) -> str:
    rows = result.evidence.get(key) or []
    pids = [str(row["pid"]) for row in rows if isinstance(row, dict) and "pid" in row]
    shown = ", ".join(pids[:limit]) + (" …" if len(pids) > limit else "")
    return f" (pids {shown})" if shown else ""


def _postgres_connect(r: Result) -> str:
    if r.evidence.get("pool_exhausted"):
        return (
            "Runbook Scenario 2, connection pool exhausted: PostgreSQL refuses new clients. Close "
            "the application's idle connections (restart the web service), then use the "
            "long-query and idle-in-transaction checks below to pick backends to terminate."
        )
    if r.status is Status.WARN:
        return "Connecting is slow: the server or its network is struggling; watch the pool checks."
    return (
        "Database unreachable: treat as P0 if users are affected (runbook severity 1). Runbook "
        "'Health Check Failure': `pg_isready -U erp`, then the PostgreSQL log and "
        "`docker-compose ps` for the postgres service."
    )


def _postgres_connections(r: Result) -> str:
    e = r.evidence
    return (
        f"Runbook Scenario 2, connection pool: {e.get('used', '?')} of {e.get('available', '?')} "
        "usable connections taken. Close idle Django connections (restart the web service), "
        "then terminate the long-running queries found below (>5 min are the kill candidates)."
    )


def _postgres_long_queries(r: Result) -> str:
    if r.status is Status.CRIT:
        return (
            f"{r.evidence.get('over_crit', 'Some')} queries older than the kill threshold"
            f"{_pids(r)}: the runbook's 'Kill long-running queries (>5 min)' step; check what "
            "each one is, then `SELECT pg_terminate_backend(pid)`."
        )
    return (
        f"Runbook 'Slow Query Alert': {r.evidence.get('over_warn', 'some')} slow queries"
        f"{_pids(r)}; EXPLAIN them and watch whether they finish."
    )


def _postgres_idle(r: Result) -> str:
    return (
        f"Sessions idle in a transaction{_pids(r)} hold locks and a pool slot while doing "
        "nothing: the application opened a transaction and did not finish it. They are "
        "terminate candidates (`SELECT pg_terminate_backend(pid)`)."
    )


def _postgres_blocking(r: Result) -> str:
    blockers = r.evidence.get("blockers") or []
    who = ", ".join(str(b) for b in blockers[:5])
    return (
        f"Sessions wait on locks held by pid {who or '?'}: look at the blocker's query; "
        "terminating the blocker (`SELECT pg_terminate_backend(pid)`) releases the waiters."
    )


def _postgres_migrations(r: Result) -> str:
    return (
        "Runbook Incident 1, database migration failure: `python manage.py showmigrations`, "
        "then `python manage.py migrate`; if one is stuck, `migrate --fake app_name "
        "migration_name`; restore from backup if data is corrupt."
    )


@probe(
    "postgres.connect",
    measures="connect and `SELECT 1`; version, primary or replica",
    grades=(
        'connect ≥ {pg_connect_warn_s} / failure ("too many clients" is named as pool exhaustion)'
    ),
    target="postgres",
    thresholds={"warn_s": "pg_connect_warn_s"},
    area="postgres",
    recheck=True,
    advice=_postgres_connect,
)
def connect(target: PostgresTarget, *, warn_s: float) -> Finding:
    """Connect and run `SELECT 1`, as `psql -c "SELECT 1;"` and `pg_isready` do in the runbook."""
    started = time.perf_counter()
    with session(target) as conn:
        connect_s = time.perf_counter() - started
        row = conn.execute(
            "SELECT 1 AS one, current_setting('server_version') AS version, "
            "pg_is_in_recovery() AS replica"
        ).fetchone()
    assert row is not None
    evidence = {
        "connect_s": round(connect_s, 3),
        "server_version": row["version"],
        "replica": row["replica"],
        "warn_s": warn_s,
    }
    role = "a replica" if row["replica"] else "the primary"
    if connect_s >= warn_s:
        summary = f"connected in {connect_s:.1f} s (slow, warn at {warn_s:g} s) to {role}"
        return Finding(Status.WARN, summary, evidence)
    summary = f"connected in {connect_s * 1000:.0f} ms; SELECT 1 answered; PostgreSQL "
    return Finding(Status.OK, summary + f"{row['version']} ({role})", evidence)


# Whether this role sees every session's details in pg_stat_activity, and its name.
_VISIBILITY = (
    "(SELECT rolsuper FROM pg_roles WHERE rolname = current_user) "
    "OR pg_has_role(current_user, 'pg_read_all_stats', 'USAGE') AS sees_all, "
    "current_user AS role"
)


def _sees_all(conn: Conn) -> tuple[bool, str]:
    row = conn.execute(f"SELECT {_VISIBILITY}").fetchone()
    assert row is not None
    return bool(row["sees_all"]), str(row["role"])


def _hidden_note(hidden: int, role: str) -> str:
    return (
        f"{hidden} sessions of other roles are hidden from {role}: "
        f"GRANT pg_monitor TO {role} for exact numbers"
    )


@probe(
    "postgres.connections",
    measures=(
        "client sessions against `max_connections` minus reserved slots, by state, user, "
        "application"
    ),
    grades="{pg_connections_warn_pct} / {pg_connections_crit_pct}",
    target="postgres",
    thresholds={"warn_pct": "pg_connections_warn_pct", "crit_pct": "pg_connections_crit_pct"},
    area="postgres",
    recheck=True,
    advice=_postgres_connections,
)
def connections(target: PostgresTarget, *, warn_pct: float, crit_pct: float) -> Finding:
    """Client backends against the slots ordinary roles may use
    (`max_connections - superuser_reserved_connections - reserved_connections`)."""
    check_thresholds(warn_pct, crit_pct)
    with session(target) as conn:
        limits = conn.execute(
            f"SELECT {_VISIBILITY}, "
            "current_setting('max_connections')::int AS max_connections, "
            "current_setting('superuser_reserved_connections')::int AS superuser_reserved, "
            "coalesce(current_setting('reserved_connections', true), '0')::int AS reserved"
        ).fetchone()
        groups = conn.execute(
            # Without pg_read_all_stats, other roles' rows show NULL backend_type and state;
            # those with a role name are counted as hidden client sessions.
            "SELECT coalesce(state, '(hidden)') AS state, coalesce(usename, '') AS user, "
            "coalesce(application_name, '') AS application, count(*)::int AS sessions "
            "FROM pg_stat_activity "
            "WHERE backend_type = 'client backend' "
            "   OR (backend_type IS NULL AND usename IS NOT NULL) "
            "GROUP BY 1, 2, 3 ORDER BY 4 DESC"
        ).fetchall()
    assert limits is not None
    sees_all, role = bool(limits["sees_all"]), str(limits["role"])
    available = limits["max_connections"] - limits["superuser_reserved"] - limits["reserved"]
    used = sum(g["sessions"] for g in groups)
    hidden = sum(g["sessions"] for g in groups if g["state"] == "(hidden)")
    pct = 100.0 * used / max(available, 1)
    by_state: dict[str, int] = {}
    for g in groups:
        by_state[g["state"]] = by_state.get(g["state"], 0) + g["sessions"]
    states = ", ".join(f"{n} {s}" for s, n in sorted(by_state.items(), key=lambda kv: -kv[1]))
    evidence: dict[str, Any] = {
        "used": used,
        "available": available,
        "percent": round(pct, 1),
        "max_connections": limits["max_connections"],
        "superuser_reserved_connections": limits["superuser_reserved"],
        "reserved_connections": limits["reserved"],
        "by_state": by_state,
        "rows": groups[:_ROWS],
        "warn_pct": warn_pct,
        "crit_pct": crit_pct,
        "sees_all_sessions": sees_all,
    }
    summary = f"{used} of {available} usable connections in use ({pct:.0f}%): {states}"
    if hidden and not sees_all:
        summary += f"; {_hidden_note(hidden, role)}"
    return Finding(grade(pct, warn_pct, crit_pct), summary, evidence)


_PASSWORD_LITERAL = re.compile(r"(?i)(password\s*)(E?'(?:[^'\\]|''|\\.)*')")
_PASSWORD_SETTING = re.compile(r"(?i)(password\s*=\s*)(''.*?''|'(?:[^']|'')*'|[^\s']+)")


def mask_query(query: str | None) -> str:
    """Query text goes into the record: hide password literals (ALTER ROLE … PASSWORD '…') and
    passwords in connection strings (dblink, foreign servers: password=…)."""
    if not query:
        return ""
    masked = _PASSWORD_LITERAL.sub(r"\1'****'", query)
    return _PASSWORD_SETTING.sub(r"\1****", masked)[:_QUERY_CHARS]


def _session_rows(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {
            **{k: v for k, v in row.items() if k != "query"},
            "age_s": round(float(row["age_s"] or 0.0), 1),
            "query": mask_query(row.get("query")),
        }
        for row in rows
    ]


def _hidden_sessions(conn: Conn) -> int:
    row = conn.execute(
        "SELECT count(*)::int AS n FROM pg_stat_activity "
        "WHERE backend_type IS NULL AND usename IS NOT NULL"
    ).fetchone()
    return int(row["n"]) if row else 0


def _aged_sessions(
    target: PostgresTarget,
    state_filter: str,
    since: str,
    warn_s: float,
    crit_s: float,
    what: tuple[str, str],
) -> Finding:
    """Sessions in a state for longer than the thresholds; `what` names one and several."""
    check_thresholds(warn_s, crit_s)
    with session(target) as conn:
        sees_all, role = _sees_all(conn)
        rows = conn.execute(
            sql.SQL(
                "SELECT pid, usename AS user, application_name AS application, "
                "client_addr::text AS client, state, wait_event_type, wait_event, "
                "extract(epoch FROM now() - {since})::float8 AS age_s, query "
                "FROM pg_stat_activity "
                "WHERE backend_type = 'client backend' AND pid <> pg_backend_pid() "
                "AND {state_filter} AND {since} IS NOT NULL "
                "AND now() - {since} > make_interval(secs => %s) "
                "ORDER BY age_s DESC"
            ).format(since=sql.SQL(since), state_filter=sql.SQL(state_filter)),
            [warn_s],
        ).fetchall()
        hidden = 0 if sees_all else _hidden_sessions(conn)
    over_crit = [r for r in rows if r["age_s"] > crit_s]
    evidence: dict[str, Any] = {
        "over_warn": len(rows),
        "over_crit": len(over_crit),
        "oldest_s": round(float(rows[0]["age_s"]), 1) if rows else 0.0,
        "rows": _session_rows(rows[:_ROWS]),
        "warn_s": warn_s,
        "crit_s": crit_s,
        "sees_all_sessions": sees_all,
        "hidden_sessions": hidden,
    }
    if over_crit:
        status = Status.CRIT
        summary = (
            f"{count(len(over_crit), *what)} older than {human_age(crit_s)} "
            f"(oldest {human_age(rows[0]['age_s'])}, pid {rows[0]['pid']}); "
            f"{len(rows)} over {human_age(warn_s)}"
        )
    elif rows:
        status = Status.WARN
        summary = (
            f"{count(len(rows), *what)} older than {human_age(warn_s)} "
            f"(oldest {human_age(rows[0]['age_s'])}, pid {rows[0]['pid']})"
        )
    else:
        status = Status.OK
        summary = f"no {what[1]} older than {human_age(warn_s)}"
    if hidden:
        summary += f"; {_hidden_note(hidden, role)}"
        if status is Status.OK:
            # "None" would be a guess: the hidden sessions could be the slow ones.
            status = Status.UNKNOWN
    return Finding(status, summary, evidence)


@probe(
    "postgres.long_queries",
    measures="running statements by age since `query_start`",
    grades="> {pg_long_query_warn_s} (slow) / > {pg_long_query_crit_s} (kill candidates)",
    target="postgres",
    thresholds={"warn_s": "pg_long_query_warn_s", "crit_s": "pg_long_query_crit_s"},
    area="postgres",
    recheck=True,
    advice=_postgres_long_queries,
)
def long_queries(target: PostgresTarget, *, warn_s: float, crit_s: float) -> Finding:
    """Statements running longer than `warn_s` (runbook: slow query > 1 s) and `crit_s`
    (runbook: kill candidates > 5 min), by age since `query_start`."""
    return _aged_sessions(
        target,
        "state NOT LIKE 'idle%%'",
        "query_start",
        warn_s,
        crit_s,
        ("query running", "queries running"),
    )


@probe(
    "postgres.idle_in_transaction",
    measures="sessions idle inside a transaction, by age since `state_change`",
    grades="{pg_idle_in_transaction_warn_s} / {pg_idle_in_transaction_crit_s}",
    target="postgres",
    thresholds={
        "warn_s": "pg_idle_in_transaction_warn_s",
        "crit_s": "pg_idle_in_transaction_crit_s",
    },
    area="postgres",
    recheck=True,
    advice=_postgres_idle,
)
def idle_in_transaction(target: PostgresTarget, *, warn_s: float, crit_s: float) -> Finding:
    """Sessions that opened a transaction and went quiet, by age since their last state change:
    they hold locks and a pool slot while doing nothing."""
    return _aged_sessions(
        target,
        "state LIKE 'idle in transaction%%'",
        "state_change",
        warn_s,
        crit_s,
        ("session idle in a transaction", "sessions idle in a transaction"),
    )


@probe(
    "postgres.blocking",
    measures="lock waits and who blocks whom (`pg_blocking_pids`)",
    grades="a wait > {pg_lock_wait_warn_s} / > {pg_lock_wait_crit_s}",
    target="postgres",
    thresholds={"warn_s": "pg_lock_wait_warn_s", "crit_s": "pg_lock_wait_crit_s"},
    area="postgres",
    recheck=True,
    advice=_postgres_blocking,
)
def blocking(target: PostgresTarget, *, warn_s: float, crit_s: float) -> Finding:
    """Lock waits and who blocks whom (`pg_blocking_pids`), by how long each waiter has waited."""
    check_thresholds(warn_s, crit_s)
    with session(target) as conn:
        # pg_locks.waitstart exists from PostgreSQL 14; before that the wait is timed from the
        # waiter's last state change, which can only overstate it.
        waitstart = "l.waitstart" if conn.info.server_version >= 140000 else "NULL::timestamptz"
        waiters = conn.execute(
            sql.SQL(
                "SELECT a.pid, a.usename AS user, a.application_name AS application, "
                "pg_blocking_pids(a.pid) AS blocked_by, "
                "extract(epoch FROM now() - coalesce(w.since, a.state_change))::float8 AS age_s, "
                "a.wait_event_type, a.wait_event, a.query "
                "FROM pg_stat_activity a "
                "LEFT JOIN LATERAL (SELECT min({waitstart}) AS since FROM pg_locks l "
                "   WHERE l.pid = a.pid AND NOT l.granted) w ON true "
                # pg_blocking_pids briefly locks the lock manager: ask only for lock waiters.
                "WHERE a.wait_event_type = 'Lock' AND cardinality(pg_blocking_pids(a.pid)) > 0 "
                "ORDER BY age_s DESC NULLS LAST"
            ).format(waitstart=sql.SQL(waitstart))
        ).fetchall()
        blocker_pids = sorted({p for w in waiters for p in w["blocked_by"]})
        blockers = conn.execute(
            "SELECT pid, usename AS user, application_name AS application, state, "
            "extract(epoch FROM now() - coalesce(xact_start, query_start))::float8 AS age_s, "
            "query FROM pg_stat_activity WHERE pid = ANY(%s)",
            [blocker_pids],
        ).fetchall()
    longest = float(waiters[0]["age_s"] or 0.0) if waiters else 0.0
    # The sessions at the head of the chains: blocking others while not waiting themselves.
    waiting = {w["pid"] for w in waiters}
    roots = [p for p in blocker_pids if p not in waiting] or blocker_pids
    evidence: dict[str, Any] = {
        "waiting": len(waiters),
        "longest_wait_s": round(longest, 1),
        "blockers": roots,
        "rows": _session_rows(waiters[:_ROWS]),
        "blocker_rows": _session_rows(blockers[:_ROWS]),
        "warn_s": warn_s,
        "crit_s": crit_s,
    }
    if not waiters:
        return Finding(Status.OK, "no session is waiting on a lock", evidence)
    summary = (
        f"{count(len(waiters), 'session waits', 'sessions wait')} on locks, "
        f"the longest for {human_age(longest)}; "
        f"blocked by pid {', '.join(map(str, roots))}"
    )
    return Finding(grade(longest, warn_s, crit_s), summary, evidence)


@probe(
    "postgres.migrations",
    measures="Django's `django_migrations`; optional expected list",
    grades="— / table missing or an expected migration not applied",
    target="postgres",
    thresholds={"expected": "pg_expected_migrations"},
    area="postgres",
    advice=_postgres_migrations,
)
def migrations(target: PostgresTarget, *, expected: Sequence[str]) -> Finding:
    """Django's migration ledger: the table must exist, and every `expected` migration
    (`app.name`, e.g. `accounting.0002_journalentry_memo`) must be applied."""
    with session(target) as conn:
        if conn.execute("SELECT to_regclass('django_migrations') AS t").fetchone() == {"t": None}:
            raise ServiceError(
                "the django_migrations table does not exist: migrations have never run on this "
                "database, or this is the wrong database"
            )
        rows = conn.execute(
            "SELECT app, name, applied FROM django_migrations ORDER BY applied, id"
        ).fetchall()
    applied = {f"{r['app']}.{r['name']}" for r in rows}
    missing = [m for m in expected if m not in applied]
    latest: dict[str, dict[str, Any]] = {}
    for r in rows:
        latest[r["app"]] = {"app": r["app"], "latest": r["name"], "applied": _iso(r["applied"])}
    per_app = {r["app"]: 0 for r in rows}
    for r in rows:
        per_app[r["app"]] += 1
    evidence: dict[str, Any] = {
        "applied": len(rows),
        "apps": len(per_app),
        "missing": missing,
        "expected": list(expected),
        "rows": [{**v, "count": per_app[k]} for k, v in latest.items()],
    }
    if missing:
        shown = ", ".join(missing[:10]) + (" …" if len(missing) > 10 else "")
        return Finding(
            Status.CRIT,
            f"{count(len(missing), 'expected migration')} not applied: {shown}",
            evidence,
        )
    newest = rows[-1] if rows else None
    summary = f"{count(len(rows), 'migration')} applied across {count(len(per_app), 'app')}"
    if newest:
        summary += f"; newest {newest['app']}.{newest['name']} ({_iso(newest['applied'])})"
    if expected:
        summary += f"; all {len(expected)} expected ones present"
    return Finding(Status.OK, summary, evidence)


@probe(
    "postgres.impact",
    measures="users active in the last {pg_impact_window_min}, tenants",
    grades="informational",
    target="postgres",
    thresholds={
        "window_min": "pg_impact_window_min",
        "users_table": "pg_impact_users_table",
        "last_login_column": "pg_impact_last_login_column",
        "tenants_table": "pg_impact_tenants_table",
    },
    left_out=("who is affected (users, tenants), not whether something is wrong: for triage"),
)
def impact(
    target: PostgresTarget,
    *,
    window_min: float,
    users_table: str,
    last_login_column: str,
    tenants_table: str,
) -> Finding:
    """The runbook's quick impact check: users active in the last `window_min` minutes and the
    number of tenants (informational)."""
    users_sql = sql.SQL(
        "SELECT count(*)::int AS n FROM {t} WHERE {c} >= now() - make_interval(secs => %s)"
    ).format(t=_table(users_table), c=sql.Identifier(last_login_column))
    tenants_sql = sql.SQL("SELECT count(*)::int AS n FROM {t}").format(t=_table(tenants_table))
    with session(target) as conn:
        try:
            users = conn.execute(users_sql, [window_min * 60]).fetchone()
            tenants = conn.execute(tenants_sql).fetchone()
        except (psycopg.errors.UndefinedTable, psycopg.errors.UndefinedColumn) as exc:
            raise NotVisible(
                f"{_first_line(exc)}; set the impact_* parameters to this application's tables"
            ) from None
    assert users is not None
    assert tenants is not None
    evidence = {
        "active_users": users["n"],
        "tenants": tenants["n"],
        "window_min": window_min,
        "users_table": users_table,
        "tenants_table": tenants_table,
    }
    summary = (
        f"{users['n']} users active in the last {window_min:g} min; {tenants['n']} tenants in all"
    )
    return Finding(Status.OK, summary, evidence)


def _table(name: str) -> sql.Identifier:
    return sql.Identifier(*name.split("."))


def _iso(value: datetime) -> str:
    return value.isoformat(timespec="seconds")


def _first_line(exc: BaseException) -> str:
    return reasons.short(str(exc)) or type(exc).__name__
