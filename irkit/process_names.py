"""What a process is, in the words a responder uses: `gunicorn`, `celery worker`, `ipykernel`,
rather than the interpreter's name ("python") that `ps` and psutil give for all of them."""

from __future__ import annotations

import os
import re
from collections.abc import Sequence

# Interpreters whose first argument (a script or `-m module`) says what really runs.
_INTERPRETER = re.compile(r"python[0-9.]*|pypy[0-9.]*")

# The programs a responder knows by name, from a module or script name.
_KNOWN = {
    "ipykernel_launcher": "ipykernel",
    "ipykernel": "ipykernel",
    "jupyter-lab": "jupyter-lab",
    "jupyter-server": "jupyter-server",
    "gunicorn": "gunicorn",
    "uvicorn": "uvicorn",
    "papermill": "papermill",
    "irkit": "irkit",
    "pytest": "pytest",
}

# Celery's subcommands: a worker and a beat are different things to restart.
_CELERY_COMMANDS = ("worker", "beat", "flower", "inspect", "events")


def readable_name(name: str, cmdline: Sequence[str]) -> str:
    """The name a responder would give the process with this executable `name` and command
    line: the program an interpreter runs (`python -m gunicorn …` is `gunicorn`), Celery with its
    subcommand (`celery worker`), a process title a server set for itself (`gunicorn: worker
    [app]`), else the executable's own name."""
    # A process that rewrote its title may leave empty arguments behind it (redis-server does).
    cmdline = [arg for arg in cmdline if arg]
    if not cmdline:
        return name
    if len(cmdline) == 1 and " " in cmdline[0].strip():
        # A title the server set for itself (setproctitle): "gunicorn: master [himalytix]",
        # "postgres: 15/main: checkpointer", "redis-server 127.0.0.1:6379".
        title = os.path.basename(cmdline[0].split()[0].rstrip(":"))
        return _KNOWN.get(title, title)
    program = os.path.basename(cmdline[0])
    rest = list(cmdline[1:])
    if _INTERPRETER.fullmatch(program):
        program, rest = _interpreted(rest, fallback=name or program)
    program = program.removesuffix(".py")
    if program == "celery":
        sub = next((a for a in rest if a in _CELERY_COMMANDS), "")
        return f"celery {sub}".strip()
    if program.startswith("irkit."):
        return program  # a module of the kit, e.g. irkit.drills.agent
    return _KNOWN.get(program, program)


def _interpreted(args: list[str], fallback: str) -> tuple[str, list[str]]:
    """What an interpreter runs: `-m module`, a script, or itself (`-c`, an interactive one)."""
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "-m" and i + 1 < len(args):
            return args[i + 1].split(".__main__")[0], args[i + 2 :]
        if arg.startswith("-m") and len(arg) > 2:
            return arg[2:], args[i + 1 :]
        if arg == "-c":
            return fallback, []
        if arg in ("-W", "-X"):
            i += 2
            continue
        if not arg.startswith("-"):
            return os.path.basename(arg), args[i + 1 :]
        i += 1
    return fallback, []
