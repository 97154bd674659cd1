"""Targets that are down or hung: every probe answers CRIT within its time bound, never hangs."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler
from typing import Any

import pytest

from irkit import reasons
from irkit.probes import celery, http, postgres, redis
from irkit.result import Result, Status
from irkit.targets import CeleryTarget, HttpTarget, PostgresTarget, RedisTarget
from tests.helpers import serving

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


@pytest.fixture
def closing_port() -> Iterator[int]:
    """A listener that accepts each connection and closes it at once: a database dying, as its
    clients see it (libpq explains that over three lines)."""
    server = socket.create_server(("127.0.0.1", 0))

    def accept() -> None:
        while True:
            try:
                server.accept()[0].close()
            except OSError:
                return

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    server.shutdown(socket.SHUT_RDWR)
    server.close()
    thread.join()


def test_a_dying_server_is_one_short_line_with_the_drivers_whole_text_in_the_evidence(
    closing_port: int,
) -> None:
    pg = PostgresTarget(host="127.0.0.1", port=closing_port, user="erp", connect_timeout_s=2)
    rd = RedisTarget(url=f"redis://127.0.0.1:{closing_port}/0", socket_timeout_s=SOCKET_TIMEOUT)
    for result in (postgres.connect(pg), postgres.connections(pg), redis.ping(rd)):
        assert result.status is Status.CRIT
        assert "\n" not in result.summary
        assert len(result.summary) <= reasons.LIMIT, result.summary
    dead = postgres.connect(pg)
    assert dead.summary.endswith(": server closed the connection unexpectedly"), dead.summary
    # libpq's own words, every line of them, stay in the evidence.
    assert "terminated abnormally" in dead.evidence["driver_error"]


# What a web app's health endpoint quotes when its database is gone: libpq's message, verbatim.
LIBPQ_DOWN = (
    "Multiple connection attempts failed. All failures were:\n"
    "- host: 'db', port: '5432', hostaddr: '::1': connection failed: connection to server at "
    '"::1", port 5432 failed: Connection refused\n'
    "\tIs the server running on that host and accepting TCP/IP connections?\n"
    "- host: 'db', port: '5432', hostaddr: '127.0.0.1': connection failed: connection to server "
    'at "127.0.0.1", port 5432 failed: Connection refused\n'
    "\tIs the server running on that host and accepting TCP/IP connections?"
)


class DatabaseDown(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = json.dumps({"Cache backend: default": "OK", "DatabaseBackend": LIBPQ_DOWN})
        self.send_response(500)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body.encode())

    def log_message(self, *args: Any) -> None:
        pass


def test_a_component_quoting_a_drivers_message_is_named_in_one_line() -> None:
    with serving(DatabaseDown) as url:
        result = http.health(HttpTarget(base_url=url))
    assert result.status is Status.CRIT
    assert result.summary == (
        "/health/ready/ answered 500: 1 of 2 components failing "
        "(DatabaseBackend: Connection refused)"
    )
    assert result.evidence["components"]["DatabaseBackend"] == LIBPQ_DOWN


def test_the_short_reason_is_the_first_meaningful_line() -> None:
    assert reasons.short(LIBPQ_DOWN) == "Connection refused"
    assert reasons.short("FATAL:  the database system is shutting down\nmore") == (
        "the database system is shutting down"
    )
    assert reasons.short("\n\n  spaced   out  \n") == "spaced out"
    assert reasons.short("x" * 500, 20) == "x" * 19 + "…"
