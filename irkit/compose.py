"""A Docker Compose deployment seen through the Docker Engine API (the `docker` SDK): the
project's containers, found by the labels Compose puts on every container it creates
(`com.docker.compose.project`, `…service`, `…container-number`, `…oneoff`), which `docker-compose`
v1 and `docker compose` v2 share; and the Compose command itself, for what only Compose knows how
to do (scale a service from its definition, list the services a project defines, its logs).

Every failure to reach the engine is named at this boundary (no Docker here, no engine on the
socket, no permission on it, no such project), never a driver's traceback.
"""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, ClassVar

from irkit import reasons
from irkit.errors import NotVisible, ServiceError, Unreachable
from irkit.targets import ComposeTarget

if TYPE_CHECKING:
    import docker
    from docker.models.containers import Container

PROJECT_LABEL = "com.docker.compose.project"
SERVICE_LABEL = "com.docker.compose.service"
NUMBER_LABEL = "com.docker.compose.container-number"
ONEOFF_LABEL = "com.docker.compose.oneoff"
# The schemes the docker SDK reaches an engine by.
ENGINE_SCHEMES = ("unix", "tcp", "http", "https", "ssh")
# Inspects in flight at once (within the client's connection pool, `engine`).
INSPECT_PARALLEL = 16

_INVALID = re.compile(r"[^-_a-z0-9]")


def project_name(text: str) -> str:
    """A project's name as Compose makes it from a folder's name: lower case, and only letters,
    digits, `-` and `_`, starting with a letter or a digit (v2's rule; v1 is laxer)."""
    return _INVALID.sub("", text.lower()).lstrip("-_")


class NoDocker(NotVisible):
    """Docker is not on this machine at all (no engine where one would be, nothing named
    elsewhere): not an outage, and said once (`Section.measure` skips the rest quietly)."""

    evidence: ClassVar[dict[str, object]] = {"docker": "absent", "reachable": False}


DEFAULT_SOCKET = "/var/run/docker.sock"


# The process's client of each engine (a notebook's kernel runs a section's probes one after the
# other): its connections stay open between them and the API version is asked once. Keyed by the
# process too, so that a forked child never shares its parent's sockets.
_clients: dict[tuple[int, str, int], docker.DockerClient] = {}


@contextmanager
def engine(target: ComposeTarget) -> Iterator[docker.DockerClient]:
    """A client of the target's engine that has just answered a ping."""
    try:
        import docker
    except ImportError:
        raise NoDocker(
            "the docker Python package is not installed here: pip install docker"
        ) from None
    named = target.docker_host or os.environ.get("DOCKER_HOST")
    if not named and not os.path.exists(DEFAULT_SOCKET):
        raise NoDocker(
            f"no Docker here: no engine at {DEFAULT_SOCKET} (install and start Docker, or "
            "set docker_host or DOCKER_HOST to reach an engine elsewhere)"
        )
    timeout = round(target.timeout_s) or 1
    key = (os.getpid(), target.engine, timeout)
    kept = _clients.pop(key, None)
    if kept is not None:
        try:
            kept.ping()
            client = kept
        except (docker.errors.DockerException, OSError) as exc:
            kept.close()
            if _timed_out(exc):  # an engine that hangs would only make a new client wait too
                raise _unreachable(target, exc) from None
            # The engine restarted or went away since: a new client says which.
            client = _new_client(target, timeout)
    else:
        client = _new_client(target, timeout)
    _clients[key] = client
    yield client


def _new_client(target: ComposeTarget, timeout: int) -> docker.DockerClient:
    import docker

    try:
        # A connection each for the statistics read in parallel (irkit.probes.container_stats).
        client = docker.DockerClient(base_url=target.engine, timeout=timeout, max_pool_size=32)
    except docker.errors.DockerException as exc:
        raise _unreachable(target, exc) from None
    try:
        client.ping()
    except (docker.errors.DockerException, OSError) as exc:
        client.close()
        raise _unreachable(target, exc) from None
    return client


def resolved(client: docker.DockerClient, target: ComposeTarget) -> ComposeTarget:
    """The target with its project named: as given, else the engine's only Compose project."""
    if target.project:
        return target
    projects = known_projects(client)
    if len(projects) == 1:
        return dataclasses.replace(target, project=projects[0])
    runs = f"runs {', '.join(projects)}" if projects else "runs no Compose project"
    raise NotVisible(
        f"no Compose project named (give compose_dir or compose_project); the engine at "
        f"{target.engine} {runs}"
    )


def containers(client: docker.DockerClient, target: ComposeTarget) -> list[Container]:
    """Every container of the project, stopped ones included; one-off `run` containers are not
    part of a service's deployment and are left out."""
    if not target.project:
        return []
    import docker

    listed = client.api.containers(all=True, filters={"label": f"{PROJECT_LABEL}={target.project}"})
    wanted = [
        str(row["Id"])
        for row in listed
        if (row.get("Labels") or {}).get(ONEOFF_LABEL, "False") != "True"
    ]

    def inspected(container_id: str) -> Container | None:
        try:
            return client.containers.get(container_id)
        except docker.errors.NotFound:  # removed since the list: not part of it any more
            return None

    # One inspect each, as `containers.list` does, but side by side: they are what a probe of a
    # project of many containers waits for.
    if len(wanted) <= 1:
        found = [inspected(i) for i in wanted]
    else:
        with ThreadPoolExecutor(max_workers=min(INSPECT_PARALLEL, len(wanted))) as pool:
            found = list(pool.map(inspected, wanted))
    return [c for c in found if c is not None]


