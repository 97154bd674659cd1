"""`irkit health`: the scheduled report, against the real practice stack and against targets that
refuse or never answer; its exit code, HTML, notices, retention, and records that survive
concurrent and killed runs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import nbformat
import pytest

from irkit import pids, records
from irkit.health import checks, history, notice, retention
from irkit.render import COLOURS
from irkit.result import Result, Status
from irkit.sandbox.stack import Stack
from tests.helpers import (
    CALM_HOST,
    ROOT,
    UNREACHABLE,
    Receiver,
    health_reports,
    healthy,
    irkit,
    params_file,
    requests_settled,
    run_health,
    wait_for,
)

# Everything on the network in the report, by probe.
NETWORK = {
    "http.health",
    "http.smoke",
    "postgres.connect",
    "postgres.connections",
    "postgres.long_queries",
    "postgres.idle_in_transaction",
    "postgres.blocking",
    "postgres.migrations",
    "redis.ping",
    "redis.memory",
    "redis.clients",
    "celery.queues",
    "celery.workers",
    "tls.expiry",
    "prometheus.alerts",
    "prometheus.query",
}
TIMEOUT_S = 2


def by_probe(record: records.Record) -> dict[str, Result]:
    return {r.probe: r for r in record.results}


def calm(stack: Stack) -> dict[str, Any]:
    """The whole test stack, healthy, with the host checks calm."""
    return {**healthy(stack), **CALM_HOST}


def test_all_healthy_exits_0_with_every_section_ok_and_an_html_report(
    tmp_path: Path, stack: Stack
) -> None:
    requests_settled(stack)
    done = run_health(tmp_path, calm(stack))
    assert done.returncode == 0, done.stdout + done.stderr
    (path,) = health_reports(tmp_path)
    record = records.read(path)
    assert record.complete, record.error
    probes = [r.probe for r in record.results]
    assert probes == [c.name for c in checks.report_checks() if not c.needs]
    assert {r.status for r in record.results} == {Status.OK}, [str(r) for r in record.results]
    html = path.with_suffix(".html").read_text()
    # The summary first, then every area, with the charts inline; no code cells.
    assert html.index("Every check is OK.") < html.index("1. Web app") < html.index("7. Alerts")
    assert "report.show(" not in html
    # All OK, no area needs a picture; asked for, every area that has one draws it.
    assert '<img alt="chart"' not in html
    assert f"report: {path}" in done.stdout
    assert done.stdout.rstrip().endswith(f"status: OK ({len(probes)} OK)")
    # A second run compares itself with the first.
    requests_settled(stack)
    again = run_health(tmp_path, {**calm(stack), "charts_always": True})
    assert again.returncode == 0
    html = health_reports(tmp_path)[-1].with_suffix(".html").read_text()
    assert html.count('<img alt="chart"') == 3
    summary = _summary(health_reports(tmp_path)[-1])
    assert summary["previous"]["report"] == path.name
    assert summary["changes"] == []
    assert summary["counts"] == {"OK": len(probes), "WARN": 0, "CRIT": 0, "UNKNOWN": 0}


def _summary(path: Path) -> dict[str, Any]:
    nb = json.loads(path.read_text())
    for cell in nb["cells"]:
        for output in cell.get("outputs", []):
            if "application/vnd.irkit.health+json" in output.get("data", {}):
                found: dict[str, Any] = output["data"]["application/vnd.irkit.health+json"]
                return found
    raise AssertionError("no health summary in the report")


def test_optional_sources_join_the_report_when_given(tmp_path: Path, stack: Stack) -> None:
    log = tmp_path / "web.log"
    at = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    log.write_text(
        f"{at} ERROR django.request boom\nTraceback (most recent call last):\n"
        "  File \"x.py\", line 1\nKeyError: 'tenant'\n"
    )
    commands = [
        "check_deploy: irkit sandbox manage check --deploy",
        "broken: sh -c 'echo cannot reach the cache; exit 1'",
    ]
    values = {**healthy(stack), "log_files": [str(log)], "check_commands": commands}
    done = run_health(tmp_path, values, env={"IRKIT_SANDBOX_DIR": str(stack.base)})
    assert done.returncode == 2, done.stdout + done.stderr
    record = records.read(health_reports(tmp_path)[-1])
    results = {(r.probe, r.target.split(":")[0]): r for r in record.results}
    assert results[("logs.errors", str(log))].evidence["rows"][0]["type"] == "KeyError"
    assert results[("command.check", "check_deploy")].status is Status.OK
    broken = results[("command.check", "broken")]
    assert broken.status is Status.CRIT
    assert broken.summary == "broken failed (exit code 1): cannot reach the cache"


def test_every_target_unreachable_is_crit_and_bounded_by_one_timeout(
    tmp_path: Path, closed_port: int, hanging_port: int
) -> None:
    def everything_at(port: int) -> dict[str, Any]:
        return {
            "pg_host": "127.0.0.1",
            "pg_port": port,
            "pg_connect_timeout_s": TIMEOUT_S,
            "redis_url": f"redis://127.0.0.1:{port}/1",
            "redis_socket_timeout_s": TIMEOUT_S,
            "celery_broker_url": f"redis://127.0.0.1:{port}/0",
            "celery_socket_timeout_s": TIMEOUT_S,
            "web_url": f"http://127.0.0.1:{port}",
            "web_timeout_s": TIMEOUT_S,
            "prom_url": f"http://127.0.0.1:{port}",
            "prom_timeout_s": TIMEOUT_S,
            "tls_endpoints": [f"himalytix.test:{port}@127.0.0.1"],
            "tls_timeout_s": TIMEOUT_S,
            "disk_paths": [str(tmp_path)],
        }

    refused = run_health(tmp_path / "refused", everything_at(closed_port))
    hung = run_health(tmp_path / "hung", everything_at(hanging_port))
    took = {}
    for done, folder in ((refused, "refused"), (hung, "hung")):
        assert done.returncode == 2, done.stdout + done.stderr
        (path,) = health_reports(tmp_path / folder)
        record = records.read(path)
        assert record.complete, record.error
        network = [r for r in record.results if r.probe in NETWORK]
        assert len(network) == len(NETWORK)
        # Each target is CRIT; the checks after its first failure say they were not attempted.
        assert {r.status for r in network} <= {Status.CRIT, Status.UNKNOWN}
        crit_targets = {r.target for r in network if r.status is Status.CRIT}
        assert crit_targets == {r.target for r in network}, [str(r) for r in network]
        assert path.with_suffix(".html").exists()
        took[folder] = checks_cell_s(path)
    # Six targets hang, each for one timeout: one after the other that would be 12 s and more.
    # The checks cell's own time is compared, not the command's: starting a kernel on a loaded
    # machine varies by seconds, which says nothing about how the checks wait.
    assert took["hung"] < took["refused"] + TIMEOUT_S + 2.0, took


def checks_cell_s(path: Path) -> float:
    """How long the executed report's checks cell ran, as papermill recorded it."""
    notebook = nbformat.read(path, as_version=4)
    (cell,) = [c for c in notebook.cells if "health.run(" in c.source]
    return float(cell.metadata.papermill.duration)


