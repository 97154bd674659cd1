"""Running the deployment's own tools: without a shell, in a session of their own, within a time
limit that stops the command and everything it started.

The guarded deployment commands (`irkit.actions.deployment`), the read-only diagnostic commands
(`command.check`) and a log command (`logs.errors`) all run this way.
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from irkit.errors import ConfigError
from irkit.secrets import redact, redact_url, url_secrets

_NAME = re.compile(r"[a-z][a-z0-9_]*")
# Kept of each output stream: its end. `yes` or `cat /dev/zero` as a log command would otherwise
# fill the memory within its timeout.
MAX_OUTPUT_BYTES = 16 * 1024 * 1024


@dataclass(frozen=True)
class Completed:
    returncode: int
    stdout: str
    stderr: str


class TimedOut(Exception):
    """The command outlived its time limit and was stopped; what it wrote so far is kept."""

    def __init__(self, timeout_s: float, stdout: str, stderr: str) -> None:
        super().__init__(f"still running after {timeout_s:g} s: stopped")
        self.stdout = stdout
        self.stderr = stderr


def parse_named(entries: Sequence[str], parameter: str = "deploy_commands") -> dict[str, list[str]]:
    """`["restart_web: docker compose restart web"]` → {"restart_web": [argv]}."""
    commands: dict[str, list[str]] = {}
    for entry in entries:
        name, sep, line = str(entry).partition(":")
        name = name.strip()
        if not sep or not _NAME.fullmatch(name) or not line.strip():
            raise ConfigError(
                f"{parameter} entry {entry!r}: write it as 'name: command line', e.g. "
                "'restart_web: docker compose restart web'"
            )
        commands[name] = split(line, f"{parameter} {name}")
    return commands


def split(line: str, what: str) -> list[str]:
    try:
        argv = shlex.split(line)
    except ValueError as exc:
        raise ConfigError(f"{what}: {exc}") from None
    if not argv:
        raise ConfigError(f"{what}: the command line is empty")
    refuse_passwords(argv, what)
    return argv


# Options that take a password on the command line (redis-cli -a, mysql --password=…).
_PASSWORD_OPTIONS = {"-a", "--pass", "--password", "--requirepass", "--auth"}
_PASSWORD_ASSIGNMENT = re.compile(r"(?i)^(--)?[\w-]*(password|passwd|secret|token)[\w-]*=.")
# curl's and wget's `-u user:password` / `--user user:password` (a user alone is fine: the
# tool then asks, or reads .netrc), and a credential in a header or a bare scheme token.
_USER_OPTIONS = {"-u", "--user", "--proxy-user"}
_CREDENTIAL_HEADER = re.compile(
    r"(?i)^\s*(authorization|proxy-authorization|x-api-key|[\w-]*token)\s*:"
)
_SCHEME_TOKEN = re.compile(r"(?i)^(bearer|basic|token)\s+\S")


def refuse_passwords(argv: Sequence[str], what: str) -> None:
    """A command line is a parameter, and papermill writes parameters into the executed
    notebook: a password in it would be kept for ever. Refuse it and say where it goes."""
    for index, arg in enumerate(argv):
        option = arg.split("=", 1)[0]
        if "file" in option.lower():
            continue  # --password-file=…: where a secret is, not the secret
        takes_next = arg in _PASSWORD_OPTIONS and index + 1 < len(argv)
        if arg == "-a" and not any(Path(a).name == "redis-cli" for a in argv[:index]):
            # redis-cli's password; `docker system prune -a` (the runbook's) means --all.
            takes_next = False
        if _CREDENTIAL_HEADER.match(arg) or _SCHEME_TOKEN.match(arg):
            where = "a credential header or token"
        elif _user_with_password(argv, index):
            where = "a user:password"
        elif (
            takes_next
            or (option in _PASSWORD_OPTIONS and "=" in arg)
            or _PASSWORD_ASSIGNMENT.match(arg)
            or ("://" in arg and bool(url_secrets(arg)))
        ):
            where = option if option.startswith("-") else f"in {redact_url(arg)}"
        else:
            continue
        # `where` names the place, never the value: the message is printed and may be logged.
        raise ConfigError(
            f"{what} carries a password ({where}), "
            "and parameters are written into the executed notebook: give it through the "
            "environment instead (REDISCLI_AUTH, PGPASSWORD, a credentials file)"
        )


def _user_with_password(argv: Sequence[str], index: int) -> bool:
    """`-u user:password`, `--user=user:password`, `-uuser:password` (curl's forms). A URL after
    `-u` (redis-cli) is left to the URL check: `host:port` is not a password."""
    arg = argv[index]
    previous = argv[index - 1] if index else ""
    if previous in _USER_OPTIONS:
        value = arg
    elif arg.split("=", 1)[0] in _USER_OPTIONS and "=" in arg:
        value = arg.partition("=")[2]
    elif arg.startswith("-u") and not arg.startswith("--") and len(arg) > 2:
        value = arg[2:]
    else:
        return False
    return ":" in value and "://" not in value


def resolve(program: str) -> str:
    """On PATH, else beside this Python (the kit's own venv: `irkit`, `celery`)."""
    found = shutil.which(program)
    if found:
        return found
    beside = Path(sys.executable).parent / program
    if beside.exists():
        return str(beside)
    raise ConfigError(f"{program!r} is not installed here (not on PATH)")


# Commands running now, so that a caller that gives up on them can stop them (stop_all).
_live: set[subprocess.Popen[bytes]] = set()
_live_lock = threading.Lock()


def stop_all() -> None:
    """Stop every command still running, with everything it started."""
    with _live_lock:
        running = list(_live)
    for proc in running:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)


def run(
    argv: Sequence[str],
    *,
    timeout_s: float,
    cwd: str | None = None,
    env: Mapping[str, str] | None = None,
) -> Completed:
    """Run `argv` to completion; raise TimedOut (after stopping its whole session) when it
    outlives `timeout_s`, ConfigError when it cannot start. `env`: its whole environment (a
    Compose command's DOCKER_HOST), else this process's."""
    full = [resolve(argv[0]), *argv[1:]]
    try:
        # A session of its own: a timeout stops the command and everything it started.
        proc = subprocess.Popen(
            full,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            cwd=cwd,
            env=dict(env) if env is not None else os.environ.copy(),
            start_new_session=True,
        )
    except OSError as exc:
        raise ConfigError(f"could not start {argv[0]}: {exc}") from None
    assert proc.stdout is not None
    assert proc.stderr is not None
    stdout, stderr = _Tail(proc.stdout), _Tail(proc.stderr)
    with _live_lock:
        _live.add(proc)
    deadline = time.monotonic() + timeout_s
    try:
        proc.wait(timeout=timeout_s)
        # Its output ends when every process holding the pipes has gone: a child it left
        # running in the background (`cmd &`, nohup) counts against the same timeout.
        for stream in (stdout, stderr):
            if not stream.ended(max(0.0, deadline - time.monotonic())):
                raise subprocess.TimeoutExpired(full, timeout_s)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        raise TimedOut(timeout_s, stdout.text(), stderr.text()) from None
    finally:
        with _live_lock:
            _live.discard(proc)
    return Completed(proc.returncode, stdout.text(), stderr.text())


class _Tail:
    """The last MAX_OUTPUT_BYTES a stream wrote. The rest is read and dropped, so the command
    never blocks on a full pipe and its output never fills the memory."""

    def __init__(self, stream: IO[bytes]) -> None:
        self._chunks: deque[bytes] = deque()
        self._size = 0
        self._reader = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._reader.start()

    def _read(self, stream: IO[bytes]) -> None:
        with stream:
            # os.read returns what is there: a buffered read would wait for a full chunk.
            for chunk in iter(lambda: os.read(stream.fileno(), 65536), b""):
                self._chunks.append(chunk)
                self._size += len(chunk)
                while self._size - len(self._chunks[0]) >= MAX_OUTPUT_BYTES:
                    self._size -= len(self._chunks.popleft())

    def ended(self, timeout_s: float) -> bool:
        """Whether the stream reached its end within `timeout_s`."""
        self._reader.join(timeout=timeout_s)
        return not self._reader.is_alive()

    def text(self) -> str:
        # A process that left the session may still hold the pipe: do not wait on it for ever.
        self._reader.join(timeout=2.0)
        data = b"".join(list(self._chunks))[-MAX_OUTPUT_BYTES:]
        text = data.decode("utf-8", errors="replace")
        # As text mode read it: universal newlines.
        return text.replace("\r\n", "\n").replace("\r", "\n")


def tail(text: str, chars: int = 4000) -> str:
    """The end of a command's output, secrets masked."""
    return redact(text or "")[-chars:]
