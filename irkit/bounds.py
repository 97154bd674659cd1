"""Bounds on what a user gives: every number within a range that makes sense and keeps a run
bounded in time, every list that drives probes or actions within a length, and every file read
on a user's say-so within a size limit.

A number out of range would not fail at once: an hour-long timeout outlives the cell that runs it,
a `--months 100000` analysis runs for minutes, a percentage of 500 never fires. Each is refused
before a kernel starts (and again inside the notebook, for plain papermill runs), with the bound
named. The ranges are found by the parameter's name, so a new parameter named like the others
(`…_timeout_s`, `…_pct`, `…_days`) is bounded without being listed; tests check that every
number a notebook declares has a range and that its default lies in it.
"""

from __future__ import annotations

import math
import os
import re
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from irkit import safefiles
from irkit.errors import ConfigError, ParameterError

# papermill stops a cell that runs longer than this: a longer timeout could never be waited out.
CELL_TIMEOUT_S = 300
_YEAR_S = 365 * 86400


@dataclass(frozen=True)
class Range:
    low: float
    high: float
    unit: str = ""  # what is counted, plural: "seconds", "%", "workers"
    why: str = ""
    # A timeout of 0 s waits for nothing and a window of 0 min holds nothing: refused.
    low_open: bool = False
    what: str = ""  # what the number is, when its name does not say: "a port number"

    def admits(self, value: float) -> bool:
        above = value > self.low if self.low_open else value >= self.low
        return above and value <= self.high

    def describe(self) -> str:
        why = f" ({self.why})" if self.why else ""
        if self.low_open and self.low == 0:
            of = f" of {self.unit}" if self.unit else ""
            return f"a positive number{of}, at most {self.high:g}{why}"
        unit = self.unit if self.unit in ("", "%") else f" {self.unit}"
        what = f"{self.what}, " if self.what else ""
        return f"{what}at least {self.low:g} and at most {self.high:g}{unit}{why}"


_CELL = f"a notebook cell is stopped after {CELL_TIMEOUT_S} s"
_TIMEOUT = Range(0, CELL_TIMEOUT_S, "seconds", _CELL, low_open=True)
_WORKERS = Range(0, 1000, "workers")

# First match wins: specific names before the naming patterns.
_RANGES: tuple[tuple[re.Pattern[str], Range], ...] = tuple(
    (re.compile(pattern), bound)
    for pattern, bound in (
        (r"pg_port", Range(0, 65535, why="0: libpq's default", what="a port number")),
        (r"months", Range(1, 120, "months", "ten years")),
        (r"celery_queue_(warn|crit)", Range(0, 10**9, "tasks")),
        (r"celery_(expected|min)_workers", _WORKERS),
        (r"celery_autoscale_(max|min)", Range(0, 1000, "processes")),
        (r"celery_pool_change", Range(-1000, 1000, "processes")),
        (r"compose_scale_(workers_)?to", Range(0, 100, "containers", "0 stops the service")),
        (r"compose_log_lines", Range(1, 100_000, "lines", "read per service")),
        (r"pg_kill_idle_min", Range(0, 365 * 24 * 60, "minutes", "0: off; at most a year")),
        (r"load_requests", Range(1, 10_000, "requests", "the runbook's test sends 100")),
        (r"load_concurrency", Range(1, 100, "connections", "the runbook's test opens 10")),
        (r"alert_max_runs", Range(1, 32, "runs", "each run is a Jupyter kernel")),
        (r"alert_queue_size", Range(1, 10_000, "alert groups", "each waits on disk")),
        (r"pg_connect_timeout_s", Range(1, CELL_TIMEOUT_S, "seconds", _CELL)),
        (r".*_timeout_s|health_deadline_s", _TIMEOUT),
        (
            r"host_cpu_interval_s",
            Range(0, 60, "seconds", "CPU use is measured that long", low_open=True),
        ),
        # A load average is kept over 1, 5 and 15 minutes; an hour is as far as an alert looks.
        (r"host_window_min", Range(0, 60, "minutes", "an hour", low_open=True)),
        (r".*_pct", Range(0, 100, "%", "a percentage")),
        (r"web_slow_ms", Range(0, CELL_TIMEOUT_S * 1000, "milliseconds", _CELL, low_open=True)),
        (r"disk_.*_max_age_days", Range(0, 3650, "days", "ten years", low_open=True)),
        (r".*_days", Range(0, 3650, "days", "ten years")),
        (r".*_s", Range(0, _YEAR_S, "seconds", "a year")),
        (r".*_min", Range(0, 365 * 24 * 60, "minutes", "a year", low_open=True)),
    )
)

# Lists whose every entry is a probe or an action (a TLS handshake, a command, a queue): longer
# ones would run past any deadline.
MAX_LIST_ENTRIES = 100
_DRIVING_LISTS = re.compile(
    r"tls_endpoints|web_smoke_paths|web_core_paths|disk_paths|disk_log_dirs|disk_temp_dirs"
    r"|log_files|check_commands|deploy_commands|celery_queues|celery_pool_workers"
    r"|celery_purge_tasks|pg_kill_pids|compose_files|compose_services|compose_log_services"
)

