"""A Docker engine of the kit's own, for the Compose practice stack and the tests: Debian's
`dockerd` in its own folder (data root, exec root, socket), with no bridge and no iptables rules,
so that it touches nothing of the machine's network; every container it runs uses the host's
network and a loopback port of its own.

It runs only where Docker is installed (Debian's `docker.io`; `./kit` installs it as root); an
engine already running (DOCKER_HOST, /var/run/docker.sock) is never touched.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from irkit.errors import SandboxError
from irkit.sandbox import process

INSTALL_HINT = (
    "install Docker and Compose from Debian's packages: "
    "apt-get install docker.io docker-compose (./kit does it when run as root)"
)
# The longest a fresh engine takes to answer (it starts its own containerd first).
START_TIMEOUT_S = 60.0


def find_dockerd() -> Path | None:
    found = os.environ.get("IRKIT_DOCKERD_BIN") or shutil.which("dockerd")
    return Path(found) if found else None


@dataclass
class DockerEngine(process.Daemonized):
    stem = "dockerd"

    data_dir: Path

    @property
    def socket(self) -> Path:
        return self.data_dir / "docker.sock"

    @property
    def url(self) -> str:
        """What DOCKER_HOST is for this engine."""
        return f"unix://{self.socket}"

    @property
    def installed(self) -> bool:
        return find_dockerd() is not None

    def running(self) -> bool:
        return self.pid is not None and self.answers()

    def answers(self) -> bool:
        import docker

        try:
            client = docker.DockerClient(base_url=self.url, timeout=2)
        except docker.errors.DockerException:
            return False
        try:
            return bool(client.ping())
        except (docker.errors.DockerException, OSError):
            return False
        finally:
            client.close()

    def start(self) -> None:
        if self.running():
            return
        binary = find_dockerd()
        if binary is None:
            raise SandboxError(f"Docker is not installed: {INSTALL_HINT}")
        if os.geteuid() != 0:
            raise SandboxError(
                "starting a Docker engine needs root (dockerd); run `irkit sandbox up --compose` "
                "as root, or point DOCKER_HOST at an engine you may use"
            )
        self.stop()  # a pid file left by a killed engine
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.socket.unlink(missing_ok=True)
        exec_root = self.exec_root
        # Laid out by hand (fmt: skip): each option beside its value, as on a command line.
        args = [
            str(binary),
            "--data-root", str(self.data_dir / "data"),
            "--exec-root", str(exec_root),
            "--host", self.url,
            "--pidfile", str(self.data_dir / "dockerd.engine.pid"),
            "--bridge=none", "--iptables=false", "--ip-masq=false",
            # Stopping the engine stops its containers: seconds, not its default of 15 s each.
            "--shutdown-timeout", "3",
            "--log-level", "warn",
        ]  # fmt: skip
        self.daemon.spawn(args, cwd=self.data_dir)
        process.wait_until(
            self.answers, START_TIMEOUT_S, "the Docker engine", self.log, self.pidfile
        )

    @property
    def exec_root(self) -> Path:
        """containerd's sockets live under the exec root: a unix socket path must stay under 108
        bytes, so it is kept short when the data folder is deep."""
        exec_root = self.data_dir / "exec"
        if len(str(exec_root)) > 60:
            exec_root = Path("/run/irkit-docker") / _short_name(self.data_dir)
        return exec_root

    def stop(self) -> None:
        # dockerd stops its containers and its containerd itself on SIGTERM.
        self.daemon.stop(timeout=30)
        (self.data_dir / "dockerd.engine.pid").unlink(missing_ok=True)
        # It leaves its network namespace handle (exec/netns/default) and, at times, a
        # container's root mounted: the folder could not be removed, nor the next engine start.
        unmount_below(self.data_dir, self.exec_root)


def unmount_below(*folders: Path) -> None:
    """Lazily unmount whatever is still mounted at or below these folders, deepest first."""
    try:
        mounts = Path("/proc/mounts").read_text().splitlines()
    except OSError:
        return
    roots = [str(f.resolve()) for f in folders]
    points = {line.split()[1].replace("\\040", " ") for line in mounts if len(line.split()) > 1}
    below = [p for p in points if any(p == r or p.startswith(r + "/") for r in roots)]
    for point in sorted(below, key=len, reverse=True):
        subprocess.run(["umount", "--lazy", point], capture_output=True, check=False, timeout=30)


def _short_name(path: Path) -> str:
    import hashlib

    return hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:12]
