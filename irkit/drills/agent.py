"""The processes that keep a drill's fault going after `irkit drill start` returns: they hold
database sessions, send traffic, burn CPU or hold memory until `stop` ends them.

Started as `python -m irkit.drills.agent KIND ARGS_JSON`, in a session of their own; each writes a
ready file once the fault is in place, which is what `start` waits for.
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from irkit.errors import SandboxError
from irkit.sandbox import process
from irkit.sandbox.stack import Stack

# Holding most of a large machine's memory takes a while: every page is faulted in and written.
READY_TIMEOUT_S = 180.0


def spawn(stack: Stack, name: str, kind: str, **args: Any) -> int:
    """Start an agent for drill `name` and wait until its fault is in place."""
    where = stack.base / "drills"
    where.mkdir(parents=True, exist_ok=True)
    ready = where / f"{name}.ready"
    ready.unlink(missing_ok=True)
    env = dict(os.environ)
    if stack.password:
        env["PGPASSWORD"] = stack.password  # the environment, never the arguments or a file
    log = where / f"{name}.log"
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "irkit.drills.agent", kind, json.dumps(args), str(ready)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    deadline = time.monotonic() + READY_TIMEOUT_S
    while not ready.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            process.terminate(proc.pid, group=True)
            tail = " / ".join(log.read_text(errors="replace").strip().splitlines()[-3:])
            raise SandboxError(f"drill {name} could not set up its fault: {tail} (log: {log})")
        time.sleep(0.05)
    return proc.pid


def end(pid: int | None) -> None:
    if pid:
        process.terminate(pid, timeout=10, group=True)


def ready_info(stack: Stack, name: str) -> dict[str, Any]:
    try:
        info: dict[str, Any] = json.loads((stack.base / "drills" / f"{name}.ready").read_text())
        return info
    except (OSError, ValueError):
        return {}


# --- inside the agent process ---------------------------------------------------------------


def _connect(args: dict[str, Any], application_name: str) -> Any:
    import psycopg

    return psycopg.connect(
        host=args["host"],
        port=args["port"],
        user=args["user"],
        dbname=args["dbname"],
        application_name=application_name,
        autocommit=True,
        connect_timeout=5,
    )


def hold_connections(args: dict[str, Any]) -> dict[str, Any]:
    """Open sessions as the application does until one slot short of the limit: a quarter run
    long queries, a quarter sit idle in a transaction, the rest idle, as a leaking pool does."""
    import psycopg

    admin = _connect(args, "himalytix-web")
    limit = admin.execute(
        "SELECT current_setting('max_connections')::int"
        " - current_setting('superuser_reserved_connections')::int"
    ).fetchone()[0]
    in_use = admin.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'"
    ).fetchone()[0]
    held = [admin]
    wanted = max(1, limit - in_use - args.get("leave_free", 1))
    while len(held) < wanted:
        try:
            held.append(_connect(args, "himalytix-web"))
        except psycopg.OperationalError:
            break  # full: another client took the last slots first
    for i, conn in enumerate(held[1:]):
        if i % 4 == 0:
            conn.pgconn.send_query(b"SELECT pg_sleep(86400)")
        elif i % 4 == 1:
            conn.execute("BEGIN")
            conn.execute("SELECT count(*) FROM tenancy_tenant")
    _keep(held)
    return {"held": len(held), "limit": limit, "backend_pids": _pids(held)}


def slow_queries(args: dict[str, Any]) -> dict[str, Any]:
    """Report queries that run for minutes: sequential scans sleeping in pg_sleep."""
    held = []
    for i in range(args.get("count", 3)):
        conn = _connect(args, "himalytix-reports")
        conn.pgconn.send_query(
            f"/* reports.generate tenant {i} */ SELECT pg_sleep(86400), count(*)"
            " FROM accounting_journalentry".encode()
        )
        held.append(conn)
    _keep(held)
    return {"queries": len(held), "backend_pids": _pids(held)}


def idle_transaction(args: dict[str, Any]) -> dict[str, Any]:
    """A request that opened a transaction, updated a tenant and never finished; a second
    session waits on its row lock."""
    blocker = _connect(args, "himalytix-web")
    blocker.execute("BEGIN")
    blocker.execute("UPDATE tenancy_tenant SET name = name WHERE schema_name = 'acme'")
    waiter = _connect(args, "himalytix-worker")
    waiter.pgconn.send_query(b"UPDATE tenancy_tenant SET name = name WHERE schema_name = 'acme'")
    _keep([blocker, waiter])
    return {
        "blocker_pid": blocker.info.backend_pid,
        "waiter_pid": waiter.info.backend_pid,
        "backend_pids": _pids([blocker, waiter]),
    }


def traffic(args: dict[str, Any]) -> dict[str, Any]:
    """Steady requests over the app's pages, as users would make them."""
    import httpx

    urls: list[str] = args["urls"]
    pause = 1.0 / float(args.get("per_second", 20))
    with httpx.Client(timeout=5, trust_env=False) as http:
        _ready({"urls": urls})
        i = 0
        while True:
            with contextlib.suppress(httpx.HTTPError):
                http.get(urls[i % len(urls)])
            i += 1
            time.sleep(pause)


