"""Targets that are down or hung: every probe answers CRIT within its time bound, never hangs."""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from irkit.probes import celery, postgres, redis
from irkit.result import Result, Status
from irkit.targets import CeleryTarget, PostgresTarget, RedisTarget

PG_TIMEOUT = 2  # libpq's minimum connect timeout
SOCKET_TIMEOUT = 0.5
SLACK = 1.5


def every_probe(port: int) -> list[tuple[Callable[..., Result], Any, float]]:
    pg = PostgresTarget(host="127.0.0.1", port=port, user="erp", connect_timeout_s=PG_TIMEOUT)
    rd = RedisTarget(url=f"redis://127.0.0.1:{port}/0", socket_timeout_s=SOCKET_TIMEOUT)
    br = CeleryTarget(
        broker_url=f"redis://127.0.0.1:{port}/0",
        socket_timeout_s=SOCKET_TIMEOUT,
        inspect_timeout_s=SOCKET_TIMEOUT,
    )
    pg_probes = [
        postgres.connect,
        postgres.connections,
        postgres.long_queries,
        postgres.idle_in_transaction,
        postgres.blocking,
        postgres.migrations,
        postgres.impact,
    ]
    return (
        [(p, pg, PG_TIMEOUT) for p in pg_probes]
        + [(p, rd, SOCKET_TIMEOUT) for p in (redis.ping, redis.memory, redis.clients)]
        + [(p, br, SOCKET_TIMEOUT * 2) for p in (celery.queues, celery.workers)]
    )


def run_all(port: int) -> list[tuple[Result, float, float]]:
    def timed(
        probe: Callable[..., Result], target: Any, bound: float
    ) -> tuple[Result, float, float]:
        started = time.monotonic()
        result = probe(target)
        return result, time.monotonic() - started, bound

    probes = every_probe(port)
    with ThreadPoolExecutor(len(probes)) as pool:
        return list(pool.map(lambda args: timed(*args), probes))


@pytest.mark.parametrize("kind", ["closed_port", "hanging_port"])
def test_every_probe_is_crit_in_bounded_time(kind: str, request: pytest.FixtureRequest) -> None:
    port = request.getfixturevalue(kind)
    for result, took, bound in run_all(port):
        assert result.status is Status.CRIT, (result.probe, result.summary)
        assert result.evidence.get("reachable") is False, result.probe
        assert took < bound + SLACK, (result.probe, took)
        if kind == "hanging_port":
            assert any(w in result.summary for w in ("no answer", "timeout", "timed out")), (
                result.probe,
                result.summary,
            )
        else:
            assert any(w in result.summary for w in ("refused", "nothing accepts")), (
                result.probe,
                result.summary,
            )


def test_a_server_that_stalls_after_the_handshake_is_abandoned(stalling_postgres: int) -> None:
    target = PostgresTarget(
        host="127.0.0.1",
        port=stalling_postgres,
        user="erp",
        dbname="himalytix",
        connect_timeout_s=2,
        statement_timeout_s=1,
    )
    started = time.monotonic()
    result = postgres.connections(target)
    took = time.monotonic() - started
    assert result.status is Status.CRIT
    assert "stalled" in result.summary
    assert result.evidence["reachable"] is False
    assert target.deadline_s <= took < target.deadline_s + SLACK
