"""The processes that keep a drill's fault going after `irkit drill start` returns: they hold
database sessions, send traffic, burn CPU or hold memory until `stop` ends them.

Started as `python -m irkit.drills.agent KIND ARGS_JSON READY_FILE`, in a session of their own.
Each kind sets its fault up, writes what it did to the ready file (which is what `start` waits
for), then keeps the fault going until it is terminated.
"""

from __future__ import annotations

import contextlib
import json
import mmap
import multiprocessing
import os
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from irkit.errors import SandboxError
from irkit.sandbox import process
from irkit.sandbox.stack import Stack

# Holding most of a large machine's memory takes a while: every page is faulted in and written.
READY_TIMEOUT_S = 180.0

Step = Callable[[Stack, dict[str, Any]], None]
Ready = Callable[[dict[str, Any]], None]


def _daemon(stack: Stack, name: str) -> process.Detached:
    where = stack.base / "drills"
    return process.Detached(where / f"{name}.pid", where / f"{name}.log")


def spawn(stack: Stack, name: str, kind: str, **args: Any) -> dict[str, Any]:
    """Start an agent for drill `name`, wait until its fault is in place, and return what it
    reported then, with its pid."""
    daemon = _daemon(stack, name)
    ready = daemon.pidfile.with_suffix(".ready")
    ready.unlink(missing_ok=True)
    env = dict(os.environ)
    if stack.password:
        env["PGPASSWORD"] = stack.password  # the environment, never the arguments or a file
    command = [sys.executable, "-m", "irkit.drills.agent", kind, json.dumps(args), str(ready)]
    pid = daemon.spawn(command, cwd=stack.base, env=env)
    deadline = time.monotonic() + READY_TIMEOUT_S
    while not ready.exists():
        if daemon.pid is None or time.monotonic() > deadline:
            daemon.stop()
            tail = " / ".join(daemon.log.read_text(errors="replace").strip().splitlines()[-3:])
            raise SandboxError(
                f"drill {name} could not set up its fault: {tail} (log: {daemon.log})"
            )
        time.sleep(0.05)
    info: dict[str, Any] = json.loads(ready.read_text())
    return {"agent_pid": pid, **info}


def end(stack: Stack, name: str) -> None:
    _daemon(stack, name).stop()


def held(name: str, kind: str, **args: Any) -> tuple[Step, Step]:
    """Start and stop for a drill whose whole fault lives in an agent."""

    def start(stack: Stack, state: dict[str, Any]) -> None:
        state.update(spawn(stack, name, kind, **{**args, **state.get("settings", {})}))

    def stop(stack: Stack, state: dict[str, Any]) -> None:
        end(stack, name)

    return start, stop


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


def hold_connections(args: dict[str, Any], ready: Ready) -> None:
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
    ready({"held": len(held), "limit": limit, "backend_pids": _pids(held)})
    _until_terminated()


def slow_queries(args: dict[str, Any], ready: Ready) -> None:
    """Report queries that run for minutes: sequential scans sleeping in pg_sleep."""
    held = []
    for i in range(args.get("count", 3)):
        conn = _connect(args, "himalytix-reports")
        conn.pgconn.send_query(
            f"/* reports.generate tenant {i} */ SELECT pg_sleep(86400), count(*)"
            " FROM accounting_journalentry".encode()
        )
        held.append(conn)
    ready({"queries": len(held), "backend_pids": _pids(held)})
    _until_terminated()


def idle_transaction(args: dict[str, Any], ready: Ready) -> None:
    """A request that opened a transaction, updated a tenant and never finished; a second
    session waits on its row lock."""
    blocker = _connect(args, "himalytix-web")
    blocker.execute("BEGIN")
    blocker.execute("UPDATE tenancy_tenant SET name = name WHERE schema_name = 'acme'")
    waiter = _connect(args, "himalytix-worker")
    waiter.pgconn.send_query(b"UPDATE tenancy_tenant SET name = name WHERE schema_name = 'acme'")
    ready(
        {
            "blocker_pid": blocker.info.backend_pid,
            "waiter_pid": waiter.info.backend_pid,
            "backend_pids": _pids([blocker, waiter]),
        }
    )
    _until_terminated()


