"""The schedule of `irkit beat` (environments x tasks x every or crontab, checked whole before
anything is sent), the command line each task runs, and a task's deadline, for real."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path

import psutil
import pytest
import yaml

from irkit import records
from irkit.distributed import command, schedule
from irkit.errors import ConfigError
from irkit.sandbox.process import free_port
from irkit.sandbox.redis import RedisServer
from tests.helpers import ROOT, irkit, kit_home, wait_for


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A kit home with the notebooks and two environments, staging and production."""
    kit = kit_home(tmp_path)
    for name in ("staging", "production"):
        (kit / "parameters" / f"{name}.yaml").write_text("pg_port: 5432\n")
    monkeypatch.setenv("IRKIT_HOME", str(kit))
    return kit


def write(folder: Path, entries: object) -> Path:
    path = folder / "schedule.yaml"
    path.write_text(yaml.safe_dump({"schedule": entries}))
    return path


def test_each_environment_of_an_entry_is_a_beat_entry(home: Path) -> None:
    path = write(
        home,
        [
            {"task": "health", "environments": ["staging", "production"], "every": "30s",
             "notify": True, "keep": "30d"},
            {"task": "run", "section": "db", "environment": "production",
             "crontab": "*/15 * * * *", "deadline": "2m", "parameters": {"pg_port": 6543}},
            {"task": "monthly", "environment": "production", "crontab": "0 6 1 * *"},
        ],
    )  # fmt: skip
    entries = {e.name: e for e in schedule.load(path)}
    assert list(entries) == ["health-staging", "health-production", "run-db-production",
                             "monthly-production"]  # fmt: skip
    staging = entries["health-staging"]
    assert staging.line == "irkit health --env staging --notify --keep 30d"
    assert staging.beat_entry("irkit") == {
        "task": "irkit.health",
        "schedule": timedelta(seconds=30),
        "kwargs": {"notify": True, "keep": "30d", "environment": "staging"},
        "options": {"queue": "irkit", "expires": 30.0},  # a late tick waits one interval at most
    }
    db = entries["run-db-production"]
    assert db.line == "irkit run db --env production -p pg_port=6543"
    assert db.expires_s == 900  # until the next quarter hour
    assert db.beat_entry("q")["options"] == {"queue": "q", "expires": 900.0, "time_limit": 180.0}
    assert db.kwargs["deadline_s"] == 120
    assert entries["monthly-production"].line == "irkit report monthly --env production"
    assert entries["monthly-production"].expires_s >= 28 * 86400


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"task": "healthz", "every": "5m"}, "task must be one of health, run, monthly"),
        ({"task": "health", "evry": "5m"}, "'evry' is not a key of a health entry"),
        ({"task": "health", "every": "5m", "section": "db"}, "'section' is not a key of a health"),
        ({"task": "health"}, "give either every (e.g. 5m) or crontab"),
        ({"task": "health", "every": "5m", "crontab": "* * * * *"}, "give either every"),
        ({"task": "health", "every": "5 minutes"}, "every '5 minutes' is not a duration"),
        ({"task": "health", "every": "0s"}, "every '0s' is not a duration"),
        ({"task": "health", "crontab": "*/5 * * *"}, "needs five fields"),
        ({"task": "health", "crontab": "61 * * * *"}, "crontab '61 * * * *'"),
        (
            {"task": "health", "every": "5m", "environment": "nosuch"},
            "unknown environment 'nosuch'",
        ),
        ({"task": "health", "every": "5m", "environment": "../x"}, "unknown environment '../x'"),
        ({"task": "health", "every": "5m", "environments": ["staging"] * 2}, "listed twice"),
        ({"task": "run", "every": "5m"}, "a run entry names its section"),
        ({"task": "run", "every": "5m", "section": "nosuch"}, "unknown section 'nosuch'"),
        ({"task": "health", "every": "5m", "notify": "yes"}, "notify is true or false"),
        ({"task": "health", "every": "5m", "keep": "forever"}, "keep: --keep 'forever'"),
        ({"task": "health", "every": "5m", "parameters": ["a=1"]}, "parameters is a mapping"),
        # The parameters as the command checks them, over the environment's file: at start,
        # not in every tick's result.
        (
            {"task": "health", "every": "5m", "parameters": {"pg_conect_warn_s": 2}},
            "unknown parameter 'pg_conect_warn_s'",
        ),
        (
            {"task": "health", "every": "5m", "parameters": {"pg_connect_warn_s": "soon"}},
            "parameter pg_connect_warn_s must be a number, got 'soon'",
        ),
        (
            {
                "task": "run",
                "section": "db",
                "environment": "staging",
                "every": "5m",
                "parameters": {"pg_port": 70000},
            },
            "parameter pg_port must be a port number",
        ),
        ({"task": "monthly", "every": "5m", "month": "November"}, "month 'November': give it"),
    ],
)
def test_a_wrong_entry_is_named_with_what_is_wrong(
    home: Path, entry: dict[str, object], message: str
) -> None:
    path = write(home, [{"task": "health", "every": "1m"}, entry])
    with pytest.raises(ConfigError) as raised:
        schedule.load(path)
    assert f"the schedule {path}, entry 2" in str(raised.value)
    assert message in str(raised.value)


