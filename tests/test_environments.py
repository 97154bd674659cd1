"""Environments as a first-class idea: `--env NAME` (or the `environment` parameter) stamps every
verdict and record, keeps one health history per environment, and the incident list and the
monthly analysis show one environment's incidents only."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from irkit import records
from irkit.environments import check_name
from irkit.errors import ParameterError
from irkit.health import history
from irkit.result import Result, Status
from irkit.sandbox.stack import Stack
from tests.helpers import CALM_HOST, irkit, targets


def test_a_result_carries_its_environment_both_ways() -> None:
    result = Result(probe="p", target="t", status=Status.OK, summary="s", environment="staging")
    data = result.to_json()
    assert data["environment"] == "staging"
    assert Result.from_json(data).environment == "staging"
    assert (
        "environment" not in Result(probe="p", target="t", status=Status.OK, summary="s").to_json()
    )


@pytest.mark.parametrize("name", ["../prod", "a/b", "", ".hidden", "x" * 90])
def test_an_environment_is_a_name_never_a_path(name: str) -> None:
    with pytest.raises(ParameterError, match="is not a name"):
        check_name(name)


def test_a_path_as_environment_is_refused_before_anything_runs(tmp_path: Path) -> None:
    done = irkit("run", "db", "-p", "environment=../../etc", reports=tmp_path)
    assert done.returncode == 3
    assert "environment '../../etc' is not a name" in done.stderr
    assert not (tmp_path / "runs").exists() or not list((tmp_path / "runs").iterdir())


def test_incident_list_show_and_the_monthly_analysis_show_one_environment(
    tmp_path: Path,
) -> None:
    for args in (
        ["--env", "sandbox", "--id", "SBX"],
        ["-p", "environment=production", "--id", "PRD"],
    ):
        opened = irkit(
            "incident", "open", "--title", "t", "--severity", "P2", "--not-a-drill", *args,
            reports=tmp_path,
        )  # fmt: skip
        assert opened.returncode == 0, opened.stderr
    listed = irkit("incident", "list", "--json", "--env", "sandbox", reports=tmp_path)
    assert [i["incident_id"] for i in json.loads(listed.stdout)] == ["SBX"]
    assert [i["environment"] for i in json.loads(listed.stdout)] == ["sandbox"]
    everyone = irkit("incident", "list", "--json", reports=tmp_path)
    assert sorted(i["incident_id"] for i in json.loads(everyone.stdout)) == ["PRD", "SBX"]
    # production has no parameter file here: its incidents name it, and reading them is enough.
    theirs = irkit("incident", "list", "--json", "--env", "production", reports=tmp_path)
    assert theirs.returncode == 0, theirs.stderr
    assert [i["incident_id"] for i in json.loads(theirs.stdout)] == ["PRD"]
    unknown = irkit("incident", "list", "--env", "nosuch", reports=tmp_path)
    assert unknown.returncode == 3
    assert "unknown environment 'nosuch'" in unknown.stderr
    assert "in the records also: production" in unknown.stderr
    assert len(unknown.stderr.splitlines()) == 1
    # staging has a health history here and no incident.
    (tmp_path / "health" / "staging").mkdir(parents=True)
    none = irkit("incident", "list", "--env", "staging", reports=tmp_path)
    assert none.stdout == "no incidents of environment staging\n"
    # A command that runs checks needs the environment's parameter file.
    runs = irkit("run", "disk", "--env", "production", reports=tmp_path)
    assert runs.returncode == 3
    assert "unknown environment 'production'" in runs.stderr
    shown = irkit("incident", "show", "SBX", "--env", "sandbox", reports=tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert "SBX" in shown.stdout
    other = irkit("incident", "show", "PRD", "--env", "sandbox", reports=tmp_path)
    assert other.returncode == 3
    assert other.stdout == ""  # nothing of the other environment's incident
    assert other.stderr == (
        "irkit: incident PRD is of environment 'production', not 'sandbox': "
        "show it with --env production or without --env\n"
    )
    unknown = irkit("incident", "show", "SBX", "--env", "nosuch", reports=tmp_path)
    assert unknown.returncode == 3
    assert "unknown environment 'nosuch'" in unknown.stderr
    # A run or a postmortem of the incident names its environment, or none: never another one.
    before = sorted((tmp_path / "incidents" / "SBX").iterdir())
    for command in (["run", "disk", "--incident", "SBX"], ["postmortem", "SBX"]):
        crossed = irkit(*command, "-p", "environment=production", reports=tmp_path)
        assert crossed.returncode == 3
        assert crossed.stderr == (
            "irkit: incident SBX is of environment 'sandbox', not 'production': "
            "run it with --env sandbox or without --env\n"
        )
    assert sorted((tmp_path / "incidents" / "SBX").iterdir()) == before
    for name in ("sandbox", "production"):
        monthly = irkit("report", "monthly", "--env", name, reports=tmp_path)
        assert monthly.returncode == 0, monthly.stderr
        assert ": 1 incident(s) (P2 1);" in monthly.stdout.splitlines()[0]


def test_each_environment_has_its_own_health_history_and_stamps(
    stack: Stack, tmp_path: Path
) -> None:
    values = {**targets(stack), **CALM_HOST, "celery_expected_workers": 1}
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump(values))
    reports = tmp_path / "reports"
    for environment in ("staging", "production", "staging"):
        done = irkit(
            "health", "-f", str(params), "-p", f"environment={environment}", reports=reports
        )
        assert done.returncode < 3, done.stdout + done.stderr
    with_env = sorted(p.parent.name for p in (reports / "health").glob("*/*-health*.ipynb"))
    assert with_env == ["production", "staging", "staging"]
    assert not list((reports / "health").glob("*-health*.ipynb"))  # none without one
    first, second = history.newest_first(reports / "health" / "staging")
    record = records.read(second)
    assert record.environment == "staging"
    assert {r.environment for r in record.results} == {"staging"}
    # The newer staging report compares with the older staging one, never production's.
    newest = json.dumps(json.loads(first.read_text()))
    assert second.name in newest
    (production,) = history.newest_first(reports / "health" / "production")
    assert production.name not in newest
