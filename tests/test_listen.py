"""`irkit listen` for real: the receiver as a process on loopback, Alertmanager's webhook posted
to it over HTTP, notebooks run against the test stack, and the pages received by the stand-ins
of PagerDuty, Slack and a mail server (STARTTLS and login) on loopback."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from irkit import drills
from irkit.incident import load, paging
from irkit.sandbox import certs, paging_standins
from irkit.sandbox.alerting import DEFAULT_PORTS as ALERTING_PORTS
from irkit.sandbox.alerting import Alerting
from irkit.sandbox.process import free_port, port_open
from irkit.sandbox.stack import BROKER_DB, CACHE_DB, Stack
from tests.helpers import CALM_HOST, ROOT, irkit, targets, tls_endpoints, wait_for
from tests.test_intake_units import body

TOKEN = "listen-token-0123456789abcdef"
ROUTING_KEY = "R0123456789abcdef0123456789abcde"  # 32 characters, as PagerDuty's are
SMTP_PASSWORD = "smtp-pass-0123456789"
ONCALL = "U024BE7LH"
LISTEN = [sys.executable, "-m", "irkit", "listen"]


class Standins:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.http_port, self.smtp_port = free_port(), free_port()
        mail = certs.issue_for(folder / "certs", "mail", timedelta(days=1))
        self.env = {
            "IRKIT_PAGERDUTY_URL": f"http://127.0.0.1:{self.http_port}/v2/enqueue",
            "IRKIT_PAGERDUTY_ROUTING_KEY": ROUTING_KEY,
            "IRKIT_SLACK_WEBHOOK": (
                f"http://127.0.0.1:{self.http_port}/services/T0001/B0001/slack-secret-path-42"
            ),
            "IRKIT_SMTP_HOST": "127.0.0.1",
            "IRKIT_SMTP_PORT": str(self.smtp_port),
            "IRKIT_SMTP_USER": "irkit",
            "IRKIT_SMTP_PASSWORD": SMTP_PASSWORD,
            "IRKIT_SMTP_CA_FILE": str(certs.ca_file(folder / "certs")),
        }
        args = [
            str(folder),
            str(self.http_port),
            str(self.smtp_port),
            str(mail.cert),
            str(mail.key),
        ]
        self.process = subprocess.Popen(
            [sys.executable, "-m", "irkit.sandbox.paging_standins", *args],
            env={**os.environ, **self.env},
        )
        wait_for(
            lambda: (
                port_open("127.0.0.1", self.http_port) and port_open("127.0.0.1", self.smtp_port)
            ),
            "the stand-ins listen",
        )

    def received(self, kind: str) -> list[dict[str, Any]]:
        return paging_standins.read(self.folder, kind)


@pytest.fixture
def standins(tmp_path: Path) -> Iterator[Standins]:
    found = Standins(tmp_path / "standins")
    yield found
    found.process.terminate()
    found.process.wait(10)


class Listener:
    """`irkit listen` started as a service manager would start it."""

    def __init__(self, tmp_path: Path, values: dict[str, Any], env: dict[str, str]) -> None:
        self.reports = tmp_path / "reports"
        self.port = free_port()
        self.params = tmp_path / "listen.yaml"
        self.params.write_text(yaml.safe_dump(values))
        self.env = {**os.environ, "IRKIT_REPORTS": str(self.reports), **env}
        self.log = tmp_path / "listen.log"
        self.start()

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [*LISTEN, "--port", str(self.port), "-f", str(self.params)],
                env=self.env,
                cwd=ROOT,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        wait_for(self._alive, "irkit listen answers /healthz")

    def _alive(self) -> bool:
        assert self.process.poll() is None, self.log.read_text()
        try:
            return httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def post(self, data: Any, token: str | None = TOKEN, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
        content = data if isinstance(data, bytes) else json.dumps(data).encode()
        return httpx.post(f"{self.url}/alertmanager", content=content, headers=headers, **kwargs)

    def entries(self, state: str) -> list[dict[str, Any]]:
        folder = self.reports / "intake" / state
        return [json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))]

    def incidents(self) -> list[Path]:
        return sorted(p for p in (self.reports / "incidents").glob("*") if p.is_dir())

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(15)


@pytest.fixture
def started(tmp_path: Path) -> Iterator[list[Listener]]:
    listeners: list[Listener] = []
    yield listeners
    for listener in listeners:
        listener.stop()


def values_for(stack: Stack, **changes: Any) -> dict[str, Any]:
    return {
        **targets(stack),
        **CALM_HOST,
        "contacts": [f"On-call Engineer: {ONCALL}", "Database Admin: @dba-team"],
        "alert_email_to": ["oncall@example.com"],
        **changes,
    }


def finished(listener: Listener, count: int) -> bool:
    return len(listener.entries("done")) >= count


def test_refusals_leave_nothing_behind(tmp_path: Path, started: list[Listener]) -> None:
    listener = Listener(tmp_path, {}, {"IRKIT_LISTEN_TOKEN": TOKEN})
    started.append(listener)
    good = body()
    for token, says in [(None, 401), ("wrong-token", 401), (f"{TOKEN}x", 401)]:
        refused = listener.post(good, token=token)
        assert refused.status_code == says
        assert refused.json()["error"] == "missing or wrong bearer token"
    big = listener.post(b'{"version": "4", "pad": "' + b"x" * (5 << 20) + b'"}')
    assert big.status_code == 413
    for data, says in [
        (b"{not json", "the body is not JSON"),
        (body(version="3"), "version '3' is not supported"),
        (body(alerts=[]), "alerts is empty"),
        (body(groupKey=None), "groupKey must be a string"),
    ]:
        refused = listener.post(data)
        assert refused.status_code == 400
        assert says in refused.json()["error"]
    assert httpx.get(f"{listener.url}/").status_code == 401  # the status page names incidents
    assert listener.entries("pending") == listener.entries("done") == []
    assert not (listener.reports / "incidents").exists()
    health = httpx.get(f"{listener.url}/healthz").json()
    assert health == {"status": "ok", "waiting": 0, "running": 0}


@pytest.mark.parametrize(
    ("args", "env", "says"),
    [
        ([], {}, "IRKIT_LISTEN_TOKEN is not set"),
        (["--insecure-loopback", "--host", "0.0.0.0"], {}, "loopback only, not on 0.0.0.0"),
        (["-p", 'alert_sections=["HighCPU: cpu"]'], {"IRKIT_LISTEN_TOKEN": TOKEN}, "no section"),
        (["-p", "alert_max_runs=0"], {"IRKIT_LISTEN_TOKEN": TOKEN}, "alert_max_runs must be"),
        (["--port", "70000"], {"IRKIT_LISTEN_TOKEN": TOKEN}, "is not a port number"),
    ],
)
def test_the_receiver_refuses_to_start_unsafe_or_misconfigured(
    tmp_path: Path, args: list[str], env: dict[str, str], says: str
) -> None:
    env = {"IRKIT_LISTEN_TOKEN": "", **env}
    done = irkit("listen", "--port", str(free_port()), *args, reports=tmp_path, env=env, timeout=30)
    assert done.returncode == 3, done.stdout + done.stderr
    assert says in done.stderr
    assert "Traceback" not in done.stderr


def test_an_alert_group_becomes_one_incident_with_its_notebooks_and_pages(
    stack: Stack, tmp_path: Path, standins: Standins, started: list[Listener]
) -> None:
    listener = Listener(tmp_path, values_for(stack), {"IRKIT_LISTEN_TOKEN": TOKEN, **standins.env})
    started.append(listener)
    accepted = listener.post(body())
    assert accepted.status_code == 200, accepted.text
    wait_for(lambda: finished(listener, 1), "the alert handled", 90)
    (folder,) = listener.incidents()
    incident_id = folder.name
    incident = load.load_folder(folder)
    ran = {n.section: n for n in incident.notebooks if n.ran}
    assert set(ran) == {"triage", "db"}
    assert all(n.complete for n in ran.values())
    f = incident.fields
    assert f["severity"] == "P1"  # the alert's critical, kept by the decision list's floor
    assert f["category"] == "database"
    assert f["alert"]["group_key"] == body()["groupKey"]
    assert f["detection_source"].startswith("Alertmanager alert PostgresConnectionsHigh")
    assert f["impact_started_at"].startswith("2026-12-01T10:00:00")
    assert not f.get("acknowledged_at")  # nobody has taken the page yet
    assert not f.get("responder")
    # PagerDuty's stand-in took one trigger keyed by the incident; Slack named it and the on-call.
    (page,) = standins.received("pagerduty")
    assert page["accepted"], page["errors"]
    assert page["event"]["event_action"] == "trigger"
    assert page["event"]["dedup_key"] == incident_id
    (message,) = standins.received("slack")
    assert incident_id in message["text"]
    assert f"<@{ONCALL}>" in message["text"]
    assert f["pagerduty"] == "triggered"
    kinds = [e["kind"] for e in incident.timeline]
    assert kinds.count("page") == 2
    assert "alert" in kinds

    # Alertmanager's repeat notification joins the incident; the resolved one is an event only.
    assert listener.post(body()).status_code == 200
    resolved = body(status="resolved", alerts=[{**body()["alerts"][0], "status": "resolved"}])
    assert listener.post(resolved).status_code == 200
    wait_for(lambda: finished(listener, 3), "the repeat and the resolution handled", 60)
    assert listener.incidents() == [folder]
    incident = load.load_folder(folder)
    texts = [e["text"] for e in incident.timeline]
    assert any(t.startswith("alert still firing: PostgresConnectionsHigh") for t in texts)
    assert any(t.startswith("alert resolved: PostgresConnectionsHigh") for t in texts)
    assert incident.fields["status"] == "investigating"
    assert len(standins.received("pagerduty")) == 1

    # A responder's triage acknowledges the page; `irkit run resolve` resolves it.
    env = standins.env
    triage = irkit("run", "triage", "--incident", incident_id, reports=listener.reports, env=env)
    assert triage.returncode < 3, triage.stdout + triage.stderr
    done = irkit("run", "resolve", "--incident", incident_id, reports=listener.reports, env=env)
    assert "RESOLVED" in done.stdout, done.stdout + done.stderr
    actions = [p["event"]["event_action"] for p in standins.received("pagerduty")]
    assert actions == ["trigger", "acknowledge", "resolve"]
    assert all(p["event"]["dedup_key"] == incident_id for p in standins.received("pagerduty"))
    assert load.load_folder(folder).fields["pagerduty"] == "resolved"

    # An error-rate alert is emailed too, over STARTTLS with a login.
    errors = body(
        groupKey='{}:{alertname="HighErrorRate"}',
        groupLabels={"alertname": "HighErrorRate"},
        commonLabels={"alertname": "HighErrorRate", "severity": "warning"},
        commonAnnotations={"summary": "More than 5 % of requests fail"},
    )
    assert listener.post(errors).status_code == 200
    wait_for(lambda: finished(listener, 4), "the error-rate alert handled", 90)
    (mail,) = standins.received("email")
    assert mail["to"] == ["oncall@example.com"]
    assert (mail["tls"], mail["login"]) == (True, True)
    assert "HighErrorRate" in mail["subject"]
    # No secret the receiver holds reached the record, its logs or the intake's journal.
    secrets = [TOKEN, ROUTING_KEY, SMTP_PASSWORD, "slack-secret-path-42"]
    for path in listener.reports.rglob("*"):
        if path.is_file():
            text = path.read_text(errors="replace")
            assert not [s for s in secrets if s in text], path


def test_a_full_spool_answers_503_and_loses_nothing(
    stack: Stack, tmp_path: Path, started: list[Listener]
) -> None:
    values = values_for(stack, alert_queue_size=2, alert_max_runs=1)
    listener = Listener(tmp_path, values, {"IRKIT_LISTEN_TOKEN": TOKEN})
    started.append(listener)
    groups = [body(groupKey=f'{{}}:{{alertname="Unrouted{n}"}}') for n in range(3)]
    answers = [listener.post(g) for g in groups]
    assert [a.status_code for a in answers] == [200, 200, 503]
    assert answers[2].headers["Retry-After"] == "30"
    assert "alert_queue_size" in answers[2].json()["error"]
    wait_for(lambda: finished(listener, 2), "both accepted groups handled", 90)
    # Alertmanager sends it again: now it is taken.
    assert listener.post(groups[2]).status_code == 200
    wait_for(lambda: finished(listener, 3), "the third group handled", 60)
    assert len(listener.incidents()) == 3
    page = httpx.get(f"{listener.url}/", headers={"Authorization": f"Bearer {TOKEN}"})
    assert page.text.count("opened ") == 3


@pytest.mark.parametrize("run_survives", [True, False], ids=["run-survives", "run-killed-too"])
def test_a_receiver_killed_mid_run_resumes_without_losing_or_repeating(
    stack: Stack, tmp_path: Path, started: list[Listener], run_survives: bool
) -> None:
    listener = Listener(tmp_path, values_for(stack), {"IRKIT_LISTEN_TOKEN": TOKEN})
    started.append(listener)
    assert listener.post(body()).status_code == 200

    def running() -> dict[str, Any] | None:
        pending = listener.entries("pending")
        found = pending[0]["progress"].get("running") if pending else None
        return found if found and found.get("pid") else None

    wait_for(running, "a notebook run under way", 60)
    at_kill = running()
    assert at_kill is not None
    listener.process.kill()
    listener.process.wait()
    if not run_survives:
        os.killpg(at_kill["pid"], signal.SIGKILL)
    listener.start()
    wait_for(lambda: finished(listener, 1), "the alert handled after the restart", 120)
    (folder,) = listener.incidents()
    incident = load.load_folder(folder)
    ran = [n for n in incident.notebooks if n.ran]
    # Each notebook exactly once, complete: the one cut off ran again, the other was kept.
    assert sorted(n.section for n in ran) == ["db", "triage"]
    assert all(n.complete for n in ran)
    (entry,) = listener.entries("done")
    assert entry["progress"]["incident"] == folder.name
    interrupted = [e for e in incident.timeline if e["kind"] == "run-interrupted"]
    assert len(interrupted) == (0 if run_survives else 1)


def test_a_drill_pages_through_the_whole_alert_chain_with_nobody_typing(
    stack: Stack, tmp_path: Path
) -> None:
    """pool-exhaustion → Prometheus' PostgresConnectionsHigh (from the exporter) → Alertmanager →
    irkit listen → an incident with triage and db run → PagerDuty and Slack paged; Alertmanager's
    repeat joins it, its resolution is an event, and `irkit run resolve` resolves the page."""
    params = tmp_path / "stack.yaml"
    params.write_text(yaml.safe_dump(values_for(stack)))
    ports = {name: free_port() for name in ALERTING_PORTS}
    alerting = Alerting(
        tmp_path / "alerting",
        ports,
        stack.prometheus,
        pg_host=stack.postgres.host,
        pg_port=stack.postgres.port,
        cache_url=stack.redis.url(CACHE_DB),
        broker_url=stack.redis.url(BROKER_DB),
        tls_endpoints=tls_endpoints(stack),
        parameters=params,
        reports=tmp_path / "reports",
        sandbox_dir=stack.base,
    )
    spool = tmp_path / "reports" / "intake" / "done"
    received = alerting.standins_dir

    def handled(outcome: str) -> list[dict[str, Any]]:
        entries = [json.loads(p.read_text()) for p in sorted(spool.glob("*.json"))]
        return [e for e in entries if e["outcome"].startswith(f"PostgresConnectionsHigh {outcome}")]

    try:
        alerting.up()
        started = time.monotonic()
        drills.start(stack, "pool-exhaustion")
        try:
            wait_for(lambda: handled("firing: opened"), "the alert's incident opened", 60)
            took = time.monotonic() - started
            (entry,) = handled("firing: opened")
            incident_id = entry["progress"]["incident"]
            folder = tmp_path / "reports" / "incidents" / incident_id
            incident = load.load_folder(folder)
            ran = {n.section: n for n in incident.notebooks if n.ran}
            assert set(ran) == {"triage", "db"}, took
            assert ran["db"].status.name in ("WARN", "CRIT")  # the pool, as the drill holds it
            assert incident.fields["drill"] is True
            (page,) = paging_standins.read(received, "pagerduty")
            assert page["accepted"], page["errors"]
            assert page["event"]["dedup_key"] == incident_id
            (message,) = paging_standins.read(received, "slack")
            assert incident_id in message["text"]
            assert f"<@{ONCALL}>" in message["text"]
            # Alertmanager repeats the notification while the alert fires: no second incident.
            wait_for(lambda: handled("firing: joined"), "a repeat notification", 60)
        finally:
            drills.stop(stack, "pool-exhaustion")
        wait_for(lambda: handled("resolved"), "the resolved notification", 60)
        kinds = [e["kind"] for e in load.load_folder(folder).timeline]
        assert "alert-resolved" in kinds
        incidents = [p for p in (tmp_path / "reports" / "incidents").iterdir() if p.is_dir()]
        opened_for_it = [p for p in incidents if "postgresconnectionshigh" in p.name]
        assert opened_for_it == [folder]
        done = irkit(
            "run",
            "resolve",
            "--incident",
            incident_id,
            reports=tmp_path / "reports",
            env=alerting.paging_env(),
        )
        assert "RESOLVED" in done.stdout, done.stdout + done.stderr
        actions = [p["event"]["event_action"] for p in paging_standins.read(received, "pagerduty")]
        assert actions == ["trigger", "resolve"]
    finally:
        alerting.down()


def test_pages_that_cannot_go_out_say_why_without_their_secrets(
    standins: Standins, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in standins.env.items():
        monkeypatch.setenv(name, value)
    sent = paging.pagerduty("trigger", "INC-1", summary="[P1] pool full", severity="P1")
    assert sent.posted, sent.detail
    assert standins.received("pagerduty")[-1]["event"]["payload"]["severity"] == "critical"
    wrong_key = "W" * 32
    monkeypatch.setenv("IRKIT_PAGERDUTY_ROUTING_KEY", wrong_key)
    refused = paging.pagerduty("trigger", "INC-1", summary="x")
    assert not refused.posted
    assert refused.detail.startswith("HTTP 400")
    assert "not an integration key" in refused.detail
    assert wrong_key not in refused.detail
    monkeypatch.delenv("IRKIT_PAGERDUTY_ROUTING_KEY")
    assert "IRKIT_PAGERDUTY_ROUTING_KEY is not set" in paging.pagerduty("resolve", "INC-1").detail

    monkeypatch.setenv("IRKIT_SMTP_PASSWORD", "not-the-password-42")
    login = paging.email(["oncall@example.com"], "subject", "text")
    assert not login.posted
    assert "Authentication" in login.detail or "535" in login.detail, login.detail
    assert "not-the-password-42" not in login.detail
    monkeypatch.setenv("IRKIT_SMTP_STARTTLS", "no")
    clear = paging.email(["oncall@example.com"], "subject", "text")
    assert not clear.posted
    assert "only for a relay on loopback, without login" in clear.detail
    assert standins.received("email") == []

    webhook = standins.env["IRKIT_SLACK_WEBHOOK"]
    monkeypatch.setenv("IRKIT_SLACK_WEBHOOK", webhook.replace("secret-path", "wrong-path"))
    lost = paging.slack("*INCIDENT* x", ["U024BE7LH"])
    assert not lost.posted
    assert lost.detail.startswith("HTTP 404")
    assert "wrong-path" not in lost.detail
    monkeypatch.delenv("IRKIT_SLACK_WEBHOOK")
    assert "IRKIT_SLACK_WEBHOOK is not set" in paging.slack("x", []).detail
