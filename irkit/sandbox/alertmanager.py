"""Alertmanager for the practice stack (Debian's `prometheus-alertmanager`): it takes the alerts
Prometheus' rules fire and posts them, grouped by alert name, to `irkit listen` with the bearer
token, as the README's receiver configuration does, with short timers so that a drill is paged
within seconds."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from irkit.sandbox import process

# A practice notification comes within seconds, and a repeat within the drill's length (a
# deployment uses Alertmanager's defaults: 30 s, 5 min, 4 h).
GROUP_WAIT = "1s"
GROUP_INTERVAL = "5s"
REPEAT_INTERVAL = "20s"


@dataclass
class AlertmanagerServer(process.LoopbackServer):
    stem = "alertmanager"
    binary_env = "IRKIT_ALERTMANAGER_BIN"
    binary_names = ("prometheus-alertmanager", "alertmanager")

    data_dir: Path
    port: int
    receiver_url: str  # irkit listen's /alertmanager
    token: str = field(default="", repr=False)
    host: str = "127.0.0.1"

    def start(self) -> None:
        binary = self.binary
        if binary is None or not binary.exists() or self.running():
            return
        self.stop()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._write_config()
        args = [
            str(binary),
            f"--config.file={self.data_dir / 'alertmanager.yml'}",
            f"--storage.path={self.data_dir / 'data'}",
            f"--web.listen-address={self.address}",
            "--cluster.listen-address=",  # one instance: no gossip port
            "--log.level=warn",
        ]
        self.daemon.spawn(args, cwd=self.data_dir)
        process.wait_until(self.ready, 60, "Alertmanager", self.log, self.pidfile)

    def ready(self) -> bool:
        return self.running() and process.http_ok(f"{self.url}/-/ready")

    def stop(self) -> None:
        self.daemon.stop(timeout=15)

    def _write_config(self) -> None:
        # The token is in a file of its own (0600), never in the configuration.
        token_file = self.data_dir / "listen-token"
        token_file.touch(mode=0o600, exist_ok=True)
        token_file.chmod(0o600)
        token_file.write_text(self.token)
        (self.data_dir / "alertmanager.yml").write_text(
            f"""# Written by irkit for its practice stack; edits are overwritten.
route:
  receiver: irkit
  group_by: [alertname]
  group_wait: {GROUP_WAIT}
  group_interval: {GROUP_INTERVAL}
  repeat_interval: {REPEAT_INTERVAL}
receivers:
  - name: irkit
    webhook_configs:
      - url: {self.receiver_url}
        send_resolved: true
        max_alerts: 100
        http_config:
          authorization:
            credentials_file: {token_file}
"""
        )
