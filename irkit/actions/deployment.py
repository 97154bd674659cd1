"""The runbook steps that act through the deployment's own tooling (`docker compose restart web`,
`certbot renew`, `manage.py migrate`, `celery -A dashboard inspect active`, …), configured per
environment as named commands and run under the same guard rails as every action: the plan shows
the exact command, it runs only when allowed or confirmed, never through a shell, within a
timeout, and its exit code and output go into the record.

`deploy_commands` entries read `name: command line`, e.g.
`restart_web: docker compose restart web`. The practice stack's are in parameters/sandbox.yaml.

On a Docker Compose deployment the `compose.*` actions (`actions.containers`) do these steps
themselves, read back from the engine; these named commands remain for every other deployment.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping, Sequence

from irkit import programs
from irkit.actions.guard import Item, Outcome, Plan, act_on, said_by_its_step
from irkit.catalogue.parameters import default
from irkit.errors import ConfigError
from irkit.secrets import redact

# The runbook's steps, by the name a parameter file gives their command.
STEPS = {
    "restart_web": "Scenario 1 / Incident 3: docker-compose restart web",
    "scale_web": "Scenario 1: docker-compose up -d --scale web=3",
    "prune_docker": "Scenario 3: docker system prune -a -f (--volumes only if allowed apart)",
    "restart_redis": "Scenario 4: docker-compose restart redis",
    "showmigrations": "Incident 1: manage.py showmigrations",
    "migrate": "Incident 1: manage.py migrate",
    "migrate_fake": "Incident 1: manage.py migrate --fake app_name migration_name (if stuck)",
    "inspect_active": "Incident 2: celery -A dashboard inspect active",
    "restart_worker": "Incident 2: docker-compose restart celery (no worker answers)",
    "scale_workers": "Incident 2: docker-compose up -d --scale celery=4",
    "renew_cert": "Incident 3: certbot renew --force-renewal",
}
_OUTPUT_CHARS = 4000
# Steps that only read: what they print is the point, and nothing changed to measure again.
READ_ONLY = frozenset({"showmigrations", "inspect_active"})


class Named:
    """The deployment command called `name` in `deploy_commands`."""

    def __init__(
        self,
        name: str,
        deploy_commands: Sequence[str],
        *,
        timeout_s: float = default("deploy_timeout_s"),
        cwd: str = "",
    ) -> None:
        self.name = f"command.{name}"
        self.step = name
        self.argv = programs.parse_named(deploy_commands).get(name)
        self.timeout_s = timeout_s
        self.cwd = cwd or None

    def plan(self) -> Plan:
        runbook = STEPS.get(self.step, self.step)
        if self.argv is None:
            what = (
                f"{runbook}: not configured for this environment; add "
                f"'{self.step}: <command>' to deploy_commands"
            )
            return Plan(self.name, "-", what)
        argv = self.command()
        shown = redact(shlex.join(argv))
        item = Item(
            self.step,
            f"run: {shown}",
            {"argv": [redact(a) for a in argv], "timeout_s": self.timeout_s},
        )
        return Plan(self.name, "deployment", f"{runbook}: {shown}", (item,), notes=self.notes())

    def command(self) -> list[str]:
        """The command line this step runs: the configured one, unless a step adjusts it."""
        assert self.argv is not None
        return list(self.argv)

    def notes(self) -> tuple[str, ...]:
        return ()

    def act(self, plan: Plan) -> Outcome:
        def run(item: Item) -> str:
            return run_bounded(self.command(), timeout_s=self.timeout_s, cwd=self.cwd)

        done, skipped, failed = act_on(plan, lambda item: None, run)
        return said_by_its_step(
            self.name, plan, done, skipped, failed, read_only=self.step in READ_ONLY
        )


class Prune(Named):
    """Scenario 3's `docker system prune -a --volumes -f`, without `--volumes` unless
    `command.prune_docker_volumes` is allowed as well: pruning volumes deletes data (a stopped
    database's files, uploads), which no clean-up of space is worth by default."""

    VOLUMES_ACTION = "command.prune_docker_volumes"

    def __init__(
        self,
        deploy_commands: Sequence[str],
        *,
        allow_actions: Sequence[str] = (),
        timeout_s: float = default("deploy_timeout_s"),
        cwd: str = "",
    ) -> None:
        super().__init__("prune_docker", deploy_commands, timeout_s=timeout_s, cwd=cwd)
        self.volumes_allowed = self.VOLUMES_ACTION in allow_actions

    def _asks_volumes(self) -> bool:
        return any(arg.split("=")[0] == "--volumes" for arg in self.argv or ())

    def command(self) -> list[str]:
        argv = super().command()
        if self.volumes_allowed:
            return argv
        return [arg for arg in argv if arg.split("=")[0] != "--volumes"]

    def notes(self) -> tuple[str, ...]:
        danger = (
            "--volumes deletes every volume no container uses, with its data (a stopped "
            "database's files, uploads)"
        )
        if not self._asks_volumes():
            return ()
        if self.volumes_allowed:
            return (f"WARNING: {danger}; {self.VOLUMES_ACTION} is allowed, so it is included.",)
        return (
            f"--volumes left out: {danger}. To include it, add {self.VOLUMES_ACTION} to "
            "allow_actions as well.",
        )


# Django's app labels are identifiers; migration names are file names without `.py`. Neither
# may start with "-", so neither can pass for an option of the command.
_APP_LABEL = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,99}")
_MIGRATION = re.compile(r"[A-Za-z0-9_]{1,100}")


