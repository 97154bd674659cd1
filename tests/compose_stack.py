"""The Compose practice stack for the tests: brought up once per pytest session, on free ports, in
a temporary folder, on an engine of its own (irkit.sandbox.engine, as `irkit sandbox up --compose`
does). Its images come from the image cache (~/.cache/irkit/images, or IRKIT_IMAGE_CACHE): only
the first run on a machine builds them.

Every test that uses it belongs in tests/test_compose_stack.py, or in another single file: with
`--dist loadfile` a file runs on one pytest worker, and each worker would start a stack of its
own. The notebook tests of the compose-* drills use `compose_stack.parameters_file`.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from irkit.sandbox.compose_stack import ComposeStack, Ports


def free_ports(count: int) -> list[int]:
    """Ports nothing listens on now, all different."""
    sockets = []
    try:
        for _ in range(count):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


@pytest.fixture(scope="session")
def compose_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ComposeStack]:
    base = tmp_path_factory.mktemp("compose")
    stack = ComposeStack(
        base / "stack",
        ports=Ports(*free_ports(4)),
        parameters_file=base / "sandbox-compose.yaml",
        drills_dir=base / "drills",
    )
    if not stack.installed:
        pytest.fail(
            "the Compose stack tests need Docker: apt-get install docker.io docker-compose "
            "debootstrap"
        )
    try:
        stack.up(log=lambda line: print(f"compose stack: {line}"))
        yield stack
    finally:
        stack.down()
