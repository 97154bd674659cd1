"""Who holds the connection pool, said when the kill filters select no session (runbook
Scenario 2): a full pool of young sessions is still a full pool, and the responder needs to know
which sessions they are and which parameter would select them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from irkit.units import human_age

_TOP = 3


def who_holds(rows: Sequence[dict[str, Any]], idle_role: str) -> tuple[str, ...]:
    """Counts of the client sessions by state, user and application, the oldest, and the
    parameter that would select the largest group; () when no client session is open."""
    clients = [r for r in rows if r["backend_type"] == "client backend"]
    if not clients:
        return ()
    notes = [
        f"no session matches the filters; the {len(clients)} client sessions are: "
        + "; ".join(
            f"by {what}: {_counts(clients, key)}"
            for what, key in (("state", "state"), ("user", "user"), ("application", "application"))
        )
    ]
    oldest = max(clients, key=_age)
    notes.append(
        f"the oldest: pid {oldest['pid']} {oldest['user']}, {oldest['state']} for "
        f"{human_age(_age(oldest))}"
    )
    notes.append(_selecting(clients, idle_role))
    return tuple(notes)


def _counts(rows: Sequence[dict[str, Any]], key: str) -> str:
    counted = Counter(str(r[key] or "(none)") for r in rows).most_common()
    shown = ", ".join(f"{n} {value}" for value, n in counted[:_TOP])
    return shown + (f", {len(counted) - _TOP} more" if len(counted) > _TOP else "")


def _selecting(clients: Sequence[dict[str, Any]], idle_role: str) -> str:
    """The parameter, and its value, that would select every session of the largest group."""
    state = Counter(str(r["state"] or "") for r in clients).most_common(1)[0][0]
    group = [r for r in clients if str(r["state"] or "") == state]
    if not state:
        # pg_stat_activity hides other roles' sessions from a role without pg_monitor.
        return (
            f"{len(group)} sessions of other roles are hidden from this role "
            f"({_counts(group, 'user')}): grant it pg_monitor to see and select them"
        )
    if state == "idle":
        own = [r for r in group if r["user"] == idle_role]
        if not own:
            return (
                f"to select the idle sessions, set pg_kill_idle_role to their role "
                f"({_counts(group, 'user')}) and pg_kill_idle_min"
            )
        minutes = int(min(_age(r) for r in own) // 60)
        if minutes < 1:
            return (
                f"{len(own)} idle sessions of {idle_role}, some under a minute old: "
                "pg_kill_idle_min=1 selects those idle a minute, pg_kill_pids names any"
            )
        return (
            f"pg_kill_idle_min={minutes} would select the {len(own)} idle sessions of {idle_role}"
        )
    seconds = int(min(_age(r) for r in group))
    if seconds >= 1 and state.startswith("idle in transaction"):
        return f"pg_kill_idle_in_transaction_s={seconds} would select the {len(group)} {state}"
    if seconds >= 1 and state == "active":
        return f"pg_kill_older_than_s={seconds} would select the {len(group)} active statements"
    return f"the {len(group)} {state} sessions can be named in pg_kill_pids"


def _age(row: dict[str, Any]) -> float:
    # As the filters judge it: a statement by its own age, a session by its state's.
    key = "query_age_s" if row["state"] == "active" else "state_age_s"
    return float(row[key] or 0.0)