def parse_migration(value: str) -> tuple[str, str]:
    """ "accounting.0002_invoice" → ("accounting", "0002_invoice"), refusing anything else."""
    app, _, migration = value.strip().partition(".")
    if not (_APP_LABEL.fullmatch(app) and _MIGRATION.fullmatch(migration)):
        raise ConfigError(
            f"{value!r} is not a migration: write it as app_label.migration_name, e.g. "
            "accounting.0002_invoice (letters, digits and _ only)"
        )
    return app, migration


class FakeMigration(Named):
    """Incident 1, step 3 (if stuck): `manage.py migrate --fake APP MIGRATION`, the
    deployment's `migrate_fake` command (e.g. `docker compose exec web python manage.py
    migrate --fake`) followed by the app and migration named in `pg_fake_migration`."""

    def __init__(
        self,
        deploy_commands: Sequence[str],
        migration: str,
        *,
        timeout_s: float = default("deploy_timeout_s"),
        cwd: str = "",
    ) -> None:
        super().__init__("migrate_fake", deploy_commands, timeout_s=timeout_s, cwd=cwd)
        self.migration = parse_migration(migration) if migration.strip() else None

    def plan(self) -> Plan:
        if self.argv is not None and self.migration is None:
            what = (
                f"{STEPS[self.step]}: name the migration to mark as applied in "
                "pg_fake_migration, e.g. accounting.0002_invoice"
            )
            return Plan(self.name, "deployment", what)
        return super().plan()

    def command(self) -> list[str]:
        assert self.migration is not None
        return [*super().command(), *self.migration]


def run_bounded(
    argv: list[str],
    *,
    timeout_s: float,
    cwd: str | None = None,
    env: Mapping[str, str] | None = None,
) -> str:
    """Run a deployment command within its timeout: "exit code 0: <output's tail>", or a
    ConfigError that carries the exit code (or the timeout) and the output's tail, so that the
    record says what the command said, not only that it failed."""
    try:
        done = programs.run(argv, timeout_s=timeout_s, cwd=cwd, env=env)
    except programs.TimedOut as exc:
        raise ConfigError(f"{exc}; output so far: {_tail(exc.stdout)}{_tail(exc.stderr)}") from None
    output = (_tail(done.stdout) + _tail(done.stderr)).strip()
    if done.returncode != 0:
        raise ConfigError(f"exit code {done.returncode}: {output}")
    return f"exit code 0: {output}" if output else "exit code 0"


def _tail(text: str) -> str:
    return programs.tail(text, _OUTPUT_CHARS)
