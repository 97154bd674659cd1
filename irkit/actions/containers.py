"""The runbook's container steps on a Docker Compose deployment, guarded like every action (plan,
allow or typed confirmation, re-read before acting, result read back from the engine):

- `Restart`: `docker-compose restart web` (Scenario 1, Incident 3), `restart redis`
  (Scenario 4), `restart celery` (Incident 2), through the Engine API.
- `Scale`: `docker-compose up -d --scale web=3` (Scenario 1), `--scale celery=4` (Incident 2),
  up or back, through Compose, which alone knows how to make a service's container.
- `Manage`, `FakeMigration`, `InspectActive` (`actions.container_exec`): `manage.py
  showmigrations` / `migrate` / `migrate --fake` and `celery inspect active`, in the service's
  container (Incidents 1 and 2).
- `Prune` (`actions.engine_prune`): `docker system prune` (Scenario 3), never volumes unless
  allowed apart.

These replace the hand-written `deploy_commands` for a Compose deployment.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from irkit import compose
from irkit.actions import compose_cli
from irkit.actions.container_exec import FakeMigration, InspectActive, Manage
from irkit.actions.engine_prune import Prune
from irkit.actions.guard import Item, Outcome, Plan, act_on, counted
from irkit.catalogue.parameters import default
from irkit.errors import ConfigError, IrkitError, NotVisible
from irkit.targets import ComposeTarget
from irkit.units import count

if TYPE_CHECKING:
    import docker
    from docker.models.containers import Container

__all__ = ["FakeMigration", "InspectActive", "Manage", "Prune", "Restart", "Scale"]


# What `docker-compose restart` gives a container to stop before it is killed (its default).
STOP_TIMEOUT_S = 10


class Restart:
    """Every container of `service` restarted, as `docker-compose restart SERVICE` does: each
    given `stop_timeout_s` to stop before it is killed, then started again. Stopped and
    crash-looping containers are restarted too: that is the runbook's cure for them. Read back:
    running, and started after the restart began."""

    def __init__(
        self, target: ComposeTarget, service: str, *, stop_timeout_s: float = STOP_TIMEOUT_S
    ) -> None:
        self.target = target
        self.service = compose_cli.check_service(service)
        self.stop_timeout_s = stop_timeout_s
        self.name = f"compose.restart_{service}"

    def plan(self) -> Plan:
        with compose.engine(self.target) as client:
            found, why = compose_cli.service_containers(client, self.target, self.service)
        if why:
            return Plan(self.name, self.target.display, f"restart {self.service}: {why}")
        stop = round(self.stop_timeout_s)
        items = tuple(
            Item(
                str(c.id),
                f"{c.name}, {compose_cli.state(c)}: POST /containers/{c.short_id}/restart?t={stop}",
                {
                    "container": c.name,
                    "id": c.id,
                    "project": self.target.project,
                    "service": self.service,
                    "state": compose_cli.state(c),
                },
            )
            for c in found
        )
        what = (
            f"restart service {self.service} of project {self.target.project}: "
            f"{count(len(items), 'container')} (docker-compose restart -t {stop} "
            f"{self.service}, through the Engine API; each has {stop} s to stop before it is "
            "killed)"
        )
        return Plan(self.name, self.target.display, what, items)

    def act(self, plan: Plan) -> Outcome:
        with compose.engine(self.target) as client:
            done, skipped, failed = act_on(
                plan, lambda item: _still_in(client, item), lambda item: self._restart(client, item)
            )
        summary = f"restarted {len(done)} of {len(plan.items)} containers of {self.service}"
        return counted(self.name, plan, summary, done, skipped, failed, "gone since the plan")

    def _restart(self, client: docker.DockerClient, item: Item) -> str:
        container = client.containers.get(item.key)
        before = compose_cli.started_at(container)
        # The SDK adds the stop timeout to the client's own: the call is bounded by both.
        container.restart(timeout=round(self.stop_timeout_s))
        container.reload()
        after = compose_cli.started_at(container)
        if after <= before:
            raise IrkitError(
                f"the engine says it was not started again: {compose_cli.state(container)}"
            )
        if not container.attrs["State"].get("Running") or container.attrs["State"].get(
            "Restarting"
        ):
            # A crash loop restarted is still a crash loop: the cause is in its logs.
            raise IrkitError(f"started again, then {compose_cli.state(container)}")
        healthy = compose_cli.health_after(container)
        return (
            f"running again{healthy}, started {after:%H:%M:%S.%f} UTC (was {before:%H:%M:%S} UTC)"
        )


def _still_in(client: docker.DockerClient, item: Item) -> str | None:
    """The same container (not recreated since: a new one has a new id), still the service's."""
    import docker

    try:
        container = client.containers.get(item.key)
    except docker.errors.NotFound:
        return "gone since the plan (removed or recreated)"
    if compose.service_of(container) != item.details["service"]:
        return f"now a container of service {compose.service_of(container)}"
    return None


