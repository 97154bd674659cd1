"""A Compose project's logs read through the Docker Engine API, as `docker-compose logs -t web
celery` prints them: each line prefixed with its container (`web-1  | `) and stamped with the
time the engine received it, whatever the application writes itself. Only the window asked for
is read (`since`), and at most a number of lines per service (`tail`)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import TYPE_CHECKING

from irkit import compose as project
from irkit.errors import NotVisible
from irkit.targets import ComposeTarget

if TYPE_CHECKING:
    from docker.models.containers import Container


def read(
    target: ComposeTarget, services: tuple[str, ...], since: datetime, max_lines: int
) -> tuple[list[list[str]], list[str], list[str]]:
    """Each container's lines (apart: one container's first line never continues another's
    traceback), the containers read, and those whose lines were cut at the limit."""
    texts: list[list[str]] = []
    sources: list[str] = []
    cut: list[str] = []
    with project.engine(target) as client:
        found = project.containers(client, target)
        if not found:
            raise project.no_such_project(client, target)
        seen = project.by_service(found)
        wanted = [s for s in services if s in seen] if services else sorted(seen)
        if not wanted:
            raise NotVisible(
                f"no container of {', '.join(services)} in compose project {target.project} "
                f"(its services: {', '.join(sorted(seen))}); set compose_log_services"
            )
        asked = [
            (f"{service}-{project.number_of(c)}", c, max(1, max_lines // len(seen[service])))
            for service in wanted
            for c in seen[service]
        ]
        # Side by side: each container's logs are a request of their own to the engine.
        with ThreadPoolExecutor(max_workers=min(project.INSPECT_PARALLEL, len(asked))) as pool:
            lines_of = list(pool.map(lambda a: _container_lines(a[1], since, a[2]), asked))
    for (name, _, each), lines in zip(asked, lines_of, strict=True):
        if len(lines) >= each:
            cut.append(name)
        texts.append([f"{name}  | {line}" for line in lines])
        sources.append(name)
    return texts, sources, cut


def _container_lines(container: Container, since: datetime, tail: int) -> list[str]:
    import docker

    try:
        data = container.logs(stdout=True, stderr=True, timestamps=True, since=since, tail=tail)
    except docker.errors.APIError as exc:
        # e.g. a logging driver that cannot be read back (syslog, none)
        raise NotVisible(
            f"cannot read the logs of {container.name}: {exc.explanation or exc}"
        ) from None
    return bytes(data).decode("utf-8", errors="replace").splitlines()
