"""The Airflow recipe's task command (docs/airflow.md), run as the BashOperator would run it,
against the test stack: a WARN succeeds, a CRIT fails, and the report is where it always is."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from irkit.sandbox.process import free_port
from irkit.sandbox.stack import Stack
from tests.helpers import CALM_HOST, ROOT, healthy, requests_settled


def recipe_command() -> str:
    """The DAG's COMMAND, with the kit's own `irkit` for the one installed under /opt/irkit."""
    text = (ROOT / "docs" / "airflow.md").read_text()
    match = re.search(r'COMMAND = """\n(.*?)"""', text, re.DOTALL)
    assert match, "docs/airflow.md has no COMMAND"
    irkit = str(Path(sys.executable).with_name("irkit"))
    return match[1].replace("/opt/irkit/.venv/bin/irkit", irkit)


def run(tmp_path: Path, values: dict[str, Any]) -> subprocess.CompletedProcess[str]:
    home = tmp_path / "home"
    (home / "parameters").mkdir(parents=True, exist_ok=True)
    if not (home / "notebooks").exists():
        (home / "notebooks").symlink_to(ROOT / "notebooks")
    (home / "parameters" / "prod.yaml").write_text(yaml.safe_dump(values))
    env = {**os.environ, "IRKIT_HOME": str(home), "IRKIT_REPORTS": str(tmp_path / "reports")}
    env.pop("IRKIT_SLACK_WEBHOOK", None)  # --notify without a webhook: said, not posted
    return subprocess.run(
        ["bash", "-c", recipe_command()],
        cwd=home, env=env, capture_output=True, text=True, timeout=180, check=False,
    )  # fmt: skip


def test_the_recipes_task_succeeds_on_warn_and_fails_on_crit(tmp_path: Path, stack: Stack) -> None:
    requests_settled(stack)
    calm = {**healthy(stack), **CALM_HOST, "disk_paths": [str(tmp_path)]}
    warn = run(tmp_path, {**calm, "disk_warn_pct": 1.0, "disk_crit_pct": 100.0})
    assert warn.returncode == 0, warn.stdout + warn.stderr
    assert "status: WARN" in warn.stdout
    crit = run(tmp_path, {**calm, "pg_host": "127.0.0.1", "pg_port": free_port()})
    assert crit.returncode == 2, crit.stdout + crit.stderr
    assert "status: CRIT" in crit.stdout
    # The record's naming kept: the environment's health history, one report per run.
    kept = sorted((tmp_path / "reports" / "health" / "prod").glob("*-health*.ipynb"))
    assert len(kept) == 2
