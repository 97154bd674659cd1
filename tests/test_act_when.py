"""`section.act(when=…)`: a mitigation offered only while its finding is present, and its finding
measured again once it changed something (pure logic: a fake probe and a fake mitigation)."""

from __future__ import annotations

from typing import Any

import pytest

from irkit.actions.guard import Item, Outcome, Plan
from irkit.errors import ConfigError
from irkit.incident.section import Section
from irkit.probes.contract import Finding, probe
from irkit.result import Status
from irkit.targets import LocalHost

# What the fake service is like now; the fake mitigation mends it.
state = {"status": Status.CRIT, "measured": 0}


@probe("fake.backlog", target="t", left_out="a test of section.act")
def backlog(target: LocalHost) -> Finding:
    state["measured"] += 1
    return Finding(state["status"], f"backlog is {state['status'].name}")


class Mend:
    name = "fake.mend"

    def __init__(self, read_only: bool = False) -> None:
        self.planned = 0
        self.read_only = read_only

    def plan(self) -> Plan:
        self.planned += 1
        return Plan(self.name, "t", "mend the backlog", (Item("backlog", "the backlog"),))

    def act(self, plan: Plan) -> Outcome:
        if not self.read_only:
            state["status"] = Status.OK
        done = (("the backlog", "mended"),)
        return Outcome(self.name, "t", done, summary="mended", read_only=self.read_only)


class Recorded:
    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = []

    def event(self, kind: str, text: str, **_: Any) -> dict[str, Any]:
        self.events.append((kind, text))
        return {}


def section_with(status: Status) -> tuple[Section, Recorded]:
    state.update(status=status, measured=0)
    section = Section("db", {"__annotations__": {"incident_id": str}, "incident_id": ""})
    record = Recorded()
    section.incident = record  # type: ignore[assignment]
    return section, record


def test_a_mitigation_whose_finding_is_ok_says_so_in_one_line_and_records_nothing(
    capsys: pytest.CaptureFixture[str],
) -> None:
    section, record = section_with(Status.OK)
    section.check(backlog, LocalHost("t"))
    mend = Mend()
    section.act(mend, when="fake.backlog", allow_actions=["fake.mend"])
    assert capsys.readouterr().out.strip() == "fake.mend not needed: fake.backlog is OK"
    assert mend.planned == 0
    assert record.events == []


def test_after_acting_the_finding_is_measured_again_and_replaces_the_old_verdict(
    capsys: pytest.CaptureFixture[str],
) -> None:
    section, record = section_with(Status.CRIT)
    section.check(backlog, LocalHost("t"))
    assert section.status is Status.CRIT
    section.act(Mend(), when="fake.backlog", allow_actions=["fake.mend"])
    shown = capsys.readouterr().out
    assert shown.index("DONE fake.mend") < shown.index("backlog is OK")
    assert state["measured"] == 2
    assert [r.status for r in section.results] == [Status.OK]
    assert section.next_steps().status is Status.OK
    assert [kind for kind, _ in record.events] == [
        "action-plan",
        "action-confirmed",
        "action-result",
    ]
    assert record.events[-1][1] == "fake.mend: mended"


def test_a_dry_run_or_a_read_only_step_measures_nothing_again() -> None:
    section, _ = section_with(Status.CRIT)
    section.check(backlog, LocalHost("t"))
    section.act(Mend(), when="fake.backlog")  # not allowed: a dry run
    section.act(Mend(read_only=True), when="fake.backlog", allow_actions=["fake.mend"])
    assert state["measured"] == 1
    assert section.status is Status.CRIT


def test_a_finding_not_measured_here_offers_the_plan() -> None:
    section, _ = section_with(Status.OK)
    mend = Mend()
    section.act(mend, when="fake.backlog")
    assert mend.planned == 1


def test_the_least_status_that_calls_for_a_mitigation(capsys: pytest.CaptureFixture[str]) -> None:
    section, _ = section_with(Status.WARN)
    section.check(backlog, LocalHost("t"))
    mend = Mend()
    section.act(mend, when={"fake.backlog": "CRIT"})
    assert "fake.mend not needed: fake.backlog is WARN" in capsys.readouterr().out
    section.act(mend, when="fake.backlog")
    assert mend.planned == 1


def test_a_misspelt_finding_is_refused() -> None:
    section, _ = section_with(Status.CRIT)
    with pytest.raises(ConfigError, match=r"no probe named 'fake\.backlgo'"):
        section.act(Mend(), when="fake.backlgo")
