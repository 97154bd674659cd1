"""The containers probes against a real Docker engine and real containers (busybox projects
brought up with `docker-compose`): each state found and named in the runbook's words, CPU and
memory against the limits, logs through Compose, the deploy read from what runs, and the
engine's failures named at the boundary."""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from irkit import target_builders
from irkit.probes import (
    cgroup_counters,
    compose,
    container_state,
    container_stats,
    deploy,
    logs,
)
from irkit.result import Result, Status
from irkit.targets import ComposeTarget, LogSource, RepoTarget
from tests.containers import BUSYBOX, ComposeProject

Project = Callable[..., ComposeProject]


def service(name: str, command: str, **extra: str) -> str:
    lines = [
        f"  {name}:",
        f"    image: {BUSYBOX}",
        "    network_mode: host",
        f"    command: {command}",
    ]
    lines += [f"    {key}: {value}" for key, value in extra.items()]
    return "\n".join(lines) + "\n"


def project_text(*services: str) -> str:
    return 'version: "2.4"\nservices:\n' + "".join(services)


SLEEP = '["sleep", "100000"]'


def until(
    probe: Callable[[], Result], holds: Callable[[Result], bool], within: float = 40
) -> Result:
    """Measure until the condition holds (containers change state at their own pace)."""
    deadline = time.monotonic() + within
    while True:
        result = probe()
        if holds(result) or time.monotonic() > deadline:
            return result
        time.sleep(0.3)


def by_name(result: Result) -> dict[str, dict[str, Any]]:
    return {r["name"]: r for r in result.evidence["containers"]}


@pytest.fixture(autouse=True)
def own_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


def test_each_bad_state_is_found_and_named(compose_project: Project) -> None:
    p = compose_project(
        project_text(
            service("web", SLEEP),
            service("crashed", '["sh", "-c", "exit 3"]'),
            service("celery", '["sh", "-c", "exit 3"]', restart="always"),
            service(
                "sick",
                SLEEP,
                healthcheck='{test: ["CMD", "false"], interval: 1s, retries: 1}',
            ),
            service("oom", '["sh", "-c", "tail /dev/zero"]', mem_limit="32m", memswap_limit="32m"),
            service("migrate", '["true"]'),
        )
    )

    def settled(r: Result) -> bool:
        rows = by_name(r)
        return (
            rows["crashed-1"]["state"] == "exited"
            and rows["celery-1"]["state"] == "restarting"
            and rows["celery-1"]["restarts"] >= 2
            and rows["sick-1"]["health"] == "unhealthy"
            and rows["oom-1"]["state"] == "exited"
            and rows["migrate-1"]["state"] == "exited"
        )

    result = until(lambda: compose.services(p.target), settled)
    assert settled(result), result.evidence["containers"]
    assert result.status is Status.CRIT
    rows = by_name(result)
    assert "crashed-1 exited (3)" in result.summary
    assert f"celery-1 restarting ({rows['celery-1']['restarts']} restarts" in result.summary
    assert "sick-1 unhealthy" in result.summary
    assert "oom-1 exited (137, OOM-killed)" in result.summary
    assert rows["oom-1"]["oom_killed"] is True
    # a one-off job that ended well, and a healthy service, are not named
    assert rows["migrate-1"]["status"] == "OK"
    assert rows["web-1"]["status"] == "OK"
    assert "migrate" not in result.summary
    assert "web-1" not in result.summary
    assert rows["web-1"]["image"] == BUSYBOX
    assert rows["web-1"]["restart_policy"] == "no"
    assert rows["celery-1"]["restart_policy"] == "always"
    assert result.evidence["should_run_from"].startswith("compose config")
    services = {s["service"]: s for s in result.evidence["services"]}
    assert services["web"] == {
        "service": "web",
        "should_run": True,
        "containers": 1,
        "running": 1,
        "status": "OK",
    }


def test_a_service_scaled_to_zero_or_missing_is_crit(compose_project: Project) -> None:
    p = compose_project(project_text(service("web", SLEEP), service("celery", SLEEP)))
    p.compose("up", "--detach", "--scale", "web=0")
    result = compose.services(p.target)
    assert result.status is Status.CRIT
    assert result.summary == "web: no container running (scaled to 0?)"
    # asked for by name: a service that has no container at all
    named = compose.services(p.target, expected=["celery", "beat"])
    assert named.summary == "beat: no container running (scaled to 0?)"
    assert named.evidence["should_run_from"] == "compose_services"
    # the defined services come from the cache the second time: fast
    again = compose.services(p.target)
    assert again.evidence["should_run_from"] == "compose config (cached)"
    assert again.elapsed_ms < 500


