"""The alert-triage sources beyond the services: errors grouped from real log files and a log
command, the deployed checkout's git history, read-only diagnostic commands, and runaway Celery
tasks on the real worker."""

from __future__ import annotations

import os
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from irkit import Section
from irkit.probes import celery, deploy, diagnostics, logs
from irkit.result import Status
from irkit.sandbox.stack import BROKER_DB, Stack
from irkit.targets import CeleryTarget, CommandTarget, LogSource, RepoTarget


def stamp(ago_min: float, *, zone: str = "+0000", sep: str = " ") -> str:
    at = datetime.now(UTC) - timedelta(minutes=ago_min)
    return (
        at.strftime(f"%Y-%m-%d{sep}%H:%M:%S,123 ") + zone
        if zone
        else at.strftime(f"%Y-%m-%d{sep}%H:%M:%S")
    )


def django_500(ago_min: float, exception: str, message: str) -> str:
    """What Django's request logger writes for an unhandled exception (asctime in UTC here)."""
    at = (datetime.now(UTC) - timedelta(minutes=ago_min)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return (
        f"{at} ERROR django.request Internal Server Error: /api/v1/journal/\n"
        "Traceback (most recent call last):\n"
        '  File "/app/views.py", line 55, in journal\n'
        "    entry.amount = entry.amount.quantize(q, context=context)\n"
        f"{exception}: {message}\n"
    )


MISSING_TABLE = 'relation "accounting_invoice" does not exist'


def test_errors_are_grouped_by_the_exception_each_traceback_ended_with(tmp_path: Path) -> None:
    log = tmp_path / "web.log"
    log.write_text(
        django_500(90, "django.db.utils.ProgrammingError", "too old: outside the window")
        + f"{stamp(20, zone='')} INFO django.server GET /health/ready/ 200\n"
        + django_500(12, "decimal.InvalidOperation", "[<class 'decimal.InvalidOperation'>]")
        + django_500(11, "decimal.InvalidOperation", "[<class 'decimal.InvalidOperation'>]")
        + django_500(5, "django.db.utils.ProgrammingError", MISSING_TABLE)
        + f"{stamp(4)} ERROR celery.worker OperationalError while connecting to the broker\n"
        + f"{stamp(3)} ERROR app plain error without a type\n"
        + f"{stamp(2)} WARNING app a warning is not an error\n"
        + f"{stamp(1)} INFO app 0 errors found\n"
    )
    result = logs.errors(LogSource(files=(str(log),)), window_min=30)
    assert result.status is Status.OK, result.summary  # informational: the error rate grades
    rows = {r["type"]: r for r in result.evidence["rows"]}
    assert {t: r["count"] for t, r in rows.items()} == {
        "decimal.InvalidOperation": 2,
        "django.db.utils.ProgrammingError": 1,
        "OperationalError": 1,
        logs.NO_TYPE: 1,
    }
    assert result.evidence["total"] == 5
    assert result.evidence["older"] == 1
    assert rows["django.db.utils.ProgrammingError"]["sample"].startswith(
        'django.db.utils.ProgrammingError: relation "accounting_invoice"'
    )
    assert result.summary.startswith("5 errors in the last 30 min: decimal.InvalidOperation 2")
    # The most frequent type first.
    assert result.evidence["rows"][0]["type"] == "decimal.InvalidOperation"


def test_log_times_without_a_zone_are_local_and_glob_patterns_match(tmp_path: Path) -> None:
    local_now = datetime.now().astimezone()
    naive = (local_now - timedelta(minutes=2)).strftime("%Y-%m-%d %H:%M:%S")
    (tmp_path / "a.log").write_text(f"{naive} ERROR x KeyError: 'tenant'\n")
    (tmp_path / "b.log").write_text(f"[{naive}] CRITICAL y ValueError: bad\n")
    result = logs.errors(LogSource(files=(str(tmp_path / "*.log"),)), window_min=5)
    assert {r["type"] for r in result.evidence["rows"]} == {"KeyError", "ValueError"}
    assert len(result.evidence["sources"]) == 2


def test_a_log_command_is_read_and_its_failures_are_said(tmp_path: Path) -> None:
    log = tmp_path / "compose.log"
    log.write_text(f"web-1  | {stamp(1, sep='T', zone='Z')} ERROR boom RuntimeError: x\n")
    result = logs.errors(LogSource(command=("cat", str(log))), window_min=10)
    assert [r["type"] for r in result.evidence["rows"]] == ["RuntimeError"]
    failed = logs.errors(LogSource(command=("cat", str(tmp_path / "missing.log"))))
    assert failed.status is Status.UNKNOWN
    assert "the log command failed (exit code 1)" in failed.summary
    slow = logs.errors(LogSource(command=("sleep", "5"), timeout_s=0.5))
    assert slow.status is Status.UNKNOWN
    assert "ran longer than 0.5 s and was stopped" in slow.summary


def test_unreadable_or_undated_logs_are_unknown_not_ok(tmp_path: Path) -> None:
    missing = logs.errors(LogSource(files=(str(tmp_path / "nothing-*.log"),)))
    assert missing.status is Status.UNKNOWN
    assert "no log file matches" in missing.summary
    undated = tmp_path / "undated.log"
    undated.write_text("ERROR something broke\nERROR again\n")
    result = logs.errors(LogSource(files=(str(undated),)))
    assert result.status is Status.UNKNOWN
    assert "no line of the log carries a timestamp" in result.summary


def git(repo: Path, *args: str, days_ago: float = 0) -> None:
    when = (datetime.now(UTC) - timedelta(days=days_ago)).strftime("%Y-%m-%dT%H:%M:%S+0000")
    env = {
        **os.environ,
        "GIT_AUTHOR_DATE": when,
        "GIT_COMMITTER_DATE": when,
        "GIT_AUTHOR_NAME": "Dev",
        "GIT_AUTHOR_EMAIL": "dev@example.com",
        "GIT_COMMITTER_NAME": "Dev",
        "GIT_COMMITTER_EMAIL": "dev@example.com",
    }
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, env=env)


