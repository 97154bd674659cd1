"""The practice stack's alert chain, as the runbook's Detection section routes alerts:

    the exporter ─┐
    the web app ──┴─ Prometheus' rules ─ Alertmanager ─ irkit listen ─┬─ PagerDuty (stand-in)
                                                                       ├─ Slack (stand-in)
                                                                       └─ email (a mail server)

Everything runs on loopback with secrets of its own, made at the first start and kept in
`secrets.json` (0600) in its folder: the listener's token, the PagerDuty routing key, the Slack
webhook's secret path, the mail login.
"""

from __future__ import annotations

import json
import os
import secrets
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from irkit.sandbox import certs, process
from irkit.sandbox.alertmanager import AlertmanagerServer
from irkit.sandbox.prometheus import PrometheusServer

DEFAULT_PORTS = {
    "exporter_port": 59101,
    "alertmanager_port": 59093,
    "listen_port": 59095,
    "standins_port": 59096,
    "smtp_port": 59025,
}
SMTP_USER = "irkit"
# Its processes besides Alertmanager, in start order.
PROCESSES = ("exporter", "paging-standins", "irkit-listen")


@dataclass
class Alerting:
    base: Path  # its folder: the processes' logs and pid files, the secrets, the stand-ins' mail
    ports: dict[str, int]
    prometheus: PrometheusServer
    pg_host: str
    pg_port: int
    cache_url: str  # with the password, if the stack has one
    broker_url: str
    tls_endpoints: list[str]
    parameters: Path  # the listener's parameter file: the stack's targets
    password: str | None = field(default=None, repr=False)
    # Where the listener keeps its incidents (None: the kit's reports) and the stack's folder
    # (a drill active there marks them).
    reports: Path | None = None
    sandbox_dir: Path | None = None

    def _daemon(self, name: str) -> process.Detached:
        return process.Detached(self.base / f"{name}.pid", self.base / f"{name}.log")

    @property
    def alertmanager(self) -> AlertmanagerServer:
        return AlertmanagerServer(
            self.base / "alertmanager",
            self.ports["alertmanager_port"],
            f"{self.listen_url}/alertmanager",
            token=self.secrets()["listen_token"],
        )

    @property
    def listen_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['listen_port']}"

    @property
    def standins_dir(self) -> Path:
        return self.base / "received"

    @property
    def installed(self) -> bool:
        return self.prometheus.installed and self.alertmanager.installed

    def secrets(self) -> dict[str, str]:
        path = self.base / "secrets.json"
        if not path.exists():
            self.base.mkdir(parents=True, exist_ok=True)
            made = {
                "listen_token": secrets.token_hex(24),
                "routing_key": secrets.token_hex(16),  # 32 characters, as PagerDuty's are
                "slack_path": f"/services/T0PRACTICE/B0PRACTICE/{secrets.token_hex(12)}",
                "smtp_password": secrets.token_hex(12),
            }
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as out:
                json.dump(made, out)
        loaded: dict[str, str] = json.loads(path.read_text())
        return loaded

    def paging_env(self) -> dict[str, str]:
        """What `irkit listen` (and the notebooks it runs) page with, and the stand-ins check."""
        kept = self.secrets()
        http = f"http://127.0.0.1:{self.ports['standins_port']}"
        return {
            "IRKIT_LISTEN_TOKEN": kept["listen_token"],
            "IRKIT_PAGERDUTY_URL": f"{http}/v2/enqueue",
            "IRKIT_PAGERDUTY_ROUTING_KEY": kept["routing_key"],
            "IRKIT_SLACK_WEBHOOK": f"{http}{kept['slack_path']}",
            "IRKIT_SMTP_HOST": "127.0.0.1",
            "IRKIT_SMTP_PORT": str(self.ports["smtp_port"]),
            "IRKIT_SMTP_USER": SMTP_USER,
            "IRKIT_SMTP_PASSWORD": kept["smtp_password"],
            "IRKIT_SMTP_CA_FILE": str(certs.ca_file(self.base / "certs")),
        }

    def running(self) -> bool:
        return all(self._daemon(name).pid is not None for name in PROCESSES)

    def start(self) -> None:
        self.up()

    def stop(self) -> None:
        self.down()

    def components(self) -> list[tuple[str, int | None, bool, Path, str, str]]:
        """(name, pid, answering, pid file, address, what it is) of each of its processes; an
        Alertmanager not installed has the address "not installed"."""
        ports = self.ports
        smtp = ports["smtp_port"]
        rows = []
        for name, port, what in (
            ("exporter", ports["exporter_port"], "PostgreSQL, Redis, queues, certificates"),
            ("paging-standins", ports["standins_port"], f"PagerDuty, Slack; SMTP on {smtp}"),
            ("irkit-listen", ports["listen_port"], "Alertmanager's webhook: incidents, pages"),
        ):
            daemon = self._daemon(name)
            pid = daemon.pid
            answering = pid is not None and process.port_open("127.0.0.1", port)
            rows.append((name, pid, answering, daemon.pidfile, f"http://127.0.0.1:{port}", what))
        am = self.alertmanager
        where = am.url if am.installed else "not installed"
        rows.append(("alertmanager", am.pid, am.running(), am.pidfile, where, "to irkit listen"))
        return rows

    def up(self) -> None:
        """Start what is not running (Alertmanager only where it is installed), and point
        Prometheus at the exporter and Alertmanager."""
        self.base.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, **self.paging_env()}
        exporter_env = {
            **env,
            "IRKIT_SANDBOX_PGHOST": self.pg_host,
            "IRKIT_SANDBOX_PGPORT": str(self.pg_port),
            "IRKIT_SANDBOX_CACHE_URL": self.cache_url,
            "IRKIT_SANDBOX_BROKER_URL": self.broker_url,
            "IRKIT_SANDBOX_TLS_ENDPOINTS": ",".join(self.tls_endpoints),
        }
        if self.password:
            exporter_env["PGPASSWORD"] = self.password
        self._start(
            "exporter",
            [sys.executable, "-m", "irkit.sandbox.exporter", str(self.ports["exporter_port"])],
            exporter_env,
            lambda: process.http_ok(f"http://127.0.0.1:{self.ports['exporter_port']}/metrics"),
        )
        mail = certs.files(self.base / "certs", "mail")
        if not mail.cert.exists():
            mail = certs.issue_for(self.base / "certs", "mail", timedelta(days=365))
        self.standins_dir.mkdir(exist_ok=True)
        standins = [
            str(self.standins_dir),
            str(self.ports["standins_port"]),
            str(self.ports["smtp_port"]),
            str(mail.cert),
            str(mail.key),
        ]
        self._start(
            "paging-standins",
            [sys.executable, "-m", "irkit.sandbox.paging_standins", *standins],
            env,
            lambda: (
                process.port_open("127.0.0.1", self.ports["standins_port"])
                and process.port_open("127.0.0.1", self.ports["smtp_port"])
            ),
        )
        listen_env = dict(env)
        if self.reports is not None:
            listen_env["IRKIT_REPORTS"] = str(self.reports)
        if self.sandbox_dir is not None:
            listen_env["IRKIT_SANDBOX_DIR"] = str(self.sandbox_dir)
        listen = [sys.executable, "-m", "irkit", "listen", "--port", str(self.ports["listen_port"])]
        self._start(
            "irkit-listen",
            [*listen, "-f", str(self.parameters)],
            listen_env,
            lambda: process.http_ok(f"{self.listen_url}/healthz"),
        )
        alertmanager = self.alertmanager
        alertmanager.start()
        self.prometheus.exporter_target = f"127.0.0.1:{self.ports['exporter_port']}"
        self.prometheus.alertmanager_target = alertmanager.address if alertmanager.installed else ""
        self.prometheus.start()  # rewrites its configuration, and reloads it if it runs

    def down(self) -> None:
        self.prometheus.exporter_target = self.prometheus.alertmanager_target = ""
        if self.prometheus.running():
            self.prometheus.start()  # no more alerts sent, nothing more scraped
        self.alertmanager.stop()
        for name in reversed(PROCESSES):
            self._daemon(name).stop()

    def _start(
        self, name: str, args: list[str], env: dict[str, str], ready: Callable[[], bool]
    ) -> None:
        daemon = self._daemon(name)
        if daemon.pid is not None and ready():
            return
        daemon.stop()
        daemon.spawn(args, cwd=self.base, env=env)
        process.wait_until(ready, 60, name, daemon.log, daemon.pidfile)
