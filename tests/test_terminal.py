"""What a responder's terminal shows while `irkit run` works a drill: read line by line from a pipe
as the command writes it, each line stamped when it arrived."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest

from irkit import drills, records
from irkit.sandbox.stack import Stack
from tests.helpers import ROOT, idle_for, irkit, running_for, targets, wait_for

# The drill's sessions are judged by age: a second old is enough for the filters below.
KILL_OLDER_THAN_S = 1


@pytest.fixture
def drill_stack(stack: Stack) -> Iterator[Stack]:
    yield stack
    for active in drills.active(stack):  # a failed test must not leave its fault behind
        drills.stop(stack, active.name)


class Watched:
    """A command's stdout as it streams: each line with when it arrived, and whether the command
    was still running then."""

    def __init__(self, command: list[str], env: dict[str, str]) -> None:
        self.lines: list[tuple[float, str, bool]] = []
        self.proc = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        self.started = time.monotonic()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append((time.monotonic(), line.rstrip("\n"), self.proc.poll() is None))

    def wait(self, timeout: float = 120) -> tuple[int, str]:
        code = self.proc.wait(timeout)
        self._reader.join(timeout)
        assert self.proc.stderr is not None
        return code, self.proc.stderr.read()

    def index(self, *needles: str, after: int = -1) -> int:
        """The first line after line `after` holding every needle."""
        for i, (_, text, _) in enumerate(self.lines):
            if i > after and all(n in text for n in needles):
                return i
        raise AssertionError(f"no line with {needles} after line {after}:\n{self.text()}")

    def text(self) -> str:
        return "\n".join(f"{at - self.started:6.2f} {line}" for at, line, _ in self.lines)


def test_a_drill_worked_from_the_terminal_streams_what_happens(
    drill_stack: Stack, tmp_path: Path
) -> None:
    """Pool exhaustion, mitigated with `-p allow_actions=["postgres.terminate"]`: the terminal
    shows each verdict while the run goes on, then the plan, its result, the re-measured verdicts
    marked as such, the section's verdict; and the exit code is the state after the mitigation."""
    env = {"IRKIT_SANDBOX_DIR": str(drill_stack.base)}
    started = irkit("drill", "start", "pool-exhaustion", reports=tmp_path, env=env)
    assert started.returncode == 0, started.stderr
    (active,) = drills.active(drill_stack)
    wait_for(lambda: running_for(drill_stack, "pg_sleep(86400)") > KILL_OLDER_THAN_S, "old query")
    pids = active.state["backend_pids"]
    wait_for(lambda: all(idle_for(drill_stack, p) > KILL_OLDER_THAN_S for p in pids), "idle age")

    pairs = [f"-p{k}={v}" for k, v in targets(drill_stack).items() if k.startswith("pg_")]
    command = [
        sys.executable,
        "-m",
        "irkit",
        "run",
        "db",
        "--html",
        *pairs,
        "-p",
        'allow_actions=["postgres.terminate"]',
        "-p",
        f"pg_kill_older_than_s={KILL_OLDER_THAN_S}",
        "-p",
        f"pg_kill_idle_in_transaction_s={KILL_OLDER_THAN_S}",
    ]
    run = Watched(command, {**os.environ, "IRKIT_REPORTS": str(tmp_path), **env})
    code, stderr = run.wait()
    shown = run.text()
    assert "Traceback" not in stderr, stderr

    # Verdicts in the notebook's order, each with the time since start, the first one on the
    # terminal while the command still ran.
    connect = run.index("s  OK      postgres.connect")
    assert run.lines[connect][2], shown
    assert run.lines[connect][1].lstrip()[0].isdigit(), shown  # "  1.3s  OK …"
    before = run.index("postgres.connections", after=connect)
    assert any(w in run.lines[before][1] for w in ("WARN", "CRIT")), shown
    long_queries = run.index("postgres.long_queries", after=before)
    assert "after" not in run.lines[long_queries][1], shown
    # The plan with its items, then what the action did.
    plan = run.index("PLAN", "postgres.terminate", after=long_queries)
    assert run.lines[plan][2], shown  # streamed, not printed at the end
    assert run.lines[plan + 1][1].strip().startswith("- "), shown
    done = run.index("DONE", "postgres.terminate", after=plan)
    # Re-measured after it, and marked so.
    again = run.index("OK      postgres.connections", "(after postgres.terminate)", after=done)
    run.index("postgres.long_queries", "(after postgres.terminate)", after=again)
    # The section's verdict in the runbook's words, then the lines scripts read.
    closing = run.index("db: OK", after=again)
    report = run.index("report: ", after=closing)
    assert run.lines[-1][1] == "status: OK", shown
    # Lines came as the work went, not all at once at the end: printed together, they would
    # arrive within milliseconds of each other; the checks, the plan and the action take longer.
    assert run.lines[done][0] - run.lines[connect][0] > 0.05, shown
    assert run.lines[closing][0] - run.lines[connect][0] > 0.2, shown

    # The exit code is the state the run left: the pool was relieved.
    assert code == 0, shown + stderr
    record = records.read(Path(run.lines[report][1].removeprefix("report: ")))
    assert record.status.name == "OK"
    assert any(r.status.name in ("WARN", "CRIT") for r in record.results)  # before the action
    after = [r for r in record.results if r.after]
    assert {r.after for r in after} == {"postgres.terminate"}
    # The findings terminate answers were measured again at once; the notebook's closing
    # re-measures come after every action, so they carry the mark too.
    assert {"postgres.connections", "postgres.long_queries"} <= {r.probe for r in after}
    assert all(r.probe.startswith("postgres.") for r in after)

    # The record keeps its events and fields for tools; readers see none of those debug lines,
    # neither in the notebook's text nor in its HTML copy.
    assert record.incident.get("drill") is True
    assert {"drill", "action-plan", "action-confirmed", "action-result"} <= {
        e["kind"] for e in record.events
    }
    texts = [
        "".join(o.get("data", {}).get("text/plain", ""))
        for cell in nbformat.read(record.path, as_version=4).cells
        for o in cell.get("outputs", [])
    ]
    assert not [t for t in texts if t.startswith(("event ", "record: "))], texts
    html = record.path.with_suffix(".html").read_text()
    assert "Drill in progress" not in html  # an event's text
    assert "record: drill" not in html
    assert "PLAN postgres.terminate" in html  # what a reader needs stays
