"""What a probe points at: typed, immutable targets that hold no secret in what they show
(`display`) and know the longest a probe on them may take (`deadline_s`). They are built from a
section's parameters and the environment by `irkit.target_builders`."""

from __future__ import annotations

import getpass
import os
import shlex
import socket
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from irkit.catalogue.parameters import default
from irkit.secrets import redact, redact_url

DEFAULT_REDIS_URL = "redis://localhost:6379/0"
DEFAULT_WEB_URL = "http://localhost:8000"
DEFAULT_PROMETHEUS_URL = "http://localhost:9090"


@dataclass(frozen=True, kw_only=True)
class PostgresTarget:
    """Where and how to reach PostgreSQL; empty fields are left to libpq, which reads PG*."""

    host: str = ""
    port: int = 0
    user: str = ""
    dbname: str = ""
    sslmode: str = ""
    connect_timeout_s: int = default("pg_connect_timeout_s")
    statement_timeout_s: float = default("pg_statement_timeout_s")
    application_name: str = "irkit"

    def connect_kwargs(self) -> dict[str, Any]:
        given = {
            "host": self.host,
            "port": self.port or None,
            "user": self.user,
            "dbname": self.dbname,
            "sslmode": self.sslmode,
        }
        kwargs: dict[str, Any] = {k: v for k, v in given.items() if v}
        # libpq (and psycopg, which follows it) rounds connect timeouts below 2 s up to 2 s.
        kwargs["connect_timeout"] = max(2, round(self.connect_timeout_s))
        kwargs["application_name"] = self.application_name
        return kwargs

    @property
    def deadline_s(self) -> float:
        # Connecting, then statements each cancelled by the server at its statement timeout.
        return self.connect_timeout_s + self.statement_timeout_s + 2.0

    @property
    def display(self) -> str:
        host = self.host or os.environ.get("PGHOST") or "localhost"
        port = self.port or os.environ.get("PGPORT") or 5432
        user = self.user or os.environ.get("PGUSER") or getpass.getuser()
        dbname = self.dbname or os.environ.get("PGDATABASE") or user
        if host.startswith("/"):
            return f"postgresql://{user}@[{host}]:{port}/{dbname}"
        return f"postgresql://{user}@{host}:{port}/{dbname}"


@dataclass(frozen=True, kw_only=True)
class RedisTarget:
    url: str = DEFAULT_REDIS_URL
    password: str | None = field(default=None, repr=False)
    socket_timeout_s: float = default("redis_socket_timeout_s")

    @property
    def display(self) -> str:
        return redact_url(self.url)  # the URL holds no password; this is a second guard

    @property
    def deadline_s(self) -> float:
        # A probe sends a handful of commands, each bounded by the socket timeout.
        return 6 * self.socket_timeout_s + 2.0


@dataclass(frozen=True, kw_only=True)
class CeleryTarget:
    broker_url: str = DEFAULT_REDIS_URL
    password: str | None = field(default=None, repr=False)
    socket_timeout_s: float = default("celery_socket_timeout_s")
    inspect_timeout_s: float = default("celery_inspect_timeout_s")

    @property
    def display(self) -> str:
        return redact_url(self.broker_url)

    @property
    def deadline_s(self) -> float:
        # Four inspect calls, each waiting up to the reply window, and a few broker round trips.
        return 4 * self.inspect_timeout_s + 3 * self.socket_timeout_s + 2.0

    @property
    def transport(self) -> str:
        return urlsplit(self.broker_url).scheme.split("+")[0]

    def redis(self) -> RedisTarget:
        """The broker seen as a Redis server (only for redis:// and rediss:// brokers)."""
        return RedisTarget(
            url=self.broker_url, password=self.password, socket_timeout_s=self.socket_timeout_s
        )


@dataclass(frozen=True, kw_only=True)
class HttpTarget:
    """A web app or an HTTP API (Prometheus); `base_url` holds no credentials."""

    base_url: str
    timeout_s: float = default("web_timeout_s")
    verify: bool | str = True  # False, or a CA bundle to trust (a private CA)

    @property
    def display(self) -> str:
        return redact_url(self.base_url)

    @property
    def deadline_s(self) -> float:
        # A probe makes a few requests, each bounded by the timeout (connect and each read).
        return 4 * self.timeout_s + 2.0

    def url(self, path: str) -> str:
        return self.base_url.rstrip("/") + "/" + path.lstrip("/")


@dataclass(frozen=True)
class TlsEndpoint:
    """A name served over TLS, and where to connect for it (like curl's --connect-to)."""

    server_name: str
    port: int = 443
    address: str = ""

    @property
    def display(self) -> str:
        at = f" via {self.address}" if self.address and self.address != self.server_name else ""
        return f"{self.server_name}:{self.port}{at}"


@dataclass(frozen=True, kw_only=True)
class TlsTarget:
    endpoints: tuple[TlsEndpoint, ...]
    timeout_s: float = default("tls_timeout_s")

    @property
    def display(self) -> str:
        return ", ".join(e.display for e in self.endpoints) or "(no endpoints)"

    @property
    def deadline_s(self) -> float:
        return len(self.endpoints) * 2 * self.timeout_s + 2.0


@dataclass(frozen=True)
class LocalHost:
    """The machine the notebook runs on, for the disk probes (CPU and memory: `Machine`)."""

    name: str = field(default_factory=socket.gethostname)

    @property
    def display(self) -> str:
        return self.name

    @property
    def deadline_s(self) -> float:
        # A filesystem call on a hung network mount never returns; the walk of old files stops
        # itself after 10 s and CPU sampling is a few seconds at most.
        return 120.0


