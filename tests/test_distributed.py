"""irkit on Celery, for real: a private Redis as the broker, two `irkit worker` processes with
different host names writing into one reports folder, and `irkit beat` sending the health report
of three environments every few seconds. Each environment has its own PostgreSQL and Redis; one
has them down. One worker is killed outright in the middle of a run and started again. And a
private RabbitMQ as the broker, with a user and a password, as a team that has one would run it."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil
import pytest
import redis
import yaml
from celery import Celery

from irkit import records
from irkit.result import Status
from irkit.sandbox.postgres import SUPERUSER, PostgresServer
from irkit.sandbox.process import free_port
from irkit.sandbox.redis import RedisServer
from irkit.sandbox.stack import Stack
from tests.helpers import (
    CALM_HOST,
    ROOT,
    Receiver,
    irkit,
    kit_home,
    requests_settled,
    targets,
    wait_for,
)
from tests.rabbitmq import USER, RabbitServer

HEALTHY = ("alpha", "beta")
BROKEN = "gamma"
EVERY_S = 4


@pytest.fixture
def scratch() -> Iterator[Path]:
    """The test's folder, removed after it. Not under pytest's tmp folder: PostgreSQL runs as an
    unprivileged account under root, and must reach its data."""
    base = Path(tempfile.mkdtemp(prefix="irkit-test-distributed-"))
    base.chmod(0o755)
    yield base
    shutil.rmtree(base, ignore_errors=True)


def kit_env(home: Path, folder: Path) -> dict[str, str]:
    """The environment of the workers and beat: this kit home, `folder` for the records, and
    none of the broker settings this shell may have (each test names its own broker)."""
    own = {"IRKIT_BROKER_URL", "IRKIT_BROKER_PASSWORD", "IRKIT_RESULT_BACKEND", "IRKIT_QUEUE"}
    kept = {k: v for k, v in os.environ.items() if k not in own}
    return {**kept, "IRKIT_HOME": str(home), "IRKIT_REPORTS": str(folder)}


@contextlib.contextmanager
def servers(base: Path) -> Iterator[dict[str, Any]]:
    """The broker, and a PostgreSQL and a Redis for each healthy environment, started at once."""
    broker = RedisServer(base / "broker", free_port())
    pgs = {name: PostgresServer(base / f"pg-{name}", free_port()) for name in HEALTHY}
    caches = {name: RedisServer(base / f"redis-{name}", free_port()) for name in HEALTHY}
    everything: list[Any] = [broker, *pgs.values(), *caches.values()]
    try:
        with ThreadPoolExecutor(len(everything)) as pool:
            list(pool.map(lambda server: server.start(), everything))
        for pg in pgs.values():
            with pg.connect() as conn:  # an app's database: its migrations have run
                conn.execute(
                    "CREATE TABLE django_migrations (id serial PRIMARY KEY, app text, name text,"
                    " applied timestamptz DEFAULT now())"
                )
                conn.execute("INSERT INTO django_migrations (app, name) VALUES ('erp', '0001')")
        yield {"broker": broker, "pg": pgs, "redis": caches}
    finally:
        for server in everything:
            with contextlib.suppress(Exception):
                server.stop()


def environment(stack: Stack, base: Path, pg: PostgresServer | None, cache: Any) -> dict[str, Any]:
    """An environment's parameters: its own PostgreSQL and Redis (None: down, nothing listens),
    the test stack's web app, worker, Prometheus and certificates."""
    return {
        **targets(stack),
        **CALM_HOST,
        "pg_host": "127.0.0.1",
        "pg_port": pg.port if pg else free_port(),
        "pg_user": SUPERUSER,
        "pg_database": "postgres",
        "redis_url": cache.url(0) if cache else f"redis://127.0.0.1:{free_port()}/0",
        "disk_paths": [str(base)],
        "celery_expected_workers": 1,
        # The host checks judge this machine, which the workers' kernels and the other pytest
        # workers load: at the calm thresholds (100 %) only five minutes of it all busy fire.
        "host_window_min": 5,
        "notify_repeat_min": 60,
        # Slowness is not what this test judges: the machine is loaded by the workers' kernels
        # and the other pytest workers, and a slow answer would read WARN.
        "web_slow_ms": 30000.0,
        "prom_p95_warn_s": 60.0,
        "pg_connect_warn_s": 30.0,
    }


