"""The practice stack: a Himalytix look-alike on its own ports and folders.

PostgreSQL with the app's Django schema, Redis (broker and cache), a Celery worker, the Django app
over HTTP and HTTPS (gunicorn), node_exporter for the machine's CPU and memory, and Prometheus
scraping both with the runbook's alert rules.
`up` is idempotent (it starts what is not running and repairs what died, except what an active
drill holds down), `down` stops everything and keeps the data, `reset` starts again from nothing,
`status` says what runs where. `parameters/sandbox.yaml` points the notebooks at the ports below.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
import time
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Protocol

from irkit.errors import SandboxError
from irkit.home import kit_home, sandbox_dir
from irkit.sandbox import certs, process
from irkit.sandbox.alerting import DEFAULT_PORTS as ALERTING_PORTS
from irkit.sandbox.alerting import Alerting
from irkit.sandbox.node_exporter import NodeExporter
from irkit.sandbox.postgres import APP_DATABASE, APP_USER, PostgresServer
from irkit.sandbox.prometheus import PrometheusServer
from irkit.sandbox.redis import RedisServer
from irkit.sandbox.web import AppEnvironment, WebServer
from irkit.sandbox.worker import CeleryWorker
from irkit.secrets import with_password

POSTGRES_PORT = 55432
REDIS_PORT = 56379
WEB_PORT = 58000
TLS_PORT = 58443
PROMETHEUS_PORT = 59090
NODE_EXPORTER_PORT = 59100
BROKER_DB = 0
CACHE_DB = 1
PORTS_FILE = "stack.json"
APT_ALERTMANAGER = "apt-get install prometheus-alertmanager (the alert chain stops at Prometheus)"
DEFAULT_PORTS = {
    "postgres_port": POSTGRES_PORT,
    "redis_port": REDIS_PORT,
    "web_port": WEB_PORT,
    "tls_port": TLS_PORT,
    "prometheus_port": PROMETHEUS_PORT,
    "node_exporter_port": NODE_EXPORTER_PORT,
}


def free_ports() -> dict[str, int]:
    """A free port for every server of a stack of one's own (a test's, a benchmark's):
    `Stack(base, **free_ports())`."""
    return {name: process.free_port() for name in DEFAULT_PORTS}


class _Component(Protocol):
    def running(self) -> bool: ...
    def start(self) -> None: ...
    def stop(self) -> None: ...


@dataclass(frozen=True)
class ComponentStatus:
    name: str
    state: str  # running, stopped, dead (a pid file whose process is gone), or down
    pid: int | None
    address: str
    detail: str = ""


class Stack:
    def __init__(
        self,
        base: Path | None = None,
        *,
        postgres_port: int = POSTGRES_PORT,
        redis_port: int = REDIS_PORT,
        web_port: int = WEB_PORT,
        tls_port: int = TLS_PORT,
        prometheus_port: int = PROMETHEUS_PORT,
        node_exporter_port: int = NODE_EXPORTER_PORT,
        postgres_settings: dict[str, str] | None = None,
        password: str | None = None,
        alerting_ports: dict[str, int] | None = None,
        parameters: Path | None = None,
    ) -> None:
        """`alerting_ports`: the alert chain's (irkit.sandbox.alerting), None for a stack
        without it; `parameters`: the parameter file that points notebooks at this stack (what
        its `irkit listen` runs them with)."""
        self.base = base or sandbox_dir()
        self.password = password
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
        self.app = AppEnvironment(
            state_dir=self.base / "app",
            pg_host=self.postgres.host,
            pg_port=postgres_port,
            cache_url=self.redis.url(CACHE_DB),
            broker_url=self.redis.url(BROKER_DB),
            password=password,
        )
        self.web = WebServer("web", self.base / "web", web_port, self.app)
        self.web_tls = WebServer(
            "web-tls", self.base / "web", tls_port, self.app, tls_dir=self.base / "tls"
        )
        self.node_exporter = NodeExporter(self.base / "node_exporter", node_exporter_port)
        self.prometheus = PrometheusServer(
            self.base / "prometheus",
            prometheus_port,
            f"{self.web.host}:{web_port}",
            node_target=self.node_exporter.address if self.node_exporter.installed else "",
        )
        self.alerting: Alerting | None = None
        if alerting_ports is not None:
            self.alerting = Alerting(
                self.base / "alerting",
                alerting_ports,
                self.prometheus,
                pg_host=self.postgres.host,
                pg_port=postgres_port,
                cache_url=with_password(self.redis.url(CACHE_DB), password),
                broker_url=with_password(self.redis.url(BROKER_DB), password),
                tls_endpoints=self.tls_endpoints,
                parameters=parameters or kit_home() / "parameters" / "sandbox.yaml",
                password=password,
                sandbox_dir=self.base,
            )
            # Known from the start: every (re)start of Prometheus writes the same configuration.
            self.prometheus.exporter_target = f"127.0.0.1:{alerting_ports['exporter_port']}"
            if self.alerting.alertmanager.installed:
                self.prometheus.alertmanager_target = self.alerting.alertmanager.address

    @classmethod
    def load(cls, base: Path | None = None) -> Stack:
        """The stack in `base` (default: the kit's sandbox folder) on the ports it was brought up
        with, so that `status`, `down` and the drills find a stack started on other ports."""
        base = base or sandbox_dir()
        path = base / PORTS_FILE
        if not path.exists():
            return cls(base, alerting_ports=dict(ALERTING_PORTS))
        try:
            saved = json.loads(path.read_text())
            ports = {name: int(saved.get(name, default)) for name, default in DEFAULT_PORTS.items()}
            # A stack saved before the alert chain existed gets it; one saved without it (null,
            # the tests' own) stays without.
            alerting = saved.get("alerting", ALERTING_PORTS)
            alerting_ports = (
                None
                if alerting is None
                else {name: int(alerting.get(name, d)) for name, d in ALERTING_PORTS.items()}
            )
        except (OSError, ValueError, TypeError, AttributeError) as exc:
            raise SandboxError(
                f"{path} is unreadable ({exc}); stop what runs there, delete the file, and run "
                "irkit sandbox up"
            ) from None
        return cls(
            base,
            postgres_port=ports["postgres_port"],
            redis_port=ports["redis_port"],
            web_port=ports["web_port"],
            tls_port=ports["tls_port"],
            prometheus_port=ports["prometheus_port"],
            node_exporter_port=ports["node_exporter_port"],
            alerting_ports=alerting_ports,
        )

    def _save_ports(self) -> None:
        self.base.mkdir(parents=True, exist_ok=True)
        ports = {
            "postgres_port": self.postgres.port,
            "redis_port": self.redis.port,
            "web_port": self.web.port,
            "tls_port": self.web_tls.port,
            "prometheus_port": self.prometheus.port,
            "node_exporter_port": self.node_exporter.port,
            "alerting": self.alerting.ports if self.alerting else None,
        }
        (self.base / PORTS_FILE).write_text(json.dumps(ports, indent=2) + "\n")

    @property
    def tls_endpoints(self) -> list[str]:
        """The HTTPS listener's two names, reached on loopback (`name:port@address`)."""
        return [f"{name}:{self.web_tls.port}@127.0.0.1" for name in certs.NAMES]

    def targets(self) -> dict[str, Any]:
        """The notebooks' target parameters for this stack (what parameters/sandbox.yaml says
        for the default ports)."""
        return {
            "pg_host": self.postgres.host,
            "pg_port": self.postgres.port,
            "pg_user": APP_USER,
            "pg_database": APP_DATABASE,
            "redis_url": self.redis.url(CACHE_DB),
            "celery_broker_url": self.redis.url(BROKER_DB),
            "web_url": self.web.url,
            "prom_url": self.prometheus.url,
            "tls_endpoints": self.tls_endpoints,
        }

    @property
    def media_dir(self) -> Path:
        return self.app.state_dir / "media"

    def up(self, held_down: frozenset[str] = frozenset()) -> list[ComponentStatus]:
        """Start what is not running. Components in `held_down` (stopped by an active drill) are
        left as they are. If a start fails, what this call started is stopped again (what already
        ran stays), so a failed `up` leaves nothing half-started behind."""
        self._refuse_foreign_listeners()
        self._save_ports()
        started: list[_Component] = []

        def start(component: _Component) -> None:
            if not component.running():
                started.append(component)  # first: a start that fails half-way is stopped too
                component.start()

        try:
            start(self.postgres)
            created = self.postgres.seed()
            if "schema" not in held_down:
                self._migrate(created)
            self.media_dir.mkdir(parents=True, exist_ok=True)
            start(self.redis)
            for name, component in self._services():
                if name not in held_down:
                    start(component)
        except BaseException:
            for component in reversed(started):
                component.stop()
            raise
        return self.status()

    def down(self) -> list[ComponentStatus]:
        for _, component in reversed(self._services()):
            component.stop()
        self.redis.stop()
        self.postgres.stop()
        return self.status()

    def reset(self) -> None:
        """Stop everything and delete all data: the next `up` starts from nothing."""
        self.down()
        shutil.rmtree(self.postgres.data_dir, ignore_errors=True)
        for child in self.base.iterdir() if self.base.exists() else ():
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child, ignore_errors=True)
            else:
                child.unlink(missing_ok=True)

    def _services(self) -> list[tuple[str, _Component]]:
        """What runs on top of the servers, in start order."""
        return [
            ("celery-worker", self.worker),
            ("web", self.web),
            ("web-tls", self.web_tls),
            ("node-exporter", self.node_exporter),
            ("prometheus", self.prometheus),
            *([("alerting", self.alerting)] if self.alerting else []),
        ]

    def _migrate(self, database_created: bool) -> None:
        """The app's own migrations, then its practice data; on later starts only the users'
        last logins are refreshed (the runbook's "active users" count), which is much quicker
        than starting Django."""
        if database_created or self.postgres.missing_migrations(_app_migrations()):
            for command in (("migrate", "--noinput"), ("practice_data",)):
                done = self.app.manage(*command)
                if done.returncode != 0:
                    tail = " / ".join((done.stderr or done.stdout).strip().splitlines()[-3:])
                    raise SandboxError(f"django-admin {command[0]} failed: {tail}")
        else:
            self.postgres.refresh_last_logins()

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
            *(
                _status(web.name, web.pid, web.running(), web.pidfile, web.url, str(web.log))
                for web in (self.web, self.web_tls)
            ),
            self._node_exporter_status(),
            self._prometheus_status(),
            *(
                _status(*row)
                if row[4] != "not installed"
                else ComponentStatus(row[0], "not installed", None, "", APT_ALERTMANAGER)
                for row in (self.alerting.components() if self.alerting else [])
            ),
        ]

    def _node_exporter_status(self) -> ComponentStatus:
        node = self.node_exporter
        if not node.installed:
            # Said, not failed: the host checks then read this machine's load instead.
            return ComponentStatus(
                "node-exporter",
                "not installed",
                None,
                node.url,
                "apt-get install prometheus-node-exporter (host checks use this machine's load)",
            )
        return _status(
            "node-exporter", node.pid, node.running(), node.pidfile, node.url, "CPU and memory"
        )

    def _prometheus_status(self) -> ComponentStatus:
        prom = self.prometheus
        if not prom.installed:
            return ComponentStatus(
                "prometheus", "not installed", None, prom.url, "apt-get install prometheus"
            )
        scraped = "web and node-exporter" if prom.node_target else "web"
        return _status(
            "prometheus", prom.pid, prom.running(), prom.pidfile, prom.url, f"scrapes {scraped}"
        )

    def _refuse_foreign_listeners(self) -> None:
        servers: list[
            tuple[str, PostgresServer | RedisServer | WebServer | PrometheusServer | NodeExporter]
        ] = [
            ("PostgreSQL", self.postgres),
            ("Redis", self.redis),
            ("web app", self.web),
            ("HTTPS web app", self.web_tls),
        ]
        if self.prometheus.installed:
            servers.append(("Prometheus", self.prometheus))
        if self.node_exporter.installed:
            servers.append(("node_exporter", self.node_exporter))
        for name, server in servers:
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


def _app_migrations() -> dict[str, list[str]]:
    """The practice app's migrations on disk, by app label."""
    found: dict[str, list[str]] = {}
    for app in ("tenancy", "accounting"):
        folder = resources.files(f"irkit.sandbox.himalytix.{app}.migrations")
        found[app] = sorted(
            f.name.removesuffix(".py")
            for f in folder.iterdir()
            if f.name.endswith(".py") and f.name[:4].isdigit()
        )
    return found


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