def burn_cpu(args: dict[str, Any]) -> dict[str, Any]:
    """One busy process per CPU, for at most `max_s` seconds (a drill left running ends)."""
    count = int(args.get("processes") or os.cpu_count() or 1)
    workers = [
        multiprocessing.Process(target=_spin, args=(float(args.get("max_s", 1800)),))
        for _ in range(count)
    ]
    for w in workers:
        w.start()
    _ready({"processes": count, "pids": [w.pid for w in workers]})
    for w in workers:
        w.join()
    return {}


def hold_memory(args: dict[str, Any]) -> dict[str, Any]:
    """Allocate (and touch) memory until the host has only `target_available_pct` available.
    This process volunteers to the kernel's OOM killer first, so a misjudged drill costs only
    itself."""
    import psutil

    Path("/proc/self/oom_score_adj").write_text("1000")
    target = float(args.get("target_available_pct", 7.0))
    chunk = b"\x5a" * (64 << 20)
    held: list[bytearray] = []
    while psutil.virtual_memory().available / psutil.virtual_memory().total * 100 > target:
        held.append(bytearray(chunk))  # a copy: every page written, so really resident
    _ready({"held_bytes": len(held) * len(chunk)})
    time.sleep(float(args.get("max_s", 1800)))
    return {}


def _pids(conns: list[Any]) -> list[int]:
    return [int(c.info.backend_pid) for c in conns]


def _spin(max_s: float) -> None:
    end_at = time.monotonic() + max_s
    while time.monotonic() < end_at:
        pass


_READY: Path | None = None


def _ready(info: dict[str, Any]) -> None:
    assert _READY is not None
    partial = _READY.with_suffix(".partial")
    partial.write_text(json.dumps(info))
    partial.replace(_READY)


# Sessions a holder keeps open until the process is terminated (which closes them).
_KEPT: list[Any] = []


def _keep(held: list[Any]) -> None:
    _KEPT.extend(held)


KINDS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "hold-connections": hold_connections,
    "slow-queries": slow_queries,
    "idle-transaction": idle_transaction,
    "traffic": traffic,
    "burn-cpu": burn_cpu,
    "hold-memory": hold_memory,
}

# Kinds that hold database sessions: they report ready once set up, then wait to be stopped.
_HOLDERS = {"hold-connections", "slow-queries", "idle-transaction"}


def main(argv: list[str]) -> None:
    global _READY
    kind, args, ready = argv[0], json.loads(argv[1]), Path(argv[2])
    _READY = ready
    if kind in _HOLDERS:
        _ready(KINDS[kind](args))
        while True:
            time.sleep(3600)
    KINDS[kind](args)


if __name__ == "__main__":
    main(sys.argv[1:])