class Worker:
    """An `irkit worker` process: its output in a file, its whole tree killed or stopped."""

    def __init__(self, hostname: str, env: dict[str, str], logs: Path) -> None:
        self.hostname = hostname
        self.env = env
        self.log = logs / f"worker-{hostname}.log"
        self.proc = self._start()

    def _start(self) -> subprocess.Popen[bytes]:
        self.since = self.log.stat().st_size if self.log.exists() else 0
        with self.log.open("ab") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "irkit", "worker", "--hostname", self.hostname,
                 "--concurrency", "1"],
                cwd=ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        wait_for(lambda: " ready." in self.said(), f"worker {self.hostname} ready", 60)
        return proc

    def said(self) -> str:
        """What the worker wrote since its last start."""
        with self.log.open("rb") as log:
            log.seek(self.since)
            return log.read().decode(errors="replace")

    def restart(self) -> None:
        self.proc = self._start()

    def kill_outright(self) -> None:
        """SIGKILL to the worker and everything under it, the runs and their kernels first, as
        a machine lost would leave them: nothing gets to write anything."""
        tree = psutil.Process(self.proc.pid).children(recursive=True)
        runs = [p for p in tree if _is_run(p)]
        for process in [*runs, *tree, psutil.Process(self.proc.pid)]:
            with contextlib.suppress(psutil.Error):
                process.kill()
        self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)  # Celery's warm shutdown: runs end first
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.kill_outright()


def start_beat(schedule: Path, env: dict[str, str], base: Path) -> subprocess.Popen[bytes]:
    """`irkit beat` with `schedule`, its output in base/beat.log, its state in base."""
    with (base / "beat.log").open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "irkit", "beat", "--schedule", str(schedule),
             "--state", str(base / "beat-state")],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip


def _is_run(process: psutil.Process) -> bool:
    with contextlib.suppress(psutil.Error):
        line = process.cmdline()
        return ("irkit" in line and "health" in line) or "ipykernel_launcher" in " ".join(line)
    return False


def reports(folder: Path) -> list[Path]:
    return sorted(p for p in folder.glob("*-health*.ipynb") if not p.name.startswith("."))


def results(broker: RedisServer) -> list[dict[str, Any]]:
    """Every task result in the result backend (the broker's Redis)."""
    client = redis.Redis(host=broker.host, port=broker.port)
    found = []
    for key in client.scan_iter("celery-task-meta-*"):
        meta = json.loads(client.get(key) or b"{}")
        if meta.get("status") == "SUCCESS":
            found.append(meta["result"])
    return found


RUNS = 4


def runs_into_one_incident(
    broker: RedisServer, folder: Path, env: dict[str, str], base: Path
) -> list[Path]:
    """RUNS section runs sent at once into one incident, as a team's own code would send them;
    the incident's numbered notebooks after them."""
    opened = irkit(
        "incident", "open", "--id", "SHARED", "--title", "shared", "--severity", "P3",
        "--not-a-drill", reports=folder, env={"IRKIT_HOME": env["IRKIT_HOME"]},
    )  # fmt: skip
    assert opened.returncode == 0, opened.stderr
    client = Celery(broker=broker.url(0), backend=broker.url(0))
    kwargs = {"section": "disk", "incident": "SHARED", "parameters": [f"disk_paths=['{base}']"]}
    sent = [client.send_task("irkit.run", kwargs=kwargs, queue="irkit") for _ in range(RUNS)]
    outcomes = [result.get(timeout=120) for result in sent]
    assert all(o["exit_code"] in (0, 1) for o in outcomes), [o["output"] for o in outcomes]
    incident = folder / "incidents" / "SHARED"
    return sorted(incident.glob("[0-9][0-9]-disk.ipynb"))


