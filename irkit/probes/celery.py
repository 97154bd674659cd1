"""Celery probes: tasks waiting in the broker's queues, and the workers that should be taking them.

Queue lengths come from the broker itself (on Redis: LLEN of the queue and of kombu's priority
sub-queues, which `redis-cli LLEN celery` alone misses). Workers are asked through Celery's own
control API, which cannot tell a dead worker from one too busy to reply: the verdict says so.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import redis
from kombu.transport.redis import PRIORITY_STEPS, Channel

from irkit.errors import ParameterError, Unreachable
from irkit.probes.contract import Finding, check_thresholds, grade, probe
from irkit.probes.redis import session as redis_session
from irkit.result import Result, Status
from irkit.secrets import scrub, with_password
from irkit.targets import CeleryTarget
from irkit.units import count, human_age


def priority_keys(queue: str) -> list[str]:
    """The Redis keys kombu spreads one queue over: `celery`, `celery\\x06\\x163`, …"""
    return [queue] + [f"{queue}{Channel.sep}{step}" for step in PRIORITY_STEPS if step]


def _celery_queues(r: Result) -> str:
    return (
        f"Runbook Incident 2, Celery task queue backlog ({r.evidence.get('total', '?')} waiting): "
        "check the workers below (`celery -A dashboard inspect active`), scale them "
        "(`docker-compose up -d --scale celery=4`), and purge only tasks known to be failed."
    )


def _celery_workers(r: Result) -> str:
    runaway = r.evidence.get("runaway") or []
    if runaway:
        first = runaway[0]
        return (
            f"Runbook 'High CPU Alert', runaway Celery tasks: {len(runaway)} task(s) running past "
            f"the limit, e.g. {first.get('name')} [{first.get('id')}] on {first.get('worker')}. "
            "Find why (its args are in the evidence), then revoke it "
            "(`celery -A dashboard control revoke --terminate ID`) or restart that worker."
        )
    if r.status is Status.WARN:
        return (
            "Every pool slot is busy: look for stuck or runaway tasks in the active list, "
            "then scale workers (`docker-compose up -d --scale celery=4`)."
        )
    return (
        "No worker answered: they may be down, or too busy to reply. Check the worker "
        "processes and their logs (`docker-compose logs celery`), restart them, then re-run."
    )


@probe(
    "celery.queues",
    measures="tasks waiting per queue, priority sub-queues included (`LLEN celery` misses them)",
    grades="{celery_queue_warn} / {celery_queue_crit}",
    target="celery",
    thresholds={"names": "celery_queues", "warn": "celery_queue_warn", "crit": "celery_queue_crit"},
    area="celery",
    recheck=True,
    advice=_celery_queues,
)
def queues(
    target: CeleryTarget,
    *,
    names: Sequence[str],
    warn: int,
    crit: int,
) -> Finding:
    """Tasks waiting per queue, graded by the longest queue (runbook: "5000+" is a backlog)."""
    check_thresholds(warn, crit)
    if not names:
        raise ParameterError("no queue names given: parameter celery_queues is empty")
    if target.transport in {"redis", "rediss"}:
        lengths = _redis_lengths(target, names)
    else:
        lengths = _kombu_lengths(target, names)
    rows: list[dict[str, Any]] = [
        {"queue": q, "waiting": sum(parts.values()), "by_key": parts}
        for q, parts in lengths.items()
    ]
    total = sum(r["waiting"] for r in rows)
    longest = max(rows, key=lambda r: r["waiting"])
    evidence: dict[str, Any] = {"total": total, "rows": rows, "warn": warn, "crit": crit}
    each = ", ".join(f"{r['queue']}: {r['waiting']}" for r in rows)
    summary = f"{count(total, 'task')} waiting ({each})"
    status = grade(longest["waiting"], warn, crit)
    if status is not Status.OK:
        summary += f"; {longest['queue']} is over {crit if status is Status.CRIT else warn}"
    return Finding(status, summary, evidence)


def _redis_lengths(target: CeleryTarget, names: Sequence[str]) -> dict[str, dict[str, int]]:
    with redis_session(target.redis()) as r:
        pipe = r.pipeline(transaction=False)
        for queue in names:
            for key in priority_keys(queue):
                pipe.llen(key)
        counts = iter(pipe.execute())
    return {
        queue: {_printable(key): int(next(counts)) for key in priority_keys(queue)}
        for queue in names
    }


def _printable(key: str) -> str:
    return key.encode("unicode_escape").decode("ascii")


def _kombu_lengths(target: CeleryTarget, names: Sequence[str]) -> dict[str, dict[str, int]]:
    """Other brokers (RabbitMQ, …): a passive declare reports a queue's message count."""
    from kombu.connection import Connection
    from kombu.exceptions import OperationalError

    conn = Connection(
        with_password(target.broker_url, target.password),
        connect_timeout=target.socket_timeout_s,
        transport_options={"max_retries": 0},
    )
    lengths: dict[str, dict[str, int]] = {}
    try:
        conn.ensure_connection(max_retries=1, timeout=target.socket_timeout_s)
        for queue in names:
            try:
                _, count, _ = conn.channel().queue_declare(queue=queue, passive=True)
                lengths[queue] = {queue: int(count)}
            except conn.channel_errors:
                lengths[queue] = {queue: 0}  # not declared yet: nothing was ever sent to it
    except (OperationalError, *conn.connection_errors) as exc:
        raise broker_error(target, exc) from None
    finally:
        conn.release()
    return lengths


