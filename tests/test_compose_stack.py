"""The Compose practice stack and its drills, against a real Docker engine and real containers.

Every test using the stack lives in this file (see tests/compose_stack.py): the stack comes up once
per session, and each drill's fault is read back from the Engine API as the `containers` notebook
reads it, then undone, the stack healthy again before the next test.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from irkit import drills
from irkit.sandbox.compose_stack import SERVICES, ComposeStack

DEADLINE_S = 90.0
# The first run on a machine builds the stack's images inside the first test's setup (about six
# minutes: debootstrap, then four builds); later runs load them from the cache in seconds.
pytestmark = pytest.mark.timeout(900)


def wait_for(what: str, check: Callable[[], Any], timeout: float = DEADLINE_S) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout:.0f} s: {what}")
        time.sleep(0.25)


def get(url: str) -> bytes:
    """A GET on our loopback, never through a proxy from the environment."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(url, timeout=5) as response:
        assert response.status == 200
        return bytes(response.read())


def only(stack: ComposeStack, client: Any, service: str) -> Any:
    found = stack.containers(client, service)
    assert len(found) == 1, f"{service}: {[c.name for c in found]}"
    found[0].reload()
    return found[0]


def assert_healthy(stack: ComposeStack) -> None:
    stack.wait_ready(SERVICES)
    rows = stack.status()
    assert [r.name for r in rows] == list(SERVICES)
    assert all(r.state == "running" for r in rows), rows


def test_every_service_is_up_healthy_and_named_by_status(compose_stack: ComposeStack) -> None:
    stack = compose_stack
    assert_healthy(stack)
    with stack.client() as client:
        for service in ("db", "redis", "web"):
            assert only(stack, client, service).attrs["State"]["Health"]["Status"] == "healthy"
        web = only(stack, client, "web")
        config = web.attrs["HostConfig"]
        assert config["NetworkMode"] == "host"
        assert config["Memory"] == config["MemorySwap"] == 512 * 1024 * 1024
        assert config["NanoCpus"] == 500_000_000
        assert config["RestartPolicy"]["Name"] == "always"
        # /app is a git repository whose commit is the image's revision label.
        head = web.exec_run(["git", "rev-parse", "HEAD"]).output.decode().strip()
        labels = web.image.labels
        assert head == labels["org.opencontainers.image.revision"]
        assert labels["org.opencontainers.image.created"]
    # The app answers on loopback, and the runbook's commands run verbatim in the containers.
    assert json.loads(get(f"{stack.web_url}/api/v1/health/"))
    active = stack.compose("exec", "-T", "celery", "celery", "-A", "dashboard", "inspect", "active")
    assert "OK" in active.stdout or "empty" in active.stdout, active.stdout
    # The parameter file points the notebooks at this stack.
    params = yaml.safe_load(stack.parameters_file.read_text())
    assert params["compose_dir"] == str(stack.compose_dir)
    assert params["docker_host"] == stack.docker_host
    assert params["compose_project"] == stack.project
    assert params["compose_services"] == list(SERVICES)
    assert params["web_url"] == stack.web_url
    assert params["pg_port"] == stack.ports.db
    # Prometheus scrapes the web app.
    query = f"{stack.prom_url}/api/v1/query?query=up%7Bjob%3D%22himalytix%22%7D"

    def scraped() -> bool:
        body = json.loads(get(query))
        return any(r["value"][1] == "1" for r in body["data"]["result"])

    wait_for("Prometheus scrapes web", scraped)


def test_up_again_changes_nothing_and_takes_seconds(compose_stack: ComposeStack) -> None:
    stack = compose_stack
    with stack.client() as client:
        before = {c.id for c in stack.containers(client)}
    started = time.monotonic()
    stack.up(log=lambda _: None)
    took = time.monotonic() - started
    with stack.client() as client:
        assert {c.id for c in stack.containers(client)} == before
    assert took < 30, f"a second up took {took:.1f} s"


def _restart_count(container: Any) -> int:
    container.reload()
    return int(container.attrs["RestartCount"])


