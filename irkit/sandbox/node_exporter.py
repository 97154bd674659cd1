"""node_exporter for the practice stack: the machine's CPU, memory and name for Prometheus to
scrape, so that the host checks judge the app's machine the way production does. Runs only where
the binary is installed (Debian's package `prometheus-node-exporter`, or IRKIT_NODE_EXPORTER_BIN);
the rest of the stack works without it, and the host checks then read this machine's load."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from irkit.sandbox import process

# The collectors the host checks read; the others (filesystems, network, systemd, …) are off.
COLLECTORS = ("cpu", "meminfo", "uname")


@dataclass
class NodeExporter(process.LoopbackServer):
    stem = "node_exporter"
    binary_env = "IRKIT_NODE_EXPORTER_BIN"
    binary_names = ("prometheus-node-exporter", "node_exporter")

    data_dir: Path
    port: int
    host: str = "127.0.0.1"

    def start(self) -> None:
        binary = self.binary
        if self.running() or binary is None or not binary.exists():
            return
        self.stop()  # alive but not listening: start afresh
        self.data_dir.mkdir(parents=True, exist_ok=True)
        args = [
            str(binary),
            f"--web.listen-address={self.address}",
            "--collector.disable-defaults",
            *(f"--collector.{name}" for name in COLLECTORS),
        ]
        self.daemon.spawn(args, cwd=self.data_dir)
        process.wait_until(self.ready, 30, "node_exporter", self.log, self.pidfile)

    def ready(self) -> bool:
        return self.running() and process.http_ok(f"{self.url}/metrics")

    def stop(self) -> None:
        self.daemon.stop(timeout=10)
