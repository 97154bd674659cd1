"""The Compose practice stack: the Himalytix look-alike deployed as production deploys it.

The same app as the embedded stack (irkit.sandbox.stack), run by Docker Compose on an engine of
the kit's own (irkit.sandbox.engine): services `db`, `redis`, `web`, `celery` and `prometheus`,
with production's memory limits, restart policies and health checks, on ports of their own
(distinct from the embedded stack's, so both can run). The notebooks reach it through
`parameters/sandbox-compose.yaml`, written by `up`: the project, the engine's socket, and the
app's own addresses.

`up` is idempotent (the engine, the images, `docker-compose up -d`, then a wait until every
service is healthy and Celery consumes), `down` stops the containers and the engine and keeps the
data, `reset` deletes the data too, `status` reads the engine.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from irkit.errors import SandboxError
from irkit.home import kit_home, sandbox_dir
from irkit.sandbox import process
from irkit.sandbox.engine import DockerEngine
from irkit.sandbox.images import SERVICES as IMAGES
from irkit.sandbox.images import Images
from irkit.sandbox.stack import ComponentStatus

PROJECT = "himalytix"
DB_PORT = 55433
REDIS_PORT = 56380
WEB_PORT = 58001
PROMETHEUS_PORT = 59091
SERVICES = ("db", "redis", "web", "celery", "prometheus")
STATE_FILE = "stack.json"
COMPOSE_FILE = "docker-compose.yml"
PARAMETERS_FILE = "sandbox-compose.yaml"
# A cold start: the web container migrates a new database before it serves.
READY_TIMEOUT_S = 240.0
COMPOSE_TIMEOUT_S = 300.0
BROKER_DB = 0
CACHE_DB = 1
HOST = "127.0.0.1"
INSTALL_HINT = (
    "the Compose practice stack needs Docker, Compose and debootstrap from Debian's packages: "
    "apt-get install --no-install-recommends docker.io docker-compose debootstrap "
    "(./kit test installs them when run as root)"
)

Log = Callable[[str], None]


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


@dataclass(frozen=True)
class Ports:
    db: int = DB_PORT
    redis: int = REDIS_PORT
    web: int = WEB_PORT
    prometheus: int = PROMETHEUS_PORT


class ComposeStack:
    def __init__(
        self,
        base: Path | None = None,
        *,
        project: str = PROJECT,
        ports: Ports | None = None,
        parameters_file: Path | None = None,
        image_cache: Path | None = None,
        drills_dir: Path | None = None,
    ) -> None:
        # The engine's files (data root, socket, log) and the project's folder live here.
        self.base = (base or sandbox_dir() / "compose").resolve()
        self.project = project
        self.ports = ports or Ports()
        self.engine = DockerEngine(self.base)
        self.image_cache = image_cache
        self.parameters_file = parameters_file or kit_home() / "parameters" / PARAMETERS_FILE
        # The kit's stack keeps its drills beside the embedded stack's, where the notebooks look
        # for an active drill (irkit.home.active_drills); a stack elsewhere keeps its own.
        if drills_dir is None:
            drills_dir = (sandbox_dir() if base is None else self.base) / "drills"
        self.drills_dir = drills_dir

    @classmethod
    def load(cls, base: Path | None = None, **kwargs: Any) -> ComposeStack:
        """The stack in `base` on the project and ports it was brought up with."""
        where = (base or sandbox_dir() / "compose").resolve()
        path = where / STATE_FILE
        if not path.exists():
            return cls(base, **kwargs)
        try:
            saved = json.loads(path.read_text())
            ports = Ports(**{k: int(v) for k, v in saved["ports"].items()})
            project = str(saved["project"])
        except (OSError, ValueError, TypeError, KeyError, AttributeError) as exc:
            raise SandboxError(
                f"{path} is unreadable ({exc}); delete it and run irkit sandbox up --compose"
            ) from None
        return cls(base, project=project, ports=ports, **kwargs)

    # --- where things are -----------------------------------------------------------------

    @property
    def compose_dir(self) -> Path:
        """The project's folder: its compose file, .env and drill flags. `docker-compose ps` run
        there (with DOCKER_HOST set) shows the stack, as on a production host."""
        return self.base / self.project

    @property
    def compose_file(self) -> Path:
        return self.compose_dir / COMPOSE_FILE

    @property
    def drill_flags(self) -> Path:
        """Bind-mounted read-only into web and celery as /irkit-drill."""
        return self.compose_dir / "drill"

    @property
    def docker_host(self) -> str:
        return self.engine.url

    @property
    def web_url(self) -> str:
        return f"http://{HOST}:{self.ports.web}"

    @property
    def prom_url(self) -> str:
        return f"http://{HOST}:{self.ports.prometheus}"

    def redis_url(self, db: int) -> str:
        return f"redis://{HOST}:{self.ports.redis}/{db}"

    @property
    def installed(self) -> bool:
        return self.engine.installed and shutil.which("docker-compose") is not None

    def variables(self, images: dict[str, str] | None = None) -> dict[str, str]:
        """What the compose file interpolates (also written to the project's .env)."""
        found = {
            "COMPOSE_PROJECT_NAME": self.project,
            "IRKIT_COMPOSE_DB_PORT": str(self.ports.db),
            "IRKIT_COMPOSE_REDIS_PORT": str(self.ports.redis),
            "IRKIT_COMPOSE_WEB_PORT": str(self.ports.web),
            "IRKIT_COMPOSE_PROMETHEUS_PORT": str(self.ports.prometheus),
        }
        names = {
            "postgres": "IRKIT_COMPOSE_DB_IMAGE",
            "redis": "IRKIT_COMPOSE_REDIS_IMAGE",
            "himalytix": "IRKIT_COMPOSE_APP_IMAGE",
            "prometheus": "IRKIT_COMPOSE_PROMETHEUS_IMAGE",
        }
        for service, ref in (images or {}).items():
            found[names[service]] = ref
        return found

    # --- the Compose CLI and the engine ---------------------------------------------------

    def compose(
        self, *args: str, check: bool = True, timeout: float = COMPOSE_TIMEOUT_S
    ) -> subprocess.CompletedProcess[str]:
        """`docker-compose ARGS` on this project and engine (the .env holds the rest)."""
        # What the project's .env sets wins over this process's environment (Compose would let
        # the environment win), and no COMPOSE_* of the caller's points it elsewhere.
        ours = set(self.variables(dict.fromkeys(IMAGES, "")))
        env = {
            k: v for k, v in os.environ.items() if k not in ours and not k.startswith("COMPOSE_")
        }
        env["DOCKER_HOST"] = self.docker_host
        argv = ["docker-compose", "--project-name", self.project, "--file", str(self.compose_file)]
        try:
            done = subprocess.run(
                [*argv, *args],
                cwd=self.compose_dir,
                env=env,
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise SandboxError(
                f"docker-compose {' '.join(args)} took over {timeout:.0f} s"
            ) from None
        if check and done.returncode != 0:
            tail = " / ".join(done.stderr.strip().splitlines()[-3:])
            raise SandboxError(f"docker-compose {' '.join(args)} failed: {tail}")
        return done

    @contextmanager
    def client(self) -> Iterator[Any]:
        """A client of this stack's engine (a docker.DockerClient)."""
        import docker

        client = docker.DockerClient(base_url=self.docker_host, timeout=30)
        try:
            yield client
        finally:
            client.close()

    def containers(self, client: Any, service: str | None = None) -> list[Any]:
        """The project's containers (of one service), stopped ones too; one-offs left out."""
        labels = [f"com.docker.compose.project={self.project}", "com.docker.compose.oneoff=False"]
        if service:
            labels.append(f"com.docker.compose.service={service}")
        return list(client.containers.list(all=True, filters={"label": labels}))

    # --- lifecycle --------------------------------------------------------------------------

    def up(
        self, held_down: frozenset[str] = frozenset(), log: Log = _stderr
    ) -> list[ComponentStatus]:
        """Start what is not running and wait until it serves. Services in `held_down` (an active
        drill's) are left as the drill made them: web scaled to 0, or not waited for."""
        if not self.installed:
            raise SandboxError(f"Docker is not installed: {INSTALL_HINT}")
        self.engine.start()
        images = Images(self.docker_host, self.image_cache)
        try:
            started = time.monotonic()
            refs = images.ensure(log)
            log(f"images ready in {time.monotonic() - started:.1f} s")
        finally:
            images.close()
        self._refuse_foreign_listeners()
        self._write_project(refs)
        scale = ["--scale", "web=0"] if "web-scale" in held_down else []
        held = [s for s in SERVICES if s in held_down]
        # A service a drill holds down (Redis stopped) stays so: the others only, without their
        # dependencies, which `up` would start again.
        only = ["--no-deps", *(s for s in SERVICES if s not in held)] if held else []
        self.compose("up", "--detach", "--remove-orphans", *scale, *only)
        self.wait_ready([s for s in SERVICES if s not in held_down and not (s == "web" and scale)])
        self.write_parameters()
        return self.status()

    def down(self) -> list[ComponentStatus]:
        """Containers removed and the engine stopped; the database's volume is kept."""
        if self.engine.running() and self.compose_file.exists():
            self.compose("down", "--remove-orphans", "--timeout", "5")
        self.engine.stop()
        return self.status()

    def reset(self) -> None:
        """Everything removed, the database's volume too (the images stay, in the engine and in
        the cache): the next `up` starts from a new database."""
        if self.installed and self.compose_file.exists():
            self.engine.start()
            self.compose("down", "--volumes", "--remove-orphans", "--timeout", "5")
        shutil.rmtree(self.compose_dir, ignore_errors=True)
        (self.base / STATE_FILE).unlink(missing_ok=True)

    def _write_project(self, images: dict[str, str]) -> None:
        folder = self.compose_dir
        (folder / "prometheus").mkdir(parents=True, exist_ok=True)
        self.drill_flags.mkdir(exist_ok=True)
        source = resources.files("irkit.sandbox").joinpath("compose", COMPOSE_FILE)
        self.compose_file.write_text(source.read_text())
        env = "".join(f"{k}={v}\n" for k, v in self.variables(images).items())
        (folder / ".env").write_text(
            "# Written by `irkit sandbox up --compose`: the images and ports of this stack.\n" + env
        )
        (folder / "prometheus" / "prometheus.yml").write_text(self._prometheus_config())
        state = {"project": self.project, "ports": self.ports.__dict__}
        (self.base / STATE_FILE).write_text(json.dumps(state, indent=2) + "\n")

    def _prometheus_config(self) -> str:
        web = f"{HOST}:{self.ports.web}"
        return f"""# Written by `irkit sandbox up --compose`; edits are overwritten.
global:
  scrape_interval: 2s
  evaluation_interval: 2s
rule_files:
  - /etc/irkit/alert_rules.yml
scrape_configs:
  - job_name: himalytix
    metrics_path: /metrics
    static_configs:
      - targets: ["{web}"]
  - job_name: himalytix-health
    metrics_path: /health/ready/
    scrape_interval: 5s
    scrape_timeout: 3s
    params:
      format: [openmetrics]
    static_configs:
      - targets: ["{web}"]
"""

    def _refuse_foreign_listeners(self) -> None:
        """A port taken while none of our containers runs belongs to another program."""
        with self.client() as client:
            ours = {
                c.labels.get("com.docker.compose.service")
                for c in self.containers(client)
                if c.status in ("running", "restarting")
            }
        wanted = {"db": self.ports.db, "redis": self.ports.redis, "web": self.ports.web}
        wanted["prometheus"] = self.ports.prometheus
        for service, port in wanted.items():
            if service not in ours and process.port_open(HOST, port):
                raise SandboxError(
                    f"port {port} (the Compose stack's {service}) is taken by another program; "
                    "stop it, or bring the stack up on other ports"
                )

    # --- readiness --------------------------------------------------------------------------

    def wait_ready(
        self, services: list[str] | tuple[str, ...], timeout: float = READY_TIMEOUT_S
    ) -> None:
        """Until each of `services` serves: its containers running and healthy (where it has a
        health check), Celery consuming, Prometheus ready. Polled with a deadline."""
        deadline = time.monotonic() + timeout
        waiting = list(services)
        with self.client() as client:
            while waiting:
                waiting = [s for s in waiting if not self._ready(client, s)]
                if not waiting:
                    return
                if time.monotonic() > deadline:
                    raise SandboxError(
                        f"the Compose stack's {', '.join(waiting)} did not become ready within "
                        f"{timeout:.0f} s: {self._why(client, waiting[0])}"
                    )
                time.sleep(0.25)

    def _ready(self, client: Any, service: str) -> bool:
        found = self.containers(client, service)
        if not found:
            return False
        for container in found:
            container.reload()
            state = container.attrs["State"]
            if state.get("Status") != "running":
                return False
            if state.get("Health", {}).get("Status", "healthy") != "healthy":
                return False
            if service == "celery" and not _consuming(container):
                return False
        if service == "prometheus":
            return process.http_ok(f"{self.prom_url}/-/ready")
        return True

    def _why(self, client: Any, service: str) -> str:
        found = self.containers(client, service)
        if not found:
            return "no container"
        container = found[0]
        state = container.attrs["State"]
        logs = container.logs(tail=3).decode(errors="replace").strip().replace("\n", " / ")
        health = state.get("Health", {}).get("Status", "")
        return f"{state.get('Status')} {health} (last log lines: {logs or 'none'})"

    # --- what runs --------------------------------------------------------------------------

    def status(self) -> list[ComponentStatus]:
        """One row per service: the engine's view of its containers."""
        if not self.installed:
            return [ComponentStatus(s, "not installed", None, "", INSTALL_HINT) for s in SERVICES]
        if not self.engine.running():
            return [
                ComponentStatus(s, "stopped", None, self._address(s), "the engine is stopped")
                for s in SERVICES
            ]
        rows = []
        with self.client() as client:
            for service in SERVICES:
                found = self.containers(client, service)
                if not found:
                    rows.append(
                        ComponentStatus(service, "no container", None, self._address(service))
                    )
                    continue
                for container in sorted(found, key=lambda c: c.name):
                    rows.append(self._row(service, container, multiple=len(found) > 1))
        return rows

    def _row(self, service: str, container: Any, *, multiple: bool) -> ComponentStatus:
        state = container.attrs["State"]
        status = state.get("Status", "unknown")
        health = state.get("Health", {}).get("Status", "")
        restarts = int(container.attrs.get("RestartCount", 0))
        if status == "running" and health in ("", "healthy"):
            shown = "running"
        elif status == "running":
            shown = health  # starting, unhealthy
        elif status == "exited":
            shown = f"exited ({state.get('ExitCode')})"
        else:
            shown = status  # restarting, created, paused, dead
        if state.get("OOMKilled"):
            # The engine keeps the flag of the last exit while the next run goes on.
            shown += ", OOM-killed" if status != "running" else ", last exit OOM-killed"
        image = container.attrs.get("Config", {}).get("Image", "")
        detail = f"{container.name}, restarts {restarts}, {image}"
        name = f"{service} ({container.name})" if multiple else service
        pid = int(state.get("Pid") or 0) or None
        return ComponentStatus(name, shown, pid, self._address(service), detail)

    def _address(self, service: str) -> str:
        return {
            "db": f"postgresql://erp@{HOST}:{self.ports.db}/himalytix",
            "redis": self.redis_url(CACHE_DB),
            "web": self.web_url,
            "celery": f"broker {self.redis_url(BROKER_DB)}",
            "prometheus": self.prom_url,
        }[service]

    # --- what the notebooks read -------------------------------------------------------------

    def parameters(self) -> dict[str, Any]:
        return {
            "compose_dir": str(self.compose_dir),
            "compose_project": self.project,
            "docker_host": self.docker_host,
            "compose_services": list(SERVICES),
            "pg_host": HOST,
            "pg_port": self.ports.db,
            "pg_user": "erp",
            "pg_database": "himalytix",
            "pg_expected_migrations": [
                "tenancy.0001_initial",
                "accounting.0001_initial",
                "accounting.0002_invoice",
            ],
            "redis_url": self.redis_url(CACHE_DB),
            "celery_broker_url": self.redis_url(BROKER_DB),
            "celery_expected_workers": 1,
            "web_url": self.web_url,
            "prom_url": self.prom_url,
            "prom_window": "1m",
        }

    def write_parameters(self) -> Path:
        import yaml

        path = self.parameters_file
        path.parent.mkdir(parents=True, exist_ok=True)
        header = (
            "# The Compose practice stack, written by `irkit sandbox up --compose` (rewritten at\n"
            "# every up; not kept in git). Run a section against it with --env sandbox-compose.\n"
        )
        path.write_text(header + yaml.safe_dump(self.parameters(), sort_keys=False))
        return path


def _consuming(container: Any) -> bool:
    """The worker logs '<node> ready.' once it consumes (cheaper than a broadcast ping); only
    the lines since this container last started count."""
    started = container.attrs["State"].get("StartedAt", "")
    since = _epoch(started)
    text: bytes = container.logs(since=since) if since else container.logs()
    return b" ready." in text


def _epoch(timestamp: str) -> int | None:
    from datetime import datetime

    try:
        return int(datetime.fromisoformat(timestamp[:26].rstrip("Z") + "+00:00").timestamp())
    except ValueError:
        return None
