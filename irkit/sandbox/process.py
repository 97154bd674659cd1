"""Small process helpers shared by the practice servers: pid files, ports, waiting, stopping."""

from __future__ import annotations

import contextlib
import os
import pwd
import random
import shutil
import signal
import socket
import ssl
import subprocess
import time
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from irkit import pids
from irkit.errors import SandboxError

# Ports already handed out by this process: two servers of one stack never get the same one.
_given: set[int] = set()


def free_port() -> int:
    """A TCP port nothing listens on right now, below the ephemeral range when there is room.

    A port the OS picks (bind to 0) comes from the ephemeral range, which is also where outgoing
    connections take their source ports: one of them can take it before the server binds it
    ("Address already in use", seen in CI). Below that range only servers bind."""
    low = _ephemeral_low()
    for _ in range(200):
        # A port, no secret: any generator will do.
        port = random.randint(_LOWEST, low - 1) if low - 1 > _LOWEST else 0  # noqa: S311
        if port in _given:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            chosen = int(s.getsockname()[1])
        if chosen not in _given:
            _given.add(chosen)
            return chosen
    raise SandboxError("no free TCP port found on 127.0.0.1")


# Below the ephemeral range, above the ports well-known services tend to use.
_LOWEST = 20000


def _ephemeral_low() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768  # Linux's default


def port_open(host: str, port: int, timeout: float = 0.2) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            # With nothing listening on a port of the ephemeral range, Linux can pick that very
            # port as the source and connect the socket to itself: that is no listener.
            return bool(sock.getsockname() != sock.getpeername())
    except OSError:
        return False


def read_pid(pidfile: Path) -> int | None:
    """The pid in a pid file if that process is alive, else None."""
    try:
        pid = int(pidfile.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    return pid if pids.alive(pid) else None


def wait_until(
    check: Callable[[], bool],
    timeout: float,
    what: str,
    log: Path | None,
    pidfile: Path | None = None,
) -> None:
    """Wait for `check`; with a `pidfile`, give up at once when that process has exited."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        if pidfile is not None and read_pid(pidfile) is None:
            raise SandboxError(f"{what} exited while starting{_see(log)}")
        time.sleep(0.05)
    raise SandboxError(f"{what} did not come up within {timeout:g} s{_see(log)}")


def terminate(pid: int, timeout: float = 10.0, *, group: bool = False) -> None:
    """SIGTERM, then SIGKILL after `timeout`: a practice server must always go away."""
    kill: Callable[[int, int], None] = os.killpg if group else os.kill
    with contextlib.suppress(ProcessLookupError):
        kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not pids.alive(pid):
            return
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        kill(pid, signal.SIGKILL)


@dataclass(frozen=True)
class Detached:
    """A process run in a session of its own (so that stopping it takes its children too), known
    by its pid file and writing its output to one log."""

    pidfile: Path
    log: Path

    @property
    def pid(self) -> int | None:
        return read_pid(self.pidfile)

    def spawn(self, args: Sequence[str], *, cwd: Path, env: Mapping[str, str] | None = None) -> int:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as out:
            proc = subprocess.Popen(
                list(args),
                env=dict(env) if env is not None else None,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                cwd=cwd,
            )
        self.pidfile.write_text(f"{proc.pid}\n")
        return proc.pid

    def stop(self, timeout: float = 10.0) -> None:
        pid = self.pid
        if pid is not None:
            terminate(pid, timeout=timeout, group=True)
        self.pidfile.unlink(missing_ok=True)


class Daemonized:
    """A practice server run as a `Detached` process in its `data_dir`: its log, pid file and
    pid, named after `stem` (`prometheus.log`, `prometheus.pid`)."""

    data_dir: Path
    stem: ClassVar[str]

    @property
    def log(self) -> Path:
        return self.data_dir / f"{self.stem}.log"

    @property
    def daemon(self) -> Detached:
        return Detached(self.data_dir / f"{self.stem}.pid", self.log)

    @property
    def pidfile(self) -> Path:
        return self.daemon.pidfile

    @property
    def pid(self) -> int | None:
        return self.daemon.pid


class LoopbackServer(Daemonized):
    """A practice server from a system package (Prometheus, node_exporter, Alertmanager): found
    by the variable `binary_env` names, else as one of `binary_names` on PATH; run only where it
    is installed, listening on `host:port`."""

    host: str
    port: int
    binary_env: ClassVar[str]
    binary_names: ClassVar[tuple[str, ...]]

    @property
    def binary(self) -> Path | None:
        chosen = os.environ.get(self.binary_env)
        if chosen:
            return Path(chosen)
        for name in self.binary_names:
            if found := shutil.which(name):
                return Path(found)
        return None

    @property
    def installed(self) -> bool:
        binary = self.binary
        return binary is not None and binary.exists()

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.address}"

    def running(self) -> bool:
        return self.pid is not None and port_open(self.host, self.port)


def http_ok(url: str, timeout: float = 2.0) -> bool:
    """A 200 from `url`, certificate unchecked (a readiness poll of our own loopback server, whose
    certificate may be expired on purpose) and no proxy from the environment (it could not reach
    our loopback)."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    opener = urllib.request.build_opener(
        urllib.request.ProxyHandler({}), urllib.request.HTTPSHandler(context=context)
    )
    try:
        with opener.open(url, timeout=timeout) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def unprivileged_user() -> pwd.struct_passwd | None:
    """PostgreSQL refuses to run as root; when we are root, run it as this account instead."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    raise SandboxError("running as root and neither a 'postgres' nor a 'nobody' account exists")


def blocking_parent(path: Path, user: pwd.struct_passwd) -> Path | None:
    """The first folder above `path` that `user` may not enter, if any: a server running as that
    account could not reach its data below it."""
    for parent in reversed(path.resolve().parents):
        st = parent.stat()
        if st.st_uid != user.pw_uid and not st.st_mode & 0o001:
            return parent
    return None


def _see(log: Path | None) -> str:
    if log is None or not log.exists():
        return ""
    tail = log.read_text(errors="replace").strip().splitlines()[-5:]
    return f"; see {log}" + ("; last lines:\n  " + "\n  ".join(tail) if tail else "")
