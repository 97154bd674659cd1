"""Which actions exist, and the parameters that choose what they act on, checked with the other
parameters before anything runs (`irkit.parameters.check_values`). An action refuses a bad value
only when its turn comes, after every probe before it; a typo in `allow_actions` it never sees at
all, and the mitigation stays a dry run without a word.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping, Sequence
from typing import Any

from irkit.catalogue.parameters import default
from irkit.errors import IrkitError, ParameterError

# Every action the notebooks take, by the name `allow_actions` gives it (the deployment commands,
# `command.<step>`, come from actions.deployment.STEPS). A test holds each action's own name to it.
NAMES = (
    "postgres.terminate",
    "postgres.cancel",
    "redis.flushdb",
    "redis.maxmemory",
    "celery.purge",
    "celery.purge_tasks",
    "celery.pool_grow",
    "celery.pool_shrink",
    "celery.autoscale",
    "disk.cleanup",
    "disk.cleanup_logs",
    "disk.cleanup_temp",
    # `--volumes` of the prune_docker command, allowed apart from it: it deletes data.
    "command.prune_docker_volumes",
    # A Compose deployment's (actions.containers); restart and scale take any service's name.
    "compose.restart_web",
    "compose.restart_celery",
    "compose.restart_redis",
    "compose.scale_web",
    "compose.scale_celery",
    "compose.showmigrations",
    "compose.migrate",
    "compose.migrate_fake",
    "compose.inspect_active",
    "compose.prune",
    # Unused volumes in compose.prune, allowed apart from it: they hold data.
    "compose.prune_volumes",
)
# compose.restart_<service>, compose.scale_<service>: a service's name as Compose allows it.
_PER_SERVICE = re.compile(r"compose\.(restart|scale)_[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
PG_KILL_MODES = ("cancel", "terminate")
_PID = re.compile(r"\s*[1-9][0-9]{0,9}\s*")


def known_names() -> list[str]:
    from irkit.actions.deployment import STEPS

    return [*NAMES, *(f"command.{step}" for step in STEPS)]


def check_parameters(values: Mapping[str, Any]) -> None:
    """Refuse, before anything runs, the action parameters an action would only refuse when its
    turn comes (after every probe before it), or never: an unknown name in `allow_actions`."""
    names = known_names()
    for name in values.get("allow_actions") or []:
        if name not in names and not _PER_SERVICE.fullmatch(str(name)):
            hint = _hint(str(name), names) or f"; the actions: {', '.join(names)}"
            raise ParameterError(f"allow_actions names an unknown action {name!r}{hint}")
    mode = str(values.get("pg_kill_mode", default("pg_kill_mode")))
    if mode not in PG_KILL_MODES:
        choices = ", ".join(PG_KILL_MODES)
        hint = _hint(mode, PG_KILL_MODES)
        raise ParameterError(f"pg_kill_mode {mode!r} is not one of: {choices}{hint}")
    bad = [p for p in values.get("pg_kill_pids") or [] if not _PID.fullmatch(str(p))]
    if bad:
        raise ParameterError(
            f"pg_kill_pids must be process ids (positive whole numbers), got {bad}"
        )
    if "pg_kill_older_than_s" in values and not values.get("pg_kill_pids"):
        older = float(values["pg_kill_older_than_s"])
        idle = float(values.get("pg_kill_idle_in_transaction_s") or 0)
        idle += float(values.get("pg_kill_idle_min") or 0)
        if older <= 0 and idle <= 0:
            raise ParameterError(
                "pg_kill_older_than_s, pg_kill_idle_in_transaction_s and pg_kill_idle_min are "
                "all 0: give one of them, or pg_kill_pids, so the backends to end are chosen"
            )
    if str(values.get("pg_fake_migration") or "").strip():
        from irkit.actions.deployment import parse_migration

        try:
            parse_migration(str(values["pg_fake_migration"]))
        except IrkitError as exc:
            raise ParameterError(f"pg_fake_migration: {exc}") from None
    if int(values.get("compose_scale_to", 0) or 0) < 0:
        raise ParameterError(
            f"compose_scale_to must be 0 or more, got {values['compose_scale_to']}"
        )
    highest, lowest = values.get("celery_autoscale_max") or 0, values.get("celery_autoscale_min", 0)
    if highest and not 0 <= lowest <= highest:
        raise ParameterError(
            f"celery_autoscale_min ({lowest}) must be between 0 and "
            f"celery_autoscale_max ({highest})"
        )
    if str(values.get("redis_new_maxmemory") or "").strip():
        from irkit.actions.redis import parse_size

        try:
            parse_size(str(values["redis_new_maxmemory"]))
        except IrkitError as exc:
            raise ParameterError(f"redis_new_maxmemory: {exc}") from None
        except OverflowError:
            raise ParameterError("redis_new_maxmemory is too large to be a size") from None


def _hint(name: str, choices: Sequence[str]) -> str:
    close = difflib.get_close_matches(name, choices, n=1)
    return f"; did you mean {close[0]!r}?" if close else ""
