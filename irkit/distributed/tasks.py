"""The tasks: each builds the `irkit` command line a person would type and runs it
(irkit.distributed.command). The result is the command's outcome: exit status, status, report.

Arguments are names and `NAME=VALUE` parameters, never secrets: the run reads those from its
environment, as on the command line. A section's parameters are checked when the run starts, as
the command checks them; a bad one is the task's result (exit 3 and the one-line error), not a
retry."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from irkit import pids
from irkit.distributed import app, command
from irkit.health import alone

# How long each kind of run may take before it is stopped (SIGTERM, keeping the record): the
# health report bounds itself (health_deadline_s), a section's probes have their own timeouts.
DEADLINE_S = {"health": 300.0, "run": 600.0, "monthly": 900.0}


def _outcome(kind: str, kwargs: dict[str, Any]) -> dict[str, Any]:
    deadline_s = kwargs.pop("deadline_s", None) or DEADLINE_S[kind]
    argv = command.argv(kind, kwargs)
    # The worker's host as its start-up knows it (IRKIT_HOST; irkit.distributed sets it from the
    # worker's name): the runs' files name it, and it publishes them if they are killed.
    host = pids.this_host()
    outcome = command.run(argv, deadline_s, host=host)
    if outcome.status == alone.SKIPPED:
        # `irkit health` found another report of the environment running (irkit.health.alone),
        # on any worker or scheduler: the tick is skipped, the run under way is the news.
        outcome = dataclasses.replace(outcome, exit_code=None)
    return outcome.to_json()


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
