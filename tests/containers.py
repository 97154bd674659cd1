"""A Docker engine and Compose projects for the tests: each pytest worker starts its own engine
(irkit.sandbox.engine) in its temporary folder, imports a tiny image made from Debian's static
busybox, and brings up projects written by the test, each under a name of its own, taken down
with its volumes when the test ends."""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import docker
import pytest

from irkit.sandbox import busybox
from irkit.sandbox.engine import DockerEngine
from irkit.targets import ComposeTarget

BUSYBOX = busybox.IMAGE
_numbers = itertools.count(1)


@pytest.fixture(scope="session")
def docker_engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DockerEngine]:
    engine = DockerEngine(tmp_path_factory.mktemp("docker"))
    if not engine.installed:
        pytest.fail("the container tests need Docker: apt-get install docker.io docker-compose")
    engine.start()
    client = docker.DockerClient(base_url=engine.url)
    busybox.import_image(client)
    client.close()
    yield engine
    engine.stop()


@pytest.fixture(scope="session")
def docker_client(docker_engine: DockerEngine) -> Iterator[docker.DockerClient]:
    client = docker.DockerClient(base_url=docker_engine.url)
    yield client
    client.close()


class ComposeProject:
    """A project written into a folder of its own and brought up with `docker-compose`."""

    def __init__(self, engine: DockerEngine, folder: Path, name: str, text: str) -> None:
        self.engine = engine
        self.folder = folder
        self.name = name
        folder.mkdir(parents=True, exist_ok=True)
        self.file = folder / "docker-compose.yml"
        self.file.write_text(textwrap.dedent(text))
        self.target = ComposeTarget(
            project=name, directory=str(folder), files=(str(self.file),), docker_host=engine.url
        )

    def compose(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        argv = ["docker-compose", "--project-name", self.name, "--file", str(self.file), *args]
        env = dict(os.environ, DOCKER_HOST=self.engine.url)
        done = subprocess.run(
            argv, cwd=self.folder, env=env, capture_output=True, text=True, timeout=120, check=False
        )
        if check and done.returncode != 0:
            raise AssertionError(f"{' '.join(args)} failed: {done.stderr}")
        return done

    def up(self, *services: str) -> None:
        self.compose("up", "--detach", *services)

    def down(self) -> None:
        self.compose("down", "--volumes", "--timeout", "1", check=False)


@pytest.fixture
def compose_project(
    docker_engine: DockerEngine, tmp_path: Path
) -> Iterator[Callable[[str], ComposeProject]]:
    """Write a compose file (its services use BUSYBOX and `network_mode: host`), bring it up,
    and take it down with its volumes after the test."""
    made: list[ComposeProject] = []

    def make(text: str, *, up: bool = True) -> ComposeProject:
        worker = os.environ.get("PYTEST_XDIST_WORKER", "gw")
        name = f"t{worker}n{next(_numbers)}"
        project = ComposeProject(docker_engine, tmp_path / name, name, text)
        made.append(project)
        if up:
            project.up()
        return project

    yield make
    for project in made:
        project.down()
    shutil.rmtree(tmp_path, ignore_errors=True)
