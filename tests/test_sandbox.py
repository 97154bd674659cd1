"""The practice servers: idempotent start, clean stop, and a component killed under them."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from irkit.errors import SandboxError
from irkit.pids import alive as pid_alive
from irkit.probes import celery, host, postgres, prometheus, redis
from irkit.result import Status
from irkit.sandbox import readiness
from irkit.sandbox.alerting import DEFAULT_PORTS as ALERTING_PORTS
from irkit.sandbox.process import free_port
from irkit.sandbox.stack import BROKER_DB, CACHE_DB, Stack, format_status, free_ports
from irkit.targets import CeleryTarget, HttpTarget, Machine, PostgresTarget, RedisTarget
from tests.helpers import irkit, wait_for


@pytest.fixture
def fresh() -> Iterator[Stack]:
    base = Path(tempfile.mkdtemp(prefix="irkit-sandbox-test-"))
    base.chmod(0o755)
    stack = Stack(base, **free_ports())
    yield stack
    stack.down()
    shutil.rmtree(base, ignore_errors=True)


def _born(pid: int) -> float | None:
    try:
        return float(psutil.Process(pid).create_time())
    except psutil.Error:
        return None


def states(stack: Stack) -> dict[str, str]:
    return {row.name: row.state for row in stack.status()}


def test_up_twice_down_twice(fresh: Stack) -> None:
    assert set(states(fresh).values()) == {"stopped"}
    rows = fresh.up()
    assert {r.state for r in rows} == {"running"}
    first_pids = [r.pid for r in rows]
    # A pid is the same process only with the same start time: on a busy machine an ended
    # server's pid is soon another process's.
    born = {p: psutil.Process(p).create_time() for p in first_pids if p}
    started = time.monotonic()
    again = fresh.up()
    assert time.monotonic() - started < 5
    assert [r.pid for r in again] == first_pids  # nothing restarted
    pg = PostgresTarget(host="127.0.0.1", port=fresh.postgres.port, user="erp", dbname="himalytix")
    assert postgres.impact(pg).evidence["tenants"] == 4
    assert redis.ping(RedisTarget(url=fresh.redis.url(CACHE_DB))).status is Status.OK
    assert celery.workers(CeleryTarget(broker_url=fresh.redis.url(BROKER_DB))).status is Status.OK
    table = format_status(again)
    assert table.splitlines()[0].split() == ["component", "state", "pid", "address", "detail"]
    fresh.down()
    assert set(states(fresh).values()) == {"stopped"}
    assert not any(pid_alive(p) and _born(p) == when for p, when in born.items())
    fresh.down()  # stopping what is stopped is fine
    assert set(states(fresh).values()) == {"stopped"}


def test_killed_components_are_reported_and_repaired(fresh: Stack) -> None:
    fresh.up()
    redis_pid, web_pid = fresh.redis.pid, fresh.web.pid
    assert redis_pid
    assert web_pid
    os.kill(redis_pid, signal.SIGKILL)
    os.killpg(web_pid, signal.SIGKILL)  # gunicorn's master and its worker, as an OOM kill would
    deadline = time.monotonic() + 5
    while {states(fresh)["redis"], states(fresh)["web"]} & {"running"}:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert states(fresh)["redis"] in {"dead", "stopped"}
    assert states(fresh)["web"] == "dead"
    assert states(fresh)["postgres"] == "running"
    fresh.up()
    assert set(states(fresh).values()) == {"running"}
    assert fresh.redis.pid != redis_pid
    assert fresh.web.pid != web_pid
    assert fresh.web.answers()


def test_a_failed_up_leaves_nothing_half_started(
    fresh: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IRKIT_PROMETHEUS_BIN", "/bin/false")  # the last component cannot start
    with pytest.raises(SandboxError, match="Prometheus exited while starting"):
        fresh.up()
    assert set(states(fresh).values()) == {"stopped"}


def test_reset_starts_again_from_nothing(fresh: Stack) -> None:
    fresh.up()
    with fresh.postgres.connect("himalytix") as conn:
        conn.execute("CREATE TABLE left_behind (id int)")
    (fresh.media_dir / "upload.txt").write_text("old")
    fresh.reset()
    assert set(states(fresh).values()) == {"stopped"}
    fresh.up()
    with fresh.postgres.connect("himalytix") as conn:
        assert conn.execute("SELECT to_regclass('left_behind')").fetchone() == (None,)
        assert conn.execute("SELECT count(*) FROM tenancy_tenant").fetchone() == (4,)
    assert not (fresh.media_dir / "upload.txt").exists()


def test_later_commands_find_the_ports_the_stack_was_started_on(fresh: Stack) -> None:
    fresh.up()
    again = Stack.load(fresh.base)
    assert (again.postgres.port, again.web.port) == (fresh.postgres.port, fresh.web.port)
    assert {row.state for row in again.status()} == {"running"}
    (fresh.base / "stack.json").write_text("{not json")
    with pytest.raises(SandboxError, match=r"stack\.json is unreadable"):
        Stack.load(fresh.base)


def test_a_port_taken_by_another_program_is_refused(fresh: Stack, hanging_port: int) -> None:
    fresh.redis.port = hanging_port
    with pytest.raises(SandboxError, match=f"port {hanging_port} .* is taken by another program"):
        fresh.up()


def test_up_returns_once_prometheus_has_data_from_the_app_and_node_exporter(fresh: Stack) -> None:
    """A health report right after `irkit sandbox up` is a real one: no "no request metrics"."""
    fresh._save_ports()  # `irkit sandbox up` finds the test's free ports in the stack's folder
    done = irkit(
        "sandbox", "up", reports=fresh.base, env={"IRKIT_SANDBOX_DIR": str(fresh.base)}, timeout=300
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "waiting until every component answers and Prometheus has data" in done.stderr
    assert states(fresh)["node-exporter"] == "running"
    prom = HttpTarget(base_url=fresh.prometheus.url)
    errors = prometheus.error_rate(prom, window="1m")
    assert errors.status is Status.OK, errors.summary
    cpu = host.cpu(Machine(prometheus=prom))
    assert f"(node_exporter {fresh.node_exporter.address})" in cpu.summary
    assert readiness.not_ready(fresh) is None


def test_a_stack_that_is_not_ready_is_named(fresh: Stack) -> None:
    with pytest.raises(SandboxError, match=r"not ready after 0\.5 s: postgres: PostgreSQL"):
        readiness.wait_until_ready(fresh, timeout_s=0.5)
    # A component an active drill holds down is not waited for.
    assert (readiness.not_ready(fresh, frozenset({"postgres"})) or "").startswith("redis:")


def test_without_node_exporter_the_stack_says_so_and_prometheus_does_not_scrape_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IRKIT_NODE_EXPORTER_BIN", str(tmp_path / "not-installed"))
    stack = Stack(tmp_path, **free_ports())
    assert stack.prometheus.node_target == ""
    row = next(r for r in stack.status() if r.name == "node-exporter")
    assert row.state == "not installed"
    assert "apt-get install prometheus-node-exporter" in row.detail
    assert "this machine's load" in row.detail
    stack.prometheus.data_dir.mkdir(parents=True)
    stack.prometheus._write_config()
    config = (stack.prometheus.data_dir / "prometheus.yml").read_text()
    assert "job_name: himalytix" in config
    assert "job_name: node" not in config


def test_status_command_on_a_stack_never_started(tmp_path: Path) -> None:
    done = irkit("sandbox", "status", reports=tmp_path, env={"IRKIT_SANDBOX_DIR": str(tmp_path)})
    assert done.returncode == 1
    assert "postgres" in done.stdout
    assert "stopped" in done.stdout


def test_free_ports_are_distinct_and_out_of_the_outgoing_range() -> None:
    # Outgoing connections take their source ports from the ephemeral range: a server port
    # there can be taken between the choice and the bind.
    low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    ports = [free_port() for _ in range(50)]
    assert len(set(ports)) == 50
    assert all(1024 <= p < low for p in ports)
    with socket.socket() as s:
        s.bind(("127.0.0.1", ports[-1]))  # nothing holds it


def test_the_alert_chain_comes_up_and_down_with_the_stack(tmp_path: Path) -> None:
    """`irkit sandbox up` on a stack with the alert chain: the exporter, the stand-ins, `irkit
    listen` and Alertmanager run, Prometheus scrapes the one and sends to the other, and later
    commands find the chain's ports."""
    base = Path(tempfile.mkdtemp(prefix="irkit-sandbox-test-"))
    base.chmod(0o755)
    chain = {name: free_port() for name in ALERTING_PORTS}
    stack = Stack(base, **free_ports(), alerting_ports=chain)
    assert stack.alerting is not None
    stack.alerting.reports = base / "reports"  # an alert while it runs opens its incident there
    try:
        stack.up()
        rows = {row.name: row.state for row in stack.status()}
        for name in ("exporter", "paging-standins", "irkit-listen", "alertmanager"):
            assert rows[name] == "running", rows
        config = (stack.prometheus.data_dir / "prometheus.yml").read_text()
        assert f'targets: ["127.0.0.1:{chain["exporter_port"]}"]' in config
        assert f'targets: ["127.0.0.1:{chain["alertmanager_port"]}"]' in config
        wait_for(
            lambda: stack.prometheus.query('up{job="exporter"} == 1'), "the exporter scraped", 30
        )
        # What the rules read, from the real servers: none of it may be missing or down.
        exported = httpx.get(f"http://127.0.0.1:{chain['exporter_port']}/metrics").text
        samples = {
            line.split(" ")[0]: float(line.split(" ")[1])
            for line in exported.splitlines()
            if line and not line.startswith("#")
        }
        assert samples["pg_up"] == samples["redis_up"] == 1.0
        assert samples["pg_settings_max_connections"] == 100.0
        assert samples['pg_stat_activity_count{state="active"}'] >= 1  # the exporter's own
        assert samples["redis_memory_max_bytes"] > 0
        assert samples['celery_queue_length{queue_name="celery"}'] == 0.0
        expiries = [v for k, v in samples.items() if k.startswith("probe_ssl_earliest_cert_expiry")]
        assert len(expiries) == 2
        assert all(v > time.time() + 15 * 86400 for v in expiries)  # the stack's own certificates
        again = Stack.load(base)
        assert again.alerting is not None
        assert again.alerting.ports == chain
        secrets = json.loads((base / "alerting" / "secrets.json").read_text())
        assert oct((base / "alerting" / "secrets.json").stat().st_mode & 0o777) == "0o600"
        config = (base / "alerting" / "alertmanager" / "alertmanager.yml").read_text()
        assert secrets["listen_token"] not in config  # in a file of its own, 0600
    finally:
        stack.down()
        assert {row.state for row in stack.status()} <= {"stopped", "not installed"}
        shutil.rmtree(base, ignore_errors=True)
