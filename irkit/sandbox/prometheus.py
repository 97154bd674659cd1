"""Prometheus for the practice stack: scrapes the app's `/metrics`, its health check and the
machine's node_exporter, and holds the runbook's alert rules. Runs only where a Prometheus binary
is installed (Debian's package `prometheus`, or IRKIT_PROMETHEUS_BIN); the rest of the stack works
without it."""

from __future__ import annotations

import contextlib
import json
import urllib.parse
import urllib.request
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from irkit.sandbox import process

# Short intervals so that a drill shows within seconds; the rule thresholds are the runbook's.
SCRAPE_INTERVAL = "1s"
# The scrape jobs' names, as `up{job=…}` and the queries know them.
WEB_JOB = "himalytix"
NODE_JOB = "node"
# The practice exporter: PostgreSQL, Redis, Celery queues and certificates (irkit.sandbox.exporter).
EXPORTER_JOB = "exporter"


@dataclass
class PrometheusServer(process.LoopbackServer):
    stem = "prometheus"
    binary_env = "IRKIT_PROMETHEUS_BIN"
    binary_names = ("prometheus",)

    data_dir: Path
    port: int
    web_target: str  # host:port of the app
    host: str = "127.0.0.1"
    node_target: str = ""  # host:port of node_exporter; "": not installed, not scraped
    # host:port of the practice exporter and of Alertmanager; "": not scraped, no alerts sent.
    exporter_target: str = ""
    alertmanager_target: str = ""

    def start(self) -> None:
        binary = self.binary
        if binary is None or not binary.exists():
            return
        if self.running():
            # Started before node_exporter was installed, say: its targets follow the config.
            if self._write_config():
                self._reload()
            return
        self.stop()  # alive but not listening: start afresh
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
        self.daemon.spawn(args, cwd=self.data_dir)
        process.wait_until(self.ready, 60, "Prometheus", self.log, self.pidfile)

    def ready(self) -> bool:
        return self.running() and process.http_ok(f"{self.url}/-/ready")

    def stop(self) -> None:
        self.daemon.stop(timeout=15)

    def query(self, promql: str) -> list[dict[str, Any]]:
        """The series an instant query returns; [] when Prometheus does not answer (yet)."""
        url = f"{self.url}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with contextlib.suppress(OSError, ValueError), opener.open(url, timeout=2) as response:
            body = json.load(response)
            if body.get("status") == "success":
                return list(body["data"]["result"])
        return []

    def _reload(self) -> None:
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        # Our own loopback server's URL, http:// by construction.
        request = urllib.request.Request(f"{self.url}/-/reload", method="POST")  # noqa: S310
        with contextlib.suppress(OSError), opener.open(request, timeout=5):
            pass

    def _write_config(self) -> bool:
        """Write the rules and the configuration; True when the configuration changed."""
        rules = resources.files("irkit.sandbox").joinpath("alert_rules.yml").read_text()
        rules_file = self.data_dir / "alert_rules.yml"
        rules_before = rules_file.read_text() if rules_file.exists() else ""
        rules_file.write_text(rules)
        jobs = "".join(
            f"""  - job_name: {job}
    static_configs:
      - targets: ["{target}"]
"""
            for job, target in ((NODE_JOB, self.node_target), (EXPORTER_JOB, self.exporter_target))
            if target
        )
        alerting = (
            f"""alerting:
  alertmanagers:
    - static_configs:
        - targets: ["{self.alertmanager_target}"]
"""
            if self.alertmanager_target
            else ""
        )
        config = self.data_dir / "prometheus.yml"
        before = config.read_text() if config.exists() else ""
        config.write_text(
            f"""# Written by `irkit sandbox up`; edits are overwritten.
global:
  scrape_interval: {SCRAPE_INTERVAL}
  evaluation_interval: {SCRAPE_INTERVAL}
rule_files:
  - alert_rules.yml
scrape_configs:
  - job_name: {WEB_JOB}
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
{jobs}{alerting}"""
        )
        return config.read_text() != before or rules != rules_before
