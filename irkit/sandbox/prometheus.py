"""Prometheus for the practice stack: scrapes the app's `/metrics` and its health check, and holds
the runbook's alert rules. Runs only where a Prometheus binary is installed (Debian's package
`prometheus`, or IRKIT_PROMETHEUS_BIN); the rest of the stack works without it."""

from __future__ import annotations

import os
import shutil
import subprocess
import urllib.request
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from irkit.sandbox import process

# Short intervals so that a drill shows within seconds; the rule thresholds are the runbook's.
SCRAPE_INTERVAL = "1s"


def find_binary() -> Path | None:
    chosen = os.environ.get("IRKIT_PROMETHEUS_BIN")
    if chosen:
        return Path(chosen)
    found = shutil.which("prometheus")
    return Path(found) if found else None


@dataclass
class PrometheusServer:
    data_dir: Path
    port: int
    web_target: str  # host:port of the app
    host: str = "127.0.0.1"

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def pidfile(self) -> Path:
        return self.data_dir / "prometheus.pid"

    @property
    def log(self) -> Path:
        return self.data_dir / "prometheus.log"

    @property
    def pid(self) -> int | None:
        return process.read_pid(self.pidfile)

    @property
    def installed(self) -> bool:
        binary = find_binary()
        return binary is not None and binary.exists()

    def running(self) -> bool:
        return self.pid is not None and process.port_open(self.host, self.port)

    def start(self, wait: bool = True) -> None:
        if self.running() or not self.installed:
            return
        if self.pid is not None:
            self.stop()
        binary = find_binary()
        assert binary is not None
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._write_config()
        args = [
            str(binary),
            f"--config.file={self.data_dir / 'prometheus.yml'}",
            f"--storage.tsdb.path={self.data_dir / 'data'}",
            "--storage.tsdb.retention.time=2d",
            f"--web.listen-address={self.host}:{self.port}",
            "--web.enable-lifecycle",
        ]
        with self.log.open("ab") as log:
            proc = subprocess.Popen(
                args,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                cwd=self.data_dir,
            )
        self.pidfile.write_text(f"{proc.pid}\n")
        if wait:
            process.wait_until(self.ready, 60, "Prometheus", self.log, self.pidfile)

    def ready(self) -> bool:
        if not self.running():
            return False
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        try:
            with opener.open(f"{self.url}/-/ready", timeout=2) as response:
                return bool(response.status == 200)
        except OSError:
            return False

    def stop(self) -> None:
        pid = self.pid
        if pid is not None:
            process.terminate(pid, timeout=15, group=True)
        self.pidfile.unlink(missing_ok=True)

    def _write_config(self) -> None:
        rules = resources.files("irkit.sandbox").joinpath("alert_rules.yml").read_text()
        (self.data_dir / "alert_rules.yml").write_text(rules)
        (self.data_dir / "prometheus.yml").write_text(
            f"""# Written by `irkit sandbox up`; edits are overwritten.
global:
  scrape_interval: {SCRAPE_INTERVAL}
  evaluation_interval: {SCRAPE_INTERVAL}
rule_files:
  - alert_rules.yml
scrape_configs:
  - job_name: himalytix
    metrics_path: /metrics
    static_configs:
      - targets: ["{self.web_target}"]
  - job_name: himalytix-health
    metrics_path: /health/ready/
    params:
      format: [openmetrics]
    scrape_timeout: 900ms
    static_configs:
      - targets: ["{self.web_target}"]
"""
        )