def test_web_oom_drill_is_oom_killed_and_restarted(compose_stack: ComposeStack) -> None:
    stack = compose_stack
    drills.start(stack, "compose-web-oom")
    try:
        with stack.client() as client:
            web = only(stack, client, "web")
            state = web.attrs["State"]
            assert state["OOMKilled"] is True or state["ExitCode"] == 137, state
            first = _restart_count(web)
            assert first >= 1
            wait_for("web restarted again", lambda: _restart_count(web) > first)

            def killed() -> bool:
                web.reload()
                state = web.attrs["State"]
                return bool(state["Status"] != "running" and state["ExitCode"] == 137)

            wait_for("web seen exited 137", killed)
            assert web.attrs["State"]["OOMKilled"] is True
        rows = {r.name: r for r in stack.status()}
        assert rows["web"].state != "running"
    finally:
        assert drills.stop(stack, "compose-web-oom")
    assert_healthy(stack)


def test_celery_crashloop_drill_restarts_with_a_growing_count(
    compose_stack: ComposeStack,
) -> None:
    stack = compose_stack
    drills.start(stack, "compose-celery-crashloop")
    try:
        with stack.client() as client:
            celery = only(stack, client, "celery")
            first = _restart_count(celery)
            assert first >= 1

            def restarting() -> bool:
                celery.reload()
                return bool(celery.attrs["State"]["Status"] == "restarting")

            wait_for("celery restarting", restarting)
            wait_for("celery restarted again", lambda: _restart_count(celery) > first)
            assert celery.attrs["State"]["ExitCode"] == 3
    finally:
        assert drills.stop(stack, "compose-celery-crashloop")
    assert_healthy(stack)


def _cpu_share_of_limit(container: Any) -> float:
    """What `docker stats` shows, as a share of the container's `cpus` limit."""
    stats = container.stats(stream=False)
    cpu, pre = stats["cpu_stats"], stats["precpu_stats"]
    used = cpu["cpu_usage"]["total_usage"] - pre["cpu_usage"]["total_usage"]
    system = cpu.get("system_cpu_usage", 0) - pre.get("system_cpu_usage", 0)
    online = cpu.get("online_cpus") or len(cpu["cpu_usage"].get("percpu_usage") or [1])
    if system <= 0:
        return 0.0
    cores = used / system * online
    limit = container.attrs["HostConfig"]["NanoCpus"] / 1e9
    return float(cores / limit)


def test_cpu_hog_drill_holds_web_at_its_cpu_limit(compose_stack: ComposeStack) -> None:
    stack = compose_stack
    drills.start(stack, "compose-cpu-hog")
    try:
        with stack.client() as client:
            web = only(stack, client, "web")
            wait_for("web near its CPU limit", lambda: _cpu_share_of_limit(web) > 0.7)
    finally:
        assert drills.stop(stack, "compose-cpu-hog")
    with stack.client() as client:
        web = only(stack, client, "web")
        wait_for("web idle again", lambda: _cpu_share_of_limit(web) < 0.5)
    assert_healthy(stack)


def test_web_scaled_to_zero_drill_leaves_no_web_container(compose_stack: ComposeStack) -> None:
    stack = compose_stack
    drills.start(stack, "compose-web-scaled-to-zero")
    try:
        with stack.client() as client:
            assert stack.containers(client, "web") == []
            assert only(stack, client, "db").status == "running"
        assert {r.name: r.state for r in stack.status()}["web"] == "no container"
        # `up` while the drill is active keeps it (the drill holds web at zero).
        stack.up(drills.held_down(stack), log=lambda _: None)
        with stack.client() as client:
            assert stack.containers(client, "web") == []
    finally:
        assert drills.stop(stack, "compose-web-scaled-to-zero")
    assert_healthy(stack)


def test_the_drills_are_listed_on_the_compose_stack() -> None:
    catalogue = drills.catalogue()
    names = [n for n, d in catalogue.items() if d.stack == drills.COMPOSE]
    assert names == [
        "compose-web-oom",
        "compose-celery-crashloop",
        "compose-cpu-hog",
        "compose-web-scaled-to-zero",
    ]
    assert all(catalogue[n].section == "containers" for n in names)


def test_without_docker_up_says_what_to_install(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "IRKIT_DOCKERD_BIN"}
    env.update(PATH=str(tmp_path), IRKIT_SANDBOX_DIR=str(tmp_path / "sandbox"))
    done = subprocess.run(
        [sys.executable, "-m", "irkit", "sandbox", "up", "--compose"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "apt-get install" in lines[0]
    assert "docker.io" in lines[0]


@pytest.mark.parametrize("action", ["restart", "manage"])
def test_the_embedded_stacks_commands_are_refused_with_compose(action: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "irkit", "sandbox", action, "--compose"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode != 0
    assert "docker-compose" in done.stderr