class Scale:
    """`docker-compose up -d --no-deps --no-recreate --scale SERVICE=N SERVICE`: Compose makes
    the new containers from the service's definition, or stops and removes the highest-numbered
    ones; no other service is touched and no container is recreated. Scaling to 0 stops the
    service: the plan says so, and like every step it runs only when typed-confirmed or allowed
    by its name. Read back: the number of the service's running containers."""

    def __init__(
        self,
        target: ComposeTarget,
        service: str = default("compose_web_service"),
        *,
        to: int = default("compose_scale_to"),
        timeout_s: float = default("deploy_timeout_s"),
    ) -> None:
        if int(to) < 0:
            raise ConfigError(f"cannot scale {service} to {to} containers: give 0 or more")
        self.target = target
        self.service = compose_cli.check_service(service)
        self.to = int(to)
        self.timeout_s = timeout_s
        self.name = f"compose.scale_{service}"

    def args(self) -> list[str]:
        scale = f"{self.service}={self.to}"
        return ["up", "-d", "--no-deps", "--no-recreate", "--scale", scale, self.service]

    def plan(self) -> Plan:
        with compose.engine(self.target) as client:
            found = compose.containers(client, self.target)
            if not found:
                why = str(compose.no_such_project(client, self.target))
                return Plan(self.name, self.target.display, f"scale {self.service}: {why}")
        mine = compose.by_service(found).get(self.service, [])
        if not mine:
            # Scaled to 0 has no container left: ask Compose whether the service exists.
            services = compose_cli.defined_services(self.target, self.timeout_s)
            if self.service not in services:
                why = (
                    f"no service {self.service!r} in compose project {self.target.project!r}; "
                    f"its services: {', '.join(services)}"
                )
                return Plan(self.name, self.target.display, f"scale {self.service}: {why}")
        up = compose_cli.running(mine)
        now = len(up)
        command = compose_cli.shown(self.target, *self.args())
        if now == self.to:
            what = f"{self.service} already runs {count(now, 'container')}: nothing to do"
            return Plan(self.name, self.target.display, what)
        details = {"project": self.target.project, "service": self.service, "from": now}
        details |= {"to": self.to, "command": command, "timeout_s": self.timeout_s}
        if self.to > now:
            items = tuple(
                Item(
                    f"{self.service}+{n}",
                    f"start a container of {self.service} ({n} of {self.to})",
                    details,
                )
                for n in range(now + 1, self.to + 1)
            )
        else:
            # Compose stops the highest-numbered containers first.
            going = sorted(up, key=compose.number_of, reverse=True)[: now - self.to]
            items = tuple(
                Item(str(c.id), f"stop and remove {c.name}", {**details, "container": c.name})
                for c in going
            )
        what = (
            f"scale service {self.service} of project {self.target.project} from {now} to "
            f"{self.to} running containers: {command}"
        )
        notes: tuple[str, ...] = ()
        if self.to == 0:
            notes = (
                f"WARNING: scaling to 0 stops the service: {self.service} serves nothing until it "
                f"is scaled up again. It runs only when confirmed by typing {len(items)} or when "
                f"{self.name} is in allow_actions.",
            )
        return Plan(self.name, self.target.display, what, items, notes=notes)

    def act(self, plan: Plan) -> Outcome:
        if not plan.items:
            return Outcome(self.name, plan.target, summary=f"not run: {plan.what}")
        was = int(plan.items[0].details["from"])
        with compose.engine(self.target) as client:
            now = len(compose_cli.running(_of_service(client, self.target, self.service)))
        if now != was:
            why = f"{self.service} now runs {now} containers, not the {was} the plan was made for"
            skipped = tuple((i.summary, why) for i in plan.items)
            return Outcome(self.name, plan.target, skipped=skipped, summary=f"not run: {why}")
        try:
            said = compose_cli.run(self.target, self.args(), timeout_s=self.timeout_s)
        except (IrkitError, NotVisible) as exc:
            failures = tuple((i.summary, str(exc)) for i in plan.items)
            return Outcome(
                self.name, plan.target, failed=failures, summary=str(exc).splitlines()[0]
            )
        with compose.engine(self.target) as client:
            mine = _of_service(client, self.target, self.service)
        up = compose_cli.running(mine)
        done, failed = _read_back(plan, mine, up)
        done.append(("docker-compose up --scale", said))
        summary = f"{self.service}: {len(up)} running (was {was}, asked {self.to})"
        return Outcome(self.name, plan.target, tuple(done), (), tuple(failed), summary)


def _of_service(
    client: docker.DockerClient, target: ComposeTarget, service: str
) -> list[Container]:
    return compose.by_service(compose.containers(client, target)).get(service, [])


def _read_back(
    plan: Plan, mine: list[Container], up: list[Container]
) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """Each planned container: the new ones running, the removed ones no longer running."""
    done: list[tuple[str, str]] = []
    failed: list[tuple[str, str]] = []
    up_ids = {c.id for c in up}
    if int(plan.items[0].details["to"]) > int(plan.items[0].details["from"]):
        ordered = sorted(up, key=compose.number_of)
        for n, item in enumerate(plan.items, start=int(plan.items[0].details["from"]) + 1):
            if len(up) >= n:
                try:
                    healthy = compose_cli.health_after(ordered[n - 1])
                except IrkitError as exc:
                    failed.append((item.summary, str(exc)))
                    continue
                done.append((item.summary, f"running{healthy}: {ordered[n - 1].name}"))
            else:
                states = "; ".join(f"{c.name} {compose_cli.state(c)}" for c in mine) or "none"
                failed.append((item.summary, f"only {len(up)} running: {states}"))
        return done, failed
    for item in plan.items:
        if item.key in up_ids:
            failed.append((item.summary, "still running"))
        else:
            left = {c.id for c in mine}
            done.append((item.summary, "stopped" if item.key in left else "stopped and removed"))
    return done, failed