def service_of(container: Container) -> str:
    return str(container.labels.get(SERVICE_LABEL, "?"))


def number_of(container: Container) -> int:
    try:
        return int(container.labels.get(NUMBER_LABEL, "0"))
    except ValueError:
        return 0


def by_service(found: list[Container]) -> dict[str, list[Container]]:
    services: dict[str, list[Container]] = {}
    for container in sorted(found, key=lambda c: (service_of(c), number_of(c))):
        services.setdefault(service_of(container), []).append(container)
    return services


def oom_kills(
    client: docker.DockerClient, target: ComposeTarget, since: float
) -> dict[str, list[float]]:
    """Container id → when (epoch seconds) a process inside it was OOM-killed since `since`: the
    engine's `oom` events, kept in its memory (its last few hundred events). A container's own
    flag (State.OOMKilled) tells only of its main process; a gunicorn worker or a Celery child
    killed by the limit shows only here."""
    kills: dict[str, list[float]] = {}
    until = int(time.time())
    if until <= since:
        return kills
    filters = {"type": "container", "event": "oom", "label": f"{PROJECT_LABEL}={target.project}"}
    for event in client.events(since=int(since), until=until, filters=filters, decode=True):
        container = str(event.get("id") or (event.get("Actor") or {}).get("ID") or "")
        at = float(event.get("timeNano") or 0) / 1e9 or float(event.get("time") or 0)
        kills.setdefault(container, []).append(at)
    return kills


def known_projects(client: docker.DockerClient) -> list[str]:
    """The projects that have containers on this engine, to name them when one is not found."""
    found = client.containers.list(all=True, filters={"label": PROJECT_LABEL})
    return sorted({str(c.labels.get(PROJECT_LABEL)) for c in found})


def no_such_project(client: docker.DockerClient, target: ComposeTarget) -> ServiceError:
    others = known_projects(client)
    seen = (
        f"; the projects on this engine: {', '.join(others)}"
        if others
        else "; this engine runs no Compose project"
    )
    if not target.project:
        return ServiceError(
            f"no Compose project named (give compose_dir or compose_project){seen}",
            projects=others,
        )
    return ServiceError(
        f"no container of compose project {target.project!r} on {target.engine}{seen}",
        project=target.project,
        projects=others,
    )


def command(target: ComposeTarget) -> list[str]:
    """The Compose command line for this project: `docker-compose` (the runbook's), else
    `docker compose`, with the project's name, folder and files."""
    base = list(target.command)
    if not base:
        if shutil.which("docker-compose"):
            base = ["docker-compose"]
        elif shutil.which("docker"):
            base = ["docker", "compose"]
        else:
            raise NotVisible(
                "neither docker-compose nor docker is installed here: install Compose "
                "(apt-get install docker-compose) or set compose_command"
            )
    argv = [*base, "--project-name", target.project]
    if target.directory:
        argv += ["--project-directory", target.directory]
    for file in target.files:
        argv += ["--file", file]
    return argv


def environment(target: ComposeTarget) -> dict[str, str]:
    """The environment a Compose command runs with: the target's engine."""
    env = dict(os.environ)
    if target.docker_host:
        env["DOCKER_HOST"] = target.docker_host
    return env


def _unreachable(target: ComposeTarget, exc: BaseException) -> ServiceError:
    text = str(exc)
    where = target.engine
    path = where.removeprefix("unix://") if where.startswith("unix://") else ""
    if path and not os.path.exists(path):
        return Unreachable(
            f"no Docker engine here: {path} does not exist (is Docker installed and running? "
            "set docker_host or DOCKER_HOST to reach another)",
            reachable=False,
            engine=where,
        )
    if "Permission denied" in text or isinstance(_cause(exc), PermissionError):
        return Unreachable(
            f"permission denied on {path or where}: run irkit as root or as a member of the "
            "docker group (see the README: reading the socket is root-equivalent)",
            reachable=False,
            engine=where,
        )
    return Unreachable(
        f"the Docker engine at {where} does not answer: {reasons.short(text)}",
        reachable=False,
        engine=where,
        error=text[:1000],
    )


def _timed_out(exc: BaseException) -> bool:
    import requests

    return isinstance(exc, requests.exceptions.Timeout) or isinstance(_cause(exc), TimeoutError)


def _cause(exc: BaseException) -> Any:
    seen = exc
    while seen.__cause__ or seen.__context__:
        seen = seen.__cause__ or seen.__context__  # type: ignore[assignment]
        if isinstance(seen, PermissionError):
            return seen
    return seen