def test_a_hung_check_is_cut_at_the_reports_deadline(tmp_path: Path) -> None:
    # This run's own: no other test's or process's `sleep 30` counts below.
    marker = f"sleep 30.{os.getpid():07d}"
    values = {
        "check_commands": [f"stuck: {marker}"],
        "check_timeout_s": 60.0,
        "health_deadline_s": 3.0,
        **UNREACHABLE,
        "tls_endpoints": ["x.test:1@127.0.0.1"],
        "disk_paths": [str(tmp_path)],
    }
    started = time.monotonic()
    done = run_health(tmp_path, values)
    assert time.monotonic() - started < 20
    assert done.returncode == 2
    stuck = next(
        r for r in records.read(health_reports(tmp_path)[0]).results if r.probe == "command.check"
    )
    assert stuck.status is Status.CRIT
    assert "no answer within the report's limit of 3 s" in stuck.summary
    # The command it had started does not outlive the report.
    left = subprocess.run(["pgrep", "-f", f"^{marker}$"], capture_output=True, check=False)
    assert left.stdout == b"", left.stdout


def test_two_runs_at_once_overwrite_nothing_and_each_says_what_it_did(
    tmp_path: Path, stack: Stack
) -> None:
    """Two reports of one environment started together: the second to start finds the first
    running and says it is skipped (exit 3), or, if the first was done by then, writes a report
    of its own beside it. Nothing is overwritten either way. (That the second is skipped while
    the first runs is judged for certain in tests/test_schedule.py, with the lock held.)"""
    path = params_file(tmp_path / "p", healthy(stack))
    env = {**os.environ, "IRKIT_REPORTS": str(tmp_path / "reports")}
    command = [sys.executable, "-m", "irkit", "health", "-f", str(path)]
    runs = [
        subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    outputs = [r.communicate(timeout=120) for r in runs]
    said = "\n".join(
        f"run {i}: exit {r.returncode}\n{out}{err}"
        for i, (r, (out, err)) in enumerate(zip(runs, outputs, strict=True))
    )
    found = health_reports(tmp_path)
    skipped = [r for r, (out, _) in zip(runs, outputs, strict=True) if "status: SKIPPED" in out]
    assert all(r.returncode == 3 for r in skipped), said
    assert len(found) == 2 - len(skipped) >= 1, said
    kept = [records.read(p) for p in found]
    assert all(r.complete for r in kept), said
    # The CPU over the last 5 min is this machine's (the stack's node_exporter), other work on
    # it included: that can read as a WARN or CRIT, and this test is about the two reports, not
    # about the machine. Anything else must be OK, and the exit codes must say what they say.
    for record in kept:
        assert {r.probe for r in record.results if r.status is not Status.OK} <= {"host.cpu"}, said
    ran = [r for r in runs if r not in skipped]
    assert sorted(r.returncode for r in ran) == sorted(r.status.value for r in kept), said
    assert len({p.with_suffix(".html").name for p in found}) == len(found)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["term", "kill"])
