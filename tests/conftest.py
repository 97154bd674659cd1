from __future__ import annotations

import contextlib
import fcntl
import os
import socket
import threading
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from conftest import session_stack, started_stack
from irkit.probes import prometheus
from irkit.result import Status
from irkit.sandbox.process import free_port
from irkit.sandbox.stack import BROKER_DB, CACHE_DB, Stack
from irkit.targets import CeleryTarget, HttpTarget, PostgresTarget, RedisTarget
from tests.helpers import Receiver


@pytest.fixture(scope="session")
def stack() -> Stack:
    return session_stack()


@pytest.fixture(autouse=True)
def _worker_running(request: pytest.FixtureRequest) -> None:
    """The test stack's Celery worker, running when a test that uses the stack starts. A test
    that stops it starts it again; one that died meanwhile is started here, with a warning, so
    that one crash does not fail every later test on this pytest worker."""
    if "stack" not in request.fixturenames:
        return
    stack: Stack = request.getfixturevalue("stack")
    if not stack.worker.running():
        why = f"the test stack's Celery worker had stopped (before {request.node.name})"
        warnings.warn(why, stacklevel=1)
        stack.worker.start()


# Under `--dist loadfile` a worker runs a whole file, and the run ends when its last file does.
# The longest files go out first and the short ones even out the end (xdist would otherwise send
# the files with the most tests first, whatever their length; `--no-loadscope-reorder` in
# pyproject.toml keeps this order). Longest first, as `--durations` measured them on a two-core
# machine (drills 210 s, the Compose stack 120 s, ... 25 s); files not named follow, in their
# collection order. Only the order matters: a file misplaced here costs time, not a result.
LONGEST_FIRST = (
    "test_drills.py",
    "test_compose_stack.py",
    "test_health.py",
    "test_distributed.py",
    "test_listen.py",
    "test_incident.py",
    "test_actions.py",
    "test_sandbox.py",
    "test_compose_probes.py",
    "test_notebooks.py",
    "test_secrets_everywhere.py",
    "test_compose_actions.py",
    "test_lab.py",
    "test_secrets.py",
    "test_quiet_runs.py",
    "test_celery.py",
    "test_host.py",
    "test_record_loop.py",
    "test_airflow.py",
    "test_cli.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    rank = {name: place for place, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: in-file order kept


# Workers of one `pytest -n` run share this machine; what one test does to the host (its CPU, its
# memory) is seen by every other test's host checks. A test marked `host_wide` runs alone.


@contextlib.contextmanager
def host_turn(folder: Path, exclusive: bool) -> Iterator[None]:
    """A readers-writer lock between the workers: a `host_wide` test waits until the tests running
    on the other workers have ended, and no other test starts until it has ended (the gate keeps
    a steady stream of ordinary tests from starving it)."""
    # In the run's own temporary folder, which pytest removes with its old runs.
    gate_path, turn_path = folder / "host.gate", folder / "host.turn"
    with open(gate_path, "a") as gate, open(turn_path, "a") as turn:
        fcntl.flock(gate, fcntl.LOCK_EX)
        if exclusive:
            fcntl.flock(turn, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(turn, fcntl.LOCK_UN)
                fcntl.flock(gate, fcntl.LOCK_UN)
        else:
            fcntl.flock(turn, fcntl.LOCK_SH)
            fcntl.flock(gate, fcntl.LOCK_UN)
            try:
                yield
            finally:
                fcntl.flock(turn, fcntl.LOCK_UN)


def _host_wide(item: pytest.Item | None) -> bool:
    return item is not None and item.get_closest_marker("host_wide") is not None


# The exclusive turn a worker holds across consecutive `host_wide` tests (a file keeps them
# together: the wait for the other workers to finish what they run is then once for all of them).
_held_turn: contextlib.ExitStack | None = None


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[object]:
    """Around the whole test, its fixtures' setup and teardown included (a stack started for it,
    a drill, a hog spinning up)."""
    global _held_turn
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        return (yield)
    # The workers' temporary folders (popen-gw0, ...) share their parent.
    shared = item.config._tmp_path_factory.getbasetemp().parent  # type: ignore[attr-defined]
    if not _host_wide(item):
        with host_turn(shared, exclusive=False):
            return (yield)
    if _held_turn is None:
        _held_turn = contextlib.ExitStack()
        _held_turn.enter_context(host_turn(shared, exclusive=True))
    try:
        return (yield)
    finally:
        if not _host_wide(nextitem):
            _held_turn.close()
            _held_turn = None


# How far the test stack's drill history had been read when Prometheus was last seen quiet.
_drills_seen = 0
# HighErrorRate looks back 30 s, and `for:` adds 5 s; Prometheus takes a few scrapes more.
QUIET_WITHIN_S = 90


@pytest.fixture(autouse=True)
def _quiet_after_drills(request: pytest.FixtureRequest) -> None:
    """A drill's fault ends with `drills.stop`, but Prometheus counts it until it leaves its rate
    windows: the errors of a failing health check or an error spike, the alerts they fire. Before
    the first test after a drill (on this worker's stack, in any test), wait until Prometheus shows
    nothing of it: no alert firing or pending, no 5xx within the notebooks' 15 s window. The drill
    tests themselves do not wait: each checks its own probe, which does not depend on it."""
    global _drills_seen
    stack = started_stack()
    if stack is None or "drill_stack" in request.fixturenames:
        return
    history = stack.base / "drills" / "history.jsonl"
    size = history.stat().st_size if history.exists() else 0
    if size == _drills_seen:
        return
    target = HttpTarget(base_url=stack.prometheus.url)
    deadline = time.monotonic() + QUIET_WITHIN_S
    while time.monotonic() < deadline:
        alerts = prometheus.alerts(target)
        if (
            alerts.status is Status.OK
            and not alerts.evidence.get("pending")
            and prometheus.error_rate(target, window="15s").status is Status.OK
        ):
            break
        time.sleep(0.5)
    # Past the deadline the test runs anyway: what still shows is for its assertions to name.
    _drills_seen = size


@pytest.fixture
def pg(stack: Stack) -> PostgresTarget:
    """The application role, as the notebooks connect (with pg_monitor)."""
    return PostgresTarget(
        host=stack.postgres.host, port=stack.postgres.port, user="erp", dbname="himalytix"
    )


@pytest.fixture
def redis_target(stack: Stack) -> RedisTarget:
    return RedisTarget(url=stack.redis.url(CACHE_DB), socket_timeout_s=2.0)


@pytest.fixture
def broker(stack: Stack) -> CeleryTarget:
    return CeleryTarget(broker_url=stack.redis.url(BROKER_DB))


class Sessions:
    """Connections held open as the application role, and queries left running on them."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.held: list[psycopg.Connection[Any]] = []
        self.threads: list[threading.Thread] = []

    def __call__(self, n: int = 1, **kwargs: Any) -> list[psycopg.Connection[Any]]:
        info = self.stack.postgres.conninfo(user="erp", dbname="himalytix")
        new = [self._connect(info, kwargs) for _ in range(n)]
        self.held.extend(new)
        return new

    @staticmethod
    def _connect(
        info: dict[str, Any], kwargs: dict[str, Any], timeout: float = 5.0
    ) -> psycopg.Connection[Any]:
        # A session closed a moment ago (settle's own, another test's) keeps its slot until its
        # backend exits; the last free slot may be briefly taken. Wait for it, not longer.
        deadline = time.monotonic() + timeout
        while True:
            try:
                return psycopg.connect(**info, **kwargs)
            except psycopg.OperationalError as error:
                if "connection slots" not in str(error) or time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def settle(self, timeout: float = 5.0) -> None:
        """Wait until the server has only the held sessions: a closed session's backend leaves a
        moment after its client, and until then holds a slot a test may be about to take."""
        deadline = time.monotonic() + timeout
        while (others := self._client_sessions() - len(self.held)) > 0:
            assert time.monotonic() < deadline, f"{others} other session(s) still on the server"
            time.sleep(0.05)

    def _client_sessions(self) -> int:
        # As the superuser: a reserved slot, and left out of the count.
        with psycopg.connect(**self.stack.postgres.conninfo(), autocommit=True) as admin:
            row = admin.execute(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()"
            ).fetchone()
        assert row is not None
        return int(row[0])

    def background(self, conn: psycopg.Connection[Any], query: str) -> None:
        """Run a query that will not return soon, on its own thread."""

        def run() -> None:
            with contextlib.suppress(psycopg.Error):  # cancelled when the test ends
                conn.execute(query)

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        self.threads.append(thread)

    def close(self) -> None:
        # Cancel first, let the running queries end, and only then close: closing a connection
        # while another thread waits on it crashes the driver.
        for conn in self.held:
            with contextlib.suppress(Exception):
                conn.cancel()
        for thread in self.threads:
            thread.join(timeout=10)
        for conn in self.held:
            with contextlib.suppress(Exception):
                conn.close()


@pytest.fixture
def hold(stack: Stack) -> Iterator[Sessions]:
    """Open connections as the application role and keep them until the test ends."""
    sessions = Sessions(stack)
    yield sessions
    sessions.close()


@pytest.fixture
def hanging_port() -> Iterator[int]:
    """A listener that accepts connections and never says a word."""
    server = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.1)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
                accepted.append(conn)
            except TimeoutError:
                continue
            except OSError:
                return

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    thread.join()
    for conn in accepted:
        conn.close()
    server.close()


@pytest.fixture
def silent_server() -> Iterator[tuple[int, threading.Event]]:
    """A listener that accepts and never answers, and says when a client has connected: a probe
    is then waiting in the middle of its cell."""
    server = socket.create_server(("127.0.0.1", 0))
    connected = threading.Event()
    accepted: list[socket.socket] = []

    def accept() -> None:
        while True:
            try:
                accepted.append(server.accept()[0])
            except OSError:
                return
            connected.set()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield server.getsockname()[1], connected
    server.shutdown(socket.SHUT_RDWR)
    server.close()
    thread.join()
    for conn in accepted:
        conn.close()


@pytest.fixture
def stalling_postgres(stack: Stack) -> Iterator[int]:
    """A port that lets a client connect to the real PostgreSQL and then swallows everything it
    sends: a server that completed the handshake and then hung."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.1)
    stop = threading.Event()
    sockets: list[socket.socket] = []

    def pipe(src: socket.socket, dst: socket.socket, startup_only: bool) -> None:
        buffered = b""
        in_startup = startup_only
        while not stop.is_set():
            try:
                data = src.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                return
            if not data:
                return
            if not startup_only:
                dst.sendall(data)
                continue
            buffered += data
            # Forward the startup messages (SSL/GSS negotiation, then StartupMessage) whole,
            # then black-hole the rest: the session is open, and no query is ever answered.
            while in_startup and len(buffered) >= 8:
                length = int.from_bytes(buffered[:4], "big")
                if len(buffered) < length:
                    break
                message, buffered = buffered[:length], buffered[length:]
                dst.sendall(message)
                code = int.from_bytes(message[4:8], "big")
                in_startup = code in (80877103, 80877104)

    def serve() -> None:
        while not stop.is_set():
            try:
                client, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            server = socket.create_connection((stack.postgres.host, stack.postgres.port))
            for sock in (client, server):
                sock.settimeout(0.1)
                sockets.append(sock)
            threading.Thread(target=pipe, args=(client, server, True), daemon=True).start()
            threading.Thread(target=pipe, args=(server, client, False), daemon=True).start()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield listener.getsockname()[1]
    stop.set()
    thread.join()
    listener.close()
    for sock in sockets:
        sock.close()


@pytest.fixture
def closed_port() -> int:
    """A port nothing listens on."""
    return free_port()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A loopback server that records what is posted to it (a Slack or Statuspage stand-in)."""
    r = Receiver()
    yield r
    r.server.shutdown()
    r.server.server_close()


# A Docker engine and Compose projects (tests/containers.py); the Compose practice stack, once per
# session (tests/compose_stack.py).
from tests.compose_stack import compose_stack  # noqa: E402,F401
from tests.containers import compose_project, docker_client, docker_engine  # noqa: E402,F401
