"""Read-only diagnostic commands of the deployment, named in `check_commands`: the runbook's
Health Check Failure step `docker-compose exec web python manage.py check --deploy`, or
`pg_isready`. The exit code is the verdict; the output's last lines are the evidence."""

from __future__ import annotations

from irkit import programs
from irkit.errors import ParameterError, ServiceError
from irkit.probes.contract import Finding, probe
from irkit.result import Result, Status
from irkit.targets import CommandTarget

_OUTPUT_CHARS = 2000


def _command_check(r: Result) -> str:
    return (
        f"Runbook 'Health Check Failure', component-wise checks: {r.summary}. Its output is in "
        "the evidence; fix what it names, then re-run the health check."
    )


@probe(
    "command.check",
    measures=(
        "a read-only diagnostic named in `check_commands`, e.g. `check_deploy: docker compose "
        "exec web python manage.py check --deploy` or `pg_isready`; no shell, its own session, "
        "stopped at `check_timeout_s`"
    ),
    grades="— / exit code not 0, or stopped",
    target="command",
    needs=("check_commands",),
    area="web",
    advice=_command_check,
)
def check(target: CommandTarget) -> Finding:
    """OK when the command exits 0, CRIT otherwise; its output is kept, secrets masked."""
    if not target.configured:
        raise ParameterError(f"the command {target.name} is not configured: {target.hint}")
    try:
        done = programs.run(target.argv, timeout_s=target.timeout_s)
    except programs.TimedOut as exc:
        raise ServiceError(
            f"{target.name} ran longer than {target.timeout_s:g} s and was stopped",
            output=programs.tail(exc.stdout + exc.stderr, _OUTPUT_CHARS),
        ) from None
    output = programs.tail(done.stdout + done.stderr, _OUTPUT_CHARS).strip()
    last = output.splitlines()[-1].strip() if output else "no output"
    evidence = {"exit_code": done.returncode, "output": output}
    if done.returncode != 0:
        return Finding(
            Status.CRIT, f"{target.name} failed (exit code {done.returncode}): {last}", evidence
        )
    return Finding(Status.OK, f"{target.name} passed: {last}", evidence)
