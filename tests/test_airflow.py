"""The DAG of docs/airflow.md, run by Airflow itself (`airflow dags test`, Airflow from
.venv-airflow, which ./kit test installs): the report runs, a CRIT fails the task, a WARN does not,
the notice goes out through the webhook in Airflow's variable, and neither the connection's
password nor the webhook reaches Airflow's log or the record.

Only the paths of the documented DAG are changed: the kit's folder, its irkit and the reports
folder are this checkout's and the test's."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from irkit import records
from irkit.result import Status
from tests.helpers import ROOT, UNREACHABLE, Receiver, kit_home

AIRFLOW = Path(os.environ.get("IRKIT_AIRFLOW") or ROOT / ".venv-airflow" / "bin" / "airflow")
DAG = (ROOT / "docs" / "airflow.md").read_text()
DOCUMENTED_IRKIT = "/opt/irkit/.venv/bin/irkit"
PG_PASSWORD = "airflow-conn-pw-5b1e"
HOOK_SECRET = "airflowhooksecret7f3a"


def dag_source(reports: Path, irkit_line: str | None = None) -> str:
    """The documented DAG with this checkout's paths; `irkit_line` replaces the command's irkit."""
    (block,) = re.findall(r"```python\n(.*?)```", DAG, re.DOTALL)
    irkit = str(ROOT / ".venv" / "bin" / "irkit")
    for documented in (DOCUMENTED_IRKIT, '"/opt/irkit"', "/srv/irkit/reports"):
        assert documented in block
    source = (
        block.replace(DOCUMENTED_IRKIT, irkit)
        .replace('"/opt/irkit"', repr(str(ROOT)))
        .replace("/srv/irkit/reports", str(reports))
    )
    if irkit_line is not None:
        (line,) = [x for x in source.splitlines() if x.startswith(irkit)]
        source = source.replace(line, irkit_line)
    return source


def dags_test(tmp_path: Path, source: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """`airflow dags test irkit_health` in an Airflow home of its own (SQLite), the DAG written
    to its dags folder, the connection and the variable the DAG reads from the environment."""
    if not AIRFLOW.exists():
        pytest.fail(f"{AIRFLOW} is missing: ./kit test installs Airflow there (.venv-airflow)")
    home = tmp_path / "airflow"
    (home / "dags").mkdir(parents=True)
    (home / "dags" / "irkit_health.py").write_text(source)
    airflow_env = {
        **os.environ,
        **env,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(home / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        # Nothing leaves the machine: no usage reports, wherever the version still has them.
        "AIRFLOW__USAGE_DATA_COLLECTION__ENABLED": "False",
        "SCARF_ANALYTICS": "false",
        "DO_NOT_TRACK": "true",
        "AIRFLOW_CONN_IRKIT_POSTGRES": f"postgresql://monitor:{PG_PASSWORD}@127.0.0.1:1/erp",
    }
    migrated = subprocess.run(
        [str(AIRFLOW), "db", "migrate"], env=airflow_env, capture_output=True, text=True,
        timeout=180, check=False,
    )  # fmt: skip
    assert migrated.returncode == 0, migrated.stdout + migrated.stderr
    return subprocess.run(
        [str(AIRFLOW), "dags", "test", "irkit_health"], env=airflow_env, cwd=tmp_path,
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip


@pytest.fixture
def prod_home(tmp_path: Path) -> Path:
    """A kit whose environment `prod` (the DAG's) has nothing listening at its targets."""
    home = kit_home(tmp_path)
    prod = {**UNREACHABLE, "disk_paths": [str(tmp_path)]}
    (home / "parameters" / "prod.yaml").write_text(yaml.safe_dump(prod))
    return home


@pytest.mark.timeout(400)
def test_under_airflow_a_crit_report_fails_the_task_and_posts_its_notice(
    tmp_path: Path, prod_home: Path, receiver: Receiver
) -> None:
    reports = tmp_path / "reports"
    webhook = f"{receiver.url}/services/T0/B0/{HOOK_SECRET}"
    done = dags_test(
        tmp_path,
        dag_source(reports),
        {"IRKIT_HOME": str(prod_home), "AIRFLOW_VAR_IRKIT_SLACK_WEBHOOK_SECRET": webhook},
    )
    said = done.stdout + done.stderr
    assert done.returncode != 0, said
    assert "status: CRIT" in said
    assert "returned a non-zero exit code 2" in said
    assert "DagRun failed" in said
    # The record's naming kept: the environment's own health history, with its HTML.
    (report,) = (reports / "health" / "prod").glob("*-health.ipynb")
    assert report.with_suffix(".html").exists()
    record = records.read(report)
    assert record.status is Status.CRIT
    assert record.environment == "prod"
    # --notify passed, and the webhook Airflow's variable held is the one posted to.
    (notice,) = receiver.requests
    assert notice["path"] == f"/services/T0/B0/{HOOK_SECRET}"
    assert "first health report: CRIT" in notice["json"]["text"]
    written = [p.read_text(errors="replace") for p in reports.rglob("*") if p.is_file()]
    for text in [said, *written]:
        assert PG_PASSWORD not in text
        assert HOOK_SECRET not in text


@pytest.mark.timeout(400)
def test_under_airflow_a_warn_is_a_successful_task(tmp_path: Path, prod_home: Path) -> None:
    """The documented mapping, as Airflow applies it: irkit's exit 1 (WARN) is a success. Here
    irkit's line is replaced by its exit status alone; the real report is the test above."""
    done = dags_test(
        tmp_path,
        dag_source(tmp_path / "reports", irkit_line="sh -c 'echo \"status: WARN\"; exit 1'"),
        {"IRKIT_HOME": str(prod_home), "AIRFLOW_VAR_IRKIT_SLACK_WEBHOOK_SECRET": "unused"},
    )
    said = done.stdout + done.stderr
    assert done.returncode == 0, said
    assert "status: WARN" in said
    assert "DagRun Finished" in said, said[-3000:]
    assert "state=success" in said, said[-3000:]
