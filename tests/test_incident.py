"""The incident record: opening, numbered runs, the merge, the rules (severity, SLA, messages,
postmortem), posting to a real local HTTP server, and a whole incident on the practice stack."""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import nbformat
import pytest

from irkit import drills
from irkit.errors import ConfigError
from irkit.incident import load, messages, postmortem, schema, severity, sla, store
from irkit.incident.log import JOURNAL, IncidentLog
from irkit.result import EVENT_MIME, INCIDENT_MIME, Result, Status
from irkit.sandbox.stack import Stack
from tests.helpers import CALM_HOST_ARGS, ROOT, Receiver, files, irkit

# Short, as on the practice stack: an earlier drill's errors stay in the default five minutes.
WINDOW = ["-p", "prom_window=15s"]


def when(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


# --- ids and folders -----------------------------------------------------------------------


@pytest.mark.parametrize("bad", ["../x", "/etc", "", ".hidden", "a/b", "x" * 82, "a b", "..", "é"])
def test_ids_with_path_tricks_are_refused(bad: str) -> None:
    with pytest.raises(ConfigError, match="not a valid incident id"):
        schema.check_id(bad)


@pytest.mark.parametrize(
    "args",
    [
        ["incident", "show", "../x"],
        ["incident", "show", "/etc"],
        ["incident", "show", ""],
        ["incident", "open", "--title", "t", "--id", "../x"],
        ["run", "disk", "--incident", "../x"],
        ["run", "disk", "-p", "incident_id=/etc"],
        ["postmortem", "../../etc"],
    ],
)
def test_cli_refuses_path_tricks_and_writes_nothing(tmp_path: Path, args: list[str]) -> None:
    reports = tmp_path / "reports"
    done = irkit(*args, reports=reports)
    assert done.returncode == 3, done.stdout + done.stderr
    assert "not a valid incident id" in done.stderr
    assert "Traceback" not in done.stderr
    assert not reports.exists() or files(reports) == []


def test_cli_user_errors(tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    cases = [
        (["incident", "show", "nope"], "no incident 'nope'"),
        (["run", "disk", "--incident", "nope"], "no incident 'nope'"),
        (["incident", "open", "--title", " "], "an incident needs a title"),
        (["incident", "open", "--title", "x", "--category", "network"], "category 'network'"),
        (["incident", "open", "--title", "x", "--severity", "P9"], "severity 'P9'"),
        (["incident", "open", "--title", "x", "--detected-at", "yesterday"], "is not a time"),
    ]
    for args, message in cases:
        done = irkit(*args, reports=reports)
        assert done.returncode == 3, (args, done.stderr)
        assert message in done.stderr, (args, done.stderr)
        assert "Traceback" not in done.stderr
    assert not (reports / "incidents").exists() or not any((reports / "incidents").iterdir())


def test_open_prepares_the_triage_notebook(tmp_path: Path) -> None:
    done = irkit(
        "incident",
        "open",
        "--title",
        "Login returns 500",
        "--category",
        "application",
        "--responder",
        "jane",
        "--id",
        "INC-1",
        reports=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    folder = tmp_path / "incidents" / "INC-1"
    nb = nbformat.read(folder / "01-triage.ipynb", as_version=4)
    injected = [c for c in nb.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert 'incident_id = "INC-1"' in injected[0].source
    assert all(c.get("outputs", []) == [] for c in nb.cells if c.cell_type == "code")
    incident = load.load_folder(folder)
    assert incident.fields["title"] == "Login returns 500"
    assert incident.fields["status"] == "investigating"
    assert incident.fields["responder"] == "jane"
    assert [e["kind"] for e in incident.timeline] == ["detected", "declared"]
    assert incident.notebooks[0].ran is False
    # The same id again is refused; the first incident is untouched.
    before = {p: p.read_bytes() for p in files(folder)}
    again = irkit("incident", "open", "--title", "other", "--id", "INC-1", reports=tmp_path)
    assert again.returncode == 3
    assert "already exists" in again.stderr
    assert {p: p.read_bytes() for p in files(folder)} == before


def test_opening_the_same_title_twice_gives_two_incidents(tmp_path: Path) -> None:
    for _ in range(2):
        assert irkit("incident", "open", "--title", "Same", reports=tmp_path).returncode == 0
    assert len(list((tmp_path / "incidents").iterdir())) == 2


# --- the merge -------------------------------------------------------------------------------


def executed(path: Path, outputs: list[dict[str, Any]], **papermill: Any) -> None:
    """A notebook as papermill leaves it, with the given display outputs."""
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("x")
    cell.outputs = [nbformat.v4.new_output("display_data", data=o) for o in outputs]
    nb.cells = [cell]
    nb.metadata["papermill"] = {"start_time": papermill.get("start", ""), "exception": None}
    if papermill.get("error"):
        cell.outputs.append(
            nbformat.v4.new_output("error", ename="RuntimeError", evalue="boom", traceback=[])
        )
        nb.metadata["papermill"]["exception"] = True
    nbformat.write(nb, path)


def event(at: str, text: str, kind: str = "note") -> dict[str, Any]:
    return {EVENT_MIME: {"at": at, "kind": kind, "text": text, "source": "t", "id": text}}


def test_merge_later_overrides_events_sorted_corrupt_skipped_failed_incomplete(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "INC-2"
    folder.mkdir()
    executed(
        folder / "01-triage.ipynb",
        [
            {INCIDENT_MIME: {"title": "t", "severity": "P1", "status": "investigating"}},
            event("2026-11-02T10:05:00Z", "second"),
        ],
        start="2026-11-02T10:00:00Z",
    )
    (folder / "02-db.ipynb").write_text("{ not json")
    executed(
        folder / "03-resolve.ipynb",
        [
            {INCIDENT_MIME: {"severity": "P0"}},
            event("2026-11-02T10:01:00Z", "first"),
            event("2026-11-02T10:05:00Z", "second"),  # the same event twice (journal and notebook)
        ],
        start="2026-11-02T11:00:00Z",
        error=True,
    )
    (folder / ".resolve.123.partial.ipynb").write_text("{}")  # a run still going: not read
    (folder / JOURNAL).write_text(
        json.dumps({"at": "2026-11-02T10:30:00Z", "incident": {"severity": "P2"}})
        + "\n"
        + "garbage\n"
        + json.dumps({"at": "2026-11-02T12:00:00Z", "incident": {"status": "resolved"}})
        + "\n"
    )
    incident = load.load_folder(folder)
    # 01 at 10:00 sets P1, the journal at 10:30 P2, 03 at 11:00 P0; status from the journal, 12:00.
    assert incident.fields["severity"] == "P0"
    assert incident.fields["status"] == "resolved"
    texts = [e["text"] for e in incident.timeline]
    assert texts.index("first") < texts.index("second")
    assert texts.count("second") == 1
    assert any(e["source"] == "03-resolve.ipynb" and e["kind"] == "run" for e in incident.timeline)
    assert [n.name for n in incident.notebooks] == ["01-triage.ipynb", "03-resolve.ipynb"]
    assert incident.notebooks[1].complete is False
    assert "RuntimeError: boom" in incident.notebooks[1].error
    assert any(w.startswith("02-db.ipynb: skipped") for w in incident.warnings)
    assert any("journal.jsonl line 2" in w for w in incident.warnings)
    shown = irkit("incident", "show", "INC-2", reports=tmp_path.parent / "r")  # another root
    assert shown.returncode == 3
    with_root = subprocess.run(
        [sys.executable, "-m", "irkit", "incident", "list"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
        env={**os.environ, "IRKIT_REPORTS": str(tmp_path.parent / "x")},
    )
    assert with_root.returncode == 0
    assert "no incidents yet" in with_root.stdout


def test_list_and_show_name_the_corrupt_file(tmp_path: Path) -> None:
    assert irkit("incident", "open", "--title", "t", "--id", "A", reports=tmp_path).returncode == 0
    (tmp_path / "incidents" / "A" / "02-db.ipynb").write_bytes(b"\x00\x01")
    shown = irkit("incident", "show", "A", reports=tmp_path)
    assert shown.returncode == 0
    assert "02-db.ipynb: skipped, unreadable notebook" in shown.stderr
    listed = irkit("incident", "list", "--json", reports=tmp_path)
    data = json.loads(listed.stdout)
    assert data[0]["incident_id"] == "A"
    assert data[0]["warnings"]
    table = irkit("incident", "list", reports=tmp_path)
    assert "[warnings]" in table.stdout


# --- rules ---------------------------------------------------------------------------------


def result(probe: str, status: Status, **evidence: Any) -> Result:
    return Result(probe=probe, target="t", status=status, summary=probe, evidence=evidence)


def smoke(**paths: bool) -> Result:
    rows = [
        {"path": p.replace("_", "/"), "ok": ok, "status_code": 200 if ok else 500}
        for p, ok in paths.items()
    ]
    status = Status.OK if all(paths.values()) else Status.CRIT
    return result("http.smoke", status, requests=rows)


LOGIN, CORE = "_accounts_login_", "_api_v1_journal_"


@pytest.mark.parametrize(
    ("results", "answers", "override", "expected", "reason"),
    [
        (
            [result("http.health", Status.CRIT, reachable=False)],
            {},
            "",
            "P0",
            "Is the service down completely? yes",
        ),
        (
            [result("http.health", Status.OK), smoke(**{LOGIN: False, CORE: True})],
            {},
            "",
            "P0",
            "Can users log in? no",
        ),
        (
            [result("http.health", Status.OK), smoke(**{LOGIN: True, CORE: False})],
            {},
            "",
            "P1",
            "core features",
        ),
        (
            [
                result("http.health", Status.OK),
                smoke(**{LOGIN: True, CORE: True}),
                result("prometheus.query", Status.CRIT),
            ],
            {},
            "",
            "P2",
            "no question decided",
        ),
        (
            [result("http.health", Status.OK), smoke(**{LOGIN: True, CORE: True})],
            {"one_tenant_only": True},
            "",
            "P2",
            "Is only one tenant affected? yes",
        ),
        (
            [result("http.health", Status.OK), smoke(**{LOGIN: True, CORE: True})],
            {"one_tenant_only": False, "cosmetic_only": True},
            "",
            "P3",
            "cosmetic issue? yes",
        ),
        # Not known whether users can log in: assume the worse until a human answers.
        ([result("http.health", Status.OK)], {}, "", "P0", "not yet known: Can users log in?"),
        # The responder overrides an inferred answer, and the whole list.
        (
            [result("http.health", Status.CRIT, reachable=False)],
            {"service_down": False, "users_can_login": True, "core_features_work": True},
            "",
            "P2",
            "no question",
        ),
        (
            [result("http.health", Status.CRIT, reachable=False)],
            {},
            "P3",
            "P3",
            "set by the responder",
        ),
    ],
)
def test_severity_decision_list(
    results: list[Result], answers: dict[str, bool], override: str, expected: str, reason: str
) -> None:
    decision = severity.decide(
        results,
        answers,
        override=override,
        login_path="/accounts/login/",
        core_paths=["/api/v1/journal/"],
    )
    assert decision.severity == expected
    assert reason in decision.reason
    sources = {a.key: a.source for a in decision.answers}
    for key in answers:
        assert sources[key] == "responder"


def test_sla_clocks_and_durations() -> None:
    fields = {"severity": "P0", "detected_at": "2024-01-15T14:35:00Z"}
    response, resolution = sla.clocks(fields)
    assert response.deadline == when("2024-01-15T14:50:00")
    assert resolution.deadline == when("2024-01-15T16:35:00")
    assert response.state(when("2024-01-15T14:40:00")) == "pending"
    assert response.left(when("2024-01-15T14:40:00")) == timedelta(minutes=10)
    assert response.state(when("2024-01-15T15:00:00")) == "breached"
    acknowledged = sla.clocks({**fields, "acknowledged_at": "2024-01-15T14:37:00Z"})[0]
    assert acknowledged.state(when("2024-01-16T00:00:00")) == "met"
    assert [c.target for c in sla.clocks({**fields, "severity": "P3"})] == [
        timedelta(hours=24),
        timedelta(days=5),
    ]
    assert sla.clocks({"severity": "P1"}) == []


def test_a_clock_stopped_before_it_started_is_impossible_not_met() -> None:
    fields = {
        "severity": "P2",
        "detected_at": "2024-01-15T14:35:00Z",
        "resolved_at": "2024-01-15T14:00:00Z",
    }
    now = when("2024-01-16T00:00:00")
    assert [c.state(now) for c in sla.clocks(fields)] == ["breached", "impossible"]
    table = sla.ClockTable(fields, now)
    assert table.rows()[1]["left"] == "stopped before it started: correct the record"
    assert "impossible" in table._repr_mimebundle_()["text/html"]


RUNBOOK_EXAMPLE = {
    "title": "Login page returns 500",
    "severity": "P0",
    "status": "resolved",
    "impact_started_at": "2024-01-15T14:33:00Z",
    "detected_at": "2024-01-15T14:35:00Z",
    "acknowledged_at": "2024-01-15T14:37:00Z",
    "mitigated_at": "2024-01-15T15:10:00Z",
    "resolved_at": "2024-01-15T15:22:00Z",
    "users_affected": 120,
    "root_cause": "PostgreSQL connection pool exhausted (max_connections=100)",
    "resolution": "Restarted web service, increased pool size to 200",
    "action_items": [schema.action_item("Add connection pool monitoring alert")],
}


def test_the_runbooks_example_durations() -> None:
    d = sla.durations(RUNBOOK_EXAMPLE)
    assert d["ttr"] == timedelta(minutes=47)
    assert d["ttd"] == timedelta(minutes=2)
    assert d["tta"] == timedelta(minutes=2)
    assert d["ttm"] == timedelta(minutes=37)
    assert d["impact"] == timedelta(minutes=49)
    text = messages.resolved(RUNBOOK_EXAMPLE).markdown
    assert "**Duration:** 47 minutes (14:35 - 15:22 UTC)" in text
    assert "**Affected Users:** ~120 concurrent sessions" in text
    assert "- [ ] Add connection pool monitoring alert" in text


def test_detected_message_names_what_is_missing() -> None:
    now = when("2024-01-15T14:35:00")
    full = {
        **RUNBOOK_EXAMPLE,
        "status": "investigating",
        "impact": "Login page returns 500 errors",
        "responder": "john.doe",
        "tenants_affected": "all",
    }
    text = messages.detected(full, now).markdown
    assert text.splitlines() == [
        "🚨 **INCIDENT DETECTED** 🚨",
        "**Severity:** P0 - Critical",
        "**Status:** Investigating",
        "**Impact:** Login page returns 500 errors",
        "**Affected:** All tenants (estimated 120 active sessions)",
        "**Started:** 2024-01-15 14:35 UTC",
        "**Responder:** @john.doe",
        "",
        "**Next Update:** In 30 minutes (15:05 UTC)",
    ]
    assert messages.detected(full, now).missing == ()
    bare = messages.detected({"title": "x"}, now)
    assert set(bare.missing) == {"severity", "impact", "users_affected", "responder"}
    assert "(not recorded)" in bare.markdown
    page = messages.statuspage({**full, "title": "Login Service Degraded"}).payload
    assert page["incident"]["name"] == "Login Service Degraded"
    assert page["incident"]["status"] == "investigating"
    assert (
        page["incident"]["body"] == "We are investigating reports of login page returns 500 errors"
    )


def test_action_items() -> None:
    assert schema.action_item("Add alert | Backend Lead | 2026-12-01 | P1") == {
        "action": "Add alert",
        "owner": "Backend Lead",
        "due": "2026-12-01",
        "priority": "P1",
        "done": False,
    }
    assert schema.action_item("[x] Done thing")["done"] is True
    for bad in ("| owner", "a | b | 2026-13-01", "a | b | 2026-12-01 | urgent", "a|b|c|P1|e"):
        with pytest.raises(ConfigError):
            schema.action_item(bad)


def test_postmortem_lists_what_is_missing_and_never_overwrites(tmp_path: Path) -> None:
    incident = load.Incident("INC-3", tmp_path, fields={"title": "Only a title"})
    document = postmortem.build(incident)
    for heading in postmortem.SECTIONS:
        assert f"## {heading}" in document.markdown
    assert "root_cause" in document.missing
    assert "## Missing from the record" in document.markdown
    first = document.write(tmp_path)
    second = postmortem.build(incident, author="someone").write(tmp_path)
    assert (first.name, second.name) == ("postmortem.md", "postmortem-2.md")
    assert "**Author:** (not recorded)" in first.read_text()


# --- real runs -----------------------------------------------------------------------------


def test_posting_is_only_on_request_and_a_failure_is_recorded(
    tmp_path: Path, stack: Stack, receiver: Receiver
) -> None:
    token = "sp-token-0a1b2c3d4e"
    hook = f"{receiver.url}/services/T0/B0/hooksecret9f8e7d"
    env = {"IRKIT_SLACK_WEBHOOK": hook, "IRKIT_STATUSPAGE_TOKEN": token}
    assert (
        irkit(
            "incident",
            "open",
            "--title",
            "Login returns 500",
            "--id",
            "N1",
            "--severity",
            "P1",
            reports=tmp_path,
        ).returncode
        == 0
    )
    quiet = irkit("run", "triage", "--incident", "N1", reports=tmp_path, env=env)
    assert quiet.returncode < 3, quiet.stderr
    assert receiver.requests == []  # not asked: nothing posted
    loud = irkit(
        "run",
        "triage",
        "--incident",
        "N1",
        "-p",
        "notify=true",
        "-p",
        "statuspage_page_id=page42",
        "-p",
        f"statuspage_api={receiver.url}/v1",
        reports=tmp_path,
        env=env,
    )
    assert loud.returncode < 3, loud.stderr
    slack, page = receiver.requests
    assert slack["path"] == "/services/T0/B0/hooksecret9f8e7d"
    assert slack["json"]["text"].startswith("🚨 *INCIDENT DETECTED* 🚨\n*Severity:* P")
    assert page["path"] == "/v1/pages/page42/incidents"
    assert page["headers"]["Authorization"] == f"OAuth {token}"
    assert page["json"]["incident"]["name"] == "Login returns 500"
    # The receiver refuses: the run still completes and the failure is in the record.
    receiver.status = 403
    failed = irkit(
        "run", "triage", "--incident", "N1", "-p", "notify=true", reports=tmp_path, env=env
    )
    assert failed.returncode < 3, failed.stderr
    incident = _load(tmp_path, "N1")
    kinds = [(e["kind"], e.get("data", {}).get("channel")) for e in incident.timeline]
    assert ("message", "slack") in kinds
    assert ("message", "statuspage") in kinds
    assert ("message-failed", "slack") in kinds
    refused = next(e for e in incident.timeline if e["kind"] == "message-failed")
    assert "HTTP 403" in refused["text"]
    assert all(n.complete for n in incident.notebooks if n.ran)
    for path in files(tmp_path):
        content = path.read_bytes()
        assert b"hooksecret9f8e7d" not in content, path
        assert token.encode() not in content, path


@contextlib.contextmanager
def drill(stack: Stack, name: str) -> Iterator[None]:
    drills.start(stack, name)
    try:
        yield
    finally:
        drills.stop(stack, name)


def _load(reports: Path, incident_id: str) -> load.Incident:
    return load.load_folder(reports / "incidents" / incident_id)


def test_two_runs_into_one_incident_at_once_both_land(tmp_path: Path) -> None:
    assert irkit("incident", "open", "--title", "t", "--id", "C", reports=tmp_path).returncode == 0
    env = {
        "IRKIT_REPORTS": str(tmp_path),
        **{k: v for k, v in os.environ.items() if k != "IRKIT_REPORTS"},
    }
    runs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "irkit",
                "run",
                "disk",
                "--incident",
                "C",
                "-p",
                "host_cpu_interval_s=0.1",
            ],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [r.communicate(timeout=120) for r in runs]
    assert all(r.returncode < 3 for r in runs), outputs
    names = sorted(p.name for p in store.numbered_notebooks(tmp_path / "incidents" / "C"))
    assert names == ["01-triage.ipynb", "02-disk.ipynb", "03-disk.ipynb"]
    assert not [p for p in (tmp_path / "incidents" / "C").iterdir() if "partial" in p.name]


def test_the_runbooks_example_in_the_postmortem(tmp_path: Path, stack: Stack) -> None:
    """Spike 14:33, alert 14:35, resolved 15:22: duration 47 min, time to detect 2 min."""
    opened = irkit(
        "incident",
        "open",
        "--title",
        "Login page returns 500",
        "--id",
        "RB-1",
        "--severity",
        "P0",
        "--category",
        "database",
        "--impact-started-at",
        "2024-01-15T14:33:00Z",
        "--detected-at",
        "2024-01-15T14:35:00Z",
        "--detection-source",
        "Prometheus alert (error_rate > 5%)",
        reports=tmp_path,
    )
    assert opened.returncode == 0, opened.stderr
    resolved = irkit(
        "run",
        "resolve",
        "--incident",
        "RB-1",
        *WINDOW,
        *CALM_HOST_ARGS,
        "-p",
        "root_cause=PostgreSQL connection pool exhausted",
        "-p",
        "root_cause_key=pg-pool-exhausted",
        "-p",
        "resolution=Restarted web service, increased pool size to 200",
        "-p",
        "mitigated_at=2024-01-15T15:10:00Z",
        "-p",
        "resolved_at=2024-01-15T15:22:00Z",
        "-p",
        "load_requests=20",
        "-p",
        'action_items=["Increase PostgreSQL max_connections to 200 | DevOps Lead | '
        '2024-01-16 | P0"]',
        reports=tmp_path,
    )
    assert resolved.returncode < 3, resolved.stdout + resolved.stderr
    pm = irkit("postmortem", "RB-1", "-p", "author=John Doe", reports=tmp_path)
    assert pm.returncode == 0, pm.stdout + pm.stderr
    text = (tmp_path / "incidents" / "RB-1" / "postmortem.md").read_text()
    assert "**Duration:** 47 minutes (14:35 - 15:22 UTC)" in text
    assert "- **Time to detect:** 2 minutes (alert triggered 14:35, impact started 14:33)" in text
    assert "impact 49 min from its start" in text
    assert "**Date:** 2024-01-15" in text
    assert (
        "| Increase PostgreSQL max_connections to 200 | DevOps Lead | 2024-01-16 | P0 | no |"
        in text
    )
    # The same numbers from the CLI.
    shown = irkit("incident", "show", "RB-1", reports=tmp_path).stdout
    assert "TTD 2 min" in shown
    assert "TTR 47 min" in shown
    assert "IMPACT 49 min" in shown
    # And from the monthly analysis of these records.
    monthly = irkit("report", "monthly", "--month", "2024-01", "--months", "1", reports=tmp_path)
    assert monthly.returncode == 0, monthly.stderr
    assert monthly.stdout.startswith(
        "2024-01: 1 incident(s) (P0 1); 0 still open; time to resolve: median 47 min, mean 47, "
        "p90 47 (n=1); 0 drill(s) left out; 0 record(s) with data problems"
    ), monthly.stdout


def test_a_whole_incident_on_the_practice_stack(tmp_path: Path, stack: Stack) -> None:
    """Drill → open → triage → db → (drill stopped) resolve → postmortem; every step recorded."""
    with drill(stack, "pool-exhaustion"):
        opened = irkit(
            "incident",
            "open",
            "--title",
            "Database connections exhausted",
            "--category",
            "database",
            "--id",
            "DRILL-1",
            "--detection-source",
            "drill pool-exhaustion",
            reports=tmp_path,
        )
        assert opened.returncode == 0, opened.stderr
        assert "(drill: pool-exhaustion)" in opened.stdout
        triage = irkit(
            "run",
            "triage",
            "--incident",
            "DRILL-1",
            *WINDOW,
            "-p",
            "answer_one_tenant_only=no",
            "-p",
            "answer_cosmetic_only=no",
            "-p",
            "impact=Pages slow or failing",
            reports=tmp_path,
        )
        assert triage.returncode < 3, triage.stdout + triage.stderr
        db = irkit("run", "db", "--incident", "DRILL-1", reports=tmp_path)
        assert db.returncode in (1, 2), db.stdout  # the pool is (nearly) full
    mitigated = schema.format_time(datetime.now(UTC))  # the drill stopped: the mitigation
    resolved = irkit(
        "run",
        "resolve",
        "--incident",
        "DRILL-1",
        *WINDOW,
        *CALM_HOST_ARGS,
        "-p",
        "root_cause=Connections held open by a leaking client",
        "-p",
        "root_cause_key=pg-pool-exhausted",
        "-p",
        "resolution=Stopped the client that held them",
        "-p",
        f"mitigated_at={mitigated}",
        "-p",
        'action_items=["Add connection pool alert | Backend Lead | 2026-12-01 | P1"]',
        reports=tmp_path,
    )
    assert "RESOLVED" in json.dumps(
        nbformat.read(tmp_path / "incidents" / "DRILL-1" / "04-resolve.ipynb", as_version=4)
    )
    lesson = 'went_well=["The drill was caught by the db notebook"]'
    pm = irkit("postmortem", "DRILL-1", "-p", "author=Trainee", "-p", lesson, reports=tmp_path)
    assert pm.returncode == 0, pm.stdout + pm.stderr
    assert resolved.returncode < 3

    incident = _load(tmp_path, "DRILL-1")
    f = incident.fields
    assert f["drill"] is True
    assert f["drills"] == ["pool-exhaustion"]
    # What the app showed while the pool was held decides: P0 if the login page failed, else
    # P1 if a core URL did, else P2 (the responder said: not one tenant, not cosmetic).
    decided = next(e["text"] for e in incident.timeline if e["kind"] == "severity")
    assert decided.startswith(f"severity: {f['severity']} (")
    assert f["severity"] in {"P0", "P1", "P2"}
    assert f["status"] == "closed"  # resolved, then closed by the postmortem
    assert f["root_cause_key"] == "pg-pool-exhausted"
    assert f["action_items"][0]["owner"] == "Backend Lead"
    assert f["lessons"]["went_well"] == ["The drill was caught by the db notebook"]
    for name in ("detected_at", "acknowledged_at", "mitigated_at", "resolved_at", "closed_at"):
        assert schema.parse_time(f[name]) is not None, name
    assert isinstance(f["users_affected"], int)
    assert [n.name for n in incident.notebooks] == [
        "01-triage.ipynb",
        "02-triage.ipynb",
        "03-db.ipynb",
        "04-resolve.ipynb",
        "05-postmortem.ipynb",
    ]
    assert all(n.complete for n in incident.notebooks)
    shown = irkit("incident", "show", "DRILL-1", reports=tmp_path).stdout
    # The postmortem gives no verdict, so none is shown for it.
    assert f"  {'05-postmortem.ipynb':<24} ran, no checks" in shown
    assert re.search(r"  03-db\.ipynb +(WARN|CRIT)\n", shown), shown
    kinds = [e["kind"] for e in incident.timeline]
    times = [schema.parse_time(e["at"]) for e in incident.timeline]
    assert times == sorted(times)  # type: ignore[type-var]
    order = ["declared", "drill", "acknowledged", "severity", "status", "resolved", "postmortem"]
    # Each step first appears in the runbook's order; the findings come between the
    # acknowledgement and the resolution (triage's own checks may find one before it decides
    # the severity).
    assert sorted(order, key=kinds.index) == order
    assert kinds.index("acknowledged") < kinds.index("verdict") < kinds.index("resolved")
    crit = [e["text"] for e in incident.timeline if e["kind"] == "verdict"]
    assert any(
        t.startswith(("CRIT postgres.connections", "WARN postgres.connections")) for t in crit
    )
    assert "status: resolved → closed (postmortem written)" in [
        e["text"] for e in incident.timeline
    ]
    assert "status: investigating → resolved (no check is CRIT)" in [
        e["text"] for e in incident.timeline
    ]

    text = (tmp_path / "incidents" / "DRILL-1" / "postmortem.md").read_text()
    for heading in postmortem.SECTIONS:
        assert f"## {heading}" in text
    assert "# Postmortem: Database connections exhausted" in text
    assert "This was a drill" in text
    assert "| Add connection pool alert | Backend Lead | 2026-12-01 | P1 | no |" in text
    assert " postgres.connections: " in text
    assert "- The drill was caught by the db notebook" in text
    assert "- revenue_impact" in text.split("## Missing from the record")[1]
    assert "## Root Cause\nConnections held open by a leaking client" in text
    # The monthly analysis lists the drill apart and counts nothing from it.
    month = f["detected_at"][:7]
    monthly = irkit("report", "monthly", "--month", month, reports=tmp_path)
    assert monthly.returncode == 0, monthly.stderr
    assert monthly.stdout.startswith(f"No incidents in {month} "), monthly.stdout
    assert "1 drill(s) left out" in monthly.stdout


# --- what a second look found ----------------------------------------------------------------


def test_times_are_checked_and_kept_in_utc(tmp_path: Path) -> None:
    future = (datetime.now(UTC) + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%S")
    refused = irkit("incident", "open", "--title", "t", "--detected-at", future, reports=tmp_path)
    assert refused.returncode == 3
    assert "is in the future" in refused.stderr
    backwards = irkit(
        "incident",
        "open",
        "--title",
        "t",
        "--detected-at",
        "2024-01-15T14:35:00Z",
        "--impact-started-at",
        "2024-01-15T15:00:00Z",
        reports=tmp_path,
    )
    assert backwards.returncode == 3
    assert "after it was detected" in backwards.stderr
    assert not (tmp_path / "incidents").exists() or not any((tmp_path / "incidents").iterdir())
    zoned = irkit(
        "incident",
        "open",
        "--title",
        "t",
        "--id",
        "Z",
        "--detected-at",
        "2024-01-15T15:35:00+01:00",
        reports=tmp_path,
    )
    assert zoned.returncode == 0, zoned.stderr
    incident = _load(tmp_path, "Z")
    assert incident.fields["detected_at"] == "2024-01-15T14:35:00Z"
    assert schema.parse_time("2024-01-15T16:22:00+01:00") == when("2024-01-15T15:22:00")
    # The opening is journaled when it happened, not at the (earlier) detection time it records.
    journal = [json.loads(line) for line in (incident.folder / JOURNAL).read_text().splitlines()]
    assert schema.parse_time(journal[0]["at"]) > when("2026-01-01T00:00:00")  # type: ignore[operator]


def test_a_bad_webhook_is_reported_not_fatal(monkeypatch: pytest.MonkeyPatch) -> None:
    from irkit.incident import notify
    from irkit.incident.log import IncidentLog

    monkeypatch.setenv("IRKIT_SLACK_WEBHOOK", "http://hooks.example/x\n")
    delivery = notify.send(IncidentLog("", "t"), messages.resolved({}), notify=True)
    assert delivery is not None
    assert not delivery.posted
    assert "hooks.example" not in delivery.detail


def test_the_responders_severity_stays_and_resolve_keeps_a_closed_incident(
    tmp_path: Path, stack: Stack
) -> None:
    opened = irkit(
        "incident", "open", "--title", "t", "--id", "K", "--severity", "P0", reports=tmp_path
    )
    assert opened.returncode == 0, opened.stderr
    triage = irkit("run", "triage", "--incident", "K", *WINDOW, reports=tmp_path)
    assert triage.returncode < 3, triage.stdout + triage.stderr
    incident = _load(tmp_path, "K")
    assert incident.fields["severity"] == "P0"  # the probes alone would say less
    first = [*WINDOW, *CALM_HOST_ARGS, "-p", "load_requests=10", "-p", 'action_items=["First | A"]']
    assert irkit("run", "resolve", "--incident", "K", *first, reports=tmp_path).returncode < 3
    assert (
        irkit("postmortem", "K", "-p", 'action_items=["Second | B"]', reports=tmp_path).returncode
        == 0
    )
    closed = _load(tmp_path, "K").fields
    assert closed["status"] == "closed"
    again = [*WINDOW, *CALM_HOST_ARGS, "-p", "load_requests=10", "-p", 'action_items=["Third | C"]']
    assert irkit("run", "resolve", "--incident", "K", *again, reports=tmp_path).returncode < 3
    after = _load(tmp_path, "K").fields
    assert after["status"] == "closed"
    assert after["resolved_at"] == closed["resolved_at"]
    assert after["closed_at"] == closed["closed_at"]
    assert [i["action"] for i in after["action_items"]] == ["First", "Second", "Third"]
    assert "mitigated_at" not in after  # not given: not invented


def test_times_given_after_the_fact_are_kept_and_checked(tmp_path: Path, stack: Stack) -> None:
    """A record written up later: the pager's acknowledgement time is kept, and a time before
    the detection is refused, not recorded."""
    opened = irkit(
        "incident",
        "open",
        "--title",
        "t",
        "--id",
        "LATE",
        "--severity",
        "P2",
        "--detected-at",
        "2024-01-15T14:35:00Z",
        reports=tmp_path,
    )
    assert opened.returncode == 0, opened.stderr
    early = irkit(
        "run",
        "triage",
        "--incident",
        "LATE",
        *WINDOW,
        "-p",
        "acknowledged_at=2024-01-15T14:30:00Z",
        reports=tmp_path,
    )
    assert early.returncode == 3
    assert "acknowledged_at 2024-01-15T14:30:00Z is before detected_at" in (
        early.stdout + early.stderr
    )
    assert "acknowledged_at" not in _load(tmp_path, "LATE").fields
    triage = irkit(
        "run",
        "triage",
        "--incident",
        "LATE",
        *WINDOW,
        "-p",
        "acknowledged_at=2024-01-15T14:41:00+00:00",
        reports=tmp_path,
    )
    assert triage.returncode < 3, triage.stdout + triage.stderr
    incident = _load(tmp_path, "LATE")
    assert incident.fields["acknowledged_at"] == "2024-01-15T14:41:00Z"
    (ack,) = [e for e in incident.timeline if e["kind"] == "acknowledged"]
    assert schema.parse_time(ack["at"]) == when("2024-01-15T14:41:00")
    assert sla.durations(incident.fields)["tta"] == timedelta(minutes=6)
    backwards = irkit(
        "run",
        "resolve",
        "--incident",
        "LATE",
        *WINDOW,
        "-p",
        "load_requests=10",
        "-p",
        "resolved_at=2024-01-15T14:00:00Z",
        reports=tmp_path,
    )
    assert backwards.returncode == 3
    assert "resolved_at 2024-01-15T14:00:00Z is before detected_at" in (
        backwards.stdout + backwards.stderr
    )
    assert "resolved_at" not in _load(tmp_path, "LATE").fields
    again = irkit(
        "run",
        "triage",
        "--incident",
        "LATE",
        *WINDOW,
        "-p",
        "acknowledged_at=2024-01-15T14:41:00Z",
        reports=tmp_path,
    )
    assert again.returncode < 3, again.stdout + again.stderr
    resolved = irkit(
        "run",
        "resolve",
        "--incident",
        "LATE",
        *WINDOW,
        "-p",
        "load_requests=10",
        "-p",
        "declare_resolved=true",
        "-p",
        "mitigated_at=2024-01-15T15:00:00Z",
        "-p",
        "resolved_at=2024-01-15T15:30:00Z",
        reports=tmp_path,
    )
    assert resolved.returncode < 3, resolved.stdout + resolved.stderr
    # Written up afterwards, the timeline still reads in the order things happened.
    timeline = {e["kind"]: e["at"] for e in _load(tmp_path, "LATE").timeline}
    assert [e["kind"] for e in _load(tmp_path, "LATE").timeline].count("acknowledged") == 1
    assert schema.parse_time(timeline["mitigated"]) == when("2024-01-15T15:00:00")
    assert schema.parse_time(timeline["resolved"]) == when("2024-01-15T15:30:00")


class _CountingLog(IncidentLog):
    def __init__(self) -> None:
        super().__init__("", "triage")
        self.kinds: list[str] = []

    def event(self, kind: str, text: str, *, at: datetime | None = None, **data: Any) -> Any:
        self.kinds.append(kind)
        return super().event(kind, text, at=at, **data)


def test_an_acknowledgement_is_one_event_and_may_come_before_an_unknown_detection() -> None:
    from types import SimpleNamespace

    from irkit.incident import triage

    log = _CountingLog()
    section = SimpleNamespace(incident=log)
    earlier = schema.format_time(datetime.now(UTC) - timedelta(minutes=10))
    fields = triage.start(section, responder="r", acknowledged_at=earlier)  # type: ignore[arg-type]
    # No detection time anywhere: the page taken 10 min ago was the detection at the latest.
    assert fields["detected_at"] == fields["acknowledged_at"] == earlier
    # The same parameter kept for a second run adds nothing.
    triage.start(section, acknowledged_at=earlier)  # type: ignore[arg-type]
    assert log.kinds.count("acknowledged") == 1
    future = schema.format_time(datetime.now(UTC) + timedelta(hours=1))
    with pytest.raises(ConfigError, match="is in the future"):
        triage.start(section, acknowledged_at=future)  # type: ignore[arg-type]


def test_resolution_times_are_checked_against_the_record() -> None:
    from types import SimpleNamespace

    from irkit.incident import resolve

    log = IncidentLog("", "resolve")
    log.fields = {
        "impact_started_at": "2024-01-15T14:33:00Z",
        "detected_at": "2024-01-15T14:35:00Z",
    }
    section = SimpleNamespace(incident=log)
    resolve.check_times(
        section,
        mitigated_at="2024-01-15T15:10:00Z",  # type: ignore[arg-type]
        resolved_at="2024-01-15T16:22:00+01:00",
    )
    for name, value, message in (
        ("mitigated_at", "2024-01-15T14:30:00Z", "is before impact_started_at"),
        ("resolved_at", "2024-01-15T14:34:00Z", "is before detected_at"),
        ("resolved_at", "2099-01-01T00:00:00Z", "is in the future"),
        ("resolved_at", "yesterday", "is not a time"),
    ):
        with pytest.raises(ConfigError, match=message):
            resolve.check_times(section, **{name: value})  # type: ignore[arg-type]