@dataclass(frozen=True, kw_only=True)
class Machine:
    """The machine that runs the app, for its CPU and memory: seen through Prometheus'
    node_exporter metrics when Prometheus is configured, else the machine irkit runs on."""

    prometheus: HttpTarget | None = None
    name: str = field(default_factory=socket.gethostname)  # this machine's

    @property
    def display(self) -> str:
        if self.prometheus is not None:
            return f"node_exporter via {self.prometheus.display}"
        return self.name

    @property
    def deadline_s(self) -> float:
        # A few Prometheus queries, then a sample of the busiest processes (seconds at most).
        return (self.prometheus.deadline_s if self.prometheus else 0.0) + 60.0


@dataclass(frozen=True, kw_only=True)
class ComposeTarget:
    """A Docker Compose deployment: its project (found by Compose's own container labels, so
    that `docker-compose` v1 and `docker compose` v2 deployments look the same) on one Docker
    engine. The folder and files are what the Compose command needs to act on it (scale, logs);
    reading state and statistics needs only the engine and the project's name."""

    project: str = ""
    directory: str = ""
    files: tuple[str, ...] = ()
    docker_host: str = ""  # "": DOCKER_HOST, else the engine's default socket
    command: tuple[str, ...] = ()  # "": docker-compose, else docker compose, whichever is here
    timeout_s: float = default("compose_timeout_s")

    # The containers notebook, whose subject the project is, looks for it on the engine when it
    # is not named; elsewhere a project not named is no Compose deployment.
    discover: bool = False

    @property
    def configured(self) -> bool:
        return bool(self.project) or self.discover

    @property
    def hint(self) -> str:
        return "give compose_dir (the project's folder) or compose_project to check its containers"

    @property
    def uses_docker(self) -> bool:
        return True

    @property
    def engine(self) -> str:
        return self.docker_host or os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"

    @property
    def display(self) -> str:
        named = self.project or "(the engine's only one)"
        return f"compose project {named} on {redact_url(self.engine)}"

    @property
    def deadline_s(self) -> float:
        # A few Engine API calls (list, inspect, one stats read per container, each about 1 s
        # as the engine samples twice), or one Compose command.
        return 4 * self.timeout_s + 10.0


@dataclass(frozen=True, kw_only=True)
class LogSource:
    """Where the application's log lines come from: files (globs), a command's output such as
    `docker compose logs web --since 30m`, or the containers of a Compose project's services
    read through the Docker Engine API (the runbook's `docker-compose logs web celery`)."""

    files: tuple[str, ...] = ()
    command: tuple[str, ...] = ()
    timeout_s: float = default("log_timeout_s")
    compose: ComposeTarget | None = None
    services: tuple[str, ...] = ()  # of the Compose project; (): all of them
    max_lines: int = default("compose_log_lines")  # per service, from the Engine API

    @property
    def configured(self) -> bool:
        return bool(self.files or self.command or (self.compose and self.compose.configured))

    @property
    def uses_docker(self) -> bool:
        return self.compose is not None and not (self.files or self.command)

    @property
    def hint(self) -> str:
        return (
            "give log_files (paths or globs), log_command, or a Compose project (compose_dir or "
            "compose_project) to read the application's errors"
        )

    @property
    def display(self) -> str:
        if self.command:
            return redact(shlex.join(self.command))[:120]
        if self.compose is not None and not self.files:
            which = " ".join(self.services) or "all services"
            return f"logs of {which} in {self.compose.display}"
        shown = ", ".join(self.files[:3])
        return shown + (f" and {len(self.files) - 3} more" if len(self.files) > 3 else "")

    @property
    def deadline_s(self) -> float:
        # The command's own time limit, or reading at most a few MB per file; or the engine's
        # few calls, each bounded by its timeout.
        if self.compose is not None and not (self.files or self.command):
            return self.compose.deadline_s
        return self.timeout_s + 5.0


@dataclass(frozen=True, kw_only=True)
class RepoTarget:
    """What is deployed: the checkout, for `git log` (when did the code last change here?);
    and, for a Compose deployment, the web service's image and containers (what runs, built
    when, from which revision), with `git rev-parse HEAD` inside its container when asked."""

    path: str = ""
    timeout_s: float = 5.0
    compose: ComposeTarget | None = None
    web_service: str = default("compose_web_service")
    git_revision: bool = False  # run `git rev-parse HEAD` in the web container

    @property
    def configured(self) -> bool:
        return bool(self.path or (self.compose and self.compose.configured))

    @property
    def uses_docker(self) -> bool:
        return self.compose is not None and not self.path

    @property
    def hint(self) -> str:
        return (
            "give deploy_repo (the deployed checkout) or a Compose project (compose_dir or "
            "compose_project) to see recent deploys"
        )

    @property
    def display(self) -> str:
        shown = [self.path] if self.path else []
        if self.compose is not None and self.compose.configured:
            shown.append(f"service {self.web_service} of {self.compose.display}")
        return "; ".join(shown) or "(no repository)"

    @property
    def deadline_s(self) -> float:
        compose = self.compose.deadline_s if self.compose is not None else 0.0
        return 2 * self.timeout_s + 2.0 + compose


@dataclass(frozen=True, kw_only=True)
class CommandTarget:
    """A read-only diagnostic command named in `check_commands`, e.g. `manage.py check --deploy`."""

    name: str
    argv: tuple[str, ...] = ()
    timeout_s: float = default("check_timeout_s")

    @property
    def configured(self) -> bool:
        return bool(self.argv)

    @property
    def hint(self) -> str:
        return f"add '{self.name}: <command line>' to check_commands to run it"

    @property
    def display(self) -> str:
        return f"{self.name}: {redact(shlex.join(self.argv))}" if self.argv else self.name

    @property
    def deadline_s(self) -> float:
        return self.timeout_s + 5.0
