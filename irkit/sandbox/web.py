"""The practice Himalytix web app, served by gunicorn on loopback: once over HTTP and once over
HTTPS (its own certificates), each a process group of its own."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from irkit.sandbox import certs, process
from irkit.secrets import with_password

SETTINGS = "irkit.sandbox.himalytix.settings"


@dataclass
class AppEnvironment:
    """Where the app finds its database, cache and broker; passed to every Django process."""

    state_dir: Path
    pg_host: str
    pg_port: int
    cache_url: str
    broker_url: str
    password: str | None = field(default=None, repr=False)

    def variables(self) -> dict[str, str]:
        env = {
            "DJANGO_SETTINGS_MODULE": SETTINGS,
            "IRKIT_SANDBOX_DIR": str(self.state_dir),
            "IRKIT_SANDBOX_PGHOST": self.pg_host,
            "IRKIT_SANDBOX_PGPORT": str(self.pg_port),
            "IRKIT_SANDBOX_CACHE_URL": with_password(self.cache_url, self.password),
            "IRKIT_SANDBOX_BROKER_URL": with_password(self.broker_url, self.password),
        }
        if self.password:
            env["IRKIT_SANDBOX_PASSWORD"] = self.password
        return env

    def manage(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """Run a django-admin command against the practice database."""
        return subprocess.run(
            [sys.executable, "-m", "django", *args],
            env=dict(os.environ, **self.variables()),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )


@dataclass
class WebServer:
    name: str
    data_dir: Path
    port: int
    app: AppEnvironment
    tls_dir: Path | None = None  # serve HTTPS with the certificates in this folder
    host: str = "127.0.0.1"
    threads: int = 8

    @property
    def scheme(self) -> str:
        return "https" if self.tls_dir else "http"

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}"

    @property
    def log(self) -> Path:
        """Errors and the app's own log lines (what `docker-compose logs web` shows)."""
        return self.data_dir / f"{self.name}.log"

    @property
    def access_log(self) -> Path:
        return self.data_dir / f"{self.name}-access.log"

    @property
    def daemon(self) -> process.Detached:
        return process.Detached(self.data_dir / f"{self.name}.pid", self.log)

    @property
    def pidfile(self) -> Path:
        return self.daemon.pidfile

    @property
    def pid(self) -> int | None:
        return self.daemon.pid

    def running(self) -> bool:
        return self.pid is not None and process.port_open(self.host, self.port)

    def start(self) -> None:
        if self.running():
            return
        # Alive but not listening: a master stuck on boot. Start afresh.
        self.stop()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ, **self.app.variables())
        # One worker with threads: django-prometheus keeps its counters per process, and a single
        # process gives Prometheus one consistent series (its docs' advice without multiprocess
        # mode).
        # Laid out by hand (fmt: skip): each option beside its value, as on a command line.
        args = [
            sys.executable, "-m", "gunicorn", "irkit.sandbox.himalytix.wsgi:application",
            "--bind", f"{self.host}:{self.port}", "--workers", "1",
            "--worker-class", "gthread", "--threads", str(self.threads),
            "--timeout", "30", "--graceful-timeout", "5", "--name", f"himalytix-{self.name}",
            "--no-control-socket",
            "--error-logfile", str(self.log), "--capture-output",
            "--access-logfile", str(self.access_log),
        ]  # fmt: skip
        if self.tls_dir is not None:
            self.ensure_certificates()
            site = certs.files(self.tls_dir, certs.SITE)
            env["IRKIT_SANDBOX_TLS_DIR"] = str(self.tls_dir)
            args += ["--certfile", str(site.cert), "--keyfile", str(site.key)]
            args += ["-c", "python:irkit.sandbox.gunicorn_tls"]
        self.daemon.spawn(args, cwd=self.data_dir, env=env)
        what = f"the practice web app ({self.name})"
        process.wait_until(self.answers, 60, what, self.log, self.pidfile)

    def answers(self) -> bool:
        """Serving requests, not only bound: the login page needs Django fully loaded."""
        return self.running() and process.http_ok(f"{self.url}/accounts/login/")

    def stop(self) -> None:
        self.daemon.stop()

    def restart(self) -> None:
        self.stop()
        deadline = time.monotonic() + 5
        while process.port_open(self.host, self.port) and time.monotonic() < deadline:
            time.sleep(0.05)
        self.start()

    def ensure_certificates(self) -> None:
        assert self.tls_dir is not None
        for name in certs.NAMES:
            if not certs.files(self.tls_dir, name).cert.exists():
                certs.issue_for(self.tls_dir, name, certs.NORMAL_LIFETIME)