@pytest.mark.timeout(400)
def test_two_workers_and_beat_run_three_environments_and_lose_nothing(
    stack: Stack, receiver: Receiver, scratch: Path
) -> None:
    requests_settled(stack)  # the app's last minute is calm: alpha and beta can be all OK
    base = scratch
    home, folder = kit_home(base), base / "reports"
    with servers(base) as up:
        for name in HEALTHY:
            values = environment(stack, base, up["pg"][name], up["redis"][name])
            (home / "parameters" / f"{name}.yaml").write_text(yaml.safe_dump(values))
        broken = environment(stack, base, None, None)
        (home / "parameters" / f"{BROKEN}.yaml").write_text(yaml.safe_dump(broken))
        schedule = base / "schedule.yaml"
        entry = {"task": "health", "environments": [*HEALTHY, BROKEN], "every": f"{EVERY_S}s"}
        schedule.write_text(yaml.safe_dump({"schedule": [{**entry, "notify": True}]}))
        env = {
            **kit_env(home, folder),
            "IRKIT_BROKER_URL": up["broker"].url(0),
            "IRKIT_SLACK_WEBHOOK": f"{receiver.url}/services/T0/B0/distributedsecret",
        }
        workers = [Worker("host-a", env, base), Worker("host-b", env, base)]
        beat = start_beat(schedule, env, base)
        try:
            every = [folder / "health" / name for name in (*HEALTHY, BROKEN)]
            wait_for(
                lambda: all(len(reports(f)) >= 2 for f in every),
                "two health reports of every environment",
                150,
            )
            # host-a is killed outright in the middle of one of its runs.
            running = folder / "health"

            def mid_run() -> list[Path]:
                return list(running.glob("*/.*@host-a.partial.ipynb"))

            for _attempt in range(3):
                wait_for(mid_run, "a run of host-a under way", 60)
                workers[0].kill_outright()
                if left := mid_run():
                    break
                workers[0].restart()  # the run had just ended: again, with the next one
            (orphan,) = left
            assert orphan.exists()  # left hidden: nobody on host-b takes a run of host-a's
            # host-b goes on meanwhile; host-a's next start publishes what its run left.
            workers[0].restart()
            published = orphan.parent / f"{orphan.name.split('.')[1]}.ipynb"
            assert "kept the record of a run that was killed" in workers[0].said()
            assert not orphan.exists()
            killed = records.read(published)
            assert not killed.complete
            assert not killed.corrupt
            counts = {f: len(reports(f)) for f in every}
            numbered = runs_into_one_incident(up["broker"], folder, env, base)
            wait_for(
                lambda: all(len(reports(f)) > counts[f] for f in every),
                "another health report of every environment",
                150,
            )
        finally:
            beat.send_signal(signal.SIGTERM)
            beat.wait(timeout=30)
            for worker in workers:
                worker.stop()
        done = results(up["broker"])
        logs = "".join(p.read_text(errors="replace") for p in base.glob("*.log"))

    # Runs added to one incident by both workers at once: numbered one after the other.
    assert [p.name for p in numbered] == [f"{n:02d}-disk.ipynb" for n in range(2, 2 + RUNS)]
    ran = [
        r for r in done if r["exit_code"] is not None and r["command"].startswith("irkit health")
    ]
    assert {r["host"] for r in ran} == {"host-a", "host-b"}, logs
    # No report lost or overwritten: every finished task's report is there, each its own file.
    paths = [r["report"] for r in ran]
    assert len(set(paths)) == len(paths)
    assert all(Path(p).is_file() for p in paths)
    assert not list(folder.rglob(".*.partial.ipynb*"))
    for name in (*HEALTHY, BROKEN):
        kept = reports(folder / "health" / name)
        theirs = [r for r in ran if f"--env {name}" in r["command"]]
        assert {Path(r["report"]) for r in theirs} <= set(kept)
        assert len(kept) == len(theirs) + (published.parent.name == name), (name, logs)
        for path in kept:
            record = records.read(path)
            assert record.environment == name
            if path == published:
                continue
            wanted = Status.CRIT if name == BROKEN else Status.OK
            bad = [f"{r.probe}: {r.summary}" for r in record.latest if r.status is not Status.OK]
            assert record.status is wanted, (path.name, bad)
    for r in ran:  # the task's result is the command's exit status, the record's worst
        assert r["exit_code"] == records.read(Path(r["report"])).status.exit_code, r["output"]
    # Notices per environment, once: the broken one's first CRIT; the healthy ones never.
    texts = [request["json"]["text"] for request in receiver.requests]
    assert len(texts) == 1, texts
    assert f"for {BROKEN} on" in texts[0]
    assert "first health report: CRIT" in texts[0]
    assert "distributedsecret" not in logs