# Exits once (its first start leaves a mark in the container's own layer), then runs.
ONCE = '["sh", "-c", "[ -e /tmp/once ] || { touch /tmp/once; exit 1; }; exec sleep 100000"]'
# Its main process runs out of memory once, then the container runs.
OOM_ONCE = (
    '["sh", "-c", "[ -e /tmp/once ] || { touch /tmp/once; exec tail /dev/zero; }; '
    'exec sleep 100000"]'
)
# A child process runs out of memory; the main process, and the container, run on.
CHILD_OOM = '["sh", "-c", "tail /dev/zero; exec sleep 100000"]'


def test_restarts_by_the_policy_warn_and_a_restart_by_hand_does_not(
    compose_project: Project,
) -> None:
    p = compose_project(project_text(service("worker", ONCE, restart="always")))
    restarted = until(
        lambda: compose.services(p.target),
        lambda r: (
            by_name(r)["worker-1"]["restarts"] >= 1 and by_name(r)["worker-1"]["state"] == "running"
        ),
    )
    assert restarted.status is Status.WARN, restarted.summary
    assert restarted.summary.startswith("worker-1 restarted by its policy ")
    assert restarted.summary.endswith("(1 restart)")
    # a window of one second lets go of it once it has run longer
    later = until(
        lambda: compose.services(p.target, restart_window_min=1 / 60),
        lambda r: r.status is Status.OK,
        within=10,
    )
    assert later.status is Status.OK, later.summary
    # A responder's `docker-compose restart` resets the engine's count: not a crash.
    p.compose("restart", "--timeout", "1", "worker")
    by_hand = compose.services(p.target)
    assert by_hand.status is Status.OK, by_hand.summary
    assert by_name(by_hand)["worker-1"]["restarts"] == 0


def test_an_oom_kill_is_named_after_the_restart_that_hid_it(compose_project: Project) -> None:
    p = compose_project(
        project_text(
            service("web", OOM_ONCE, restart="always", mem_limit="32m", memswap_limit="32m"),
            service("celery", CHILD_OOM, mem_limit="32m", memswap_limit="32m"),
        )
    )

    def settled(r: Result) -> bool:
        rows = by_name(r)
        return (
            rows["web-1"]["state"] == "running"
            and rows["web-1"]["restarts"] >= 1
            and bool(rows["celery-1"]["oom_events"])
        )

    result = until(lambda: compose.services(p.target), settled)
    assert settled(result), result.evidence["containers"]
    rows = by_name(result)
    # The main process killed and brought back by the policy: the engine's flag says so.
    assert rows["web-1"]["oom_killed"] is True
    assert rows["web-1"]["status"] == "CRIT"
    assert "web-1 OOM-killed and restarted by its policy " in result.summary
    # A child killed, the container running on: only the engine's events tell.
    assert rows["celery-1"]["state"] == "running"
    assert rows["celery-1"]["status"] == "WARN"
    assert "celery-1: a process in it was OOM-killed " in result.summary
    # After a restart by hand the kill belongs to the container's past life.
    p.compose("restart", "--timeout", "1", "web", "celery")
    after = until(
        lambda: compose.services(p.target),
        lambda r: all(row["state"] == "running" for row in r.evidence["containers"]),
    )
    assert by_name(after)["web-1"]["status"] == "OK", after.summary


def test_cpu_and_memory_against_their_limits(compose_project: Project) -> None:
    p = compose_project(
        project_text(
            service("hog", '["sh", "-c", "while :; do :; done"]', cpus="0.5"),
            # dd's 56 MiB held by tail, which cannot write them to a reader that never reads
            service(
                "celery",
                '["sh", "-c", "dd if=/dev/zero bs=1M count=56 2>/dev/null '
                '| tail -c 58720256 | sleep 100000"]',
                mem_limit="64m",
                memswap_limit="64m",
            ),
            service("web", SLEEP),
        )
    )

    def hot(r: Result) -> bool:
        rows = {x["name"]: x for x in r.evidence.get("rows", [])}
        return (
            rows.get("hog-1", {}).get("cpu_of_limit_pct", 0) >= 80
            and rows.get("celery-1", {}).get("mem_pct", 0) >= 80
            # past its start, whose CPU is at most WARN
            and (rows.get("hog-1", {}).get("up_s") or 0) >= container_state.CRASH_LOOP_UP_S
        )

    result = until(lambda: compose.stats(p.target), hot)
    assert hot(result), result.evidence
    rows = {x["name"]: x for x in result.evidence["rows"]}
    assert result.status is Status.CRIT or rows["hog-1"]["cpu_of_limit_pct"] < 95
    assert rows["hog-1"]["cpu_limit"] == 0.5
    assert 35 <= rows["hog-1"]["cpu_pct"] <= 60  # half a CPU, as docker stats shows it
    assert "hog-1 " in result.summary
    assert "% CPU of its 0.5 CPU limit" in result.summary
    assert rows["celery-1"]["mem_limit"] == 64 * 1024 * 1024
    assert "celery-1 " in result.summary
    assert "MiB of 64.0 MiB)" in result.summary
    assert rows["web-1"]["status"] == "OK"
    assert rows["web-1"]["cpu_limit"] is None
    # busiest first, the idle one last
    assert [r["name"] for r in result.evidence["rows"]][-1] == "web-1"
    assert set(rows["web-1"]) >= {"cpu_pct", "mem_bytes", "mem_limit", "mem_pct", "pids"}


