"""The schedule file of `irkit beat`: which runs, for which environments, how often.

    # schedule.yaml
    schedule:
      - task: health                      # health | run | monthly
        environments: [staging, production]
        every: 5m                         # 30s, 5m, 1h, 1d; or crontab: "*/5 * * * *"
        notify: true                      # health: --notify
        keep: 30d                         # health: --keep
      - task: run
        section: db
        environment: production
        crontab: "0 * * * *"
        deadline: 10m                     # stop the run after this long (SIGTERM keeps the record)
      - task: monthly
        environment: production
        crontab: "0 6 1 * *"              # UTC

Each entry and environment is one beat entry. A tick not started within `expires` (default: the
time to the next tick) is dropped by the worker that receives it, not piled up behind a busy
cluster: the next tick is a fresher run of the same thing."""

from __future__ import annotations

import math
import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml
from celery.schedules import crontab

from irkit import environments, home
from irkit.distributed import command
from irkit.errors import ConfigError, IrkitError

TASKS = {"health": "irkit.health", "run": "irkit.run", "monthly": "irkit.monthly"}
_KEYS = {
    "task",
    "name",
    "environment",
    "environments",
    "every",
    "crontab",
    "expires",
    "deadline",
    "section",
    "notify",
    "keep",
    "incident",
    "html",
    "month",
    "parameters",
}
# The keys each task takes beyond the common ones.
_OWN = {"health": {"notify", "keep"}, "run": {"section", "incident", "html"}, "monthly": {"month"}}
_COMMON = _KEYS - set().union(*_OWN.values())
_DURATION = re.compile(r"^(?P<n>\d+(?:\.\d+)?)\s*(?P<unit>s|m|h|d)?$")
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
# A deadline's grace beyond which Celery's own time limit kills the task's process.
TIME_LIMIT_MARGIN_S = 60.0
SHORTEST_S = 1.0


@dataclass(frozen=True)
class Entry:
    """One beat entry: a task, its arguments, when, and how late it may still start."""

    name: str
    task: str  # the Celery task's name
    kwargs: dict[str, Any]
    every_s: float | None
    cron: str | None
    expires_s: float
    deadline_s: float | None
    line: str = field(compare=False)  # the command it runs, as a person would type it

    def schedule(self) -> timedelta | crontab:
        if self.every_s is not None:
            return timedelta(seconds=self.every_s)
        assert self.cron is not None
        return _crontab(self.cron)

    def beat_entry(self, queue: str) -> dict[str, Any]:
        options: dict[str, Any] = {"queue": queue, "expires": self.expires_s}
        if self.deadline_s is not None:
            options["time_limit"] = self.deadline_s + TIME_LIMIT_MARGIN_S
        return {
            "task": self.task,
            "schedule": self.schedule(),
            "kwargs": self.kwargs,
            "options": options,
        }


