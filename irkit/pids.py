"""Whether a process id still names a live process: a run that may still be writing its record,
a practice server behind its pid file. A pid means something on its own machine only: on a
shared reports folder, each run's files also carry the name of the host it runs on."""

from __future__ import annotations

import contextlib
import os
import re
import socket
from pathlib import Path

# Which host this process is on, as the files of its runs name it: IRKIT_HOST (irkit worker
# --hostname sets it), else the machine's host name. Two machines sharing a reports folder must
# not share this name.
HOST_ENV = "IRKIT_HOST"
_NOT_IN_NAME = re.compile(r"[^A-Za-z0-9-]+")


def this_host() -> str:
    """This host's name as it goes into a file name: letters, digits and '-', at most 40."""
    name = os.environ.get(HOST_ENV) or socket.gethostname()
    return _NOT_IN_NAME.sub("-", name).strip("-")[:40] or "host"


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie (exited, not yet reaped by its parent) is not alive for our purposes.
    with contextlib.suppress(OSError):
        stat = Path(f"/proc/{pid}/stat").read_text()
        if stat.rsplit(")", 1)[1].split()[0] == "Z":
            return False
    return True