def test_cpu_is_measured_since_the_services_check_read_the_counters(
    compose_project: Project, docker_client: Any
) -> None:
    """compose.services reads the running containers' counters, and compose.stats measures CPU
    since then rather than wait an interval of its own; a container restarted in between (a new
    main process, counting from zero) is measured afresh, never against its old counters."""
    p = compose_project(
        project_text(
            service("hog", '["sh", "-c", "while :; do :; done"]', cpus="0.5"),
            service("web", SLEEP),
        )
    )
    compose.services(p.target)
    time.sleep(1.0)
    started = time.monotonic()
    since_services = compose.stats(p.target)
    took = time.monotonic() - started
    rows = {x["name"]: x for x in since_services.evidence["rows"]}
    assert {r["read_from"] for r in rows.values()} == {"cgroup"}
    assert rows["hog-1"]["cpu_over_s"] >= 1.0
    # busy all that time (its share of a loaded machine is judged in the test above)
    assert rows["hog-1"]["cpu_pct"] > 10
    assert took < 1.0  # no interval of its own to wait
    # Right after: at least the shortest interval, from the counters it read last.
    again = {x["name"]: x for x in compose.stats(p.target).evidence["rows"]}
    assert container_stats.CGROUP_INTERVAL_S - 0.01 <= again["hog-1"]["cpu_over_s"] < 1.0
    compose.services(p.target)
    hog = next(c for c in docker_client.containers.list() if c.name.startswith(f"{p.name}_hog"))
    hog.restart(timeout=0)
    afresh = {x["name"]: x for x in compose.stats(p.target).evidence["rows"]}
    assert afresh["hog-1"]["cpu_over_s"] < 1.0
    assert 0 <= afresh["hog-1"]["cpu_pct"] <= 110


ERROR_LINES = (
    'echo "ERROR django.request Internal Server Error: /api/v1/journal/"; '
    'echo "Traceback (most recent call last):"; '
    'echo "  File /app/views.py, line 9, in journal"; '
    "echo \"KeyError: 'tenant'\"; "
    'echo "INFO django.server GET /health/ready/ 200"; sleep 100000'
)


def test_logs_through_compose_with_the_window_honoured(compose_project: Project) -> None:
    p = compose_project(
        project_text(
            service("web", f'["sh", "-c", "{ERROR_LINES.replace(chr(34), chr(92) + chr(34))}"]'),
            service("celery", SLEEP),
            service(
                "redis", '["sh", "-c", "echo ERROR not read: not a log service; sleep 100000"]'
            ),
        )
    )
    params = {"compose_project": p.name, "docker_host": p.engine.url, "compose_dir": str(p.folder)}
    source = target_builders.logs_target(params)
    assert source.compose is not None
    assert source.services == ("web", "celery")
    found = until(
        lambda: logs.errors(source, window_min=10), lambda r: r.evidence.get("total", 0) >= 1
    )
    assert [(r["type"], r["count"]) for r in found.evidence["rows"]] == [("KeyError", 1)]
    assert found.evidence["sources"] == ["web-1", "celery-1"]
    assert found.summary == "1 error in the last 10 min: KeyError 1"
    # a window that ends before the lines were written finds nothing
    started = time.monotonic()
    until(lambda: found, lambda r: time.monotonic() - started > 1.5, within=5)
    narrow = logs.errors(source, window_min=1 / 60)
    assert narrow.evidence["total"] == 0, narrow.evidence
    # bounded: one line per service at most
    few = logs.errors(LogSource(compose=p.target, services=("web",), max_lines=1), window_min=10)
    assert few.evidence["read_only_the_last_lines_of"] == ["web-1"]
    # files and commands still win when given
    assert target_builders.logs_target({**params, "log_command": "cat x"}).compose is None


FAKE_GIT = (
    '["sh", "-c", "echo \'#!/bin/sh\' > /tmp/git; '
    "echo 'echo 0123456789abcdef0123456789abcdef01234567' >> /tmp/git; "
    '/bin/busybox chmod +x /tmp/git; sleep 100000"]'
)


