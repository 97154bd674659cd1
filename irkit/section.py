"""A runbook section being worked through in a notebook: its checked parameters, its targets and the
verdicts so far. What a run records (its incident, drills, mitigations) is added on top by
`irkit.incident.section`, whose Section is the one notebooks create as `irkit.Section`."""

from __future__ import annotations

import functools
import html
import os
import time
from collections.abc import Callable, Iterable, MutableMapping
from typing import Any, Concatenate, ParamSpec, TypeVar

from irkit import parameters, target_builders, targets
from irkit.advice import NextSteps
from irkit.errors import ParameterError
from irkit.probes.contract import Target
from irkit.result import Result, Status

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
    """The checks of one section, made from the notebook's namespace right after its parameters
    (notebooks create `irkit.Section`, which adds the run's record to this).

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

    @functools.cached_property
    def postgres(self) -> targets.PostgresTarget:
        return target_builders.postgres_target(self.params)

    @functools.cached_property
    def redis(self) -> targets.RedisTarget:
        return target_builders.redis_target(self.params)

    @functools.cached_property
    def celery(self) -> targets.CeleryTarget:
        return target_builders.celery_target(self.params)

    @functools.cached_property
    def broker(self) -> targets.CeleryTarget | None:
        """The Celery broker when one is configured (`celery_broker_url` or
        IRKIT_CELERY_BROKER_URL), for the checks and guard rails that must know which Redis db
        holds the queues; None when `celery` would only be the default guess, which must not
        make a cache on localhost:6379/0 look like a broker."""
        if not (self.params.get("celery_broker_url") or os.environ.get("IRKIT_CELERY_BROKER_URL")):
            return None
        return self.celery

    @functools.cached_property
    def web(self) -> targets.HttpTarget:
        return target_builders.web_target(self.params)

    @functools.cached_property
    def prometheus(self) -> targets.HttpTarget:
        return target_builders.prometheus_target(self.params)

    @functools.cached_property
    def tls(self) -> targets.TlsTarget:
        return target_builders.tls_target(self.params)

    @functools.cached_property
    def host(self) -> targets.LocalHost:
        return targets.LocalHost()

    @functools.cached_property
    def machine(self) -> targets.Machine:
        """The app's machine for CPU and memory: through Prometheus (its node_exporter metrics)
        when one is configured (`prom_url` or IRKIT_PROMETHEUS_URL), else this machine; the
        default guess of localhost:9090 is no configuration."""
        if not (self.params.get("prom_url") or os.environ.get("IRKIT_PROMETHEUS_URL")):
            return targets.Machine()
        return targets.Machine(prometheus=self.prometheus)

    @functools.cached_property
    def logs(self) -> targets.LogSource:
        return target_builders.logs_target(self.params)

    @functools.cached_property
    def repo(self) -> targets.RepoTarget:
        return target_builders.repo_target(self.params)

    def command(self, name: str) -> targets.CommandTarget:
        """The read-only diagnostic command called `name` in `check_commands`."""
        return target_builders.command_target(self.params, name)

    def check(
        self,
        probe: Callable[Concatenate[T, P], Result],
        target: T,
        /,
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> Result:
        """Run one probe and remember its verdict for the closing summary."""
        result = self.measure(probe, target, *args, **kwargs)
        self.note([result])
        return result

    def measure(
        self,
        probe: Callable[Concatenate[T, P], Result],
        target: T,
        /,
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> Result:
        """Run one probe without remembering its verdict (the health report runs many at once
        and keeps only those that finish within its deadline)."""
        name = str(getattr(probe, "probe_name", getattr(probe, "__name__", "probe")))
        if getattr(target, "configured", True) is False:
            # An optional source nobody gave (a log file, a repository): said, not judged.
            return NotConfigured(
                probe=name,
                target=target.display,
                status=Status.UNKNOWN,
                summary=f"not configured: {getattr(target, 'hint', 'no target given')}",
                evidence={"configured": False},
            )
        key = target.display
        earlier = self._unreachable.get(key)
        if (
            earlier
            and time.monotonic() - earlier[0] < UNREACHABLE_MEMORY_S
            and (earlier[1].probe != name)
        ):
            return _not_attempted(name, earlier[1])
        result = probe(target, *args, **kwargs)
        if result.evidence.get("reachable") is False:
            self._unreachable[key] = (time.monotonic(), result)
        else:
            self._unreachable.pop(key, None)
        return result

    def note(self, results: Iterable[Result]) -> None:
        """Remember verdicts for the closing summary (a check not configured is not one)."""
        for result in results:
            if not isinstance(result, NotConfigured):
                self._latest[(result.probe, result.target)] = result

    @property
    def results(self) -> list[Result]:
        return list(self._latest.values())

    @property
    def status(self) -> Status:
        return Status.worst(r.status for r in self._latest.values())

    def next_steps(self) -> NextSteps:
        """The closing summary: the section's verdict and what the runbook says to do next."""
        return NextSteps(self.name, self.results)


class NotConfigured(Result):
    """A check left out because its optional target was not given. Shown as a note, and kept out
    of the record's verdicts: an unconfigured source is neither healthy nor failing."""

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        text = f"{self.probe}: {self.summary}"
        return {"text/plain": text, "text/html": f"<p><em>{html.escape(text)}</em></p>"}


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
    parameters.check_values(checked, known.get(section, {}))
    return checked
