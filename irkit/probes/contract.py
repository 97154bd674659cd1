"""The probe contract: a timed call that turns findings, outages and bugs into one `Result`; and a
probe's catalogue entry, declared with it (`@probe(name, target=…, thresholds=…, area=…)`)."""

from __future__ import annotations

import functools
import logging
import threading
import time
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Concatenate, ParamSpec, Protocol, TypeVar

from irkit import reasons
from irkit.catalogue import parameters as declared
from irkit.catalogue.areas import AREAS
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
# What the runbook says to do about a verdict, from its evidence; None: nothing to do.
Advice = Callable[[Result], "str | None"]


@dataclass(frozen=True)
class Entry:
    """A probe's place in the kit, declared with its function: every list of probes (the health
    report, the resolve re-check, the README's table, the tests) is derived from these."""

    name: str  # dotted, e.g. "postgres.connections"
    target: str  # the Section target it runs on: "postgres", "web", "host", …
    measures: str  # for the README's table: what it looks at
    # …and when it says WARN / CRIT; `{parameter}` stands for that parameter's default
    grades: str
    # probe keyword → the parameter that gives it; the parameter's declared default is the
    # keyword's default (irkit.catalogue.parameters), written nowhere else
    thresholds: Mapping[str, str] = field(default_factory=dict)
    area: str = ""  # its section of the health report (irkit.catalogue.areas); "": not in it
    recheck: bool = False  # re-run by the resolve notebook before an incident is called resolved
    # …and there only when this holds for its target (TLS: when endpoints are known)
    recheck_when: Callable[[Any], bool] | None = None
    # parameters of which one must be non-empty for the report to run it (an optional source)
    needs: tuple[str, ...] = ()
    fixed: Mapping[str, Any] = field(default_factory=dict)  # keyword values fixed in the report
    uses: Mapping[str, str] = field(default_factory=dict)  # keyword → another Section target
    advice: Advice | None = None  # for WARN and CRIT; None: its summary says it all
    advice_when_ok: bool = False  # informational probes advise on OK too (reclaimable files)
    left_out: str = ""  # why it is in neither the report nor the re-check
    module: str = ""  # filled in: the module that defines it (the catalogue's order)

    def keywords(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """The probe's keywords from the parameters a notebook declares; the others are left to
        their declared defaults."""
        return {kw: params[p] for kw, p in self.thresholds.items() if p in params}


# Every probe defined so far, by name, in the order defined (irkit.probes loads them all).
REGISTRY: dict[str, tuple[Entry, Callable[..., Result]]] = {}


def probe(
    name: str,
    *,
    target: str,
    measures: str = "",
    grades: str = "",
    thresholds: Mapping[str, str] | None = None,
    area: str = "",
    recheck: bool = False,
    recheck_when: Callable[[Any], bool] | None = None,
    needs: tuple[str, ...] = (),
    fixed: Mapping[str, Any] | None = None,
    uses: Mapping[str, str] | None = None,
    advice: Advice | None = None,
    advice_when_ok: bool = False,
    left_out: str = "",
) -> Callable[[Callable[Concatenate[T, P], Finding]], Probe[T, P]]:
    """Make a probe named `name` (dotted, e.g. `postgres.connections`) from a function that returns
    a `Finding`, and enter it in the catalogue. A `ServiceError` becomes CRIT, `NotVisible`
    UNKNOWN, and any other exception UNKNOWN too, logged, so that one probe's bug never stops a
    notebook. Only `IrkitError` (bad configuration) propagates. A threshold keyword left out takes
    its parameter's declared default."""
    if not (area or recheck or left_out):
        raise TypeError(f"probe {name}: say why it is in neither the health report nor the recheck")
    if area and area not in AREAS:
        raise TypeError(f"probe {name}: no area {area!r} in the health report ({', '.join(AREAS)})")
    thresholds = dict(thresholds or {})
    unknown = [p for p in [*thresholds.values(), *needs] if p not in declared.BY_NAME]
    if unknown:
        raise TypeError(f"probe {name}: no parameter declared as {', '.join(unknown)}")

    def decorate(body: Callable[Concatenate[T, P], Finding]) -> Probe[T, P]:
        entry = Entry(
            name,
            target,
            measures,
            grades,
            thresholds,
            area,
            recheck,
            recheck_when,
            needs,
            dict(fixed or {}),
            dict(uses or {}),
            advice,
            advice_when_ok,
            left_out,
            body.__module__,
        )

        @functools.wraps(body)
        def run(target: T, /, *args: P.args, **kwargs: P.kwargs) -> Result:
            at = utc_now()
            started = time.perf_counter()
            given: dict[str, Any] = dict(kwargs)
            for keyword, parameter in thresholds.items():
                if keyword not in given:
                    given[keyword] = declared.default(parameter)
            try:
                finding = within_deadline(lambda: body(target, *args, **given), target)
            except IrkitError:
                raise
            except ServiceError as exc:
                evidence = {**_error_evidence(exc), **exc.evidence}
                if isinstance(exc, Unreachable):
                    evidence["reachable"] = False
                finding = Finding(Status.CRIT, reasons.short(str(exc)), evidence)
            except NotVisible as exc:
                evidence = {**_error_evidence(exc), **getattr(exc, "evidence", {})}
                finding = Finding(Status.UNKNOWN, reasons.short(str(exc)), evidence)
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
        run.__dict__["entry"] = entry
        REGISTRY[name] = (entry, run)
        return run

    return decorate


def _error_evidence(exc: BaseException) -> dict[str, Any]:
    """The failure's whole text for the evidence, and the driver's own when it was mapped to
    ours (`raise Unreachable(…) from None` still keeps it as the context)."""
    evidence: dict[str, Any] = {"error": str(exc)}
    driver = exc.__cause__ or exc.__context__
    if driver is not None and str(driver) and str(driver) not in str(exc):
        evidence["driver_error"] = str(driver)
    return evidence


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
