"""The Compose deployment's containers, through the Docker Engine API: the runbook's quick health
check `docker-compose ps` (every service running?) and Scenario 1's `docker stats --no-stream`
(which container eats the CPU or the memory, against its own limit).

The project's containers are found by Compose's labels (irkit.compose), so that `docker-compose`
v1 and `docker compose` v2 deployments look the same; no engine, no permission on its socket and
an unknown project are named there, at the boundary.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from irkit import compose as project
from irkit import compose_services
from irkit.errors import ParameterError
from irkit.probes import container_state, container_stats
from irkit.probes.contract import Finding, check_thresholds, grade, probe
from irkit.result import Result, Status
from irkit.targets import ComposeTarget
from irkit.units import count, human_bytes

_NEEDS = ("compose_dir", "compose_files", "compose_project")


def _compose_services(r: Result) -> str:
    bad = r.evidence.get("bad") or []
    first = bad[0]["service"] if bad else "web"
    return (
        "Runbook 'Quick Health Checks' 1 and Scenario 1: read the failing container's logs "
        f"(`docker-compose logs --tail=100 {first}`); restart it (`docker-compose restart "
        f"{first}`; a crash-looping Celery worker as in Incident 2: `docker-compose restart "
        "celery`); a service scaled to zero comes back with `docker-compose up -d`; an "
        "OOM-killed one needs a higher `mem_limit` or fewer workers."
    )


def _compose_stats(r: Result) -> str:
    return (
        "Runbook 'High CPU Alert' and Scenario 1 (High Memory Usage): the busiest container is "
        "first; check it for runaway Celery tasks (`docker-compose exec celery celery -A "
        "dashboard inspect active`), restart a web service near its memory limit (`docker-compose "
        "restart web`) or scale out (`docker-compose up -d --scale web=3`)."
    )


@probe(
    "compose.services",
    measures=(
        "the runbook's `docker-compose ps`: every service of the project with its containers' "
        "state, health, restart count, exit code, OOM kill, uptime, image and restart policy"
    ),
    grades=(
        "a restart within {compose_restart_window_min}, or a health check still starting / a "
        "container of a service that should run exited, restarting, dead, unhealthy or "
        "OOM-killed, or no container of it at all (a one-off job that exited 0 is fine)"
    ),
    target="compose",
    thresholds={"restart_window_min": "compose_restart_window_min", "expected": "compose_services"},
    needs=_NEEDS,
    area="containers",
    recheck=True,
    advice=_compose_services,
)
def services(
    target: ComposeTarget, *, restart_window_min: float, expected: Sequence[str]
) -> Finding:
    """Every service with its containers, as `docker-compose ps` lists them; the services that
    should run are `expected`, else those the compose files define, else those the engine runs."""
    if restart_window_min <= 0:
        raise ParameterError("restart_window_min must be a positive number of minutes")
    with project.engine(target) as client:
        target = project.resolved(client, target)
        found = project.containers(client, target)
        if not found:
            raise project.no_such_project(client, target)
        seen = project.by_service(found)
        now = container_state.now_utc()
        kills = project.oom_kills(client, target, now.timestamp() - restart_window_min * 60)
        rows = []
        for service, group in seen.items():
            for c in group:
                r = container_state.row(f"{service}-{project.number_of(c)}", service, c.attrs, now)
                started = container_state.parse_time(r["started_at"])
                r["oom_events"] = sorted(
                    round(now.timestamp() - at)
                    for at in kills.get(c.id or "", [])
                    if started is None or at >= started.timestamp()
                )
                if r["oom_events"] and r["state"] != "running" and r["exit_code"] == 137:
                    # The engine flags the exit only when its OOM event came first; the event
                    # itself is kept either way.
                    r["oom_killed"] = True
                rows.append(r)
    # compose.stats, next, measures CPU since now rather than wait an interval of its own: from
    # here on this kernel waits for its next cell, and leaves the CPU to the containers.
    container_stats.note_counters()
    if expected:
        should_run, source = sorted(set(expected)), "compose_services"
    else:
        defined, source = compose_services.defined(target)
        should_run = defined if defined is not None else sorted(seen)
        source = source if defined is not None else f"the engine ({source})"
    bad: list[dict[str, Any]] = []
    for r in rows:
        status, reason = container_state.verdict(r, restart_window_min * 60)
        if r["service"] not in should_run:
            status, reason = Status.OK, reason and f"{reason} (not a service that must run)"
        r["status"], r["reason"] = status.name, reason
        if status is not Status.OK:
            bad.append({"service": r["service"], "status": status.name, "reason": reason})
    service_rows = []
    for service in sorted(set(should_run) | set(seen)):
        members = [r for r in rows if r["service"] == service]
        running = sum(1 for r in members if r["state"] == "running")
        status = Status.worst(Status[r["status"]] for r in members) if members else Status.OK
        if service in should_run and not members:
            status = Status.CRIT
            bad.append(
                {
                    "service": service,
                    "status": "CRIT",
                    "reason": f"{service}: no container running (scaled to 0?)",
                }
            )
        service_rows.append(
            {
                "service": service,
                "should_run": service in should_run,
                "containers": len(members),
                "running": running,
                "status": status.name,
            }
        )
    bad.sort(key=lambda b: -Status[b["status"]].rank)
    evidence: dict[str, Any] = {
        "services": service_rows,
        "containers": rows,
        "should_run": should_run,
        "should_run_from": source,
        "restart_window_min": restart_window_min,
        "bad": bad,
    }
    status = Status.worst(Status[b["status"]] for b in bad) if bad else Status.OK
    if bad:
        return Finding(status, "; ".join(b["reason"] for b in bad), evidence)
    running = sum(1 for r in rows if r["state"] == "running")
    jobs = [r for r in rows if r["reason"].endswith("(a one-off job)")]
    done = f"; {count(len(jobs), 'one-off job')} done" if jobs else ""
    summary = (
        f"{count(len(should_run), 'service')} running, {count(running, 'container')}, "
        f"none restarted in the last {restart_window_min:g} min{done}"
    )
    return Finding(Status.OK, summary, evidence)


@probe(
    "compose.stats",
    measures=(
        "the runbook's `docker stats --no-stream`: CPU and memory of each running container "
        "against its own limit (else the machine's), busiest first; CPU since compose.services "
        "or the last compose.stats read it (at most a minute ago), else over 0.1 s"
    ),
    grades=(
        "CPU {compose_cpu_warn_pct} / {compose_cpu_crit_pct} of the limit; memory "
        "{compose_memory_warn_pct} / {compose_memory_crit_pct} of the limit"
    ),
    target="compose",
    thresholds={
        "cpu_warn_pct": "compose_cpu_warn_pct",
        "cpu_crit_pct": "compose_cpu_crit_pct",
        "memory_warn_pct": "compose_memory_warn_pct",
        "memory_crit_pct": "compose_memory_crit_pct",
    },
    needs=_NEEDS,
    area="containers",
    recheck=True,
    advice=_compose_stats,
)
def stats(
    target: ComposeTarget,
    *,
    cpu_warn_pct: float,
    cpu_crit_pct: float,
    memory_warn_pct: float,
    memory_crit_pct: float,
) -> Finding:
    """CPU and memory per running container, judged on the share of its own limit."""
    check_thresholds(cpu_warn_pct, cpu_crit_pct)
    check_thresholds(memory_warn_pct, memory_crit_pct)
    with project.engine(target) as client:
        target = project.resolved(client, target)
        found = project.containers(client, target)
        if not found:
            raise project.no_such_project(client, target)
        running = [c for c in found if _running(c)]
        running.sort(key=lambda c: (project.service_of(c), project.number_of(c)))
        samples = container_stats.sample_all(running)
    rows: list[dict[str, Any]] = []
    unread: list[str] = []
    for container, sampled in zip(running, samples, strict=True):
        name = f"{project.service_of(container)}-{project.number_of(container)}"
        if isinstance(sampled, str):
            unread.append(f"{name}: {sampled[:200]}")
            continue
        rows.append(_stats_row(name, container, sampled))
    for r in rows:
        cpu_status = grade(r["cpu_share_pct"], cpu_warn_pct, cpu_crit_pct)
        if r["up_s"] is not None and r["up_s"] < container_state.CRASH_LOOP_UP_S:
            # A process starting (imports, migrations) is busy for a moment: shown, and at
            # most WARN; the runbook's alert is about minutes, not a start.
            cpu_status = min(cpu_status, Status.WARN, key=lambda s: s.rank)
        memory_status = grade(r["mem_pct"], memory_warn_pct, memory_crit_pct)
        r["status"] = Status.worst([cpu_status, memory_status]).name
        r["reason"] = "; ".join(
            said
            for status, said in ((cpu_status, _cpu_said(r)), (memory_status, _memory_said(r)))
            if status is not Status.OK
        )
    rows.sort(key=lambda r: (-Status[r["status"]].rank, -r["cpu_share_pct"], -r["mem_pct"]))
    evidence: dict[str, Any] = {
        "rows": rows,
        "unread": unread,
        "thresholds": {
            "cpu_warn_pct": cpu_warn_pct,
            "cpu_crit_pct": cpu_crit_pct,
            "memory_warn_pct": memory_warn_pct,
            "memory_crit_pct": memory_crit_pct,
        },
    }
    if not rows:
        why = f" ({'; '.join(unread)})" if unread else " (see compose.services)"
        return Finding(Status.UNKNOWN, f"no running container could be measured{why}", evidence)
    status = Status.worst(Status[r["status"]] for r in rows)
    if status is not Status.OK:
        bad = [f"{r['name']} {r['reason']}" for r in rows if r["status"] != "OK"]
        return Finding(status, "; ".join(bad), evidence)
    top = rows[0]
    summary = (
        f"{count(len(rows), 'container')} within their limits; busiest {top['name']} "
        f"{_cpu_said(top)}, {_memory_said(top)}"
    )
    return Finding(Status.OK, summary, evidence)


def _running(container: Any) -> bool:
    return bool((container.attrs.get("State") or {}).get("Status") == "running")


def _stats_row(name: str, container: Any, sampled: dict[str, Any]) -> dict[str, Any]:
    attrs = container.attrs
    up_s = container_state.up_s(attrs)
    cpu_pct, cpus = container_stats.cpu(sampled)
    limit = container_stats.cpu_limit(attrs)
    used, mem_limit, own_limit = container_stats.memory(sampled, attrs)
    of_limit = cpu_pct / limit if limit else None
    return {
        "service": project.service_of(container),
        "name": name,
        "cpu_pct": round(cpu_pct, 1),
        "cpu_limit": limit,
        "cpu_of_limit_pct": round(of_limit, 1) if of_limit is not None else None,
        "online_cpus": cpus,
        "cpu_over_s": round(container_stats.interval_s(sampled), 2),  # CPU since this long ago
        # What the verdict judges: the share of its own limit, else of the machine's CPUs.
        "cpu_share_pct": round(of_limit if of_limit is not None else cpu_pct / cpus, 1),
        "mem_bytes": used,
        "mem_limit": mem_limit,
        "mem_limit_own": own_limit,
        "mem_pct": round(100.0 * used / mem_limit, 1) if mem_limit else 0.0,
        "pids": container_stats.pids(sampled),
        "read_from": sampled.get("source", "engine"),  # its cgroup on this host, or the engine
        "up_s": round(up_s, 1) if up_s is not None else None,
    }


def _cpu_said(r: dict[str, Any]) -> str:
    starting = (
        f" (started {r['up_s']:.0f} s ago)"
        if r["up_s"] is not None and r["up_s"] < container_state.CRASH_LOOP_UP_S
        else ""
    )
    if r["cpu_limit"]:
        return f"{r['cpu_of_limit_pct']:.0f}% CPU of its {r['cpu_limit']:g} CPU limit{starting}"
    return (
        f"{r['cpu_share_pct']:.0f}% CPU of the machine's {count(r['online_cpus'], 'CPU')}{starting}"
    )


def _memory_said(r: dict[str, Any]) -> str:
    of = "" if r["mem_limit_own"] else " of the machine's"
    return (
        f"{r['mem_pct']:.0f}% memory ({human_bytes(r['mem_bytes'])} of{of} "
        f"{human_bytes(r['mem_limit'])})"
    )