@pytest.mark.timeout(300)
def test_on_rabbitmq_a_tasks_result_is_its_commands_exit_status(
    stack: Stack, scratch: Path
) -> None:
    """The team's RabbitMQ as the broker, with a user and a password: a worker takes irkit's
    tasks from its own queue there, and the sender gets each command's exit status back (Celery's
    RPC backend, the default on RabbitMQ) with its record; the password is in none of it."""
    base = scratch
    home, folder = kit_home(base), base / "reports"
    broken = environment(stack, base, None, None)
    (home / "parameters" / f"{BROKEN}.yaml").write_text(yaml.safe_dump(broken))
    rabbit = RabbitServer(base / "rabbitmq", free_port())
    rabbit.start()
    try:
        env = {
            **kit_env(home, folder),  # no result backend named: RabbitMQ's default
            "IRKIT_BROKER_URL": rabbit.amqp_url(),
            "IRKIT_BROKER_PASSWORD": rabbit.password,
        }
        worker = Worker("rabbit-host", env, base)
        try:
            client = Celery(broker=rabbit.amqp_url(with_password=True), backend="rpc://")
            disk = [f"disk_paths=['{base}']"]
            section = {"section": "disk", "environment": BROKEN, "parameters": disk}
            sent = [
                client.send_task("irkit.run", kwargs=section, queue="irkit"),
                client.send_task("irkit.health", kwargs={"environment": BROKEN}, queue="irkit"),
            ]
            ran, health = (result.get(timeout=180) for result in sent)
        finally:
            worker.stop()
        logs = worker.log.read_text(errors="replace")
    finally:
        rabbit.stop()

    assert f"amqp://{USER}:**@{rabbit.address}//" in logs  # the worker's broker, password hidden
    for outcome, wanted in ((ran, Status.OK), (health, Status.CRIT)):
        assert outcome["host"] == "rabbit-host"
        assert outcome["exit_code"] == wanted.exit_code, outcome["output"]
        assert outcome["status"] == wanted.name
        record = records.read(Path(outcome["report"]))
        assert record.status is wanted
        assert record.environment == BROKEN
    written = [p.read_text(errors="replace") for p in folder.rglob("*") if p.is_file()]
    for text in [logs, json.dumps([ran, health]), *written]:
        assert rabbit.password not in text


def queued(broker: RedisServer) -> list[dict[str, Any]]:
    """The headers of the tasks waiting in irkit's queue on the broker (kombu's Redis list)."""
    client = redis.Redis(host=broker.host, port=broker.port)
    return [json.loads(message)["headers"] for message in client.lrange("irkit", 0, -1)]


@pytest.mark.timeout(180)
def test_late_beat_ticks_are_dropped_not_piled_up(scratch: Path) -> None:
    """Beat ticks every second while no worker takes them; each expires a second later (by
    default, the time to the next tick). The worker that starts afterwards drops every one of
    them (REVOKED, nothing run, no record) instead of running the backlog."""
    home, folder = kit_home(scratch), scratch / "reports"
    (home / "parameters" / "alpha.yaml").write_text(yaml.safe_dump({"disk_paths": [str(scratch)]}))
    schedule = scratch / "schedule.yaml"
    entry = {"task": "run", "section": "disk", "environment": "alpha", "every": "1s"}
    schedule.write_text(yaml.safe_dump({"schedule": [entry]}))
    broker = RedisServer(scratch / "broker", free_port())
    broker.start()
    try:
        env = {
            **kit_env(home, folder),
            "IRKIT_BROKER_URL": broker.url(0),
        }
        beat = start_beat(schedule, env, scratch)
        try:
            wait_for(lambda: len(queued(broker)) >= 3, "three ticks waiting", 60)
        finally:
            beat.send_signal(signal.SIGTERM)
            beat.wait(timeout=30)
        late = queued(broker)
        assert all(h["task"] == "irkit.run" and h["expires"] for h in late), late
        newest = max(datetime.fromisoformat(h["expires"]) for h in late)
        wait_for(lambda: datetime.now(UTC) > newest, "the last tick expired", 30)
        worker = Worker("late-host", env, scratch)
        try:
            backend = Celery(broker=broker.url(0), backend=broker.url(0))

            def all_dropped() -> bool:
                return all(backend.AsyncResult(h["id"]).state == "REVOKED" for h in late)

            wait_for(all_dropped, "every late tick dropped", 60)
            assert queued(broker) == []
        finally:
            worker.stop()
        said = worker.said()
    finally:
        broker.stop()
    for h in late:
        assert f"Discarding revoked task: irkit.run[{h['id']}]" in said, said
    assert not folder.exists() or not list(folder.rglob("*.ipynb")), "a late tick ran"