@contextmanager
def _app(target: CeleryTarget) -> Iterator[Any]:
    """A throwaway Celery app that fails fast instead of retrying the broker for ever."""
    from celery import Celery

    app = Celery(
        "irkit", broker=with_password(target.broker_url, target.password), set_as_current=False
    )
    app.conf.update(
        broker_connection_retry=False,
        broker_connection_max_retries=0,
        broker_connection_timeout=target.socket_timeout_s,
        broker_transport_options={
            "socket_timeout": target.socket_timeout_s,
            "socket_connect_timeout": target.socket_timeout_s,
            "max_retries": 0,
        },
    )
    from kombu.exceptions import OperationalError

    try:
        yield app
    except (redis.exceptions.RedisError, OperationalError, OSError) as exc:
        raise broker_error(target, exc) from None
    finally:
        app.close()


def broker_error(target: CeleryTarget, exc: BaseException) -> Unreachable:
    """kombu wraps the transport's errors; name a timeout as one, whatever the wrapping."""
    chain = [exc, exc.__cause__, exc.__context__]
    if any(isinstance(e, TimeoutError | redis.exceptions.TimeoutError) for e in chain) or (
        "timeout" in str(exc).lower() or "timed out" in str(exc).lower()
    ):
        return Unreachable(
            f"no answer from the broker {target.display} within {target.socket_timeout_s:g} s: "
            "it is hung, overloaded or firewalled"
        )
    return Unreachable(f"cannot reach the broker {target.display}: {exc}")


def pool_size(stats: dict[str, Any]) -> int | None:
    """A worker's pool as it is now (`inspect stats`): its processes. `max-concurrency` is the
    size it started with, and stays so after pool_grow, pool_shrink or the autoscaler."""
    pool = stats.get("pool") or {}
    if isinstance(pool.get("processes"), list):
        return len(pool["processes"])
    # Thread, gevent and solo pools list no processes: their size is the configured one.
    configured = pool.get("max-concurrency")
    return int(configured) if configured is not None else None


def pool_slots(stats: dict[str, Any]) -> int | None:
    """The tasks a worker can run at once: its pool, or as far as its autoscaler may grow it."""
    size = pool_size(stats)
    ceiling = (stats.get("autoscaler") or {}).get("max")
    if isinstance(ceiling, int) and ceiling > (size or 0):
        return ceiling
    return size


