"""A runbook section being worked through in a notebook: its checked parameters, its targets and the
verdicts so far. What a run records (its incident, drills, mitigations) is added on top by
`irkit.incident.section`, whose Section is the one notebooks create as `irkit.Section`."""

from __future__ import annotations

import dataclasses
import functools
import html
import os
import time
from collections.abc import Callable, Iterable, Mapping, MutableMapping, Sequence
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, TypeVar

from irkit import parameters, target_builders, targets
from irkit.advice import NextSteps
from irkit.catalogue import parameters as catalogue
from irkit.errors import ConfigError, ParameterError
from irkit.home import kit_home
from irkit.probes.contract import Target
from irkit.result import Result, Results, Status

P = ParamSpec("P")
# The findings a mitigation answers (`irkit.Section.act(when=…)`): probe names, needed while any
# of their verdicts is not OK; or probe names with the least status that calls for it, e.g.
# {"celery.workers": "CRIT"} for a restart that only no answer at all justifies.
Answers = str | Sequence[str] | Mapping[str, str]
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
        # How each verdict was measured, to measure it again after a mitigation (`recheck`).
        self._measured: dict[tuple[str, str], Callable[[], Result]] = {}
        self._unreachable: dict[str, tuple[float, Result]] = {}
        # The verdict that found no Docker on this machine at all: said once, the checks that
        # need Docker after it are left out quietly rather than each saying it again.
        self._no_docker: Result | None = None
        # The last guarded action of this run that changed something: every verdict measured
        # after it says so (Result.after), so a re-check reads as one.
        self.after = ""
        # Stamped on every verdict (`--env NAME`).
        self.environment = str(self.params.get("environment") or "")

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
    def compose(self) -> targets.ComposeTarget:
        """The Compose deployment (`compose_dir`, `compose_project`, `docker_host`). In the
        containers notebook, whose subject it is, a project not named is looked for on the
        engine (its only one) rather than left out."""
        return target_builders.compose_target(self.params, discover=self.name == "containers")

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
        if self.after and not isinstance(result, NotConfigured):
            result = dataclasses.replace(result, after=self.after)
        self.note([result])
        if not isinstance(result, NotConfigured):
            self._measured[(result.probe, result.target)] = functools.partial(
                self.check, probe, target, *args, **kwargs
            )
        return result

    def latest(self, probes: Iterable[str]) -> list[Result]:
        """The latest verdicts of these probes in this section, on every target they ran on."""
        wanted = set(probes)
        return [result for (name, _), result in self._latest.items() if name in wanted]

    def recheck(self, probes: Iterable[str]) -> list[Result]:
        """Measure again, as they were last measured, the verdicts of these probes; the new
        verdicts replace the old ones in the closing summary."""
        wanted = set(probes)
        # A mitigation (a restart) may have brought back a target that did not answer a moment
        # ago: every probe gets a real attempt.
        self._unreachable.clear()
        return [again() for (name, _), again in list(self._measured.items()) if name in wanted]

    def measure_again(self, *probes: str) -> Results | Said:
        """A notebook's closing "Did it help?": these probes measured again, as they were last
        measured, once a mitigation in this run changed something; else one quiet line, as the
        verdicts above still stand (measuring the same thing twice would only repeat them)."""
        if not self.after:
            return Said(f"Nothing was changed above: {', '.join(probes)} stand as measured.")
        return Results(self.recheck(probes))

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
        if self._no_docker is not None and getattr(target, "uses_docker", False):
            return NotConfigured(
                probe=name,
                target=target.display,
                status=Status.UNKNOWN,
                summary=f"not measured: no Docker here ({self._no_docker.probe} says so above)",
                evidence={"configured": False, "docker": "absent"},
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
        if self.environment:
            result = dataclasses.replace(result, environment=self.environment)
        if result.evidence.get("docker") == "absent":
            self._no_docker = result
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

    def not_needed(self, answers: Answers) -> str | None:
        """Why a mitigation that answers these findings is not needed now, e.g.
        "postgres.migrations is OK"; None while one of them is present, or not measured in this
        section (then nobody can tell, and the plan is shown)."""
        wanted = findings(answers)
        latest = self.latest(wanted)
        measured = {r.probe for r in latest}
        if not wanted or set(wanted) - measured:
            return None
        if any(r.status is Status.UNKNOWN or r.status.rank >= wanted[r.probe].rank for r in latest):
            return None
        said = dict.fromkeys(f"{r.probe} is {r.status.name}" for r in latest)
        return ", ".join(said)

    @property
    def results(self) -> list[Result]:
        return list(self._latest.values())

    @property
    def status(self) -> Status:
        return Status.worst(r.status for r in self._latest.values())

    def next_steps(self) -> NextSteps:
        """The closing summary: the section's verdict and what the runbook says to do next."""
        return NextSteps(self.name, self.results)


def findings(answers: Answers) -> dict[str, Status]:
    """{probe: the least status that calls for the mitigation}; a bare name: any finding."""
    from irkit import probes

    if isinstance(answers, str):
        answers = (answers,)
    if not isinstance(answers, Mapping):
        answers = dict.fromkeys(answers, Status.WARN.name)
    wanted = {}
    for name, least in answers.items():
        probes.entry(name)  # a misspelt name would offer the plan for ever: refuse it
        wanted[name] = Status[least]
    return wanted


class Said:
    """A line for the reader of the notebook, recorded nowhere (no verdict, no event)."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return self.text

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        return {"text/plain": self.text, "text/html": f"<p><i>{html.escape(self.text)}</i></p>"}


class NotConfigured(Result):
    """A check left out because its optional target was not given. Shown as a note, and kept out
    of the record's verdicts: an unconfigured source is neither healthy nor failing."""

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        text = f"{self.probe}: {self.summary}"
        return {"text/plain": text, "text/html": f"<p><em>{html.escape(text)}</em></p>"}


class NotAttempted(Result):
    """A probe not run because its target had just failed another. Its summary reads the same
    anywhere (a Slack notice, the health report); the notebook alone adds what to do there."""

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        bundle = super()._repr_mimebundle_(include, exclude)
        hint = "Re-run this cell once the target answers."
        bundle["text/plain"] += f"\n  {hint}"
        bundle["text/html"] += f"<p><em>{html.escape(hint)}</em></p>"
        return bundle


def _not_attempted(name: str, cause: Result) -> Result:
    return NotAttempted(
        probe=name,
        target=cause.target,
        status=Status.UNKNOWN,
        summary=f"not measured: {cause.probe} had just failed on this target",
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
    return from_kit_home(checked)


def from_kit_home(values: dict[str, Any]) -> dict[str, Any]:
    """Relative files and folders in the parameters (`.sandbox/web/web.log`) are the kit's,
    as `irkit run` reads them: a notebook prepared for JupyterLab (`./kit lab --env`, `incident
    open -f`) runs in its own folder, where they would name nothing."""
    try:
        home = kit_home()
    except ConfigError:
        return values
    if Path.cwd() == home:
        return values  # as written: the record shows the paths the responder gave

    def absolute(value: str) -> str:
        return value if not value or os.path.isabs(value) else str(home / value)

    resolved = dict(values)
    for name, value in values.items():
        declared = catalogue.BY_NAME.get(name)
        if declared is None or not declared.path:
            continue
        if isinstance(value, str):
            resolved[name] = absolute(value)
        elif isinstance(value, list):
            resolved[name] = [absolute(v) if isinstance(v, str) else v for v in value]
    return resolved