def test_a_schedule_file_that_is_not_one_is_refused(home: Path) -> None:
    path = home / "schedule.yaml"
    for text, message in [
        ("schedule: [", "is not valid YAML (line 1)"),
        ("- task: health\n", "must be a mapping with one key, schedule"),
        ("schedule: {task: health}\n", "schedule must be a list of entries"),
    ]:
        path.write_text(text)
        with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
            schedule.load(path)
    with pytest.raises(ConfigError, match="cannot read the schedule"):
        schedule.load(home / "missing.yaml")
    twice = write(home, [{"task": "health", "every": "1m"}, {"task": "health", "every": "2m"}])
    with pytest.raises(ConfigError, match="two entries are named 'health'"):
        schedule.load(twice)


def test_beat_check_prints_the_entries_and_a_bad_schedule_is_one_line(
    home: Path, tmp_path: Path
) -> None:
    env = {"IRKIT_HOME": str(home), "IRKIT_BROKER_URL": ""}
    good = write(home, [{"task": "health", "environment": "staging", "every": "5m"}])
    done = irkit("beat", "--schedule", str(good), "--check", reports=tmp_path, env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "health-staging: irkit health --env staging (every 300s, expires 300s)\n"
    bad = write(home, [{"task": "health", "environment": "prod", "every": "5m"}])
    refused = irkit("beat", "--schedule", str(bad), reports=tmp_path, env=env)
    assert refused.returncode == 3
    assert refused.stderr.startswith(f"irkit: the schedule {bad}, entry 1: unknown environment")
    assert len(refused.stderr.splitlines()) == 1


def test_a_worker_without_a_broker_says_what_to_set(tmp_path: Path) -> None:
    env = {"IRKIT_BROKER_URL": "", "IRKIT_SANDBOX_DIR": str(tmp_path / "no-stack")}
    done = irkit("worker", reports=tmp_path, env=env)
    assert done.returncode == 3
    assert done.stderr.startswith("irkit: no broker: set IRKIT_BROKER_URL")
    assert len(done.stderr.splitlines()) == 1


def test_a_broker_that_cannot_be_reached_or_refuses_the_login_is_one_line(
    tmp_path: Path, home: Path, silent_server: tuple[int, threading.Event]
) -> None:
    """At start, not after Celery's retries: nothing listens there, a server accepts and never
    answers, or the password is wrong (said without the password)."""
    port = free_port()
    down = irkit(
        "worker", reports=tmp_path, env={"IRKIT_BROKER_URL": f"redis://127.0.0.1:{port}/2"}
    )
    assert down.returncode == 3
    assert down.stderr.startswith(
        f"irkit: cannot connect to the broker redis://127.0.0.1:{port}/2 (Error 111"
    )
    assert len(down.stderr.splitlines()) == 1
    silent, _ = silent_server
    for url in (f"redis://127.0.0.1:{silent}/2", f"amqp://irkit@127.0.0.1:{silent}//"):
        started = time.monotonic()
        hung = irkit("worker", reports=tmp_path, env={"IRKIT_BROKER_URL": url})
        assert hung.returncode == 3, hung.stderr
        assert hung.stderr.startswith(f"irkit: cannot connect to the broker {url} ("), hung.stderr
        assert time.monotonic() - started < 30  # bounded by config.BROKER_CHECK_S, not for ever
    broker = RedisServer(tmp_path / "broker", free_port(), password="right-pw-3c1")
    broker.start()
    try:
        schedule = write(tmp_path, [{"task": "health", "environment": "staging", "every": "5m"}])
        env = {"IRKIT_BROKER_URL": broker.url(2), "IRKIT_BROKER_PASSWORD": "wrong-pw-9e4"}
        refused = irkit("beat", "--schedule", str(schedule), reports=tmp_path, env=env)
    finally:
        broker.stop()
    assert refused.returncode == 3
    assert "cannot connect to the broker redis://:****@127.0.0.1:" in refused.stderr
    assert "invalid username-password pair" in refused.stderr
    assert "wrong-pw-9e4" not in refused.stdout + refused.stderr


def test_the_worker_bounds_its_help_states_are_the_apps(tmp_path: Path) -> None:
    from irkit.distributed import config

    shown = irkit("worker", "--help", reports=tmp_path)
    text = " ".join(shown.stdout.split())
    assert f"each with its kernel (default {config.CONCURRENCY})" in text
    assert config.settings()["worker_concurrency"] == config.CONCURRENCY  # celery -A … too
    assert f"this many tasks (default {config.MAX_TASKS_PER_CHILD})" in text
    assert f"this much memory (default {config.MAX_MEMORY_PER_CHILD_KB // 1024} MB)" in text
    assert config.settings()["worker_max_tasks_per_child"] == config.MAX_TASKS_PER_CHILD


def test_the_result_backend_follows_the_broker(monkeypatch: pytest.MonkeyPatch) -> None:
    """Redis keeps the results itself; on RabbitMQ they go back to the sender (RPC); a backend
    named in IRKIT_RESULT_BACKEND wins."""
    from irkit.distributed import config

    monkeypatch.delenv(config.BACKEND_ENV, raising=False)
    assert config.result_backend("redis://r:6379/5") == "redis://r:6379/5"
    assert config.result_backend("rediss://r:6380/5") == "rediss://r:6380/5"
    assert config.result_backend("amqp://irkit@mq//") == "rpc://"
    assert config.result_backend("sqs://") is None
    monkeypatch.setenv(config.BACKEND_ENV, "db+postgresql://celery@db/results")
    assert config.result_backend("amqp://irkit@mq//") == "db+postgresql://celery@db/results"


def test_a_tasks_command_line_is_the_one_a_person_types() -> None:
    assert command.argv("health", {"environment": "prod", "notify": True, "keep": "30d"}) == [
        "health", "--env", "prod", "--notify", "--keep", "30d",
    ]  # fmt: skip
    assert command.argv(
        "run", {"section": "db", "incident": "INC-1", "html": True, "parameters": ["a=1"]}
    ) == ["run", "db", "-p", "a=1", "--incident", "INC-1", "--html"]
    assert command.argv("monthly", {"month": "2026-11"}) == [
        "report", "monthly", "--month", "2026-11",
    ]  # fmt: skip


def test_a_run_past_its_deadline_is_stopped_and_keeps_its_record(
    tmp_path: Path, hanging_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SIGTERM at the deadline, as a scheduler stops a run: exit 130, the record kept."""
    monkeypatch.setenv("IRKIT_REPORTS", str(tmp_path))
    argv = ["run", "db", "-p", "pg_host=127.0.0.1", "-p", f"pg_port={hanging_port}",
            "-p", "pg_connect_timeout_s=60"]  # fmt: skip
    outcome = command.run(argv, deadline_s=4, host="host-t")
    assert outcome.timed_out
    assert outcome.exit_code == 130, outcome.output
    assert outcome.status == "STOPPED (deadline)"
    assert outcome.host == "host-t"
    record = records.read(Path(outcome.report))
    assert not record.complete
    assert Path(outcome.report).parent == tmp_path / "runs"
    wait_for(lambda: not kernels_of(tmp_path), "the stopped run's kernel gone", 15)


def kernels_of(reports: Path) -> list[psutil.Process]:
    """The kernels still running for runs that write into `reports`."""
    found = []
    for process in psutil.process_iter(["cmdline"]):
        with contextlib.suppress(psutil.Error):
            kernel = "ipykernel_launcher" in " ".join(process.info["cmdline"] or [])
            if kernel and process.environ().get("IRKIT_REPORTS") == str(reports):
                found.append(process)
    return found


def test_a_run_whose_worker_dies_stops_and_keeps_its_record(
    tmp_path: Path, hanging_port: int
) -> None:
    """The worker's process killed outright (SIGKILL): its run is told (SIGTERM) and publishes
    what it has, instead of running on with nobody to read its result."""
    argv = ["run", "db", "-p", "pg_host=127.0.0.1", "-p", f"pg_port={hanging_port}",
            "-p", "pg_connect_timeout_s=60"]  # fmt: skip
    worker = subprocess.Popen(
        [sys.executable, "-c",
         f"from irkit.distributed import command; command.run({argv!r}, 300, host='host-w')"],
        cwd=ROOT, env={**os.environ, "IRKIT_REPORTS": str(tmp_path)},
    )  # fmt: skip
    runs = tmp_path / "runs"
    wait_for(lambda: list(runs.glob(".*@host-w.partial.ipynb")), "the run under way", 60)
    worker.kill()
    worker.wait()
    wait_for(lambda: list(runs.glob("*-db.ipynb")), "the run's record published", 60)
    assert not list(runs.glob(".*"))
    (published,) = runs.glob("*-db.ipynb")
    assert not records.read(published).complete


def test_a_task_given_a_path_as_environment_is_refused_and_makes_no_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from irkit.distributed import tasks

    monkeypatch.setenv("IRKIT_REPORTS", str(tmp_path / "reports"))
    outcome = tasks.health(environment="../../outside")
    assert outcome["exit_code"] == 3
    assert "unknown environment '../../outside'" in outcome["output"]
    assert not (tmp_path / "outside").exists()
    assert not (tmp_path / "reports").exists()


def test_one_health_report_per_environment_at_a_time(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A report finding its environment's report running (here, or on a machine sharing the
    folder; from a worker, cron or a person) is skipped: no second report compares with the same
    previous one. A task says SKIPPED; the command says it too, and exits 3 (it judged nothing)."""
    from irkit.distributed import tasks
    from irkit.health import alone, history

    monkeypatch.setenv("IRKIT_REPORTS", str(tmp_path / "reports"))
    folder = history.folder("staging")
    with alone.running_alone(folder) as first:
        assert first
        with alone.running_alone(folder) as second:
            assert not second  # another open of the lock file: what another process sees
        outcome = tasks.health(environment="staging")
        by_hand = irkit("health", "--env", "staging", reports=tmp_path / "reports")
    assert outcome["exit_code"] is None
    assert outcome["status"] == "SKIPPED"
    assert outcome["command"] == "irkit health --env staging"
    assert by_hand.returncode == 3
    assert by_hand.stdout.startswith("status: SKIPPED (a health report of staging is running")
    assert not list(folder.glob("*.ipynb"))  # nothing ran
    with alone.running_alone(folder) as again:
        assert again  # let go when the run ended


EMPTY_NOTEBOOK = '{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}'


def leave_hidden(stems: dict[Path, str], owner: str) -> list[Path]:
    """The hidden files runs of `owner` (pid@host) left in each folder, as if killed outright;
    an incident folder gets its first notebook too, for them to be numbered after."""
    left = []
    for folder, stem in stems.items():
        folder.mkdir(parents=True, exist_ok=True)
        left.append(folder / f".{stem}.{owner}.partial.ipynb")
        left[-1].write_text(EMPTY_NOTEBOOK)
        if folder.parent.name == "incidents":
            (folder / "01-triage.ipynb").write_text(EMPTY_NOTEBOOK)
    return left


def test_a_starting_worker_publishes_its_hosts_killed_runs_everywhere(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from irkit import pids
    from irkit.distributed import recovery

    monkeypatch.setenv(pids.HOST_ENV, "ops-1")
    dead = subprocess.Popen(["true"])
    dead.wait()
    root = tmp_path / "reports"
    mine = {
        root / "health": "20261202T050000Z-health",
        root / "health" / "staging": "20261202T050001Z-health",
        root / "runs": "20261202T050002Z-db",
        root / "metrics": "20261202T050003Z-metrics",
        root / "incidents" / "INC-1": "db",
    }
    leave_hidden(mine, f"{dead.pid}@ops-1")
    (theirs,) = leave_hidden({root / "runs": "20261202T050004Z-db"}, f"{dead.pid}@ops-2")
    (root / "incidents" / "elsewhere").symlink_to(tmp_path)  # never followed
    published = recovery.adopt_everywhere(root)
    assert sorted(published) == sorted(
        [
            root / "health" / "20261202T050000Z-health.ipynb",
            root / "health" / "staging" / "20261202T050001Z-health.ipynb",
            root / "runs" / "20261202T050002Z-db.ipynb",
            root / "metrics" / "20261202T050003Z-metrics.ipynb",
            root / "incidents" / "INC-1" / "02-db.ipynb",  # numbered after what is there
        ]
    )
    assert theirs.exists()  # ops-2's: it may still be running there
    assert recovery.adopt_everywhere(root) == []


def test_recover_publishes_a_lost_hosts_records_and_only_its(tmp_path: Path) -> None:
    """`irkit recover --host lost-1`: what that machine's runs left hidden is published, even
    under a pid alive here (a pid of another machine says nothing about this one); the files of
    another host and of this one's live runs stay hidden."""
    root = tmp_path / "reports"
    alive_here = os.getpid()
    lost = {
        root / "health" / "staging": "20261202T050001Z-health",
        root / "runs": "20261202T050002Z-db",
        root / "incidents" / "INC-1": "db",
    }
    leave_hidden(lost, f"{alive_here}@lost-1")
    (other,) = leave_hidden({root / "runs": "20261202T050004Z-db"}, f"{alive_here}@ops-2")
    done = irkit("recover", "--host", "lost-1", reports=root)
    assert done.returncode == 0, done.stderr
    assert sorted(done.stdout.splitlines()) == sorted(
        f"kept the record of a run that was killed: {path}"
        for path in (
            root / "health" / "staging" / "20261202T050001Z-health.ipynb",
            root / "runs" / "20261202T050002Z-db.ipynb",
            root / "incidents" / "INC-1" / "02-db.ipynb",
        )
    )
    assert other.exists()
    again = irkit("recover", "--host", "lost-1", reports=root)
    assert again.stdout == "nothing to publish: no run of lost-1 left a record hidden\n"
    bad = irkit("recover", "--host", "../x", reports=root)
    assert bad.returncode == 3
    assert bad.stderr.startswith("irkit: --host '../x' is not a host name")