def test_a_killed_run_leaves_a_readable_partial_report(
    tmp_path: Path, silent_server: tuple[int, threading.Event], sig: signal.Signals
) -> None:
    port, connected = silent_server
    values = {
        "web_url": f"http://127.0.0.1:{port}",
        "web_timeout_s": 30.0,
        "prom_url": f"http://127.0.0.1:{port}",
        "prom_timeout_s": 30.0,
        "health_deadline_s": 60.0,
        "disk_paths": [str(tmp_path)],
    }
    path = params_file(tmp_path / "p", values)
    env = {**os.environ, "IRKIT_REPORTS": str(tmp_path / "reports")}
    run = subprocess.Popen(
        [sys.executable, "-m", "irkit", "health", "-f", str(path)],
        cwd=ROOT,
        env=env,
        start_new_session=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    folder = tmp_path / "reports" / "health"
    deadline = time.monotonic() + 60
    # Mid-way: the kernel is running the checks (the report's first cells are saved).
    while time.monotonic() < deadline and not any(
        p.name.endswith(".partial.ipynb") and _cells_done(p) >= 1
        for p in (folder.iterdir() if folder.exists() else [])
    ):
        time.sleep(0.2)
    wait_for(connected.is_set, "the web check connected", timeout=60)  # waiting mid-check
    if sig is signal.SIGKILL:
        os.killpg(run.pid, sig)  # the whole group: nothing gets to clean up
    else:
        run.send_signal(sig)
    _, err = run.communicate(timeout=60)
    if sig is signal.SIGKILL:
        assert health_reports(tmp_path) == []  # still hidden: the next run adopts it
        again = run_health(
            tmp_path,
            {**UNREACHABLE, "disk_paths": [str(tmp_path)]},
        )
        assert "kept the record of a run that was killed" in again.stderr
    else:
        assert run.returncode == 130, err
    partial = records.read(health_reports(tmp_path)[0])
    assert not partial.corrupt
    assert not partial.complete
    assert partial.error  # why it is incomplete: stopped, or the interrupt it got
    assert not list(folder.glob(".*.partial.ipynb"))


def _cells_done(path: Path) -> int:
    try:
        nb = json.loads(path.read_text())
    except (OSError, ValueError):
        return 0
    return sum(
        c.get("metadata", {}).get("papermill", {}).get("status") == "completed"
        for c in nb["cells"]
        if c["cell_type"] == "code"
    )


def test_notices_only_when_news_and_never_the_webhook_in_a_file(
    tmp_path: Path, stack: Stack, receiver: Receiver
) -> None:
    requests_settled(stack)
    hook = f"{receiver.url}/services/T0/B0/healthsecret42"
    env = {"IRKIT_SLACK_WEBHOOK": hook}
    down = {
        "pg_port": 1,
        "pg_host": "127.0.0.1",
        "disk_paths": [str(tmp_path)],
        **{k: v for k, v in calm(stack).items() if not k.startswith("pg_")},
    }

    def run(values: dict[str, Any], *extra: str) -> subprocess.CompletedProcess[str]:
        return run_health(tmp_path, values, "--notify", *extra, env=env)

    assert run(calm(stack)).returncode == 0
    assert receiver.requests == []  # first report, all OK: nothing to say
    assert run(down).returncode == 2
    (first,) = receiver.requests
    text = first["json"]["text"]
    assert text.startswith("*irkit health: CRIT* on ")
    assert "(OK → CRIT)" in text
    assert "• CRIT postgres.connect:" in text
    assert run(down).returncode == 2
    assert len(receiver.requests) == 1  # still CRIT, reminded only after notify_repeat_min
    assert run(down, "-p", "notify_repeat_min=0.01").returncode == 2
    assert len(receiver.requests) == 2
    assert "still CRIT, last notice" in receiver.requests[-1]["json"]["text"]
    assert run(calm(stack)).returncode == 0
    assert "(recovered)" in receiver.requests[-1]["json"]["text"]
    assert len(receiver.requests) == 3
    # Without --notify nothing is posted, and the report says a notice would be due.
    quiet = run_health(tmp_path, down, env=env)
    assert quiet.returncode == 2
    assert len(receiver.requests) == 3
    notes = json.dumps(
        json.loads(health_reports(tmp_path)[-1].read_text())["cells"], ensure_ascii=False
    )
    assert "A notice would be due (OK → CRIT), not posted: notify is off." in notes
    for path in (tmp_path / "reports").rglob("*"):
        if path.is_file():
            assert "healthsecret42" not in path.read_text(errors="replace"), path


# This machine's CPU and memory are judged too; thresholds it cannot reach keep them out of the
# set of failing checks, which is what this test changes on purpose.
def test_a_newly_failing_check_is_news_while_the_worst_stays_crit(
    tmp_path: Path, receiver: Receiver
) -> None:
    env = {"IRKIT_SLACK_WEBHOOK": f"{receiver.url}/services/T0/B0/x"}
    crit = {**UNREACHABLE, **CALM_HOST, "disk_paths": [str(tmp_path)]}
    # The disk of the test folder is certainly more than 1 % used: a second CRIT finding.
    disk_full = {**crit, "disk_warn_pct": 0.5, "disk_crit_pct": 1.0}

    def run(values: dict[str, Any]) -> subprocess.CompletedProcess[str]:
        done = run_health(tmp_path, values, "--notify", env=env)
        assert done.returncode == 2, done.stdout + done.stderr
        return done

    run(crit)
    assert len(receiver.requests) == 1  # first report, CRIT
    run(disk_full)
    assert len(receiver.requests) == 2, "a second CRIT check while CRIT sent no notice"
    text = receiver.requests[-1]["json"]["text"]
    assert "(still CRIT; newly failing: CRIT disk.usage)" in text, text
    run(disk_full)
    assert len(receiver.requests) == 2  # the same checks fail: nothing new to say
    notes = json.dumps(json.loads(health_reports(tmp_path)[-1].read_text())["cells"])
    assert "No notice: the worst status is CRIT, as before, and the same checks fail" in notes
    run(crit)
    # A recovery while still CRIT is no page of its own; the next change that is news says it.
    assert len(receiver.requests) == 2
    run(disk_full)
    assert len(receiver.requests) == 3
    assert "(still CRIT; newly failing: CRIT disk.usage)" in receiver.requests[-1]["json"]["text"]


def test_plain_papermill_takes_notify_true_as_papermill_passes_it(
    tmp_path: Path, receiver: Receiver
) -> None:
    out = tmp_path / "health.ipynb"
    pairs = [arg for name, value in UNREACHABLE.items() for arg in ("-p", name, str(value))]
    done = subprocess.run(
        [
            str(Path(sys.executable).parent / "papermill"),
            "notebooks/health.ipynb",
            str(out),
            *pairs,
            *("-p", "notify", "true"),  # papermill injects the text 'true'
            *("-y", json.dumps({"disk_paths": [str(tmp_path)]})),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={
            **os.environ,
            "IRKIT_REPORTS": str(tmp_path / "reports"),
            "IRKIT_SLACK_WEBHOOK": f"{receiver.url}/services/T0/B0/x",
        },
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    (posted,) = receiver.requests
    assert "(first health report: CRIT)" in posted["json"]["text"]
    record = records.read(out)
    assert record.complete, record.error
    assert any(e.get("kind") == history.NOTIFIED for e in record.events)


def test_needs_attention_rows_are_coloured_by_status(tmp_path: Path) -> None:
    done = run_health(tmp_path, {**UNREACHABLE, "disk_paths": [str(tmp_path)]})
    assert done.returncode == 2, done.stderr
    html = health_reports(tmp_path)[-1].with_suffix(".html").read_text()
    attention = html[html.index("Needs attention") :]
    attention = attention[: attention.index("</table>")]
    crit_fg, crit_bg = COLOURS[Status.CRIT]
    assert f'<tr style="background:{crit_bg}">' in attention
    assert f"color:{crit_fg};background:{crit_bg}" in attention  # the status badge
    assert "<tr><td" not in attention  # no row without its colour


def test_keep_shorter_than_the_reminder_says_what_it_keeps(tmp_path: Path) -> None:
    folder = tmp_path / "reports" / "health"
    folder.mkdir(parents=True)
    now = datetime.now(UTC)
    half_hour = (now - timedelta(minutes=30)).strftime("%Y%m%dT%H%M%SZ")
    two_hours = (now - timedelta(hours=2)).strftime("%Y%m%dT%H%M%SZ")
    for stamp in (half_hour, two_hours):
        (folder / f"{stamp}-health.ipynb").write_text("{}")
    done = run_health(tmp_path, {**UNREACHABLE, "disk_paths": [str(tmp_path)]}, "--keep", "1m")
    assert done.returncode == 2, done.stderr
    assert (
        "irkit: --keep 1m is shorter than notify_repeat_min (60 min), where the last notice is "
        "looked for: keeping health reports for 60 min\n"
    ) in done.stderr
    assert "pruned: 1 health report file(s) older than 1h" in done.stdout
    assert (folder / f"{half_hour}-health.ipynb").exists()
    assert not (folder / f"{two_hours}-health.ipynb").exists()


def test_keep_prunes_old_health_reports_and_nothing_else(tmp_path: Path) -> None:
    folder = tmp_path / "reports" / "health"
    folder.mkdir(parents=True)
    old = (datetime.now(UTC) - timedelta(days=40)).strftime("%Y%m%dT%H%M%SZ")
    recent = (datetime.now(UTC) - timedelta(days=3)).strftime("%Y%m%dT%H%M%SZ")
    for name in (
        f"{old}-health.ipynb",
        f"{old}-health.html",
        f"{old}-health-2.ipynb",
        f"{recent}-health.ipynb",
        "notes.txt",
        f"{old}-health.ipynb.bak",
    ):
        (folder / name).write_text("{}")
    (folder / f"{old}-health-3.ipynb").symlink_to(folder / "notes.txt")
    incident = tmp_path / "reports" / "incidents" / f"{old}-db"
    incident.mkdir(parents=True)
    (incident / "01-triage.ipynb").write_text("{}")
    values = {**UNREACHABLE, "disk_paths": [str(tmp_path)]}
    done = run_health(tmp_path, values, "--keep", "30d")
    assert done.returncode == 2, done.stderr
    assert "pruned: 3 health report file(s) older than 30d" in done.stdout
    left = sorted(p.name for p in folder.iterdir())
    assert f"{recent}-health.ipynb" in left
    assert "notes.txt" in left
    assert f"{old}-health.ipynb.bak" in left
    assert f"{old}-health-3.ipynb" in left  # a symlink is never followed nor removed
    assert not any(n.startswith(old) and n.endswith(("health.ipynb", "health.html")) for n in left)
    assert (incident / "01-triage.ipynb").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--keep", "soon"], "--keep 'soon': give an age such as 30d"),
        (["--keep", "0d"], "--keep '0d': give an age such as 30d"),
        (["-p", "pg_hots=x"], "unknown parameter 'pg_hots'"),
        (["-p", "health_deadline_s=-1"], "health_deadline_s must be"),
        (["-p", "check_commands=[oops]"], "check_commands entry 'oops': write it as"),
        (
            ["-p", "check_commands=['ping: redis-cli -a hunter2 ping']"],
            "check_commands ping carries a password (-a), and parameters are written into",
        ),
        (
            ["-p", "log_command=curl https://ops:hunter2@logs.example/web"],
            "log_command carries a password (in https://ops:****@logs.example/web)",
        ),
        (
            ["-p", "log_command=nosuchtool logs web"],
            "log_command: 'nosuchtool' is not installed here",
        ),
        (["--keep", "99999999999999d"], "give an age such as 30d"),
        (["-p", "notify_repeat_min=0"], "notify_repeat_min must be a positive number of minutes"),
    ],
)
def test_user_errors_are_one_line_and_write_nothing(
    tmp_path: Path, args: list[str], message: str
) -> None:
    done = irkit("health", *args, reports=tmp_path)
    assert done.returncode == 3
    assert message in done.stderr, done.stderr
    assert "Traceback" not in done.stderr
    assert "hunter2" not in done.stderr
    assert not (tmp_path / "health").exists() or not any((tmp_path / "health").iterdir())


def test_a_corrupt_earlier_report_is_passed_over(tmp_path: Path) -> None:
    folder = tmp_path / "reports" / "health"
    folder.mkdir(parents=True)
    (folder / "20200101T000000Z-health.ipynb").write_text("{not json")
    values = {**UNREACHABLE, "disk_paths": [str(tmp_path)]}
    done = run_health(tmp_path, values)
    assert done.returncode == 2, done.stderr
    assert (folder / "20200101T000000Z-health.ipynb").read_text() == "{not json"
    assert _summary(health_reports(tmp_path)[-1])["previous"] is None


# --- pure logic -----------------------------------------------------------------------------


def test_notice_rules() -> None:
    now = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
    ok, warn, crit = Status.OK, Status.WARN, Status.CRIT
    assert notice.reason(ok, None, None, now, 60) == ""
    assert notice.reason(crit, None, None, now, 60) == "first health report: CRIT"
    assert notice.reason(ok, ok, None, now, 60) == ""
    assert notice.reason(warn, warn, None, now, 60) == ""  # a steady WARN is not news
    assert notice.reason(crit, warn, None, now, 60) == "WARN → CRIT"
    assert notice.reason(ok, crit, None, now, 60) == "recovered"
    recent = now - timedelta(minutes=10)
    assert notice.reason(crit, crit, recent, now, 60) == ""
    assert notice.reason(crit, crit, now - timedelta(minutes=61), now, 60).startswith(
        "still CRIT, last notice 61 min ago"
    )
    assert notice.reason(crit, crit, None, now, 60) == "still CRIT (no notice posted yet)"
    # The set of failing checks changed: news even when the worst status did not.
    assert notice.reason(crit, crit, recent, now, 60, "newly failing: CRIT b", True) == (
        "still CRIT; newly failing: CRIT b"
    )
    # A check that recovered, or got better, waits for the next notice that is due anyway.
    assert notice.reason(warn, warn, None, now, 60, "no longer failing: b", False) == ""
    assert notice.reason(crit, crit, recent, now, 60, "changed: b CRIT → WARN", False) == ""


def test_what_changed_in_the_failing_checks() -> None:
    def failing(**statuses: Status) -> dict[tuple[str, str], Status]:
        results = [Result(probe=p, target="t", status=s, summary="") for p, s in statuses.items()]
        return notice.failing(results)

    ok, warn, crit = Status.OK, Status.WARN, Status.CRIT
    assert failing(a=ok, b=crit) == {("b", "t"): crit}
    assert notice.failing_changed(failing(a=crit, b=ok), failing(a=crit, b=ok)) == ""
    assert notice.failing_changed(failing(a=crit, b=crit), failing(a=crit, b=ok)) == (
        "newly failing: CRIT b"
    )
    assert notice.failing_changed(failing(a=crit, b=crit), failing(a=crit, b=warn)) == (
        "changed: b WARN → CRIT"
    )
    assert notice.failing_changed(failing(a=crit, b=ok), failing(a=crit, b=warn)) == (
        "no longer failing: b"
    )
    assert notice.got_worse(failing(a=crit, b=crit), failing(a=crit, b=warn))
    assert notice.got_worse(failing(a=crit, b=warn), failing(a=crit))
    assert not notice.got_worse(failing(a=crit, b=warn), failing(a=crit, b=crit))
    assert not notice.got_worse(failing(a=crit), failing(a=crit, b=warn))
    many = failing(**{f"p{i}": crit for i in range(5)})
    assert notice.failing_changed(many, {}) == (
        "newly failing: CRIT p0, CRIT p1, CRIT p2 and 2 more"
    )


def test_changes_since_the_previous_report() -> None:
    def r(probe: str, status: Status, target: str = "t") -> Result:
        return Result(probe=probe, target=target, status=status, summary=f"{probe} {status.name}")

    before = [r("a", Status.OK), r("b", Status.WARN), r("gone", Status.OK)]
    now = [r("a", Status.CRIT), r("b", Status.WARN), r("new", Status.OK)]
    changes = history.changes(now, before)
    assert [(c.probe, c.was, c.now) for c in changes] == [
        ("a", "OK", "CRIT"),
        ("new", "—", "OK"),
        ("gone", "OK", "—"),
    ]


def test_ages_for_keep() -> None:
    assert retention.parse_age("30d") == timedelta(days=30)
    assert retention.parse_age("12h") == timedelta(hours=12)
    assert retention.parse_age("2w") == timedelta(weeks=2)
    assert retention.parse_age("90m") == timedelta(minutes=90)


def test_orphans_are_adopted_once(tmp_path: Path) -> None:
    pid = _dead_pid()
    orphan = tmp_path / f".20261128T000000Z-health.{pid}.partial.ipynb"
    orphan.write_text('{"cells": [], "metadata": {}}')
    mine = tmp_path / f".20261128T000001Z-health.{os.getpid()}.partial.ipynb"
    mine.write_text("{}")
    cut_short = tmp_path / f".20261128T000000Z-health.{pid}.partial.ipynb.writing"
    cut_short.write_text('{"cells": [')
    assert records.adopt_orphans(tmp_path) == [tmp_path / "20261128T000000Z-health.ipynb"]
    assert not cut_short.exists()  # half a save; the notebook beside it was whole
    assert mine.exists()  # a live run's file is its own
    assert records.adopt_orphans(tmp_path) == []


def test_on_a_shared_folder_only_this_hosts_dead_runs_are_orphans(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A pid says nothing about a run on another machine: its file waits for that host."""
    monkeypatch.setenv(pids.HOST_ENV, "web-1")
    pid = _dead_pid()
    here = tmp_path / f".20261128T000000Z-health.{pid}@web-1.partial.ipynb"
    elsewhere = tmp_path / f".20261128T000001Z-health.{pid}@web-2.partial.ipynb"
    for path in (here, elsewhere):
        path.write_text('{"cells": [], "metadata": {}}')
    assert records.adopt_orphans(tmp_path) == [tmp_path / "20261128T000000Z-health.ipynb"]
    assert elsewhere.exists()
    # web-2's next start (its own host name) publishes it.
    monkeypatch.setenv(pids.HOST_ENV, "web-2")
    assert records.adopt_orphans(tmp_path) == [tmp_path / "20261128T000001Z-health.ipynb"]
    # Two hosts' runs of the same pid in the same second write two files, never one.
    assert (
        records.temporary_path(tmp_path / "x.ipynb").name == f".x.{os.getpid()}@web-2.partial.ipynb"
    )


def _dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid
