"""The runbook's commands run inside a service's container, through `docker-compose exec -T`:
Incident 1's `manage.py showmigrations`, `migrate` and `migrate --fake APP MIGRATION` in the web
container, Incident 2's `celery -A dashboard inspect active` in the worker's.

The plan names the container it runs in (the lowest-numbered running one, passed to Compose as
`--index`, so the command runs where the plan said); at act time that container must still be
running. The command is bounded by `timeout_s` and its output's tail goes into the record; a
migration is read back with `showmigrations`.
"""

from __future__ import annotations

import re

from irkit import compose
from irkit.actions import compose_cli
from irkit.actions.deployment import parse_migration
from irkit.actions.guard import Item, Outcome, Plan, act_on, said_by_its_step
from irkit.catalogue.parameters import default
from irkit.errors import ConfigError, IrkitError
from irkit.targets import ComposeTarget

# What each step is in the runbook, by the action's name after "compose.".
STEPS = {
    "showmigrations": "Incident 1: manage.py showmigrations",
    "migrate": "Incident 1: manage.py migrate",
    "migrate_fake": "Incident 1: manage.py migrate --fake APP MIGRATION (if stuck)",
    "inspect_active": "Incident 2: celery -A dashboard inspect active",
}
READ_ONLY = frozenset({"showmigrations", "inspect_active"})
# A Celery app as `celery -A` takes it: a module path, perhaps with ":attribute".
_CELERY_APP = re.compile(r"[A-Za-z_][A-Za-z0-9_.]{0,99}(:[A-Za-z_][A-Za-z0-9_]{0,99})?")


class Exec:
    """A command run in `service`'s container; subclasses say which (`command`)."""

    step = ""

    def __init__(
        self,
        target: ComposeTarget,
        service: str,
        *,
        timeout_s: float = default("deploy_timeout_s"),
    ) -> None:
        self.target = target
        self.service = compose_cli.check_service(service)
        self.timeout_s = timeout_s
        self.name = f"compose.{self.step}"

    def command(self) -> list[str]:
        raise NotImplementedError

    def args(self, index: int, command: list[str] | None = None) -> list[str]:
        # -T: no terminal (none here); --index: the container the plan named.
        return ["exec", "-T", "--index", str(index), self.service, *(command or self.command())]

    def plan(self) -> Plan:
        runbook = STEPS[self.step]
        with compose.engine(self.target) as client:
            found, why = compose_cli.service_containers(client, self.target, self.service)
        if why:
            return Plan(self.name, self.target.display, f"{runbook}: {why}")
        up = compose_cli.running(found)
        if not up:
            states = "; ".join(f"{c.name} {compose_cli.state(c)}" for c in found)
            what = f"{runbook}: no running container of {self.service} to run it in ({states})"
            return Plan(self.name, self.target.display, what)
        container = up[0]
        index = compose.number_of(container)
        command = compose_cli.shown(self.target, *self.args(index))
        item = Item(
            str(container.id),
            f"in {container.name} (service {self.service}, --index {index}): "
            + " ".join(self.command()),
            {
                "container": container.name,
                "project": self.target.project,
                "service": self.service,
                "index": index,
                "command": command,
                "timeout_s": self.timeout_s,
            },
        )
        return Plan(self.name, self.target.display, f"{runbook}: {command}", (item,))

    def act(self, plan: Plan) -> Outcome:
        with compose.engine(self.target) as client:

            def still_running(item: Item) -> str | None:
                import docker

                try:
                    container = client.containers.get(item.key)
                except docker.errors.NotFound:
                    return f"{item.details['container']} is gone since the plan"
                if not container.attrs["State"].get("Running"):
                    return f"{container.name} is {compose_cli.state(container)} since the plan"
                return None

            done, skipped, failed = act_on(plan, still_running, self._run)
        return said_by_its_step(
            self.name, plan, done, skipped, failed, read_only=self.step in READ_ONLY
        )

    def _run(self, item: Item) -> str:
        said = compose_cli.run(
            self.target, self.args(item.details["index"]), timeout_s=self.timeout_s
        )
        return said + self.read_back(item)

    def read_back(self, item: Item) -> str:
        """What the engine's side says after the command, appended to its result."""
        return ""

    def showmigrations(self, item: Item, *apps: str) -> str:
        command = ["python", "manage.py", "showmigrations", *apps]
        said = compose_cli.run(
            self.target, self.args(item.details["index"], command), timeout_s=self.timeout_s
        )
        return said.removeprefix("exit code 0:").strip()


