"""What the container actions share: a service's containers as the engine sees them (or why
there are none: no project, no such service), their state in a few words, and the Compose
command run for what only Compose does (scale a service from its definition, exec in it),
bounded, with the target's engine and its output's tail kept for the record.
"""

from __future__ import annotations

import re
import shlex
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from irkit import compose, programs
from irkit.actions.deployment import run_bounded
from irkit.errors import ConfigError, IrkitError
from irkit.probes import container_state
from irkit.secrets import redact
from irkit.targets import ComposeTarget

if TYPE_CHECKING:
    import docker
    from docker.models.containers import Container

# Compose's own rule for a service's name; never starting with "-", so never an option.
_SERVICE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
_NEVER = datetime.min.replace(tzinfo=UTC)


def check_service(service: str) -> str:
    if not _SERVICE.fullmatch(service):
        raise ConfigError(
            f"{service!r} is not a Compose service's name (letters, digits, '.', '_' and '-')"
        )
    return service


def service_containers(
    client: docker.DockerClient, target: ComposeTarget, service: str
) -> tuple[list[Container], str]:
    """The service's containers, lowest number first, or none and why: no such project, or no
    container of that service (naming the services that have some)."""
    if not target.project:
        return [], "no Compose project named: give compose_dir or compose_project"
    found = compose.containers(client, target)
    if not found:
        return [], str(compose.no_such_project(client, target))
    services = compose.by_service(found)
    if service not in services:
        return [], (
            f"no container of service {service!r} in compose project {target.project!r}; "
            f"its services: {', '.join(services)}"
        )
    return services[service], ""


def running(containers: list[Container]) -> list[Container]:
    return [c for c in containers if c.attrs["State"].get("Running")]


def state(container: Container) -> str:
    """ "running since 01:22:03", "exited (137, OOM-killed)", "restarting (3 restarts)"."""
    s = container.attrs["State"]
    status = str(s.get("Status", "?"))
    if s.get("Running") and not s.get("Restarting"):
        return f"running since {started_at(container):%Y-%m-%d %H:%M:%S} UTC"
    if status == "exited":
        oom = ", OOM-killed" if s.get("OOMKilled") else ""
        return f"exited ({s.get('ExitCode')}{oom})"
    if status == "restarting":
        return f"restarting ({container.attrs.get('RestartCount', 0)} restarts)"
    return status


def started_at(container: Container) -> datetime:
    """State.StartedAt as a time (the engine's nanoseconds do not compare as text); never
    started: the earliest time."""
    return container_state.parse_time(container.attrs["State"].get("StartedAt")) or _NEVER


def argv(target: ComposeTarget, *args: str) -> list[str]:
    return [*compose.command(target), *args]


def shown(target: ComposeTarget, *args: str) -> str:
    """The exact command line, as the plan shows it."""
    return redact(shlex.join(argv(target, *args)))


def run(target: ComposeTarget, args: list[str], *, timeout_s: float) -> str:
    """Run a Compose command on the target's engine (its DOCKER_HOST), from the project's
    folder (where Compose finds its files when none is named), within `timeout_s`."""
    return run_bounded(
        argv(target, *args),
        timeout_s=timeout_s,
        cwd=target.directory or None,
        env=compose.environment(target),
    )


def defined_services(target: ComposeTarget, timeout_s: float) -> list[str]:
    """The services the project's compose files define, running or not (`config --services`):
    a service scaled to 0 has no container to find it by."""
    try:
        done = programs.run(
            argv(target, "config", "--services"),
            timeout_s=timeout_s,
            cwd=target.directory or None,
            env=compose.environment(target),
        )
    except programs.TimedOut as exc:
        raise ConfigError(f"compose config --services: {exc}") from None
    if done.returncode != 0:
        error = programs.tail(done.stderr, 500).strip()
        raise ConfigError(f"compose config --services: exit code {done.returncode}: {error}")
    return done.stdout.split()


# The longest a step waits for a restarted or new container's health check to pass: a web app
# that migrates before it serves takes a while under its CPU limit.
HEALTH_WAIT_S = 120.0


def health_after(container: Container, wait_s: float = HEALTH_WAIT_S) -> str:
    """For a container with a health check, wait (bounded) for its verdict: "healthy" said, an
    unhealthy one raised with its last check's output. A container without one: nothing to say.
    `docker-compose restart` does not wait; a responder needs to know whether it came back."""
    deadline = time.monotonic() + wait_s
    while True:
        container.reload()
        health = container.attrs["State"].get("Health") or {}
        status = health.get("Status")
        if status is None:
            return ""
        if status == "healthy":
            return ", healthy"
        if status == "unhealthy" or not container.attrs["State"].get("Running"):
            log = health.get("Log") or [{}]
            said = " ".join(str(log[-1].get("Output", "")).split())[:200]
            raise IrkitError(f"started again, then {state(container)}, unhealthy: {said}")
        if time.monotonic() > deadline:
            return f", its health check still starting after {wait_s:g} s"
        time.sleep(0.5)
