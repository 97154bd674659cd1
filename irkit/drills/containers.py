"""Drills on the Compose practice stack: the container faults of the runbook, made for real.

Each is found by the `containers` notebook (`irkit run containers --env sandbox-compose`) as the
Docker engine reports it, and undone by `stop`, which brings the service back healthy:

- compose-web-oom: the web container killed by its memory limit, and restarted by its policy;
- compose-celery-crashloop: the Celery worker exiting at start (its broker is gone), restarted
  by its policy, again and again;
- compose-cpu-hog: a process spinning inside the web container, at its CPU limit;
- compose-web-scaled-to-zero: the web service with no container at all.

Each is mended by the runbook's own step in that notebook: restart web (Scenario 1, "if OOM";
and a runaway process goes with it), restart Redis then the worker (Scenario 4, Incident 2),
scale web back up (Scenario 1). The OOM kill comes from a flag in the project's `drill/` folder,
which the web entrypoint reads at start (mounted read-only as /irkit-drill): the container is
recreated, so the fault starts at once and the restart count starts from zero.
"""

from __future__ import annotations

import time
from typing import Any

from irkit.drills import Drill, State
from irkit.errors import SandboxError
from irkit.sandbox.compose_stack import ComposeStack

SECTION = "containers"
HOG_PIDFILE = "/tmp/irkit-drill-cpu-hog.pid"  # noqa: S108 (inside the web container)
# Long enough for the engine to record a second restart of a crash loop.
FAULT_TIMEOUT_S = 90.0


def _recreate(stack: ComposeStack, service: str) -> None:
    """A new container of the service, started as its entrypoint now finds the drill folder.
    The old one is removed first: recreating a container in the middle of its restart loop races
    with the engine's own restart (runc: "can't get final child's PID"), so the start is tried
    again if it loses."""
    stack.compose("rm", "--stop", "--force", service)
    for attempt in range(3):
        try:
            stack.compose("up", "--detach", "--no-deps", service)
            return
        except SandboxError:
            if attempt == 2:
                raise


def _wait(stack: ComposeStack, what: str, check: Any) -> None:
    """Until `check(containers)` holds for the web/celery containers it reads; named on timeout."""
    deadline = time.monotonic() + FAULT_TIMEOUT_S
    with stack.client() as client:
        while not check(client):
            if time.monotonic() > deadline:
                raise SandboxError(
                    f"the drill's fault did not show within {FAULT_TIMEOUT_S:.0f} s: {what}"
                )
            time.sleep(0.25)


def _restarted(stack: ComposeStack, service: str, *, oom: bool) -> Any:
    def check(client: Any) -> bool:
        for container in stack.containers(client, service):
            container.reload()
            state = container.attrs["State"]
            if int(container.attrs.get("RestartCount", 0)) >= 1 and (
                not oom or state.get("OOMKilled") or state.get("ExitCode") == 137
            ):
                return True
        return False

    return check


# --- compose-web-oom ---------------------------------------------------------------------------


def _web_oom(stack: ComposeStack, state: State) -> None:
    (stack.drill_flags / "web-oom").touch()
    _recreate(stack, "web")
    _wait(stack, "web OOM-killed and restarted", _restarted(stack, "web", oom=True))


def _web_oom_stop(stack: ComposeStack, state: State) -> None:
    (stack.drill_flags / "web-oom").unlink(missing_ok=True)
    _recreate(stack, "web")


# --- compose-celery-crashloop --------------------------------------------------------------------


def _celery_crash(stack: ComposeStack, state: State) -> None:
    """Redis stopped, and the worker restarted: its entrypoint finds no broker and exits, and
    `restart: always` starts it again, and again."""
    stack.compose("stop", "redis")
    stack.compose("restart", "celery")
    _wait(stack, "celery restarting", _restarted(stack, "celery", oom=False))


def _celery_crash_stop(stack: ComposeStack, state: State) -> None:
    stack.compose("start", "redis")
    _recreate(stack, "celery")


# --- compose-cpu-hog -----------------------------------------------------------------------------


def _cpu_hog(stack: ComposeStack, state: State) -> None:
    """`docker exec` a busy loop into the web container: it takes all the CPU the container's
    `cpus` limit allows, as a runaway request handler would."""
    with stack.client() as client:
        found = [c for c in stack.containers(client, "web") if c.status == "running"]
        if not found:
            raise SandboxError("the web service has no running container to load")
        container = found[0]
        script = f"echo $$ > {HOG_PIDFILE}; while :; do :; done"
        container.exec_run(["sh", "-c", script], detach=True)
        state["container"] = container.name
        deadline = time.monotonic() + 10
        while container.exec_run(["test", "-s", HOG_PIDFILE]).exit_code != 0:
            if time.monotonic() > deadline:
                raise SandboxError("the busy loop did not start in the web container")
            time.sleep(0.1)


def _cpu_hog_stop(stack: ComposeStack, state: State) -> None:
    name = state.get("container")
    if not name:
        return
    import docker

    with stack.client() as client:
        try:
            container = client.containers.get(name)
        except docker.errors.NotFound:
            return  # the container is gone, and the loop with it
        if container.status == "running":
            kill = f"test -s {HOG_PIDFILE} && kill $(cat {HOG_PIDFILE}); rm -f {HOG_PIDFILE}"
            container.exec_run(["sh", "-c", kill])


# --- compose-web-scaled-to-zero -------------------------------------------------------------------


def _scale_to_zero(stack: ComposeStack, state: State) -> None:
    stack.compose("up", "--detach", "--no-recreate", "--scale", "web=0")

    def gone(client: Any) -> bool:
        return not stack.containers(client, "web")

    _wait(stack, "no web container", gone)


def _scale_back(stack: ComposeStack, state: State) -> None:
    stack.compose("up", "--detach", "--no-recreate", "--scale", "web=1")


DRILLS: list[Drill[ComposeStack]] = [
    Drill(
        "compose-web-oom",
        "Scenario 1: High Memory Usage (the web container OOM-killed by its limit)",
        SECTION,
        "compose.services CRIT: web OOM-killed (exit 137) and restarted by its policy; "
        "compose.restart_web mends it",
        _web_oom,
        _web_oom_stop,
        holds_down=("web",),
        stack="compose",
    ),
    Drill(
        "compose-celery-crashloop",
        "Incident 2: Celery Task Queue Backlog (the worker crash-looping, its broker gone)",
        SECTION,
        "compose.services CRIT: redis exited, celery restarting with a growing restart count; "
        "compose.restart_redis then compose.restart_celery mend it",
        _celery_crash,
        _celery_crash_stop,
        holds_down=("celery", "redis"),
        stack="compose",
    ),
    Drill(
        "compose-cpu-hog",
        "Alert Triage: High CPU Alert (a container at its CPU limit)",
        SECTION,
        "compose.stats: web at its CPU limit (cpus: 0.5), busiest first; compose.restart_web "
        "mends it",
        _cpu_hog,
        _cpu_hog_stop,
        stack="compose",
    ),
    Drill(
        "compose-web-scaled-to-zero",
        "Scenario 1: scale the web service (docker-compose up -d --scale web=0 by mistake)",
        SECTION,
        "compose.services CRIT: the web service has no container; compose.scale_web mends it",
        _scale_to_zero,
        _scale_back,
        holds_down=("web-scale",),
        stack="compose",
    ),
]