# `prom_window` goes into PromQL as a range (`rate(…[5m])`): a Prometheus duration and nothing
# else, and no longer than a day (a rate over weeks is a report's question, and a heavy query).
_PROM_DURATION = re.compile(r"(?:[0-9]{1,9}(?:ms|[smhdwy]))+")
_PROM_UNITS_S = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": _YEAR_S}
PROM_WINDOW_MAX_S = 86400

# Parameter files are a few kilobytes; a CA bundle a few hundred.
PARAMETER_FILE_MAX_BYTES = 1024 * 1024
CA_FILE_MAX_BYTES = 10 * 1024 * 1024


def range_for(name: str) -> Range | None:
    return next((bound for pattern, bound in _RANGES if pattern.fullmatch(name)), None)


def count(option: str, name: str, value: int) -> int:
    """A number given as a command-line option (`--months`), in the range of its parameter."""
    bound = range_for(name)
    if bound is not None and not bound.admits(value):
        raise ParameterError(f"{option} must be {bound.describe()}, got {value}")
    return value


def finite(name: str, value: float) -> float:
    """nan compares false with every bound and inf passes any `> 0`: both are refused first."""
    if not math.isfinite(value):
        raise ParameterError(f"parameter {name} must be a finite number, got {value!r}")
    return value


def check(values: Mapping[str, Any], declared: Mapping[str, str]) -> None:
    """Refuse a number outside its range, or a list longer than its probes can take."""
    for name, value in values.items():
        kind = declared.get(name)
        if kind in ("int", "float") and isinstance(value, int | float):
            bound = range_for(name)
            if bound is not None and not bound.admits(finite(name, value)):
                shown = f"{value:g}" if isinstance(value, float) else str(value)
                raise ParameterError(f"parameter {name} must be {bound.describe()}, got {shown}")
        elif (
            kind == "list[str]"
            and _DRIVING_LISTS.fullmatch(name)
            and isinstance(value, list)
            and len(value) > MAX_LIST_ENTRIES
        ):
            raise ParameterError(
                f"parameter {name} has {len(value)} entries; at most {MAX_LIST_ENTRIES} "
                "are taken (each is a probe or an action of its own)"
            )
    if "prom_window" in values:
        prom_window(str(values["prom_window"]))
    ca_file = values.get("web_ca_file")
    if ca_file:
        regular_file(Path(str(ca_file)), "parameter web_ca_file", CA_FILE_MAX_BYTES)


def prom_window(text: str) -> float:
    """The seconds a PromQL range such as `5m` or `1h30m` spans; anything else is refused."""
    if not _PROM_DURATION.fullmatch(text):
        raise ParameterError(
            f"parameter prom_window must be a Prometheus duration such as 5m, 30s or 1h, "
            f"got {text!r}"
        )
    seconds = sum(
        int(n) * _PROM_UNITS_S[unit] for n, unit in re.findall(r"([0-9]+)(ms|[smhdwy])", text)
    )
    if not 0 < seconds <= PROM_WINDOW_MAX_S:
        raise ParameterError(
            f"parameter prom_window must be more than 0 and at most 1d (a day), got {text!r}"
        )
    return seconds


def regular_file(path: Path, what: str, max_bytes: int) -> os.stat_result:
    """The file's status if it is a regular file of at most `max_bytes`; else a ConfigError.
    A FIFO, a device (/dev/zero) or a folder is refused without being opened."""
    try:
        status = path.stat()
    except FileNotFoundError:
        raise ConfigError(f"{what} {path} does not exist") from None
    except OSError as exc:
        raise ConfigError(f"cannot read {what} {path}: {exc.strerror}") from None
    _refuse_unless_small_regular(status, path, what, max_bytes)
    return status


def read_text(path: Path, what: str, max_bytes: int) -> str:
    """The text of a file a user named, read only if it is a regular file of at most
    `max_bytes`: whatever it is, the read neither blocks nor fills the memory."""
    try:
        data = safefiles.read_regular(path, max_bytes, follow_symlinks=True)
    except FileNotFoundError:
        raise ConfigError(f"{what} {path} does not exist") from None
    except safefiles.NotRegularFile as exc:
        raise ConfigError(f"{what} {path} is {exc.kind}, not a regular file") from None
    except safefiles.TooLarge:
        raise ConfigError(_too_large(path, what, max_bytes)) from None
    except OSError as exc:
        raise ConfigError(f"cannot read {what} {path}: {exc.strerror}") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"cannot read {what} {path}: not UTF-8 text (byte {exc.start})") from None


def _refuse_unless_small_regular(
    status: os.stat_result, path: Path, what: str, max_bytes: int
) -> None:
    if not stat.S_ISREG(status.st_mode):
        raise ConfigError(
            f"{what} {path} is {safefiles.kind_of(status.st_mode)}, not a regular file"
        )
    if status.st_size > max_bytes:
        raise ConfigError(_too_large(path, what, max_bytes))


def _too_large(path: Path, what: str, max_bytes: int) -> str:
    return f"{what} {path} is larger than {max_bytes // 1024} KiB; irkit reads no more"