def test_a_recent_deploy_is_named_and_an_old_one_is_not(tmp_path: Path) -> None:
    repo = tmp_path / "app"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main", days_ago=3)
    git(repo, "commit", "-q", "--allow-empty", "-m", "Initial release", days_ago=3)
    git(repo, "commit", "-q", "--allow-empty", "-m", "Ledger v1", days_ago=2)
    old = deploy.recent(RepoTarget(path=str(repo)), window_min=60)
    assert old.status is Status.OK, old.summary
    assert [r["subject"] for r in old.evidence["rows"]] == ["Ledger v1", "Initial release"]
    assert old.evidence["changed_ago_s"] > 86400
    git(repo, "commit", "-q", "--allow-empty", "-m", "Switch on ledger v2", days_ago=0)
    new = deploy.recent(RepoTarget(path=str(repo)), window_min=60)
    assert new.status is Status.WARN
    assert '"Switch on ledger v2" by Dev' in new.summary
    assert "roll the deploy back" in new.summary
    assert new.evidence["changed_from"] == "reflog"
    not_a_repo = deploy.recent(RepoTarget(path=str(tmp_path)))
    assert not_a_repo.status is Status.UNKNOWN
    assert "git cannot read" in not_a_repo.summary


def test_a_diagnostic_command_is_judged_by_its_exit_code() -> None:
    passed = diagnostics.check(CommandTarget(name="check_deploy", argv=("echo", "0 issues")))
    assert passed.status is Status.OK
    assert passed.summary == "check_deploy passed: 0 issues"
    failed = diagnostics.check(
        CommandTarget(name="pg_isready", argv=("sh", "-c", "echo no response; exit 2"))
    )
    assert failed.status is Status.CRIT
    assert failed.summary == "pg_isready failed (exit code 2): no response"
    hung = diagnostics.check(CommandTarget(name="slow", argv=("sleep", "5"), timeout_s=0.5))
    assert hung.status is Status.CRIT
    assert "ran longer than 0.5 s and was stopped" in hung.summary


def test_an_unconfigured_source_is_said_not_judged() -> None:
    params = {"log_files": [], "log_command": "", "deploy_repo": "", "check_commands": []}
    namespace = {
        "__annotations__": {k: type(v) if v != [] else "list[str]" for k, v in params.items()},
        **params,
    }
    section = Section("alerts", namespace)
    shown = section.check(logs.errors, section.logs)
    assert "not configured: give log_files" in shown.summary
    assert "application/vnd.irkit.result+json" not in shown._repr_mimebundle_()
    section.check(deploy.recent, section.repo)
    section.check(diagnostics.check, section.command("check_deploy"))
    assert section.results == []  # nothing judged, so nothing counts in the verdict


def test_a_runaway_task_on_the_real_worker(stack: Stack, broker: CeleryTarget) -> None:
    from celery import Celery

    app = Celery(broker=stack.redis.url(BROKER_DB), set_as_current=False)
    app.send_task("sandbox.sleep", kwargs={"seconds": 6})
    app.close()
    deadline = time.monotonic() + 10
    while True:
        result = celery.workers(broker, runaway_s=1.5, expected=1)
        running = [t for r in result.evidence["rows"] for t in r["active_tasks"]]
        if result.status is Status.WARN or time.monotonic() > deadline:
            break
        time.sleep(0.5 if not running else 0.3)
    assert result.status is Status.WARN, result.summary
    runaway = result.evidence["runaway"][0]
    assert runaway["name"] == "sandbox.sleep"
    assert runaway["running_s"] >= 1.5
    assert "1 runaway task over 1.5 s, e.g. sandbox.sleep" in result.summary
    # Asked for one worker, the check stops waiting once it answered.
    assert result.elapsed_ms < broker.inspect_timeout_s * 1000


def test_compose_logs_with_timestamps_and_container_names(tmp_path: Path) -> None:
    """`docker compose logs web -t`: every line carries the container's name and a time, even
    inside a traceback; a date in the exception's message is not a new entry."""
    at = (datetime.now(UTC) - timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%S.123456789Z")
    lines = [
        "ERROR django.request Internal Server Error: /api/v1/journal/",
        "Traceback (most recent call last):",
        '  File "/app/views.py", line 9, in journal',
        "    raise KeyError('tenant')",
        "KeyError: 'tenant'",
        "",
        "During handling of the above exception, another exception occurred:",
        "",
        "Traceback (most recent call last):",
        '  File "/app/views.py", line 12, in journal',
        "django.db.utils.OperationalError: server closed the connection at 2026-11-28 01:02:03",
        "INFO django.server GET /health/ready/ 200",
    ]
    stamped = tmp_path / "stamped.log"
    stamped.write_text("".join(f"web-1  | {at} {line}\n" for line in lines))
    plain = tmp_path / "plain.log"
    plain.write_text(f"web-1  | {at} {lines[0]}\n" + "".join(f"web-1  | {x}\n" for x in lines[1:]))
    for log in (stamped, plain):
        result = logs.errors(LogSource(files=(str(log),)), window_min=10)
        rows = result.evidence["rows"]
        assert [(r["type"], r["count"]) for r in rows] == [
            ("django.db.utils.OperationalError", 1)
        ], (log.name, rows)
