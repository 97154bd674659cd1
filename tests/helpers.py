"""What several test modules share: the CLI as a scheduler starts it, a notebook run by papermill
against the test stack, the health report's parameters and records, a waiting loop, and small
loopback HTTP servers. Test modules import from here, never from one another."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import papermill
import psycopg
import yaml

from conftest import MAX_CONNECTIONS, tls_endpoints
from irkit import records
from irkit.sandbox.stack import Stack

ROOT = Path(__file__).resolve().parent.parent
__all__ = ["MAX_CONNECTIONS", "tls_endpoints"]  # re-exported: the test stack's settings


def wait_for(
    event: Callable[[], object], what: str = "the condition", timeout: float = 30.0
) -> None:
    """Poll until `event()` is true; fail naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not event():
        assert time.monotonic() < deadline, f"never happened within {timeout} s: {what}"
        time.sleep(0.02)


def running_for(stack: Stack, needle: str) -> float:
    """How long the oldest statement whose text contains `needle` has been running, by the
    server's clock (0.0 if none is): what a threshold in seconds is compared with."""
    with psycopg.connect(**stack.postgres.conninfo(dbname="himalytix")) as conn:
        row = conn.execute(
            "SELECT coalesce(max(extract(epoch FROM clock_timestamp() - query_start)), 0)::float"
            " FROM pg_stat_activity WHERE query LIKE %s AND pid <> pg_backend_pid()",
            [f"%{needle}%"],
        ).fetchone()
    return float(row[0]) if row else 0.0


def idle_for(stack: Stack, pid: int) -> float:
    """How long session `pid` has been in its current state, by the server's clock."""
    with psycopg.connect(**stack.postgres.conninfo(dbname="himalytix")) as conn:
        row = conn.execute(
            "SELECT extract(epoch FROM clock_timestamp() - state_change)::float"
            " FROM pg_stat_activity WHERE pid = %s",
            [pid],
        ).fetchone()
    return float(row[0]) if row and row[0] is not None else 0.0


# --- the command line ------------------------------------------------------------------------


def irkit(
    *args: str, reports: Path, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """`irkit ARGS` in a process of its own, writing under `reports`."""
    return subprocess.run(
        [sys.executable, "-m", "irkit", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "IRKIT_REPORTS": str(reports), **(env or {})},
        timeout=timeout,
        check=False,
    )


def verdict_lines(stdout: str, *statuses: str) -> list[str]:
    """The verdicts a command streamed with one of `statuses` ("  1.3s  CRIT    probe  …")."""
    return [line for line in stdout.splitlines() if line.split()[1:2] in ([s] for s in statuses)]


def files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file())


# --- notebooks against the test stack -------------------------------------------------------


def run_notebook(path: Path, folder: Path, **params: Any) -> records.Record:
    """Execute a section notebook with papermill into `folder`, and read its record."""
    out = folder / f"{path.stem}.ipynb"
    papermill.execute_notebook(
        str(path),
        str(out),
        parameters=params,
        kernel_name="python3",
        progress_bar=False,
        cwd=str(ROOT),
    )
    return records.read(out)


def targets(stack: Stack) -> dict[str, Any]:
    """The notebooks' target parameters for `stack`."""
    # Short, as on the practice stack: an earlier drill's errors leave a window this long.
    return {**stack.targets(), "prom_window": "15s"}


# --- the health report ----------------------------------------------------------------------


def params_file(folder: Path, values: dict[str, Any]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"params-{len(list(folder.glob('params-*')))}.yaml"
    path.write_text(yaml.safe_dump(values))
    return path


def healthy(stack: Stack) -> dict[str, Any]:
    """The health report's parameters for the whole test stack."""
    return {
        **targets(stack),
        "disk_paths": [str(stack.base)],
        "celery_expected_workers": 1,
        # Short, like prom_window: what the test run did to this machine a minute ago (other
        # workers' tests, a drill's burn) is not this report's verdict.
        "host_window_min": 0.25,
    }


# Thresholds at which the host checks run but never fire: the other pytest workers load this
# machine meanwhile. The host checks are judged where the machine is held for them alone
# (`host_wide`: tests/test_host.py, the host drills).
CALM_HOST: dict[str, Any] = {
    "host_cpu_warn_pct": 100.0,
    "host_cpu_crit_pct": 100.0,
    "host_memory_available_warn_pct": 0.0,
    "host_memory_available_crit_pct": 0.0,
}
# The same as `-p` pairs (the resolve notebook's re-check takes them).
CALM_HOST_ARGS = [arg for name, value in CALM_HOST.items() for arg in ("-p", f"{name}={value}")]

# Every target refused at once (nothing listens on port 1): the report is CRIT within one quick
# run.
UNREACHABLE: dict[str, Any] = {
    "pg_host": "127.0.0.1",
    "pg_port": 1,
    "web_url": "http://127.0.0.1:1",
    "prom_url": "http://127.0.0.1:1",
    "redis_url": "redis://127.0.0.1:1/1",
    "celery_broker_url": "redis://127.0.0.1:1/0",
}


def kit_home(base: Path) -> Path:
    """A kit home in base/home (IRKIT_HOME): the kit's notebooks, and an empty parameters folder
    for the test's environments."""
    home = base / "home"
    (home / "parameters").mkdir(parents=True)
    (home / "notebooks").symlink_to(ROOT / "notebooks")
    return home


def requests_settled(stack: Stack, timeout: float = 90) -> None:
    """Wait until the app's requests over the last prom_window are judged OK again, and no alert
    fires on them: what other tests did to it (a burst of load, its slow health checks while the
    machine was busy) has left the window, as it would have before a scheduled report."""
    from irkit.probes import prometheus
    from irkit.result import Status
    from irkit.targets import HttpTarget

    target = HttpTarget(base_url=stack.prometheus.url)
    window = str(targets(stack)["prom_window"])

    def settled() -> bool:
        # The alert rules look further back (SlowRequests: 30 s, then 10 s pending) than the
        # report's window: both must have let go of the slow requests.
        return (
            prometheus.error_rate(target, window=window).status is Status.OK
            and prometheus.alerts(target).status is Status.OK
        )

    wait_for(settled, "the app's recent requests answered well again, no alert firing", timeout)


def run_health(
    tmp_path: Path, values: dict[str, Any], *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return irkit(
        "health",
        "-f",
        str(params_file(tmp_path / "p", values)),
        *args,
        reports=tmp_path / "reports",
        env=env,
    )


def health_reports(tmp_path: Path) -> list[Path]:
    """The health reports `run_health` wrote under `tmp_path`, oldest first."""
    found = (tmp_path / "reports" / "health").glob("*-health*.ipynb")
    return sorted(p for p in found if not p.name.startswith("."))


# --- loopback HTTP servers ------------------------------------------------------------------


@contextlib.contextmanager
def serving(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    """A real HTTP server on loopback answering with `handler`, for as long as the block runs:
    its base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


class Receiver:
    """A local HTTP server that records what is posted to it and answers with `status`."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.status = 200
        # What a successful request is answered with (a status page answers with JSON).
        self.reply = b"ok"
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                receiver.requests.append(
                    {
                        "method": self.command,
                        "path": self.path,
                        "headers": dict(self.headers),
                        "json": json.loads(body),
                    }
                )
                self.send_response(receiver.status)
                self.end_headers()
                self.wfile.write(receiver.reply if receiver.status < 300 else b"invalid_token")

            do_PATCH = do_POST

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
