"""The runbook steps that act through the deployment's own tooling (`docker compose restart web`,
`certbot renew`, `manage.py migrate`, `celery -A dashboard inspect active`, …), configured per
environment as named commands and run under the same guard rails as every action: the plan shows
the exact command, it runs only when allowed or confirmed, never through a shell, within a
timeout, and its exit code and output go into the record.

`deploy_commands` entries read `name: command line`, e.g.
`restart_web: docker compose restart web`. The practice stack's are in parameters/sandbox.yaml.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence

from irkit import programs
from irkit.actions.guard import Item, Outcome, Plan, act_on
from irkit.catalogue.parameters import default
from irkit.errors import ConfigError
from irkit.secrets import redact

# The runbook's steps, by the name a parameter file gives their command.
STEPS = {
    "restart_web": "Scenario 1 / Incident 3: docker-compose restart web",
    "scale_web": "Scenario 1: docker-compose up -d --scale web=3",
    "prune_docker": "Scenario 3: docker system prune -a --volumes -f",
    "restart_redis": "Scenario 4: docker-compose restart redis",
    "showmigrations": "Incident 1: manage.py showmigrations",
    "migrate": "Incident 1: manage.py migrate",
    "migrate_fake": "Incident 1: manage.py migrate --fake app_name migration_name (if stuck)",
    "inspect_active": "Incident 2: celery -A dashboard inspect active",
    "scale_workers": "Incident 2: docker-compose up -d --scale celery=4",
    "renew_cert": "Incident 3: certbot renew --force-renewal",
}
_OUTPUT_CHARS = 4000


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
        shown = redact(shlex.join(self.argv))
        item = Item(
            self.step,
            f"run: {shown}",
            {"argv": [redact(a) for a in self.argv], "timeout_s": self.timeout_s},
        )
        return Plan(self.name, "deployment", f"{runbook}: {shown}", (item,))

    def act(self, plan: Plan) -> Outcome:
        def run(item: Item) -> str:
            assert self.argv is not None
            try:
                done = programs.run(self.argv, timeout_s=self.timeout_s, cwd=self.cwd)
            except programs.TimedOut as exc:
                raise ConfigError(
                    f"{exc}; output so far: {_tail(exc.stdout)}{_tail(exc.stderr)}"
                ) from None
            output = (_tail(done.stdout) + _tail(done.stderr)).strip()
            if done.returncode != 0:
                raise ConfigError(f"exit code {done.returncode}: {output}")
            return f"exit code 0: {output}" if output else "exit code 0"

        done, skipped, failed = act_on(plan, lambda item: None, run)
        summary = (
            done[0][1].splitlines()[0]
            if done
            else (failed[0][1].splitlines()[0] if failed else "not run")
        )
        return Outcome(self.name, plan.target, tuple(done), tuple(skipped), tuple(failed), summary)


def _tail(text: str) -> str:
    return programs.tail(text, _OUTPUT_CHARS)
