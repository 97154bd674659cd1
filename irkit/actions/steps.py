"""The runbook's deployment steps (restart web, scale, prune, migrate, inspect active, …), each
carried out the way this deployment does it:

1. the command `deploy_commands` names for the step, when it names one (the environment's own
   tooling wins: a Kubernetes or systemd deployment, or a Compose host with its own wrapper);
2. else, on a Compose deployment (`compose_dir` or `compose_project`), the `compose.*` action,
   which reads the project's containers from the Docker engine and acts on them;
3. else the named command, whose plan says how to configure it.

The notebooks call `actions.steps.step(section, "restart_web")`: one cell per runbook step,
whatever the deployment.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol

from irkit import programs
from irkit.actions import container_exec, containers, deployment, engine_prune
from irkit.actions.guard import Outcome, Plan
from irkit.catalogue.parameters import default
from irkit.targets import ComposeTarget


class Deployment(Protocol):
    """What a step needs of the notebook's section: its checked parameters and its Compose
    project (a section: `irkit.Section`)."""

    @property
    def params(self) -> Mapping[str, Any]: ...

    @property
    def compose(self) -> ComposeTarget: ...


class Step(Protocol):
    name: str

    def plan(self) -> Plan: ...
    def act(self, plan: Plan) -> Outcome: ...


def _value(params: Mapping[str, Any], name: str) -> Any:
    return params[name] if name in params else default(name)


def _on_compose(
    params: Mapping[str, Any], timeout_s: float
) -> dict[str, Callable[[ComposeTarget], Step]]:
    web = str(_value(params, "compose_web_service"))
    worker = str(_value(params, "compose_worker_service"))
    redis = str(_value(params, "compose_redis_service"))
    return {
        "restart_web": lambda t: containers.Restart(t, web),
        "restart_worker": lambda t: containers.Restart(t, worker),
        "restart_redis": lambda t: containers.Restart(t, redis),
        "scale_web": lambda t: containers.Scale(
            t, web, to=int(_value(params, "compose_scale_to")), timeout_s=timeout_s
        ),
        "scale_workers": lambda t: containers.Scale(
            t, worker, to=int(_value(params, "compose_scale_workers_to")), timeout_s=timeout_s
        ),
        "prune_docker": lambda t: engine_prune.Prune(
            t, allow_actions=list(_value(params, "allow_actions"))
        ),
        "showmigrations": lambda t: container_exec.Manage(
            t, web, "showmigrations", timeout_s=timeout_s
        ),
        "migrate": lambda t: container_exec.Manage(t, web, "migrate", timeout_s=timeout_s),
        "migrate_fake": lambda t: container_exec.FakeMigration(
            t, web, str(_value(params, "pg_fake_migration")), timeout_s=timeout_s
        ),
        "inspect_active": lambda t: container_exec.InspectActive(
            t, worker, str(_value(params, "compose_celery_app")), timeout_s=timeout_s
        ),
    }


def step(section: Deployment, name: str) -> Step:
    """The runbook step called `name` (see `deployment.STEPS`), as this deployment carries it
    out."""
    params = section.params
    commands = list(_value(params, "deploy_commands"))
    timeout_s = float(_value(params, "deploy_timeout_s"))
    named = name in programs.parse_named(commands)
    on_compose = _on_compose(params, timeout_s)
    if not named and name in on_compose and section.compose.project:
        return on_compose[name](section.compose)
    if name == "prune_docker":
        allowed = list(_value(params, "allow_actions"))
        return deployment.Prune(commands, allow_actions=allowed, timeout_s=timeout_s)
    if name == "migrate_fake":
        migration = str(_value(params, "pg_fake_migration"))
        return deployment.FakeMigration(commands, migration, timeout_s=timeout_s)
    return deployment.Named(name, commands, timeout_s=timeout_s)
