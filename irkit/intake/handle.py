"""What one accepted notification becomes: the incident of its alert group (joined while it is
open, else opened), its triage and section notebooks run headless into the incident's folder,
and the pages the route asks for. Each step is saved in the spool entry as it is done, so that a
receiver stopped half way resumes where it was: never a second incident, never a run twice.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import uuid
from collections.abc import Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any

import psutil

from irkit import escape
from irkit.errors import ConfigError
from irkit.incident import escalation, load, paging, schema, store
from irkit.incident.log import JOURNAL, append_to_journal
from irkit.intake import alertmanager
from irkit.intake.routes import TRIAGE, Route, Router
from irkit.intake.spool import Entry, Spool
from irkit.result import utc_now
from irkit.secrets import redact, scrub

SOURCE = "irkit listen"
# A run's exit status, as `irkit run` sets it.
EXIT_STATUS = {0: "OK", 1: "WARN", 2: "CRIT", 3: "UNKNOWN"}
# Once stopped at its deadline, a run has this long to save its notebook before it is killed.
STOP_GRACE_S = 10.0
# A run's output kept in the intake's log, at most.
LOG_TAIL = 4000


class Intake:
    def __init__(
        self,
        spool: Spool,
        router: Router,
        values: Mapping[str, Any],
        parameters: Mapping[str, Any],
        parameters_from: str = "",
    ) -> None:
        """`values`: the triage notebook's parameters (routing, contacts, timeouts);
        `parameters`: what every incident is opened with, for all its runs."""
        self.spool = spool
        self.router = router
        self.values = values
        self.parameters = dict(parameters)
        self.parameters_from = parameters_from
        self.timeout_s = float(values["alert_run_timeout_s"])
        # One alert group at a time: two notifications of one group must not both open one.
        self._groups: dict[str, threading.Lock] = {}
        self._groups_lock = threading.Lock()

    def _group_lock(self, key: str) -> threading.Lock:
        with self._groups_lock:
            return self._groups.setdefault(key, threading.Lock())

    def handle(self, entry: Entry) -> str:
        """Carry the entry through (or on from where it was left), finish it, and return what
        became of it in one line."""
        notification = alertmanager.parse_object(entry.body)
        with self._group_lock(notification.group_key):
            outcome = self._handle(entry, notification)
        self.spool.finish(entry, outcome)
        return outcome

    def _handle(self, entry: Entry, notification: alertmanager.Notification) -> str:
        progress = entry.progress
        name = notification.name or "alert"
        if not notification.firing:
            incident_id = self.spool.group_incident(notification.group_key)
            if not incident_id or not _exists(incident_id):
                return f"{name} resolved: no incident of its group"
            if not progress.get("noted"):
                _event(
                    incident_id,
                    "alert-resolved",
                    f"alert resolved: {name} (Alertmanager); the incident stays open until "
                    "a person resolves it",
                    key=f"{entry.id}-resolved",
                    alerts=len(notification.alerts),
                )
                progress["noted"] = True
                self.spool.save(entry)
            return f"{name} resolved: noted on {incident_id}"
        if "incident" not in progress:
            known = self.spool.group_incident(notification.group_key)
            if known and _still_open(known):
                progress.update(incident=known, joined=True)
            else:
                route = self.router.route(notification)
                progress.update(incident=_new_id(entry, name), route=asdict(route))
            self.spool.save(entry)
        incident_id = progress["incident"]
        if progress.get("joined"):
            if not progress.get("noted"):
                repeat = len(notification.firing)
                _event(
                    incident_id,
                    "alert",
                    f"alert still firing: {name} ({repeat} alert{'s' if repeat != 1 else ''})",
                    key=f"{entry.id}-repeat",
                )
                progress["noted"] = True
                self.spool.save(entry)
            return f"{name} firing: joined {incident_id}"
        route = Route(**{**progress["route"], "sections": tuple(progress["route"]["sections"])})
        if not progress.get("opened"):
            self._open(entry, notification, route, incident_id)
            progress["opened"] = True
            self.spool.save(entry)
        for section in (TRIAGE, *route.sections):
            if section not in progress.setdefault("ran", {}):
                self._run(entry, incident_id, section)
        self._page(entry, notification, route, incident_id)
        ran = ", ".join(f"{s} {v}" for s, v in progress["ran"].items())
        return f"{name} firing: opened {incident_id} ({ran})"

    def _open(
        self,
        entry: Entry,
        notification: alertmanager.Notification,
        route: Route,
        incident_id: str,
    ) -> None:
        if not _exists(incident_id):  # else opened before a restart: only what follows is left
            from irkit.home import active_drills

            detected = schema.parse_time(entry.received_at)
            started = notification.started_at
            if started is not None and detected is not None and started > detected:
                started = detected  # the two clocks disagree a little: impact not after detection
            store.open_incident(
                route.title,
                category=route.category,
                severity=route.severity,
                responder="",
                detected_at=detected,
                impact_started_at=schema.format_time(started) if started else "",
                detection_source=f"Alertmanager alert {notification.name} "
                f"(receiver {notification.receiver or 'webhook'})",
                drill=bool(active_drills()),
                incident_id=incident_id,
                parameters=self.parameters,
                parameters_from=self.parameters_from,
                extra={
                    "alert": _alert_fields(notification),
                    **({"severity_source": "alert"} if route.severity else {}),
                },
            )
        self.spool.set_group_incident(notification.group_key, incident_id)
        firing = notification.firing
        _event(
            incident_id,
            "alert",
            f"alert firing: {notification.name} ({len(firing)} alert"
            f"{'s' if len(firing) != 1 else ''}); route: {route.why}",
            key=f"{entry.id}-firing",
            labels=notification.common_labels,
            links=[a.generator_url for a in firing if a.generator_url][:5],
        )

    # --- the runs --------------------------------------------------------------------------

    def _run(self, entry: Entry, incident_id: str, section: str) -> None:
        progress = entry.progress
        folder = store.folder(incident_id)
        running = progress.get("running")
        if running and running["section"] == section:
            # Left by a receiver that stopped: wait for the run if it goes on, then see whether it
            # left its notebook.
            _wait_for(running, self.timeout_s)
            made = _notebooks(folder, section)[running["before"] :]
            if made:
                progress["ran"][section] = f"ran while the receiver was stopped ({made[-1].name})"
                del progress["running"]
                self.spool.save(entry)
                return
            _event(
                incident_id,
                "run-interrupted",
                f"the {section} run was cut off when the receiver stopped; it runs again",
            )
        before = len(_notebooks(folder, section))
        progress["running"] = {"section": section, "before": before, "pid": 0, "started": 0.0}
        self.spool.save(entry)
        command = [sys.executable, "-m", "irkit", "run", section, "--incident", incident_id]
        if section == TRIAGE:
            command += ["-p", "acknowledge=false"]  # nobody has taken the page yet
        log = self.spool.root / "logs" / f"{entry.id}.log"
        log.parent.mkdir(exist_ok=True)
        with log.open("ab") as out:
            out.write(f"$ irkit run {section} --incident {incident_id}\n".encode())
            out.flush()
            process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its kernel with it, when the deadline stops it
            )
        progress["running"].update(pid=process.pid, started=_started(process.pid))
        self.spool.save(entry)
        code = _wait(process, self.timeout_s)
        made = _notebooks(folder, section)[before:]
        if code is None:
            verdict = f"stopped after {self.timeout_s:g} s"
            _event(
                incident_id,
                "run-failed",
                f"the {section} run was stopped at its deadline ({self.timeout_s:g} s, "
                "alert_run_timeout_s)",
            )
        elif code in (0, 1, 2) or (code == 3 and made):
            verdict = EXIT_STATUS[code]
        else:
            tail = _tail(log)
            verdict = f"failed (exit {code})"
            _event(incident_id, "run-failed", f"the {section} run failed (exit {code}): {tail}")
        if made:
            verdict += f" ({made[-1].name})"
        progress["ran"][section] = verdict
        del progress["running"]
        self.spool.save(entry)

    # --- the pages -------------------------------------------------------------------------

    def _page(
        self, entry: Entry, notification: alertmanager.Notification, route: Route, incident_id: str
    ) -> None:
        progress = entry.progress
        sent = progress.setdefault("paged", {})
        incident = load.load(incident_id)
        severity = str(incident.get("severity", route.severity) or "")
        category = str(incident.get("category", route.category) or "")
        notebooks = [str(incident.folder / n.name) for n in incident.notebooks if n.ran]
        title = str(incident.get("title", route.title))
        headline = f"[{severity or 'severity not set'}] {title}"
        folder = store.folder(incident_id)
        if "pagerduty" not in sent and (route.pagerduty or severity in ("P0", "P1")):
            delivery = paging.pagerduty(
                "trigger",
                incident_id,
                summary=f"{headline} (incident {incident_id})",
                severity=severity,
                source=notification.label("instance") or "irkit",
                links=[(notification.name, a.generator_url) for a in notification.firing][:3],
                details={"notebooks": notebooks, "folder": str(folder)},
            )
            paging.record(folder, delivery, "PagerDuty trigger", dedup_key=incident_id)
            if delivery.posted:
                _update(incident_id, pagerduty="triggered")
            sent["pagerduty"] = delivery.detail
            self.spool.save(entry)
        if "slack" not in sent:
            roles = [escalation.LEVELS[category][0]] if category in escalation.LEVELS else []
            handles = paging.oncall_handles(self.values["contacts"], [*roles, "On-call Engineer"])
            text = (
                f"*INCIDENT {escape.slack(incident_id)}* {escape.slack(headline)}\n"
                f"Alert: {escape.slack(notification.name)}, route: {escape.slack(route.why)}\n"
                + "\n".join(f"Notebook: {escape.slack(path)}" for path in notebooks)
            )
            delivery = paging.slack(text, handles)
            paging.record(folder, delivery, "Slack message", mentions=handles)
            sent["slack"] = delivery.detail
            self.spool.save(entry)
        if "email" not in sent and route.email:
            body = "\n".join(
                [
                    f"Incident {incident_id}: {headline}",
                    f"Alert: {notification.name} ({notification.annotation('summary')})",
                    f"Route: {route.why}",
                    "",
                    *(f"Notebook: {path}" for path in notebooks),
                ]
            )
            to = list(self.values["alert_email_to"])
            delivery = paging.email(to, f"INCIDENT {incident_id} {headline}", body)
            paging.record(folder, delivery, "Email", recipients=len(to))
            sent["email"] = delivery.detail
            self.spool.save(entry)


def _new_id(entry: Entry, name: str) -> str:
    """The incident's id, fixed before it is opened: a restart finds the same folder."""
    at = schema.parse_time(entry.received_at) or utc_now()
    return schema.check_id(f"{at:%Y%m%d-%H%M}-{schema.slug(name, 40)}-{entry.id[-8:]}")


