"""`irkit run`: verdicts, exit codes and records; user errors are one line and write nothing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from irkit import records
from irkit.result import Status
from irkit.sandbox.stack import Stack
from tests.helpers import ROOT, files, irkit, wait_for


def pg_args(stack: Stack) -> list[str]:
    return [
        "-p",
        f"pg_host={stack.postgres.host}",
        "-p",
        f"pg_port={stack.postgres.port}",
        "-p",
        "pg_user=erp",
        "-p",
        "pg_database=himalytix",
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["run", "dbx"],
            "unknown section 'dbx'; the sections are: alerts, celery, containers, db, disk, "
            "health, metrics, postmortem, redis, resolve, triage",
        ),
        (["run", "../notebooks/db"], "unknown section '../notebooks/db'"),
        (
            ["run", "db", "-p", "pg_hots=x"],
            "unknown parameter 'pg_hots' (section db has none); did you mean 'pg_host'?",
        ),
        (["run", "db", "-p", "pg_port=abc"], "parameter pg_port must be an integer, got 'abc'"),
        (["run", "db", "-p", "pg_port"], "-p expects name=value"),
        (["run", "db", "-f", "bad.yaml"], "is not valid YAML at line 2, column 1"),
        (["run", "db", "-f", "typed.yaml"], "typed.yaml: parameter pg_port must be an integer"),
        (["run", "db", "-f", "unknown.yaml"], "unknown parameter 'pg_prot' in"),
        (["run", "db", "-f", "missing.yaml"], "missing.yaml does not exist"),
        (["run", "redis", "-p", "redis_url=redis://:topsecret@h:1/0"], "contains a password"),
        (
            ["run", "alerts", "-p", "web_url=https://ops:topsecret@erp.example.com"],
            "the web and Prometheus checks take no credentials",
        ),
        (["run", "alerts", "-p", "prom_url=ftp://prom:9090"], "unknown scheme 'ftp'"),
        (
            ["run", "alerts", "-p", 'tls_endpoints=["https://erp.example.com"]'],
            "is not name[:port][@address]",
        ),
        (["run"], "the following arguments are required: section"),
        (["launch"], "invalid choice: 'launch'"),
    ],
)
def test_user_errors(tmp_path: Path, args: list[str], message: str) -> None:
    (tmp_path / "bad.yaml").write_text("pg_port: [1\n")
    (tmp_path / "typed.yaml").write_text("pg_port: x\n")
    (tmp_path / "unknown.yaml").write_text("pg_prot: 5432\n")
    args = [str(tmp_path / a) if a.endswith(".yaml") else a for a in args]
    reports = tmp_path / "reports"
    done = irkit(*args, reports=reports)
    assert done.returncode == 3
    assert message in done.stderr
    assert "Traceback" not in done.stderr
    assert "topsecret" not in done.stderr
    assert not reports.exists() or files(reports) == []


def test_run_prints_verdicts_and_where_the_record_went(tmp_path: Path, stack: Stack) -> None:
    done = irkit("run", "db", *pg_args(stack), reports=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "OK      postgres.connections" in done.stdout
    (report,) = files(tmp_path)
    assert f"report: {report}" in done.stdout
    assert report.parent == tmp_path / "runs"
    assert report.name.endswith("-db.ipynb")


def test_a_held_pool_is_the_exit_code(tmp_path: Path, stack: Stack, hold: Any) -> None:
    hold(14)  # with the probe's own session: 15 of 17 slots, 88 %
    done = irkit("run", "db", *pg_args(stack), "--html", reports=tmp_path)
    assert done.returncode == 1, done.stdout
    assert "postgres.connections" in done.stdout
    report = next(p for p in files(tmp_path) if p.suffix == ".ipynb")
    assert report.with_suffix(".html").exists()
    outputs = [o for c in json.loads(report.read_text())["cells"] for o in c.get("outputs", [])]
    pool = next(
        o["data"]["application/vnd.irkit.result+json"]
        for o in outputs
        if o.get("data", {}).get("application/vnd.irkit.result+json", {}).get("probe")
        == "postgres.connections"
    )
    assert pool["status"] in {"WARN", "CRIT"}
    assert pool["evidence"]["used"] >= 15
    assert pool["evidence"]["available"] == 17


def test_a_hung_target_never_hangs_a_run(tmp_path: Path, hanging_port: int) -> None:
    started = time.monotonic()
    done = irkit(
        "run", "db", "-p", "pg_host=127.0.0.1", "-p", f"pg_port={hanging_port}", reports=tmp_path
    )
    assert time.monotonic() - started < 30
    assert done.returncode == 2
    assert "CRIT    postgres.connect" in done.stdout
    assert "no answer" in done.stdout


def test_parameter_files_and_overrides(tmp_path: Path, stack: Stack) -> None:
    shared = tmp_path / "env.yaml"
    shared.write_text(
        f"pg_host: {stack.postgres.host}\npg_port: {stack.postgres.port}\npg_user: erp\n"
        "pg_database: himalytix\nredis_url: redis://unused:1/0\n"
        "sections:\n  db:\n    pg_long_query_warn_s: 0.25\n"
    )
    done = irkit("run", "db", "-f", str(shared), "-p", "pg_connect_warn_s=1.5", reports=tmp_path)
    assert done.returncode == 0, done.stderr
    (report,) = files(tmp_path / "runs")
    injected = json.loads(report.read_text())["metadata"]["papermill"]["parameters"]
    assert injected["pg_long_query_warn_s"] == 0.25
    assert injected["pg_connect_warn_s"] == 1.5
    assert "redis_url" not in injected  # another section's key stays out of this notebook


def test_output_is_never_overwritten(tmp_path: Path, stack: Stack) -> None:
    target = tmp_path / "mine.ipynb"
    target.write_text("keep me")
    done = irkit("run", "db", *pg_args(stack), "--output", str(target), reports=tmp_path)
    assert done.returncode == 3
    assert "already exists" in done.stderr
    assert target.read_text() == "keep me"
    fresh = tmp_path / "fresh.ipynb"
    assert (
        irkit("run", "db", *pg_args(stack), "--output", str(fresh), reports=tmp_path).returncode
        == 0
    )
    assert fresh.exists()


def test_a_notebook_that_raised_is_kept_and_unknown(tmp_path: Path, stack: Stack) -> None:
    # An empty queue list is only refused by the probe, inside the notebook, after it started.
    done = irkit("run", "celery", "-p", "celery_queues=", reports=tmp_path)
    assert done.returncode == 3
    assert "did not run to the end" in done.stderr
    assert "celery_queues is empty" in done.stderr
    (report,) = files(tmp_path)
    assert json.loads(report.read_text())["metadata"]["papermill"]["exception"] is True


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["disk", "-p", "disk_warn_pct=95", "-p", "disk_crit_pct=90"],
            "disk_warn_pct (95) is above disk_crit_pct (90)",
        ),
        (
            ["disk", "-p", "host_memory_available_warn_pct=3"],
            "host_memory_available_warn_pct (3) is below host_memory_available_crit_pct (5)",
        ),
        (["db", "-p", "pg_statement_timeout_s=0"], "pg_statement_timeout_s must be a positive"),
        (["db", "-p", "pg_sslmode=requrie"], "pg_sslmode must be one of"),
        (["db", "-p", "pg_port=70000"], "pg_port must be a port number"),
        (["redis", "-p", "redis_url=http://cache:6379/0"], "unknown scheme 'http'"),
        (["celery", "-p", "celery_broker_url=redsi://q:1/0"], "unknown scheme 'redsi'"),
    ],
)
def test_impossible_values_are_refused_before_any_probe(
    tmp_path: Path, args: list[str], message: str
) -> None:
    done = irkit("run", *args, reports=tmp_path)
    assert done.returncode == 3
    assert message in done.stderr
    assert files(tmp_path) == []


def test_sigterm_keeps_the_record_so_far(
    tmp_path: Path, silent_server: tuple[int, threading.Event]
) -> None:
    port, connected = silent_server
    run = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "irkit",
            "run",
            "db",
            "-p",
            "pg_host=127.0.0.1",
            "-p",
            f"pg_port={port}",
            "-p",
            "pg_connect_timeout_s=20",
        ],
        cwd=ROOT,
        env={**os.environ, "IRKIT_REPORTS": str(tmp_path)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    # The kernel is running the notebook: its first check waits on the silent server.
    wait_for(connected.is_set, "the connection check connected", timeout=60)
    assert list(tmp_path.rglob("*.partial.ipynb"))
    run.terminate()
    _, err = run.communicate(timeout=30)
    assert run.returncode == 130
    assert "interrupted" in err
    assert list(tmp_path.rglob("*.partial.ipynb")) == []
    (report,) = files(tmp_path)
    assert report.name.endswith("-db.ipynb")
    record = records.read(report)
    assert not record.complete  # the cells that never ran say so
    assert record.status is Status.UNKNOWN


def test_show_parameters_and_version(tmp_path: Path) -> None:
    shown = irkit("run", "db", "--show-parameters", reports=tmp_path)
    assert shown.returncode == 0
    assert 'pg_host: str = "" (else $PGHOST)' in shown.stdout
    assert "runbook Slow Query Alert" in shown.stdout
    assert irkit("--version", reports=tmp_path).stdout.startswith("irkit ")
