"""The practice stack: PostgreSQL, Redis and a Celery worker on their own ports and folders.

`up` is idempotent (it starts what is not running and repairs what died), `down` stops everything
and keeps the data, `status` says what runs where. `parameters/sandbox.yaml` points the notebooks
at the ports below.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from irkit.errors import SandboxError
from irkit.home import kit_home
from irkit.sandbox import process
from irkit.sandbox.postgres import APP_DATABASE, APP_USER, PostgresServer
from irkit.sandbox.redis import RedisServer
from irkit.sandbox.worker import CeleryWorker

POSTGRES_PORT = 55432
REDIS_PORT = 56379
BROKER_DB = 0
CACHE_DB = 1


@dataclass(frozen=True)
class ComponentStatus:
    name: str
    state: str  # running, stopped, dead (a pid file whose process is gone), or down
    pid: int | None
    address: str
    detail: str = ""


def sandbox_dir() -> Path:
    return Path(os.environ.get("IRKIT_SANDBOX_DIR") or kit_home() / ".sandbox").resolve()


class Stack:
    def __init__(
        self,
        base: Path | None = None,
        *,
        postgres_port: int = POSTGRES_PORT,
        redis_port: int = REDIS_PORT,
        postgres_settings: dict[str, str] | None = None,
        password: str | None = None,
    ) -> None:
        self.base = base or sandbox_dir()
        self.postgres = PostgresServer(
            _postgres_home(self.base),
            postgres_port,
            settings=postgres_settings or {"max_connections": "100"},
            password=password,
        )
        self.redis = RedisServer(self.base / "redis", redis_port, password=password)
        self.worker = CeleryWorker(
            self.base / "worker", broker_url=self.redis.url(BROKER_DB), broker_password=password
        )

    def up(self) -> list[ComponentStatus]:
        self._refuse_foreign_listeners()
        self.postgres.start()
        self.postgres.seed()
        self.redis.start()
        self.worker.start()
        return self.status()

    def down(self) -> list[ComponentStatus]:
        self.worker.stop()
        self.redis.stop()
        self.postgres.stop()
        return self.status()

    def status(self) -> list[ComponentStatus]:
        pg, rd, wk = self.postgres, self.redis, self.worker
        return [
            _status(
                "postgres",
                pg.pid,
                pg.running(),
                pg.pgdata / "postmaster.pid",
                f"postgresql://{APP_USER}@{pg.host}:{pg.port}/{APP_DATABASE}",
                str(pg.data_dir),
            ),
            _status(
                "redis",
                rd.pid,
                rd.running(),
                rd.pidfile,
                rd.url(CACHE_DB),
                f"broker db {BROKER_DB}, cache db {CACHE_DB}",
            ),
            _status(
                "celery-worker",
                wk.pid,
                wk.running(),
                wk.pidfile,
                wk.nodename,
                f"concurrency {wk.concurrency}, queues {','.join(wk.queues)}",
            ),
        ]

    def _refuse_foreign_listeners(self) -> None:
        for name, server in (("PostgreSQL", self.postgres), ("Redis", self.redis)):
            if server.pid is None and _still_listening(server.host, server.port):
                raise SandboxError(
                    f"port {server.port} (practice {name}) is taken by another program; "
                    "stop it, or run the practice stack on another machine"
                )


def _still_listening(host: str, port: int, grace_s: float = 3.0) -> bool:
    """A server that was just killed can hold its port for a moment after its pid is gone (its
    threads are still exiting): only a port still taken after `grace_s` belongs to another
    program."""
    deadline = time.monotonic() + grace_s
    while process.port_open(host, port):
        if time.monotonic() > deadline:
            return True
        time.sleep(0.05)
    return False


def _status(
    name: str, pid: int | None, running: bool, pidfile: Path, address: str, detail: str
) -> ComponentStatus:
    if running:
        state = "running"
    elif pid is not None:
        state = "not answering"
    elif pidfile.exists():
        state = "dead"
    else:
        state = "stopped"
    return ComponentStatus(name, state, pid, address, detail)


def _postgres_home(base: Path) -> Path:
    """PostgreSQL runs as an unprivileged account when we are root; if that account cannot
    enter the sandbox folder (a root home is private), its data goes to the temp folder."""
    wanted = base / "postgres"
    user = process.unprivileged_user()
    if user is None or process.blocking_parent(base, user) is None:
        return wanted
    digest = hashlib.sha256(str(base).encode()).hexdigest()[:10]
    return Path(tempfile.gettempdir()) / f"irkit-sandbox-{digest}" / "postgres"


def format_status(rows: list[ComponentStatus]) -> str:
    header = ("component", "state", "pid", "address", "detail")
    table = [header] + [(r.name, r.state, str(r.pid or "-"), r.address, r.detail) for r in rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in table
    )
