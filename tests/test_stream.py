"""What the terminal makes of a notebook's outputs (irkit.cli.stream), and the record's status as
the state a run left (pure logic: the outputs are those the notebooks' objects display)."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from nbformat.v4 import new_code_cell, new_notebook, new_output

from irkit import records
from irkit.actions.guard import Dry, Item, Outcome, Plan
from irkit.advice import NextSteps
from irkit.cli.stream import Stream
from irkit.incident.resolve import Verdict
from irkit.result import Result, Results, Status

AT = datetime(2026, 11, 30, 3, 0, tzinfo=UTC)


def verdict(probe: str, status: Status, after: str = "", target: str = "pg") -> Result:
    summary = f"{probe} is {status.name}"
    return Result(probe=probe, target=target, status=status, summary=summary, at=AT, after=after)


def output(shown: Any) -> dict[str, Any]:
    """The output a notebook cell stores for `shown`, as the kernel sends it."""
    return {"output_type": "display_data", "data": shown._repr_mimebundle_(), "metadata": {}}


def streamed(*shown: Any, colour: bool = False) -> list[str]:
    out = io.StringIO()
    stream = Stream(out, colour=colour)
    for item in shown:
        stream(output(item))
    return out.getvalue().splitlines()


def test_verdicts_plans_outcomes_and_the_closing_verdict_each_on_their_own_lines() -> None:
    plan = Plan(
        "postgres.terminate",
        "pg",
        "terminate 2 backends",
        items=(Item("41", "pid 41 idle in transaction"), Item("42", "pid 42 active")),
    )
    done = (("pid 41", "terminated"),)
    outcome = Outcome("postgres.terminate", "pg", done=done, summary="1 done")
    lines = streamed(
        verdict("postgres.connections", Status.CRIT),
        plan,
        outcome,
        verdict("postgres.connections", Status.OK, after="postgres.terminate"),
        NextSteps("db", [verdict("postgres.connections", Status.OK)]),
    )
    assert [line[8:] for line in lines] == [
        "CRIT    postgres.connections  postgres.connections is CRIT",
        "PLAN    postgres.terminate on pg: terminate 2 backends",
        "        - pid 41 idle in transaction",
        "        - pid 42 active",
        "DONE    postgres.terminate: 1 done",
        "OK      postgres.connections  postgres.connections is OK (after postgres.terminate)",
        "OK      db: OK: all 1 checks OK",
    ]
    assert lines[0][:8] == "  0.0s  "  # the time since the command started


def test_a_dry_run_says_how_to_act_and_a_failure_says_so() -> None:
    failed = Outcome("redis.flush", "r", failed=(("db 1", "refused"),), summary="FAILED: refused")
    lines = streamed(Dry("redis.flush", "Dry run: nothing was changed."), failed)
    assert lines[0][8:] == "DRY RUN redis.flush: nothing was changed"
    assert lines[1].strip() == """to act: -p 'allow_actions=["redis.flush"]'"""
    assert lines[2][8:] == "FAILED  redis.flush: FAILED: refused"
    assert lines[3].strip() == "FAILED: db 1: refused"


def test_a_resolution_that_failed_is_shown_and_findings_get_their_next_step() -> None:
    steps = NextSteps("resolve", [verdict("redis.ping", Status.CRIT)])
    lines = streamed(Verdict(False, "NOT resolved: 1 checks are CRIT (redis.ping)."), steps)
    assert lines[0][8:] == "CRIT    NOT resolved: 1 checks are CRIT (redis.ping)."
    assert lines[1][8:] == "CRIT    resolve: CRIT (1 CRIT)"
    assert lines[2].strip().startswith("next: redis.ping: ")


def test_several_results_in_one_output_are_each_a_line_and_debug_outputs_are_not_shown() -> None:
    out = io.StringIO()
    stream = Stream(out)
    stream(output(Results([verdict("a.one", Status.OK), verdict("a.two", Status.WARN)])))
    stream({"output_type": "stream", "name": "stdout", "text": "noise\n"})
    stream({"output_type": "display_data", "data": {"text/plain": "record: x=1"}})
    assert [line[8:] for line in out.getvalue().splitlines()] == [
        "OK      a.one  a.one is OK",
        "WARN    a.two  a.two is WARN",
    ]


def test_colours_only_on_a_terminal() -> None:
    plain = streamed(verdict("a.one", Status.CRIT))
    coloured = streamed(verdict("a.one", Status.CRIT), colour=True)
    assert "\x1b[" not in plain[0]
    assert "\x1b[31mCRIT\x1b[0m" in coloured[0]


def test_the_record_status_is_the_state_after_the_last_measure(tmp_path: Path) -> None:
    """`irkit run db` exited CRIT while its last cell said all checks OK: the exit code is the
    worst of each check's latest verdict, not of every verdict shown on the way."""
    before = verdict("postgres.connections", Status.CRIT)
    other_target = verdict("postgres.connections", Status.WARN, target="replica")
    after = verdict("postgres.connections", Status.OK, after="postgres.terminate")
    cells = [
        new_code_cell(outputs=[new_output("display_data", data=before._repr_mimebundle_())]),
        new_code_cell(outputs=[new_output("display_data", data=other_target._repr_mimebundle_())]),
        new_code_cell(outputs=[new_output("display_data", data=after._repr_mimebundle_())]),
    ]
    record = records.from_notebook(tmp_path / "x.ipynb", new_notebook(cells=cells))
    assert [r.status for r in record.results] == [Status.CRIT, Status.WARN, Status.OK]
    assert [r.target for r in record.latest] == ["replica", "pg"]
    assert record.status is Status.WARN  # the replica's, still the latest for that check
    record.results.pop(1)
    assert record.status is Status.OK
    record.complete = False
    assert record.status is Status.UNKNOWN
