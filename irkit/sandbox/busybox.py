"""A one-binary image for the tests and benchmarks: Debian's static busybox, imported from a tar
built in memory (no registry, no build, under a second). Debian's package `busybox-static`
provides the binary; `./kit test` installs it."""

from __future__ import annotations

import io
import subprocess
import tarfile
from pathlib import Path
from typing import TYPE_CHECKING

from irkit.errors import SandboxError

if TYPE_CHECKING:
    import docker

IMAGE = "irkit-test/busybox:1"
# The applets the test projects use, each a link to the one static binary.
APPLETS = ("sh", "sleep", "cat", "tail", "yes", "true", "false", "echo", "head", "dd", "date")


def binary() -> Path:
    for candidate in ("/bin/busybox", "/usr/bin/busybox"):
        path = Path(candidate)
        if path.exists() and _static(path):
            return path
    raise SandboxError(
        "no static busybox here (a dynamically linked one cannot run in an empty image): "
        "apt-get install busybox-static"
    )


def import_image(client: docker.DockerClient) -> str:
    """The image, imported into this engine unless it already has it; its name."""
    if client.images.list(name=IMAGE):
        return IMAGE
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w") as tar:
        tar.add(binary(), arcname="bin/busybox")
        for applet in APPLETS:
            link = tarfile.TarInfo(f"bin/{applet}")
            link.type = tarfile.SYMTYPE
            link.linkname = "busybox"
            tar.addfile(link)
        for folder in ("tmp", "proc", "sys", "dev", "etc"):
            info = tarfile.TarInfo(folder)
            info.type = tarfile.DIRTYPE
            info.mode = 0o1777 if folder == "tmp" else 0o755
            tar.addfile(info)
    repository, tag = IMAGE.split(":")
    client.api.import_image_from_data(data.getvalue(), repository=repository, tag=tag)
    return IMAGE


def _static(path: Path) -> bool:
    done = subprocess.run(["file", "-b", str(path)], capture_output=True, check=False)
    return b"statically linked" in done.stdout