def _exists(incident_id: str) -> bool:
    try:
        return store.folder(incident_id).is_dir()
    except ConfigError:
        return False


def _still_open(incident_id: str) -> bool:
    """The incident is there and nobody has resolved or closed it."""
    if not _exists(incident_id):
        return False
    try:
        incident = load.load(incident_id)
    except (ConfigError, OSError):
        return False
    return incident.get("status") not in ("resolved", "closed")


def _alert_fields(notification: alertmanager.Notification) -> dict[str, Any]:
    return redact(
        {
            "name": notification.name,
            "group_key": notification.group_key,
            "receiver": notification.receiver,
            "labels": notification.common_labels,
            "summary": notification.annotation("summary"),
            "runbook": notification.annotation("runbook"),
            "external_url": notification.external_url,
        }
    )


def _stamp() -> str:
    return utc_now().isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _event(incident_id: str, kind: str, text: str, *, key: str = "", **data: Any) -> None:
    """Add an event to the incident's journal. With `key` (the spool entry's id and the step)
    its id is fixed: a step written again after a restart is still one event on the timeline."""
    at = _stamp()
    event: dict[str, Any] = {
        "at": at,
        "kind": kind,
        "text": redact(text),
        "source": SOURCE,
        "id": f"intake-{key}" if key else uuid.uuid4().hex,
    }
    if data:
        event["data"] = redact(data)
    append_to_journal(
        store.folder(incident_id) / JOURNAL, {"at": at, "event": event, "source": SOURCE}
    )


def _update(incident_id: str, **fields: Any) -> None:
    append_to_journal(
        store.folder(incident_id) / JOURNAL,
        {"at": _stamp(), "incident": redact(fields), "source": SOURCE},
    )


def _notebooks(folder: Path, section: str) -> list[Path]:
    return [p for p in store.numbered_notebooks(folder) if p.name.endswith(f"-{section}.ipynb")]


def _started(pid: int) -> float:
    with contextlib.suppress(psutil.Error):
        return float(psutil.Process(pid).create_time())
    return 0.0


def _wait(process: subprocess.Popen[bytes], timeout_s: float) -> int | None:
    """The run's exit status; None if it was stopped at its deadline (TERM, then KILL: the
    whole session, its kernel with it)."""
    try:
        return process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        pass
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=STOP_GRACE_S)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    return None


def _wait_for(running: Mapping[str, Any], timeout_s: float) -> None:
    """Wait for a run a stopped receiver left going (the same pid and start time), up to its
    deadline, then stop it."""
    pid = int(running.get("pid") or 0)
    if not pid:
        return
    try:
        process = psutil.Process(pid)
        if abs(process.create_time() - float(running.get("started") or 0)) > 0.01:
            return  # the pid is someone else's now
        process.wait(timeout=timeout_s)
    except psutil.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)
    except psutil.Error:
        return  # gone already


def _tail(log: Path) -> str:
    try:
        text = log.read_bytes()[-LOG_TAIL:].decode(errors="replace")
    except OSError:
        return "(no output)"
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return scrub(lines[-1])[:300] if lines else "(no output)"
