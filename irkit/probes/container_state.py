"""One container's state as `docker-compose ps` and `docker inspect` show it, and its verdict in
the runbook's words ("web-1 exited (137, OOM-killed)", "celery-1 restarting (7 restarts)").

Pure functions of the Engine API's inspect data, so that the rules are read (and tested) apart
from the engine."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from irkit.result import Status
from irkit.units import human_age

# Restart policies under which a container that ends is meant to stay ended (a one-off job such
# as `migrate`): an exit 0 then is its success, not an outage.
ONE_OFF_POLICIES = ("", "no")
# A start this long after the container's creation is a restart (by the engine's policy or by
# `docker-compose restart`), not the first start of a deploy.
_RESTART_GAP_S = 5.0
# The engine resets its restart back-off once a container has run this long: up for less, a
# container restarted again and again is still crash-looping.
CRASH_LOOP_UP_S = 10.0
_TIME = re.compile(r"^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d+))?(Z|[+-]\d{2}:\d{2})?$")


def parse_time(text: str | None) -> datetime | None:
    """Docker's RFC 3339 times carry nanoseconds; the zero time means never."""
    match = _TIME.match(text or "")
    if not match or match[1].startswith("0001-"):
        return None
    fraction = f".{match[2][:6]}" if match[2] else ""
    zone = "+00:00" if match[3] in (None, "Z") else match[3]
    return datetime.fromisoformat(f"{match[1]}{fraction}{zone}")


def up_s(attrs: dict[str, Any]) -> float | None:
    """Seconds since the container's (last) start, from its inspected attributes; None if it
    never started."""
    started = parse_time((attrs.get("State") or {}).get("StartedAt"))
    return (now_utc() - started).total_seconds() if started else None


def row(name: str, service: str, attrs: dict[str, Any], now: datetime) -> dict[str, Any]:
    """What `docker-compose ps` shows of a container, and a little more."""
    state = attrs.get("State") or {}
    config = attrs.get("Config") or {}
    policy = ((attrs.get("HostConfig") or {}).get("RestartPolicy") or {}).get("Name") or ""
    started = parse_time(state.get("StartedAt"))
    created = parse_time(attrs.get("Created"))
    running = state.get("Status") == "running"
    return {
        "service": service,
        "name": name,
        "container": str(attrs.get("Name", "")).lstrip("/"),
        "state": state.get("Status", "?"),
        "health": (state.get("Health") or {}).get("Status"),
        "health_output": _last_health_output(state),
        "restarts": int(attrs.get("RestartCount") or 0),
        "exit_code": state.get("ExitCode"),
        "oom_killed": bool(state.get("OOMKilled")),
        "started_at": started.isoformat() if started else None,
        "uptime_s": round((now - started).total_seconds()) if running and started else None,
        "restarted": bool(
            started and created and (started - created).total_seconds() > _RESTART_GAP_S
        ),
        "image": config.get("Image", ""),
        "image_id": str(attrs.get("Image", "")).removeprefix("sha256:")[:12],
        "restart_policy": policy or "no",
        # Seconds ago of each OOM kill inside it within the window (the engine's `oom` events),
        # filled in by the caller: the flag above only tells of its main process.
        "oom_events": [],
    }


def verdict(r: dict[str, Any], restart_window_s: float) -> tuple[Status, str]:
    """A container's status and, unless it is fine, the reason in the runbook's words."""
    name, state, code = r["name"], r["state"], r["exit_code"]
    since_start = r["uptime_s"]
    recent = since_start is not None and since_start < restart_window_s
    if state in ("exited", "dead"):
        if code == 0 and r["restart_policy"] in ONE_OFF_POLICIES and not r["oom_killed"]:
            return Status.OK, f"{name} exited 0 (a one-off job)"
        oom = ", OOM-killed" if r["oom_killed"] else ""
        return Status.CRIT, f"{name} {state} ({code}{oom})"
    if state == "restarting":
        oom = ", last OOM-killed" if r["oom_killed"] else f", last exit {code}"
        return Status.CRIT, f"{name} restarting ({_restarts(r['restarts'])}{oom})"
    if state != "running":
        never = ", never started" if state == "created" else ""
        return Status.CRIT, f"{name} {state}{never}"
    if r["health"] == "unhealthy":
        said = f": {r['health_output']}" if r["health_output"] else ""
        return Status.CRIT, f"{name} unhealthy{said}"
    if r["oom_killed"] and recent:
        # The engine keeps the flag of the exit before the restart that brought it back: with
        # restarts, its restart policy did; without, someone started it again since.
        ago = human_age(since_start or 0)
        if r["restarts"]:
            return Status.CRIT, (
                f"{name} OOM-killed and restarted by its policy {ago} ago "
                f"({_restarts(r['restarts'])})"
            )
        return Status.WARN, f"{name} was OOM-killed before its start {ago} ago"
    if r["oom_events"]:
        # A process in it (a gunicorn worker, a Celery child) was killed; the container ran on.
        return Status.WARN, (
            f"{name}: a process in it was OOM-killed {human_age(r['oom_events'][-1])} ago "
            f"({_times(len(r['oom_events']))} in the last {human_age(restart_window_s)}), "
            "the container kept running"
        )
    if recent and r["restarts"]:
        # Restarts the engine made (a crash, an OOM kill); a restart by hand resets the count.
        # Up only moments after its latest: still in its loop, between two crashes.
        if r["restarts"] >= 2 and (since_start or 0) < CRASH_LOOP_UP_S:
            return Status.CRIT, (
                f"{name} crash-looping ({_restarts(r['restarts'])}, up "
                f"{human_age(since_start or 0)} since the last)"
            )
        return Status.WARN, (
            f"{name} restarted by its policy {human_age(since_start or 0)} ago "
            f"({_restarts(r['restarts'])})"
        )
    if r["health"] == "starting":
        return Status.WARN, f"{name} starting (its health check has not passed yet)"
    return Status.OK, ""


def now_utc() -> datetime:
    return datetime.now(UTC)


def _times(n: int) -> str:
    return "once" if n == 1 else f"{n} times"


def _restarts(n: int) -> str:
    return f"{n} restart" + ("" if n == 1 else "s")


def _last_health_output(state: dict[str, Any]) -> str:
    log = (state.get("Health") or {}).get("Log") or []
    if not log:
        return ""
    last = log[-1]
    text = " ".join(str(last.get("Output", "")).split())[:120]
    return text or f"exit code {last.get('ExitCode')}"