def test_deploy_recent_from_the_running_image(compose_project: Project) -> None:
    p = compose_project(project_text(service("web", FAKE_GIT, environment="{PATH: /tmp:/bin}")))
    target = RepoTarget(compose=p.target, web_service="web")
    result = deploy.recent(target, window_min=60)
    assert result.status is Status.WARN, result.summary
    assert result.summary.startswith(f"web runs {BUSYBOX} (")
    assert "its containers were created" in result.summary
    assert "roll the deploy back" in result.summary
    assert result.evidence["changed_from"] == "containers created"
    assert result.evidence["changed_ago_s"] < 600
    # a window shorter than the containers' age (created a moment ago: a second or so)
    older = until(lambda: deploy.recent(target, window_min=0.001), lambda r: r.status is Status.OK)
    assert older.status is Status.OK, older.summary
    # the runbook's `docker-compose exec web git rev-parse HEAD`
    asked = RepoTarget(compose=p.target, web_service="web", git_revision=True)
    revised = until(
        lambda: deploy.recent(asked, window_min=60),
        lambda r: "commit" in r.evidence.get("git_revision", {}),
        within=10,
    )
    assert revised.evidence["git_revision"]["commit"] == "0123456789abcdef0123456789abcdef01234567"
    assert "revision 0123456789ab" in revised.summary
    missing = deploy.recent(RepoTarget(compose=p.target, web_service="api"), window_min=60)
    assert missing.status is Status.UNKNOWN
    assert "no container of service api" in missing.summary


def test_an_unknown_project_names_the_ones_there(compose_project: Project) -> None:
    p = compose_project(project_text(service("web", SLEEP)))
    other = ComposeTarget(project="nosuch", docker_host=p.engine.url)
    for probe in (compose.services, compose.stats):
        result = probe(other)
        assert result.status is Status.CRIT
        assert "no container of compose project 'nosuch'" in result.summary
        assert p.name in result.evidence["projects"]


def test_no_engine_is_named_and_marks_the_target_unreachable(tmp_path: Path) -> None:
    gone = ComposeTarget(project="web", docker_host=f"unix://{tmp_path}/docker.sock")
    for probe in (compose.services, compose.stats):
        result = probe(gone)
        assert result.status is Status.CRIT
        assert result.summary.startswith("no Docker engine here:")
        assert result.evidence["reachable"] is False


PROBE_AS_NOBODY = """
import sys
from irkit.probes import compose
from irkit.targets import ComposeTarget
r = compose.services(ComposeTarget(project="web", docker_host=sys.argv[1]))
print(r.status.name, r.evidence.get("reachable"), r.summary)
"""


def test_no_permission_on_the_socket_is_named(tmp_path: Path) -> None:
    """A real EACCES: a socket only root may open, tried by an unprivileged child process."""
    if os.geteuid() != 0:
        pytest.skip("needs root to run the probe as another user")
    folder = Path("/tmp") / f"irkit-perm-{os.getpid()}"
    folder.mkdir(exist_ok=True)
    folder.chmod(0o755)
    path = folder / "docker.sock"
    server = socket.socket(socket.AF_UNIX)
    try:
        server.bind(str(path))
        server.listen(1)
        path.chmod(stat.S_IRUSR | stat.S_IWUSR)  # 0600, owned by root
        done = subprocess.run(
            [
                "setpriv",
                "--reuid=65534",
                "--regid=65534",
                "--clear-groups",
                sys.executable,
                "-c",
                PROBE_AS_NOBODY,
                f"unix://{path}",
            ],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=str(Path(__file__).parent.parent),
            env={**os.environ, "HOME": str(folder)},
            check=False,
        )
    finally:
        server.close()
        path.unlink(missing_ok=True)
        folder.rmdir()
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("CRIT False permission denied on "), done.stdout
    assert "docker group" in done.stdout


@pytest.mark.parametrize("read_from", ["cgroup", "engine"])
def test_ten_containers_are_all_measured(
    compose_project: Project, read_from: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On the Docker host each container's counters come from its cgroup; where they cannot be
    read (irkit in a container of its own: here, a cgroup root with nothing in it), through the
    Engine API. Both give every container its row. The time it takes is benchmarked
    (benchmarks/bench_containers.py), not asserted here."""
    if read_from == "engine":
        monkeypatch.setattr(cgroup_counters, "CGROUP_ROOT", tmp_path / "no-cgroups")
    p = compose_project(project_text(*(service(f"s{i}", SLEEP) for i in range(10))))
    states = compose.services(p.target)
    usage = compose.stats(p.target)
    assert states.status is Status.OK
    assert len(states.evidence["containers"]) == 10
    assert usage.status is Status.OK, usage.summary
    assert len(usage.evidence["rows"]) == 10
    assert {r["read_from"] for r in usage.evidence["rows"]} == {read_from}
