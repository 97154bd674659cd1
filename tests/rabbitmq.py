"""A RabbitMQ node of the tests' own (Debian's `rabbitmq-server`), as a team's broker would be:
its own port, folder, Erlang port mapper and cookie, loopback only, one user with a password.

The system's node, where one runs, is left alone: this one has its own node name, its own epmd on
a port of its own (so nothing outlives the test), and its HOME in its folder (so its Erlang cookie
is its own)."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from irkit.sandbox import process

# Debian's wrapper in /usr/sbin switches to the `rabbitmq` account and drops the environment
# that points the node at this folder; the script it wraps runs the node as whoever calls it.
DEBIAN_SCRIPT = Path("/usr/lib/rabbitmq/bin/rabbitmq-server")
USER = "irkit"


def password_hash(password: str) -> str:
    """RabbitMQ's stored form (rabbit_password_hashing_sha256): base64 of a 4-byte salt followed
    by SHA-256 of the salt and the password."""
    salt = secrets.token_bytes(4)
    return base64.b64encode(salt + hashlib.sha256(salt + password.encode()).digest()).decode()


@dataclass
class RabbitServer(process.LoopbackServer):
    stem = "rabbitmq"
    binary_env = "IRKIT_RABBITMQ_SERVER"
    binary_names = ("rabbitmq-server",)

    data_dir: Path
    port: int
    password: str = field(default_factory=lambda: secrets.token_urlsafe(16), repr=False)
    host: str = "127.0.0.1"

    @property
    def binary(self) -> Path | None:
        if not os.environ.get(self.binary_env) and DEBIAN_SCRIPT.exists():
            return DEBIAN_SCRIPT
        return super().binary

    @property
    def epmd(self) -> process.Detached:
        return process.Detached(self.data_dir / "epmd.pid", self.data_dir / "epmd.log")

    def amqp_url(self, *, with_password: bool = False) -> str:
        login = f"{USER}:{self.password}" if with_password else USER
        return f"amqp://{login}@{self.address}//"

    def start(self) -> None:
        binary = self.binary
        if binary is None or not binary.exists():
            raise RuntimeError("rabbitmq-server is not installed: apt-get install rabbitmq-server")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        epmd_port, dist_port = process.free_port(), process.free_port()
        self.epmd.spawn(
            ["epmd", "-port", str(epmd_port), "-address", "127.0.0.1"], cwd=self.data_dir
        )
        self._write_config()
        env = {
            **os.environ,
            "HOME": str(self.data_dir),
            "ERL_EPMD_PORT": str(epmd_port),
            "ERL_EPMD_ADDRESS": "127.0.0.1",
            "ERL_FLAGS": "-kernel inet_dist_use_interface {127,0,0,1}",
            "RABBITMQ_NODENAME": f"irkit-test-{self.port}@localhost",
            "RABBITMQ_NODE_IP_ADDRESS": self.host,
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(dist_port),
            "RABBITMQ_CONFIG_FILE": str(self.data_dir / "rabbitmq"),
            "RABBITMQ_CONF_ENV_FILE": os.devnull,
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.data_dir / "enabled_plugins"),
            "RABBITMQ_MNESIA_BASE": str(self.data_dir / "mnesia"),
            "RABBITMQ_LOG_BASE": str(self.data_dir / "log"),
            "RABBITMQ_PID_FILE": str(self.data_dir / "node.pid"),
        }
        self.daemon.spawn([str(binary)], cwd=self.data_dir, env=env)
        # The AMQP listener opens last, once the node has booted.
        process.wait_until(self.running, 120, "RabbitMQ", self.log, self.pidfile)

    def stop(self) -> None:
        self.daemon.stop(timeout=30)  # the node shuts down on SIGTERM
        self.epmd.stop()

    def _write_config(self) -> None:
        """One user with a password and rights on the default virtual host; no guest."""
        definitions = {
            "users": [
                {
                    "name": USER,
                    "password_hash": password_hash(self.password),
                    "hashing_algorithm": "rabbit_password_hashing_sha256",
                    "tags": [],
                }
            ],
            "vhosts": [{"name": "/"}],
            "permissions": [
                {"user": USER, "vhost": "/", "configure": ".*", "write": ".*", "read": ".*"}
            ],
        }
        (self.data_dir / "definitions.json").write_text(json.dumps(definitions))
        (self.data_dir / "enabled_plugins").write_text("[].\n")
        (self.data_dir / "rabbitmq.conf").write_text(
            f"load_definitions = {self.data_dir / 'definitions.json'}\n"
        )