class Manage(Exec):
    """`python manage.py showmigrations` or `migrate` in the web container. A migrate is read
    back with showmigrations: how many migrations are still unapplied."""

    def __init__(
        self,
        target: ComposeTarget,
        service: str = default("compose_web_service"),
        step: str = "showmigrations",
        *,
        timeout_s: float = default("deploy_timeout_s"),
    ) -> None:
        if step not in ("showmigrations", "migrate"):
            raise ConfigError(f"manage.py step {step!r} is not one of: showmigrations, migrate")
        self.step = step
        super().__init__(target, service, timeout_s=timeout_s)

    def command(self) -> list[str]:
        return ["python", "manage.py", self.step]

    def read_back(self, item: Item) -> str:
        if self.step != "migrate":
            return ""
        try:
            listed = self.showmigrations(item)
        except IrkitError as exc:
            # The migrate itself succeeded: a failed read-back is said, not counted against it.
            return f"\nread back (showmigrations) failed: {str(exc)[:500]}"
        unapplied = [line.strip() for line in listed.splitlines() if line.strip().startswith("[ ]")]
        if not unapplied:
            return "\nread back (showmigrations): every migration applied"
        return f"\nread back (showmigrations): {len(unapplied)} still unapplied: " + ", ".join(
            u.removeprefix("[ ]").strip() for u in unapplied[:10]
        )


class FakeMigration(Exec):
    """`python manage.py migrate --fake APP MIGRATION` (`pg_fake_migration`, "app.migration"):
    marks a migration applied without running it, for a migration stuck half-applied. Read back:
    showmigrations APP lists it as applied ([X])."""

    step = "migrate_fake"

    def __init__(
        self,
        target: ComposeTarget,
        service: str = default("compose_web_service"),
        migration: str = default("pg_fake_migration"),
        *,
        timeout_s: float = default("deploy_timeout_s"),
    ) -> None:
        super().__init__(target, service, timeout_s=timeout_s)
        self.migration = parse_migration(migration) if migration.strip() else None

    def command(self) -> list[str]:
        assert self.migration is not None
        return ["python", "manage.py", "migrate", "--fake", *self.migration]

    def plan(self) -> Plan:
        if self.migration is None:
            what = (
                f"{STEPS[self.step]}: name the migration to mark as applied in "
                "pg_fake_migration, e.g. accounting.0002_invoice"
            )
            return Plan(self.name, self.target.display, what)
        return super().plan()

    def read_back(self, item: Item) -> str:
        assert self.migration is not None
        app, migration = self.migration
        listed = self.showmigrations(item, app)
        if any(line.split() == ["[X]", migration] for line in listed.splitlines()):
            return f"\nread back (showmigrations {app}): [X] {migration}"
        raise IrkitError(
            f"migrate --fake ran, but showmigrations {app} does not list {migration} as "
            f"applied: {listed[-500:]}"
        )


class InspectActive(Exec):
    """`celery -A APP inspect active` in the worker's container: what each worker is running
    now (Incident 2, tasks stuck)."""

    step = "inspect_active"

    def __init__(
        self,
        target: ComposeTarget,
        service: str = default("compose_worker_service"),
        app: str = default("compose_celery_app"),
        *,
        timeout_s: float = default("deploy_timeout_s"),
    ) -> None:
        if not _CELERY_APP.fullmatch(app):
            raise ConfigError(f"{app!r} is not a Celery app (a module path, e.g. dashboard)")
        self.app = app
        super().__init__(target, service, timeout_s=timeout_s)

    def command(self) -> list[str]:
        return ["celery", "-A", self.app, "inspect", "active"]
