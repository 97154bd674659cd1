"""Every read-only check of every runbook section, run at once and bounded in time.

Checks on one target run one after another (one connection at a time to a production database,
and a target that proved unreachable is not waited on again by its next checks); targets run
concurrently. Whatever is still running at the deadline is reported as hung (CRIT) and the
checks that never started as not measured (UNKNOWN): the report always completes in about the
slowest target's timeout, however many targets hang.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from irkit import probes, programs
from irkit.catalogue.areas import AREAS
from irkit.errors import IrkitError
from irkit.probes.contract import Entry
from irkit.result import Result, Status
from irkit.secrets import redact

if TYPE_CHECKING:
    from irkit.section import Section


# A check of the report is a probe's catalogue entry (declared with the probe, irkit.probes): its
# area, its target, the parameters that give its thresholds, what it needs and uses.
Check = Entry


def report_checks() -> list[Check]:
    """Every probe with a place in the report, area by area in the order of AREAS."""
    order = list(AREAS)
    return sorted((e for e in probes.catalogue() if e.area), key=lambda e: order.index(e.area))


def selected(params: Mapping[str, Any], checks: Sequence[Check] | None = None) -> list[Check]:
    """The checks this configuration can run: optional sources only when given; and one
    `command.check` per entry of `check_commands`."""
    from irkit.programs import parse_named

    chosen = []
    for check in report_checks() if checks is None else checks:
        if check.needs and not any(params.get(n) for n in check.needs):
            continue
        if check.target == COMMAND:
            commands = parse_named(params.get("check_commands") or [], "check_commands")
            chosen += [replace(check, target=f"{COMMAND}:{name}") for name in commands]
        else:
            chosen.append(check)
    return chosen


# The target of `command.check`: one per named command (`command:<name>`).
COMMAND = "command"

# Local checks share no connection: each runs on its own thread (the disk walk does not wait for
# the CPU sample); so do the app machine's CPU and memory, whose Prometheus may hang (each falls
# back to this machine after one timeout, together rather than one after the other).
_ONE_THREAD_EACH = {"host", "machine"}


@dataclass
class _Lane:
    """The checks of one target, run in order on one thread."""

    checks: list[tuple[int, Check]]
    running: int | None = None
    thread: threading.Thread | None = None


def run(
    section: Section,
    checks: Sequence[Check],
    *,
    deadline_s: float,
    meanwhile: Callable[[], object] | None = None,
) -> list[Result]:
    """Run `checks` concurrently by target; every check gets a result, in the order given.
    `meanwhile` runs on a thread of its own while the checks wait on their targets."""
    if deadline_s <= 0:
        raise IrkitError(f"the report's deadline must be positive, got {deadline_s:g} s")
    params = section.params
    # Targets are built here, not on the threads: a bad parameter stops the report at once.
    targets = {t: _target(section, t) for c in checks for t in (c.target, *c.uses.values())}
    lanes: dict[str, _Lane] = {}
    for index, check in enumerate(checks):
        key = f"{check.target}#{index}" if check.target in _ONE_THREAD_EACH else check.target
        lanes.setdefault(key, _Lane([])).checks.append((index, check))
    results: dict[int, Result] = {}
    # Guards `results` and each lane's `running`: at the deadline the main thread takes one
    # consistent snapshot, and a check finishing after it is not recorded.
    lock = threading.Lock()
    stop = threading.Event()
    started = time.monotonic()

    def work(lane: _Lane) -> None:
        for index, check in lane.checks:
            with lock:
                if stop.is_set():
                    return
                lane.running = index
            kwargs = check.keywords(params)
            kwargs.update(check.fixed)
            kwargs.update({kw: targets[t] for kw, t in check.uses.items()})
            try:
                result = section.measure(probes.get(check.name), targets[check.target], **kwargs)
            except IrkitError as exc:
                # One check that cannot run (a program not installed here) is that check's
                # verdict, not the end of the report.
                result = _cannot_run(check.name, targets[check.target].display, exc)
            with lock:
                if stop.is_set():
                    return
                results[index] = result
                lane.running = None

    for name, lane in lanes.items():
        # Daemon threads: a check that outlives the deadline is abandoned, not waited for.
        lane.thread = threading.Thread(target=work, args=(lane,), name=f"irkit-{name}", daemon=True)
    for lane in lanes.values():
        assert lane.thread is not None
        lane.thread.start()
    if meanwhile is not None:
        threading.Thread(target=meanwhile, name="irkit-meanwhile", daemon=True).start()
    for lane in lanes.values():
        assert lane.thread is not None
        lane.thread.join(max(0.0, deadline_s - _since(started)))
    with lock:
        stop.set()
        done = dict(results)
        running = {lane.running for lane in lanes.values()}
    if len(done) < len(checks):
        # Commands started by abandoned checks must not outlive the report.
        programs.stop_all()
    for lane in lanes.values():
        for index, check in lane.checks:
            if index in done:
                continue
            target = targets[check.target].display
            if index in running:
                done[index] = _hung(check.name, target, deadline_s)
            else:
                done[index] = _not_started(check.name, target, deadline_s)
    return [done[i] for i in range(len(checks))]


def _since(started: float) -> float:
    return time.monotonic() - started


def _target(section: Section, name: str) -> Any:
    if name.startswith(f"{COMMAND}:"):
        return section.command(name.partition(":")[2])
    return getattr(section, name)


def _cannot_run(probe: str, target: str, exc: IrkitError) -> Result:
    return _unmeasured(probe, target, Status.UNKNOWN, f"cannot run here: {exc}", error=str(exc))


def _hung(probe: str, target: str, deadline_s: float) -> Result:
    summary = (
        f"no answer within the report's limit of {deadline_s:g} s: the target is hung or far "
        "too slow"
    )
    return _unmeasured(probe, target, Status.CRIT, summary, reachable=False, deadline_s=deadline_s)


def _not_started(probe: str, target: str, deadline_s: float) -> Result:
    summary = (
        f"not measured: the report's limit of {deadline_s:g} s was reached while earlier checks "
        "on this target were still waiting"
    )
    return _unmeasured(probe, target, Status.UNKNOWN, summary, deadline_s=deadline_s)


def _unmeasured(probe: str, target: str, status: Status, summary: str, **evidence: Any) -> Result:
    """A verdict the report gives for a check whose probe gave none; scrubbed like a probe's,
    since an error's text may quote what it was given."""
    return Result(
        probe=probe,
        target=target,
        status=status,
        summary=redact(summary),
        evidence=redact(evidence),
    )
