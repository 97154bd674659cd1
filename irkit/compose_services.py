"""The services a Compose project defines (`docker-compose config --services`), remembered.

Only Compose can tell which services a project's files define (extends, profiles, overrides, the
.env file's interpolation), and Compose v1 takes about a second to start: more than a notebook's
checks may take. Its answer is kept in a small file under the user's cache folder, keyed by a
hash of everything it read (the compose files, the .env file, COMPOSE_* variables), so that the
next run asks again only after one of them changed.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from irkit import compose, programs
from irkit.errors import ConfigError, NotVisible
from irkit.targets import ComposeTarget

# The files Compose reads by itself in a project's folder, in its order of preference, and the
# override it adds to the first one found.
DEFAULT_FILES = ("compose.yaml", "compose.yml", "docker-compose.yml", "docker-compose.yaml")
OVERRIDES = ("compose.override.yaml", "compose.override.yml", "docker-compose.override.yml")


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "irkit"


def defined(target: ComposeTarget) -> tuple[list[str] | None, str]:
    """The services the project's files define, and where the answer came from; None (with the
    reason) when no compose file is known here or Compose cannot read it."""
    files = read_files(target)
    if not files:
        return None, "no compose file known here (give compose_dir or compose_files)"
    key = _key(target, files)
    path = cache_dir() / f"compose-services-{key}.json"
    try:
        return list(json.loads(path.read_text())["services"]), "compose config (cached)"
    except (OSError, ValueError, KeyError, TypeError):
        pass
    try:
        argv = [*compose.command(target), "config", "--services"]
        done = programs.run(argv, timeout_s=target.timeout_s, cwd=target.directory or None)
    except (ConfigError, NotVisible) as exc:
        return None, f"compose config cannot run: {exc}"
    except programs.TimedOut:
        return None, f"compose config did not answer within {target.timeout_s:g} s"
    if done.returncode != 0:
        reason = programs.tail(done.stderr or done.stdout, 200).strip().splitlines()
        return None, f"compose config failed: {reason[-1] if reason else done.returncode}"
    services = sorted(line.strip() for line in done.stdout.splitlines() if line.strip())
    _remember(path, services)
    return services, "compose config"


def read_files(target: ComposeTarget) -> list[Path]:
    """The files `compose config` reads for this project, as far as this machine can tell."""
    folder = Path(target.directory) if target.directory else None
    named = [Path(f) for f in target.files]
    if not named and os.environ.get("COMPOSE_FILE"):
        separator = os.environ.get("COMPOSE_PATH_SEPARATOR", os.pathsep)
        named = [Path(f) for f in os.environ["COMPOSE_FILE"].split(separator) if f]
        named = [f if f.is_absolute() or folder is None else folder / f for f in named]
    if not named and folder is not None:
        first = next((folder / n for n in DEFAULT_FILES if (folder / n).is_file()), None)
        if first is not None:
            named = [first, *(folder / n for n in OVERRIDES if (folder / n).is_file())]
    env_file = (folder or (named[0].parent if named else Path("."))) / ".env"
    found = [f for f in named if f.is_file()]
    return [*found, env_file] if found and env_file.is_file() else found


def _key(target: ComposeTarget, files: list[Path]) -> str:
    digest = hashlib.sha256()
    digest.update(json.dumps([target.project, target.directory, list(target.command)]).encode())
    for file in files:
        digest.update(str(file.resolve()).encode() + b"\0")
        try:
            digest.update(file.read_bytes())
        except OSError:
            digest.update(b"(unreadable)")
    for name in sorted(n for n in os.environ if n.startswith("COMPOSE_")):
        digest.update(f"{name}={os.environ[name]}\0".encode())
    return digest.hexdigest()[:24]


def _remember(path: Path, services: list[str]) -> None:
    """Written whole or not at all (a rename): two runs at once never read half a file. A cache
    that cannot be written only costs the next run a second."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(f".{os.getpid()}.tmp")
        partial.write_text(json.dumps({"services": services}))
        os.replace(partial, path)
    except OSError:
        pass
