"""A runbook section being worked through in a notebook: its checked parameters, its targets and the
verdicts so far."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, MutableMapping
from typing import Any, Concatenate, ParamSpec, TypeVar

from irkit import parameters, targets
from irkit.advice import NextSteps
from irkit.errors import ParameterError
from irkit.home import active_drills
from irkit.probe import Target
from irkit.result import EVENT_MIME, INCIDENT_MIME, Result, Status, utc_now

P = ParamSpec("P")
T = TypeVar("T", bound=Target)

# Names IPython itself puts in a notebook's namespace.
_IPYTHON_NAMES = frozenset({"In", "Out", "exit", "quit", "get_ipython", "open"})
_PLAIN_DATA = (str, int, float, bool, list, dict, type(None))

# Within this window, a probe on a target that just proved unreachable is not attempted again:
# a papermill run moves on at once instead of waiting out the same timeout for every probe, while
# a responder who re-runs a cell a little later gets a real attempt.
UNREACHABLE_MEMORY_S = 30.0


class Section:
    """Create one at the top of a notebook, right after its parameters:

        section = irkit.Section("db", globals())

    It checks the parameters (unknown names, wrong types) before any probe runs, applies a
    parameter file's `sections:` overrides when plain papermill injected them, and writes the
    checked values back into the notebook's namespace."""

    def __init__(self, name: str, namespace: MutableMapping[str, Any]) -> None:
        self.name = name
        self.params = _checked_parameters(name, namespace)
        namespace.update(self.params)
        namespace.pop(parameters.SECTIONS_KEY, None)
        self._latest: dict[tuple[str, str], Result] = {}
        self._unreachable: dict[str, tuple[float, Result]] = {}
        self.drills = active_drills()
        if self.drills:
            _mark_as_drill(name, self.drills)

    @functools.cached_property
    def postgres(self) -> targets.PostgresTarget:
        return targets.postgres_target(self.params)

    @functools.cached_property
    def redis(self) -> targets.RedisTarget:
        return targets.redis_target(self.params)

    @functools.cached_property
    def celery(self) -> targets.CeleryTarget:
        return targets.celery_target(self.params)

    @functools.cached_property
    def web(self) -> targets.HttpTarget:
        return targets.web_target(self.params)

    @functools.cached_property
    def prometheus(self) -> targets.HttpTarget:
        return targets.prometheus_target(self.params)

    @functools.cached_property
    def tls(self) -> targets.TlsTarget:
        return targets.tls_target(self.params)

    @functools.cached_property
    def host(self) -> targets.LocalHost:
        return targets.LocalHost()

    def check(
        self,
        probe: Callable[Concatenate[T, P], Result],
        target: T,
        /,
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> Result:
        """Run one probe and remember its verdict for the closing summary."""
        name = str(getattr(probe, "probe_name", getattr(probe, "__name__", "probe")))
        key = target.display
        earlier = self._unreachable.get(key)
        if (
            earlier
            and time.monotonic() - earlier[0] < UNREACHABLE_MEMORY_S
            and (earlier[1].probe != name)
        ):
            result = _not_attempted(name, earlier[1])
        else:
            result = probe(target, *args, **kwargs)
            if result.evidence.get("reachable") is False:
                self._unreachable[key] = (time.monotonic(), result)
            else:
                self._unreachable.pop(key, None)
        self._latest[(name, key)] = result
        return result

    @property
    def results(self) -> list[Result]:
        return list(self._latest.values())

    @property
    def status(self) -> Status:
        return Status.worst(r.status for r in self._latest.values())

    def next_steps(self) -> NextSteps:
        """The closing summary: the section's verdict and what the runbook says to do next."""
        return NextSteps(self.name, self.results)


def _mark_as_drill(section: str, drills: list[str]) -> None:
    """A run during a drill is a rehearsal: its record says so, and the metrics leave it out."""
    from IPython.display import display

    text = (
        f"Drill in progress ({', '.join(drills)}): what this notebook finds was made on purpose "
        "on the practice stack, and its record is marked as a drill."
    )
    event = {"at": utc_now().isoformat(), "kind": "drill", "text": text, "source": section}
    incident = {INCIDENT_MIME: {"drill": True, "drills": drills}, "text/plain": text}
    display(incident, raw=True)  # type: ignore[no-untyped-call]
    display({EVENT_MIME: event, "text/plain": f"event: {text}"}, raw=True)  # type: ignore[no-untyped-call]


def _not_attempted(name: str, cause: Result) -> Result:
    return Result(
        probe=name,
        target=cause.target,
        status=Status.UNKNOWN,
        summary=(
            f"not measured: the target did not answer {cause.probe} a moment ago "
            f"({cause.summary}); re-run this cell once it answers"
        ),
        evidence={"skipped_because": cause.probe, "reachable": False},
    )


def _checked_parameters(section: str, namespace: MutableMapping[str, Any]) -> dict[str, Any]:
    declared = {
        name: parameters.type_name(annotation)
        for name, annotation in namespace.get("__annotations__", {}).items()
    }
    if not declared:
        raise ParameterError(
            f"section {section}: no parameters found; create the Section right after the "
            "notebook's parameters cell, passing globals()"
        )
    values = {name: namespace[name] for name in declared if name in namespace}
    extra = {
        name: value
        for name, value in namespace.items()
        if name not in declared
        and not name.startswith("_")
        and name not in _IPYTHON_NAMES
        and isinstance(value, _PLAIN_DATA)
    }
    known = parameters.known()
    if extra:
        # Names papermill injected that this section does not declare: a shared parameter file
        # may carry other sections' keys, but not typos.
        values.update(parameters.for_section(section, extra, declared, known, "the parameters"))
    checked = {name: parameters.check_value(name, declared[name], v) for name, v in values.items()}
    parameters.check_threshold_pairs(checked, known.get(section, {}))
    return checked
