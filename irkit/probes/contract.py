"""The probe contract: a timed call that turns findings, outages and bugs into one `Result`."""

from __future__ import annotations

import functools
import logging
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Concatenate, ParamSpec, Protocol, TypeVar

from irkit.errors import IrkitError, NotVisible, ParameterError, ServiceError, Unreachable
from irkit.result import Result, Status, utc_now
from irkit.secrets import redact

log = logging.getLogger(__name__)

P = ParamSpec("P")


class Target(Protocol):
    """Anything a probe points at. `display` is what results show of it, without secrets;
    `deadline_s` is the longest a probe on it may take, all its own timeouts included."""

    @property
    def display(self) -> str: ...

    @property
    def deadline_s(self) -> float: ...


T = TypeVar("T", bound=Target)


@dataclass(frozen=True)
class Finding:
    """What a probe body returns; the wrapper adds the name, target and timing."""

    status: Status
    summary: str
    evidence: dict[str, Any] = field(default_factory=dict)


Probe = Callable[Concatenate[T, P], Result]


def probe(name: str) -> Callable[[Callable[Concatenate[T, P], Finding]], Probe[T, P]]:
    """Make a probe named `name` (dotted, e.g. `postgres.connections`) from a function that returns
    a `Finding`. A `ServiceError` becomes CRIT, `NotVisible` UNKNOWN, and any other exception
    UNKNOWN too, logged, so that one probe's bug never stops a notebook. Only `IrkitError` (bad
    configuration) propagates."""

    def decorate(body: Callable[Concatenate[T, P], Finding]) -> Probe[T, P]:
        @functools.wraps(body)
        def run(target: T, /, *args: P.args, **kwargs: P.kwargs) -> Result:
            at = utc_now()
            started = time.perf_counter()
            try:
                finding = within_deadline(lambda: body(target, *args, **kwargs), target)
            except IrkitError:
                raise
            except ServiceError as exc:
                evidence = {"error": str(exc), **exc.evidence}
                if isinstance(exc, Unreachable):
                    evidence["reachable"] = False
                finding = Finding(Status.CRIT, str(exc), evidence)
            except NotVisible as exc:
                finding = Finding(Status.UNKNOWN, str(exc), {"error": str(exc)})
            except Exception as exc:
                # The kernel's stderr is saved in the notebook: the traceback is redacted too.
                log.error("probe %s failed unexpectedly:\n%s", name, redact(traceback.format_exc()))
                message = f"probe failed unexpectedly ({type(exc).__name__}: {exc}); this is a bug"
                finding = Finding(Status.UNKNOWN, message, {"error": message})
            return Result(
                probe=name,
                target=target.display,
                status=finding.status,
                summary=redact(finding.summary),
                evidence=redact(finding.evidence),
                elapsed_ms=(time.perf_counter() - started) * 1000,
                at=at,
            )

        run.__dict__["probe_name"] = name
        return run

    return decorate


def within_deadline(call: Callable[[], Finding], target: Target) -> Finding:
    """Run a probe body on a watchdog thread. Drivers bound connecting and each socket read, but a
    server can stall after the handshake (a backend stuck on I/O does not enforce its own
    statement timeout): past the deadline the probe is abandoned and the target called hung."""
    outcome: list[Finding | BaseException] = []

    def work() -> None:
        try:
            outcome.append(call())
        except BaseException as exc:
            outcome.append(exc)

    worker = threading.Thread(target=work, name="irkit-probe", daemon=True)
    worker.start()
    worker.join(target.deadline_s)
    if not outcome:
        raise Unreachable(
            f"no answer from {target.display} within {target.deadline_s:g} s, all timeouts "
            "included: it stalled part-way (hung, or stuck on I/O)"
        )
    if isinstance(outcome[0], BaseException):
        raise outcome[0]
    return outcome[0]


def grade(value: float, warn: float, crit: float) -> Status:
    """Higher is worse: CRIT at or above `crit`, WARN at or above `warn`."""
    if value >= crit:
        return Status.CRIT
    if value >= warn:
        return Status.WARN
    return Status.OK


def grade_low(value: float, warn: float, crit: float) -> Status:
    """Lower is worse: CRIT at or below `crit`, WARN at or below `warn`."""
    if value <= crit:
        return Status.CRIT
    if value <= warn:
        return Status.WARN
    return Status.OK


def check_thresholds(warn: float, crit: float, *, higher_is_worse: bool = True) -> None:
    """Thresholds in the wrong order would silently never fire: refuse them."""
    if higher_is_worse and warn > crit:
        raise ParameterError(f"the WARN threshold ({warn:g}) is above the CRIT one ({crit:g})")
    if not higher_is_worse and warn < crit:
        raise ParameterError(f"the WARN threshold ({warn:g}) is below the CRIT one ({crit:g})")