@probe(
    "celery.workers",
    measures=(
        "workers answering, active and reserved tasks with how long each has run, pool use "
        "(`inspect`); with `celery_expected_workers`, stops waiting once that many answered"
    ),
    grades=(
        "pool full, fewer than `celery_min_workers`, or a task running over "
        "{celery_task_runaway_s} (runaway) / no worker answers (it may be busy, not dead: the "
        "verdict says so)"
    ),
    target="celery",
    thresholds={
        "min_workers": "celery_min_workers",
        "runaway_s": "celery_task_runaway_s",
        "expected": "celery_expected_workers",
    },
    area="celery",
    recheck=True,
    advice=_celery_workers,
)
def workers(target: CeleryTarget, *, min_workers: int, runaway_s: float, expected: int) -> Finding:
    """Workers alive, their active and reserved tasks and pool use, as
    `celery -A dashboard inspect active` shows them; a task running longer than `runaway_s` is a
    runaway (runbook High CPU Alert, Incident 2 "identify stuck tasks"). Workers are given the
    whole inspect timeout to answer, unless `expected` says how many there are: the check then
    stops waiting once that many have answered."""
    if runaway_s <= 0:
        raise ParameterError(f"runaway_s must be a positive number of seconds, got {runaway_s:g}")
    timeout = target.inspect_timeout_s
    with _app(target) as app:
        pings = app.control.inspect(timeout=timeout, limit=expected or None).ping() or {}
        names = sorted(pings)
        if names:
            # Addressing the workers that answered lets each call return as soon as all reply.
            inspect = app.control.inspect(destination=names, timeout=timeout, limit=len(names))
            active = inspect.active() or {}
            reserved = inspect.reserved() or {}
            stats = inspect.stats() or {}
    evidence: dict[str, Any] = {"workers": len(names), "min_workers": min_workers}
    if not names:
        evidence["rows"] = []
        return Finding(
            Status.CRIT,
            f"no worker replied within {timeout:g} s: workers are down, or too busy to answer "
            "(not proven dead); check their processes and logs",
            evidence,
        )
    now = time.time()
    rows = []
    for name in names:
        tasks = active.get(name) or []
        started = [t["time_start"] for t in tasks if t.get("time_start")]
        worker_stats = stats.get(name) or {}
        rows.append(
            {
                "worker": name,
                "active": len(tasks),
                "reserved": len(reserved.get(name) or []),
                "concurrency": pool_slots(worker_stats),
                "pool_processes": pool_size(worker_stats),
                "started_with": worker_stats.get("pool", {}).get("max-concurrency"),
                "autoscaler": worker_stats.get("autoscaler"),
                "longest_task_s": round(now - min(started), 1) if started else 0.0,
                "processed": sum(((stats.get(name) or {}).get("total") or {}).values()),
                "active_tasks": [
                    {
                        "id": t.get("id"),
                        "name": t.get("name"),
                        "args": scrub(str(t.get("args")))[:100],
                        "running_s": round(now - t["time_start"], 1)
                        if t.get("time_start")
                        else None,
                    }
                    for t in sorted(tasks, key=lambda t: t.get("time_start") or now)[:20]
                ],
            }
        )
    evidence["rows"] = rows
    full = [r for r in rows if r["concurrency"] and r["active"] >= r["concurrency"]]
    busy = sum(r["active"] for r in rows)
    slots = sum(r["concurrency"] or 0 for r in rows)
    evidence.update(active=busy, slots=slots, full_workers=[r["worker"] for r in full])
    summary = f"{count(len(names), 'worker')} replied; {busy} of {slots} pool slots busy"
    longest = max(r["longest_task_s"] for r in rows)
    if longest:
        summary += f"; longest task running {human_age(longest)}"
    runaway = [
        {"worker": r["worker"], **t}
        for r in rows
        for t in r["active_tasks"]
        if (t["running_s"] or 0) >= runaway_s
    ]
    evidence.update(runaway=runaway, runaway_s=runaway_s)
    if runaway:
        first = runaway[0]
        return Finding(
            Status.WARN,
            summary + f"; {count(len(runaway), 'runaway task')} over {human_age(runaway_s)}, "
            f"e.g. {first['name']} on {first['worker']}",
            evidence,
        )
    if expected and len(names) < expected:
        return Finding(
            Status.WARN, summary + f"; {expected} expected, the others did not answer", evidence
        )
    if len(names) < min_workers:
        return Finding(Status.WARN, summary + f"; expected at least {min_workers}", evidence)
    if full and len(full) == len(rows):
        return Finding(Status.WARN, summary + ": every pool slot is busy", evidence)
    return Finding(Status.OK, summary, evidence)