def traffic(args: dict[str, Any], ready: Ready) -> None:
    """Steady requests over the app's pages, as users would make them."""
    import httpx

    urls: list[str] = args["urls"]
    pause = 1.0 / float(args.get("per_second", 20))
    with httpx.Client(timeout=5, trust_env=False) as http:
        ready({"urls": urls})
        i = 0
        while True:
            with contextlib.suppress(httpx.HTTPError):
                http.get(urls[i % len(urls)])
            i += 1
            time.sleep(pause)


def burn_cpu(args: dict[str, Any], ready: Ready) -> None:
    """One busy process per CPU, for at most `max_s` seconds (a drill left running ends)."""
    count = int(args.get("processes") or os.cpu_count() or 1)
    workers = [
        multiprocessing.Process(target=_spin, args=(float(args.get("max_s", 1800)),))
        for _ in range(count)
    ]
    for w in workers:
        w.start()
    ready({"processes": count, "pids": [w.pid for w in workers]})
    for w in workers:
        w.join()


def hold_memory(args: dict[str, Any], ready: Ready) -> None:
    """Allocate (and touch) memory until the host has only `target_available_pct` available,
    on every CPU at once. This process volunteers to the kernel's OOM killer first, so a
    misjudged drill costs only itself."""
    import psutil

    Path("/proc/self/oom_score_adj").write_text("1000")
    target = float(args.get("target_available_pct", 7.0))
    held: list[mmap.mmap] = []

    def available_pct() -> float:
        memory = psutil.virtual_memory()
        return memory.available / memory.total * 100

    def fill() -> None:
        while available_pct() > target:
            held.append(_resident(HOLD_CHUNK))  # list.append is atomic: no lock needed

    fillers = [threading.Thread(target=fill) for _ in range(os.cpu_count() or 1)]
    for filler in fillers:
        filler.start()
    for filler in fillers:
        filler.join()
    ready({"held_bytes": len(held) * HOLD_CHUNK})
    time.sleep(float(args.get("max_s", 1800)))


# Memory is taken 256 MiB at a time, in huge pages where the kernel has them, and faulted in by
# the kernel (MADV_POPULATE_WRITE, Linux 5.14; Python's mmap does not name it yet), which
# releases the GIL, so one thread per CPU fills side by side. Filling most of a 24 GB, 2-CPU
# machine page by page from one thread took about 50 s; this way 3 to 46 s, depending on how
# much the kernel has to compact memory into huge pages first.
HOLD_CHUNK = 256 << 20
MADV_POPULATE_WRITE = 23


def _resident(size: int) -> mmap.mmap:
    """A private anonymous mapping of `size` bytes, every page of it resident."""
    memory = mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    if hasattr(mmap, "MADV_HUGEPAGE"):
        memory.madvise(mmap.MADV_HUGEPAGE)
    try:
        memory.madvise(MADV_POPULATE_WRITE)
    except OSError:  # an older kernel: every page written from here instead
        memory.write(b"\x5a" * size)
    return memory


def _pids(conns: list[Any]) -> list[int]:
    return [int(c.info.backend_pid) for c in conns]


def _spin(max_s: float) -> None:
    end_at = time.monotonic() + max_s
    while time.monotonic() < end_at:
        pass


def _until_terminated() -> None:
    """Keep the caller's sessions open (they are its locals) until `stop` ends this process."""
    while True:
        time.sleep(3600)


KINDS: dict[str, Callable[[dict[str, Any], Ready], None]] = {
    "hold-connections": hold_connections,
    "slow-queries": slow_queries,
    "idle-transaction": idle_transaction,
    "traffic": traffic,
    "burn-cpu": burn_cpu,
    "hold-memory": hold_memory,
}


def main(argv: list[str]) -> None:
    kind, args, ready_file = argv[0], json.loads(argv[1]), Path(argv[2])

    def ready(info: dict[str, Any]) -> None:
        partial = ready_file.with_name(ready_file.name + ".partial")
        partial.write_text(json.dumps(info))
        partial.replace(ready_file)

    KINDS[kind](args, ready)


if __name__ == "__main__":
    main(sys.argv[1:])
