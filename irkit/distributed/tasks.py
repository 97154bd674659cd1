"""The tasks: each builds the `irkit` command line a person would type and runs it
(irkit.distributed.command). The result is the command's outcome: exit status, status, report.

Arguments are names and `NAME=VALUE` parameters, never secrets: the run reads those from its
environment, as on the command line. A section's parameters are checked when the run starts, as
the command checks them; a bad one is the task's result (exit 3 and the one-line error), not a
retry."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from irkit import environments, pids
from irkit.distributed import app, command
from irkit.distributed.alone import running_alone
from irkit.errors import IrkitError
from irkit.health import history

# How long each kind of run may take before it is stopped (SIGTERM, keeping the record): the
# health report bounds itself (health_deadline_s), a section's probes have their own timeouts.
DEADLINE_S = {"health": 300.0, "run": 600.0, "monthly": 900.0}


def _outcome(kind: str, kwargs: dict[str, Any]) -> dict[str, Any]:
    deadline_s = kwargs.pop("deadline_s", None) or DEADLINE_S[kind]
    argv = command.argv(kind, kwargs)
    # The worker's host as its start-up knows it (IRKIT_HOST; irkit.distributed sets it from the
    # worker's name): the runs' files name it, and it publishes them if they are killed.
    host = pids.this_host()
    environment = str(kwargs.get("environment") or "")
    if kind != "health" or not _known(environment):
        # An unknown environment, or a path given as one, is the command's to refuse: exit 3
        # and its one line, before any folder is made for it.
        return command.run(argv, deadline_s, host=host).to_json()
    # One health report per environment at a time, across every worker on the reports folder:
    # two at once would each compare with the same previous report and post the same notice. A
    # tick that finds one running is skipped; the run under way is the news.
    with running_alone(history.folder(environment)) as alone:
        if not alone:
            why = "skipped: a health report of this environment is running (another tick)"
            return command.skipped(argv, deadline_s, host, why).to_json()
        return command.run(argv, deadline_s, host=host).to_json()


def _known(environment: str) -> bool:
    if not environment:
        return True
    try:
        environments.parameter_file(environment)
    except IrkitError:
        return False
    return True


@app.task(name="irkit.health")  # type: ignore[untyped-decorator]
def health(
    environment: str = "",
    notify: bool = False,
    keep: str = "",
    parameters: Sequence[str] = (),
    deadline_s: float | None = None,
) -> dict[str, Any]:
    """`irkit health [--env E] [--notify] [--keep AGE] [-p …]`."""
    kwargs = {"environment": environment, "notify": notify, "keep": keep}
    return _outcome("health", {**kwargs, "parameters": parameters, "deadline_s": deadline_s})


@app.task(name="irkit.run")  # type: ignore[untyped-decorator]
def run(
    section: str,
    environment: str = "",
    incident: str = "",
    html: bool = False,
    parameters: Sequence[str] = (),
    deadline_s: float | None = None,
) -> dict[str, Any]:
    """`irkit run SECTION [--env E] [--incident ID] [--html] [-p …]`."""
    kwargs = {"section": section, "environment": environment, "incident": incident, "html": html}
    return _outcome("run", {**kwargs, "parameters": parameters, "deadline_s": deadline_s})


@app.task(name="irkit.monthly")  # type: ignore[untyped-decorator]
def monthly(
    environment: str = "",
    month: str = "",
    parameters: Sequence[str] = (),
    deadline_s: float | None = None,
) -> dict[str, Any]:
    """`irkit report monthly [--env E] [--month YYYY-MM] [-p …]`."""
    kwargs = {"environment": environment, "month": month, "parameters": parameters}
    return _outcome("monthly", {**kwargs, "deadline_s": deadline_s})
