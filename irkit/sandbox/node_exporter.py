"""node_exporter for the practice stack: the machine's CPU, memory and name for Prometheus to
scrape, so that the host checks judge the app's machine the way production does. Runs only where
the binary is installed (Debian's package `prometheus-node-exporter`, or IRKIT_NODE_EXPORTER_BIN);
the rest of the stack works without it, and the host checks then read this machine's load."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from irkit.sandbox import process

# The collectors the host checks read; the others (filesystems, network, systemd, …) are off.
COLLECTORS = ("cpu", "meminfo", "uname")


def find_binary() -> Path | None:
    chosen = os.environ.get("IRKIT_NODE_EXPORTER_BIN")
    if chosen:
        return Path(chosen)
    for name in ("prometheus-node-exporter", "node_exporter"):
        found = shutil.which(name)
        if found:
            return Path(found)
    return None


@dataclass
class NodeExporter(process.Daemonized):
    stem = "node_exporter"

    data_dir: Path
    port: int
    host: str = "127.0.0.1"

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.address}"

    @property
    def installed(self) -> bool:
        binary = find_binary()
        return binary is not None and binary.exists()

    def running(self) -> bool:
        return self.pid is not None and process.port_open(self.host, self.port)

    def start(self) -> None:
        binary = find_binary()
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
