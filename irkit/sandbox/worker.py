"""A real Celery worker for the practice stack, run as its own process group."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from irkit.sandbox import process
from irkit.secrets import with_password


@dataclass
class CeleryWorker(process.Daemonized):
    stem = "worker"

    data_dir: Path
    broker_url: str
    broker_password: str | None = field(default=None, repr=False)
    name: str = "irkit-sandbox"
    concurrency: int = 2
    queues: Sequence[str] = ("celery",)

    @property
    def nodename(self) -> str:
        return f"{self.name}@localhost"

    def running(self) -> bool:
        return self.pid is not None

    def start(self) -> None:
        if self.running():
            return
        self.data_dir.mkdir(parents=True, exist_ok=True)
        # The log is appended to across restarts: readiness is judged on what comes after here.
        offset = self.log.stat().st_size if self.log.exists() else 0
        env = dict(
            os.environ,
            IRKIT_SANDBOX_BROKER_URL=with_password(self.broker_url, self.broker_password),
        )
        # Laid out by hand (fmt: skip): each option beside its value, as on a command line.
        args = [
            sys.executable, "-m", "celery", "-A", "irkit.sandbox.tasks", "worker",
            "-n", self.nodename, "-c", str(self.concurrency), "-Q", ",".join(self.queues),
            "--pool", "prefork", "--without-gossip", "--without-mingle", "--loglevel", "INFO",
        ]  # fmt: skip
        self.daemon.spawn(args, cwd=self.data_dir, env=env)
        what = "the Celery worker"
        process.wait_until(lambda: self.ready(offset), 60, what, self.log, self.pidfile)

    def ready(self, offset: int = 0) -> bool:
        """The worker logs '<name> ready.' once it consumes; cheaper than a broadcast ping."""
        if not self.running():
            return False
        try:
            with self.log.open("rb") as f:
                f.seek(offset)
                return f"{self.nodename} ready.".encode() in f.read()
        except OSError:
            return False

    def stop(self) -> None:
        # The whole group: the prefork pool's children go with their parent.
        self.daemon.stop(timeout=15)