def load(path: Path) -> list[Entry]:
    """The entries of a schedule file, every one checked; a ConfigError names the entry and what
    is wrong with it."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read the schedule {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark else ""
        raise ConfigError(f"the schedule {path} is not valid YAML{where}") from None
    if not isinstance(data, dict) or set(data) != {"schedule"} or not data["schedule"]:
        raise ConfigError(
            f"the schedule {path} must be a mapping with one key, schedule: a list of entries "
            "(task, environment(s), every or crontab); see irkit.distributed.schedule"
        )
    listed = data["schedule"]
    if not isinstance(listed, list):
        raise ConfigError(f"the schedule {path}: schedule must be a list of entries")
    entries: list[Entry] = []
    for n, raw in enumerate(listed, 1):
        entries += _entries(raw, f"the schedule {path}, entry {n}")
    names = [e.name for e in entries]
    if duplicates := sorted({name for name in names if names.count(name) > 1}):
        raise ConfigError(
            f"the schedule {path}: two entries are named {duplicates[0]!r}: give one a name"
        )
    return entries


def _entries(raw: Any, where: str) -> list[Entry]:
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: an entry is a mapping (task: health, every: 5m, …)")
    kind = raw.get("task")
    if kind not in TASKS:
        raise ConfigError(f"{where}: task must be one of {', '.join(TASKS)}, not {kind!r}")
    allowed = _COMMON | _OWN[kind]
    if unknown := sorted(set(map(str, raw)) - allowed):
        raise ConfigError(
            f"{where}: {unknown[0]!r} is not a key of a {kind} entry; "
            f"its keys are: {', '.join(sorted(allowed))}"
        )
    envs = _environments(raw, where)
    every, cron = _when(raw, where)
    expires = _duration(raw["expires"], "expires", where) if "expires" in raw else None
    deadline = _duration(raw["deadline"], "deadline", where) if "deadline" in raw else None
    kwargs = _kwargs(kind, raw, where)
    made = []
    for env in envs:
        _check_parameters(kind, kwargs, env, where)
        name = str(raw.get("name") or "-".join(filter(None, (kind, kwargs.get("section"), env))))
        if len(envs) > 1 and raw.get("name"):
            name = f"{name}-{env}"
        own = {**kwargs, "environment": env} if env else dict(kwargs)
        if deadline is not None:
            own["deadline_s"] = deadline
        made.append(
            Entry(
                name=name,
                task=TASKS[kind],
                kwargs=own,
                every_s=every,
                cron=cron,
                expires_s=expires if expires is not None else _gap(every, cron),
                deadline_s=deadline,
                line=shlex.join(["irkit", *command.argv(kind, own)]),
            )
        )
    return made


def _environments(raw: Mapping[str, Any], where: str) -> list[str]:
    if "environment" in raw and "environments" in raw:
        raise ConfigError(f"{where}: give environment or environments, not both")
    names = raw.get("environments", [raw["environment"]] if "environment" in raw else [""])
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        raise ConfigError(f"{where}: environments must be a list of names, e.g. [staging, prod]")
    for name in names:
        if name:
            try:
                environments.parameter_file(name)
            except ConfigError as exc:
                raise ConfigError(f"{where}: {exc}") from None
    if len(set(names)) != len(names):
        raise ConfigError(f"{where}: an environment is listed twice")
    return names


def _when(raw: Mapping[str, Any], where: str) -> tuple[float | None, str | None]:
    if ("every" in raw) == ("crontab" in raw):
        raise ConfigError(f"{where}: give either every (e.g. 5m) or crontab (e.g. '*/5 * * * *')")
    if "every" in raw:
        return _duration(raw["every"], "every", where), None
    cron = raw["crontab"]
    if not isinstance(cron, str):
        raise ConfigError(f"{where}: crontab is a string of five fields, e.g. '*/5 * * * *'")
    _crontab(cron, where)
    return None, cron


def _crontab(text: str, where: str = "crontab") -> crontab:
    fields = text.split()
    if len(fields) != 5:
        raise ConfigError(
            f"{where}: crontab {text!r} needs five fields: minute hour day-of-month month "
            "day-of-week (UTC), e.g. '*/5 * * * *'"
        )
    minute, hour, day_of_month, month, day_of_week = fields
    try:
        return crontab(minute, hour, day_of_week, day_of_month, month)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"{where}: crontab {text!r}: {exc}") from None


def _duration(value: Any, key: str, where: str) -> float:
    """30, '30s', '5m', '1.5h', '1d' → seconds."""
    text = str(value).strip().lower() if not isinstance(value, bool) else ""
    match = _DURATION.match(text)
    seconds = float(match["n"]) * _SECONDS[match["unit"] or "s"] if match else math.nan
    if not seconds >= SHORTEST_S or seconds > 366 * 86400:
        raise ConfigError(
            f"{where}: {key} {value!r} is not a duration: give seconds or 30s, 5m, 1h, 1d "
            f"(at least {SHORTEST_S:g}s, at most a year)"
        )
    return seconds


def _gap(every: float | None, cron: str | None) -> float:
    """How long a tick may wait by default: until the next one is due."""
    if every is not None:
        return every
    assert cron is not None
    schedule = _crontab(cron)
    # Both estimates count from now: the next tick, and the one after (a tick is a minute).
    now = datetime.now(UTC)
    first = schedule.remaining_estimate(now)
    second = schedule.remaining_estimate(now + first + timedelta(minutes=1))
    gap: float = round((second - first).total_seconds())
    return max(gap, SHORTEST_S)


def _kwargs(kind: str, raw: Mapping[str, Any], where: str) -> dict[str, Any]:
    kwargs: dict[str, Any] = {}
    parameters = raw.get("parameters", {})
    if not isinstance(parameters, dict) or not all(isinstance(k, str) for k in parameters):
        raise ConfigError(f"{where}: parameters is a mapping of NAME: value")
    if parameters:
        kwargs["parameters"] = [f"{k}={_as_text(v)}" for k, v in parameters.items()]
    if kind == "health":
        for flag in ("notify",):
            if flag in raw:
                kwargs[flag] = _flag(raw[flag], flag, where)
        if "keep" in raw:
            from irkit.health import retention

            try:
                retention.parse_age(str(raw["keep"]))
            except ConfigError as exc:
                raise ConfigError(f"{where}: keep: {exc}") from None
            kwargs["keep"] = str(raw["keep"])
    elif kind == "run":
        section = raw.get("section")
        if not isinstance(section, str) or not section:
            raise ConfigError(f"{where}: a run entry names its section, e.g. section: db")
        try:
            home.notebook_path(section)
        except ConfigError as exc:
            raise ConfigError(f"{where}: {exc}") from None
        kwargs["section"] = section
        if "incident" in raw:
            kwargs["incident"] = str(raw["incident"])
        if "html" in raw:
            kwargs["html"] = _flag(raw["html"], "html", where)
    elif "month" in raw:
        kwargs["month"] = str(raw["month"])
    return kwargs


# The notebook each task runs, whose parameters an entry's are checked against.
_NOTEBOOK = {"health": "health", "monthly": "metrics"}


def _check_parameters(kind: str, kwargs: Mapping[str, Any], env: str, where: str) -> None:
    """The entry's parameters over its environment's file, checked as the command will check
    them (names, types, ranges): a mistake is said as beat starts, not by every tick's result."""
    from irkit import parameters, runner

    layers: list[tuple[str, Mapping[str, Any]]] = []
    if env:
        file = environments.parameter_file(env)
        layers.append((str(file), parameters.load_file(file)))
    pairs = [*kwargs.get("parameters", []), *([f"environment={env}"] if env else [])]
    try:
        runner.section_values(_NOTEBOOK.get(kind) or kwargs["section"], layers, pairs)
        if "month" in kwargs:
            from irkit.metrics import monthly

            monthly.parse_month(kwargs["month"])
    except IrkitError as exc:
        raise ConfigError(f"{where}: {exc}") from None


def _flag(value: Any, key: str, where: str) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"{where}: {key} is true or false, not {value!r}")
    return value


def _as_text(value: Any) -> str:
    """A parameter's value as `-p NAME=VALUE` takes it (lists and mappings as YAML flow)."""
    if isinstance(value, str):
        return value
    return yaml.safe_dump(value, default_flow_style=True).strip().removesuffix("...").strip()
