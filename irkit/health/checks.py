"""Every read-only check of every runbook section, run at once and bounded in time.

Checks on one target run one after another (one connection at a time to a production database,
and a target that proved unreachable is not waited on again by its next checks); targets run
concurrently. Whatever is still running at the deadline is reported as hung (CRIT) and the
checks that never started as not measured (UNKNOWN): the report always completes in about the
slowest target's timeout, however many targets hang.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from irkit import probes, programs
from irkit.errors import IrkitError
from irkit.result import Result, Status
from irkit.secrets import redact

if TYPE_CHECKING:
    from irkit.section import Section


@dataclass(frozen=True)
class Check:
    area: str  # the report section it belongs to
    probe: str  # its catalogue name
    target: str  # the Section attribute it runs on
    # probe keyword → the parameter that gives it (left to the probe's default when undeclared)
    kwargs: Mapping[str, str] = field(default_factory=dict)
    # a parameter that must be non-empty for the check to run at all (an optional source)
    needs: str = ""
    # keyword values fixed for the report
    fixed: Mapping[str, Any] = field(default_factory=dict)
    # probe keyword → another Section target it needs to know (the broker, for Redis)
    uses: Mapping[str, str] = field(default_factory=dict)


# The report's sections, in the runbook's order of a quick health check.
AREAS = {
    "web": "Web app: health endpoint and smoke URLs",
    "postgres": "PostgreSQL",
    "redis": "Redis",
    "celery": "Celery",
    "host": "Disk, memory and CPU",
    "tls": "Certificates",
    "monitoring": "Alerts, error rate and logs",
}

CHECKS: tuple[Check, ...] = (
    Check("web", "http.health", "web", {"path": "web_health_path", "slow_ms": "web_slow_ms"}),
    Check("web", "http.smoke", "web", {"paths": "web_smoke_paths"}),
    Check("postgres", "postgres.connect", "postgres", {"warn_s": "pg_connect_warn_s"}),
    Check("postgres", "postgres.connections", "postgres",
          {"warn_pct": "pg_connections_warn_pct", "crit_pct": "pg_connections_crit_pct"}),
    Check("postgres", "postgres.long_queries", "postgres",
          {"warn_s": "pg_long_query_warn_s", "crit_s": "pg_long_query_crit_s"}),
    Check("postgres", "postgres.idle_in_transaction", "postgres",
          {"warn_s": "pg_idle_in_transaction_warn_s", "crit_s": "pg_idle_in_transaction_crit_s"}),
    Check("postgres", "postgres.blocking", "postgres",
          {"warn_s": "pg_lock_wait_warn_s", "crit_s": "pg_lock_wait_crit_s"}),
    Check("postgres", "postgres.migrations", "postgres", {"expected": "pg_expected_migrations"}),
    Check("redis", "redis.ping", "redis"),
    Check("redis", "redis.memory", "redis",
          {"warn_pct": "redis_memory_warn_pct", "crit_pct": "redis_memory_crit_pct",
           "broker_queues": "celery_queues"}, uses={"broker": "broker"}),
    Check("redis", "redis.clients", "redis", {"warn_pct": "redis_clients_warn_pct"}),
    Check("celery", "celery.queues", "celery",
          {"names": "celery_queues", "warn": "celery_queue_warn", "crit": "celery_queue_crit"}),
    Check("celery", "celery.workers", "celery",
          {"min_workers": "celery_min_workers", "runaway_s": "celery_task_runaway_s",
           "expected": "celery_expected_workers"}),
    Check("host", "disk.usage", "host",
          {"paths": "disk_paths", "warn_pct": "disk_warn_pct", "crit_pct": "disk_crit_pct"}),
    Check("host", "disk.old_files", "host",
          {"log_dirs": "disk_log_dirs", "log_pattern": "disk_log_pattern",
           "log_max_age_days": "disk_log_max_age_days", "temp_dirs": "disk_temp_dirs",
           "temp_max_age_days": "disk_temp_max_age_days"}),
    Check("host", "host.memory", "host",
          {"warn_pct": "host_memory_available_warn_pct",
           "crit_pct": "host_memory_available_crit_pct"}),
    Check("host", "host.cpu", "host",
          {"interval_s": "host_cpu_interval_s", "warn_pct": "host_cpu_warn_pct",
           "crit_pct": "host_cpu_crit_pct"},
          # measured while the other checks run: their own CPU use is left out
          fixed={"exclude_self": True}),
    Check("tls", "tls.expiry", "tls", {"warn_days": "tls_warn_days", "crit_days": "tls_crit_days"}),
    Check("monitoring", "prometheus.alerts", "prometheus"),
    Check("monitoring", "prometheus.query", "prometheus",
          {"window": "prom_window", "warn_pct": "prom_error_rate_warn_pct",
           "crit_pct": "prom_error_rate_crit_pct", "p95_warn_s": "prom_p95_warn_s"}),
    Check("monitoring", "logs.errors", "logs", {"window_min": "log_window_min"},
          needs="log_files|log_command"),
    Check("monitoring", "deploy.recent", "repo", {"window_min": "deploy_window_min"},
          needs="deploy_repo"),
)  # fmt: skip

# Local checks share no connection: each runs on its own thread (the disk walk does not wait for
# the CPU sample).
_ONE_THREAD_EACH = {"host"}


def selected(params: Mapping[str, Any], checks: Sequence[Check] = CHECKS) -> list[Check]:
    """The checks this configuration can run: optional sources only when given; and one
    `command.check` per entry of `check_commands`."""
    chosen = [c for c in checks if not c.needs or any(params.get(n) for n in c.needs.split("|"))]
    from irkit.programs import parse_named

    for name in parse_named(params.get("check_commands") or [], "check_commands"):
        chosen.append(Check("web", "command.check", f"command:{name}"))
    return chosen


@dataclass
class _Lane:
    """The checks of one target, run in order on one thread."""

    checks: list[tuple[int, Check]]
    running: int | None = None
    thread: threading.Thread | None = None


def run(
    section: Section,
    checks: Sequence[Check],
    *,
    deadline_s: float,
    meanwhile: Callable[[], object] | None = None,
) -> list[Result]:
    """Run `checks` concurrently by target; every check gets a result, in the order given.
    `meanwhile` runs on a thread of its own while the checks wait on their targets."""
    if deadline_s <= 0:
        raise IrkitError(f"the report's deadline must be positive, got {deadline_s:g} s")
    params = section.params
    # Targets are built here, not on the threads: a bad parameter stops the report at once.
    targets = {t: _target(section, t) for c in checks for t in (c.target, *c.uses.values())}
    lanes: dict[str, _Lane] = {}
    for index, check in enumerate(checks):
        key = f"{check.target}#{index}" if check.target in _ONE_THREAD_EACH else check.target
        lanes.setdefault(key, _Lane([])).checks.append((index, check))
    results: dict[int, Result] = {}
    # Guards `results` and each lane's `running`: at the deadline the main thread takes one
    # consistent snapshot, and a check finishing after it is not recorded.
    lock = threading.Lock()
    stop = threading.Event()
    started = time.monotonic()

    def work(lane: _Lane) -> None:
        for index, check in lane.checks:
            with lock:
                if stop.is_set():
                    return
                lane.running = index
            kwargs = {kw: params[p] for kw, p in check.kwargs.items() if p in params}
            kwargs.update(check.fixed)
            kwargs.update({kw: targets[t] for kw, t in check.uses.items()})
            try:
                result = section.measure(probes.get(check.probe), targets[check.target], **kwargs)
            except IrkitError as exc:
                # One check that cannot run (a program not installed here) is that check's
                # verdict, not the end of the report.
                result = _cannot_run(check.probe, targets[check.target].display, exc)
            with lock:
                if stop.is_set():
                    return
                results[index] = result
                lane.running = None

    for name, lane in lanes.items():
        # Daemon threads: a check that outlives the deadline is abandoned, not waited for.
        lane.thread = threading.Thread(target=work, args=(lane,), name=f"irkit-{name}", daemon=True)
    for lane in lanes.values():
        assert lane.thread is not None
        lane.thread.start()
    if meanwhile is not None:
        threading.Thread(target=meanwhile, name="irkit-meanwhile", daemon=True).start()
    for lane in lanes.values():
        assert lane.thread is not None
        lane.thread.join(max(0.0, deadline_s - _since(started)))
    with lock:
        stop.set()
        done = dict(results)
        running = {lane.running for lane in lanes.values()}
    if len(done) < len(checks):
        # Commands started by abandoned checks must not outlive the report.
        programs.stop_all()
    for lane in lanes.values():
        for index, check in lane.checks:
            if index in done:
                continue
            target = targets[check.target].display
            if index in running:
                done[index] = _hung(check.probe, target, deadline_s)
            else:
                done[index] = _not_started(check.probe, target, deadline_s)
    return [done[i] for i in range(len(checks))]


def _since(started: float) -> float:
    return time.monotonic() - started


def _target(section: Section, name: str) -> Any:
    if name.startswith("command:"):
        return section.command(name.partition(":")[2])
    return getattr(section, name)


def _cannot_run(probe: str, target: str, exc: IrkitError) -> Result:
    return _unmeasured(probe, target, Status.UNKNOWN, f"cannot run here: {exc}", error=str(exc))


def _hung(probe: str, target: str, deadline_s: float) -> Result:
    summary = (
        f"no answer within the report's limit of {deadline_s:g} s: the target is hung or far "
        "too slow"
    )
    return _unmeasured(probe, target, Status.CRIT, summary, reachable=False, deadline_s=deadline_s)


def _not_started(probe: str, target: str, deadline_s: float) -> Result:
    summary = (
        f"not measured: the report's limit of {deadline_s:g} s was reached while earlier checks "
        "on this target were still waiting"
    )
    return _unmeasured(probe, target, Status.UNKNOWN, summary, deadline_s=deadline_s)


def _unmeasured(probe: str, target: str, status: Status, summary: str, **evidence: Any) -> Result:
    """A verdict the report gives for a check whose probe gave none; scrubbed like a probe's,
    since an error's text may quote what it was given."""
    return Result(
        probe=probe,
        target=target,
        status=status,
        summary=redact(summary),
        evidence=redact(evidence),
    )
