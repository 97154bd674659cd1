"""How a notebook's Section checks its parameters and keeps its verdicts (pure logic)."""

from __future__ import annotations

import types
from pathlib import Path
from typing import Any

import pytest

from irkit.errors import ParameterError, ServiceError, Unreachable
from irkit.probes.contract import Finding, probe
from irkit.result import Status
from irkit.section import Section
from irkit.targets import LocalHost
from tests.helpers import ROOT


def namespace(**values: Any) -> dict[str, Any]:
    """What a notebook's globals hold after its parameters cell (and papermill's injected one)."""
    annotations = {"pg_host": str, "pg_port": int, "pg_long_query_warn_s": float}
    ns: dict[str, Any] = {"__annotations__": annotations, "pg_host": "", "pg_port": 0}
    ns["pg_long_query_warn_s"] = 1.0
    ns.update(In=[""], Out={}, irkit=types, get_ipython=print, _i1="x")
    ns.update(values)
    return ns


def test_declared_values_are_checked_and_written_back() -> None:
    ns = namespace(pg_port=5433, pg_long_query_warn_s=2)
    section = Section("db", ns)
    assert section.params == {"pg_host": "", "pg_port": 5433, "pg_long_query_warn_s": 2.0}
    assert isinstance(ns["pg_long_query_warn_s"], float)


def test_a_wrong_type_stops_the_notebook_before_any_probe() -> None:
    with pytest.raises(ParameterError, match="pg_port must be an integer"):
        Section("db", namespace(pg_port="5433"))


def test_an_undeclared_injected_name_is_refused_with_a_suggestion() -> None:
    with pytest.raises(ParameterError, match=r"unknown parameter 'pg_hots'.*'pg_host'"):
        Section("db", namespace(pg_hots="db.example.com"))


def test_a_shared_file_may_carry_other_sections_parameters() -> None:
    # redis_url belongs to the redis notebook: plain papermill -f parameters/x.yaml injects it too.
    section = Section("db", namespace(redis_url="redis://x:1/0"))
    assert "redis_url" not in section.params


def test_section_overrides_from_a_file_apply_to_their_section() -> None:
    ns = namespace(sections={"db": {"pg_port": 6543}, "redis": {"redis_url": "redis://y:1/0"}})
    section = Section("db", ns)
    assert section.params["pg_port"] == 6543
    assert ns["pg_port"] == 6543
    assert "sections" not in ns


def test_thresholds_out_of_order_stop_the_notebook_before_any_probe() -> None:
    # pg_long_query_crit_s keeps its notebook default, 300 s.
    with pytest.raises(ParameterError, match=r"pg_long_query_warn_s \(400\) is above"):
        Section("db", namespace(pg_long_query_warn_s=400.0))


def test_a_section_without_parameters_is_an_error() -> None:
    with pytest.raises(ParameterError, match="no parameters found"):
        Section("db", {})


def test_error_renders_as_one_line_in_a_notebook() -> None:
    exc = ParameterError("unknown parameter 'x'")
    assert exc._render_traceback_() == ["ParameterError: unknown parameter 'x'"]


calls: list[str] = []


@probe("fake.connect", target="t", left_out="a test of the Section")
def fake_connect(target: LocalHost, *, up: bool = True) -> Finding:
    calls.append("connect")
    if not up:
        raise Unreachable("no answer within 2 s")
    return Finding(Status.OK, "fine")


@probe("fake.pool", target="t", left_out="a test of the Section")
def fake_pool(target: LocalHost, *, full: bool = False) -> Finding:
    calls.append("pool")
    if full:
        raise ServiceError("pool exhausted")
    return Finding(Status.WARN, "15 of 17 in use", {"used": 15})


def test_an_unreachable_target_is_not_waited_on_twice() -> None:
    calls.clear()
    section = Section("db", namespace())
    target = LocalHost("db")
    assert section.check(fake_connect, target, up=False).status is Status.CRIT
    skipped = section.check(fake_pool, target)
    assert skipped.status is Status.UNKNOWN
    # Said without the notebook's context (it reaches Slack and the health report); the hint to
    # re-run the cell shows in the notebook only.
    assert skipped.summary == "not measured: fake.connect had just failed on this target"
    assert "cell" not in skipped.to_json()["summary"]
    shown = skipped._repr_mimebundle_()
    assert "Re-run this cell" in shown["text/plain"]
    assert "Re-run this cell" in shown["text/html"]
    assert "cell" not in str(shown["application/vnd.irkit.result+json"])
    # The step for the failure covers the check it stopped.
    steps = section.next_steps().steps
    assert [r.probe for r, _ in steps] == ["fake.connect"]
    assert calls == ["connect"]
    # Re-running the failed check itself always tries again, and success clears the memory.
    assert section.check(fake_connect, target).status is Status.OK
    assert section.check(fake_pool, target).status is Status.WARN
    assert calls == ["connect", "connect", "pool"]


def test_next_steps_follow_the_runbook() -> None:
    section = Section("db", namespace())
    target = LocalHost("db")
    section.check(fake_connect, target)
    assert "all 1 checks OK" in section.next_steps().headline()
    section.check(fake_pool, target, full=True)
    steps = section.next_steps()
    assert steps.status is Status.CRIT
    assert steps.headline() == "db: CRIT (1 OK, 1 CRIT)"
    bundle = steps._repr_mimebundle_()
    assert "pool exhausted" in bundle["text/plain"]
    assert "application/vnd.irkit.result+json" not in bundle  # verdicts are counted once
    # Re-running a cell replaces its verdict instead of adding another.
    section.check(fake_pool, target)
    assert len(section.results) == 2
    assert section.status is Status.WARN


def test_what_next_lists_findings_only_and_counts_the_checks_that_passed() -> None:
    section = Section("db", namespace())
    target = LocalHost("db")
    section.check(fake_connect, target)
    section.check(fake_pool, target)
    steps = section.next_steps()
    assert [r.probe for r, _ in steps.steps] == ["fake.pool"]
    assert steps.headline() == "db: WARN (1 OK, 1 WARN)"
    bundle = steps._repr_mimebundle_()
    assert "fake.connect" not in bundle["text/plain"]
    assert "fake.connect" not in bundle["text/html"]
    # The terminal reads the same from the machine-readable form.
    data = bundle["application/vnd.irkit.next-steps+json"]
    assert data["headline"] == "db: WARN (1 OK, 1 WARN)"
    assert [s["probe"] for s in data["steps"]] == ["fake.pool"]


def test_verdicts_after_an_action_that_changed_something_say_so() -> None:
    section = Section("db", namespace())
    target = LocalHost("db")
    assert section.check(fake_pool, target).after == ""
    section.after = "postgres.terminate"  # what irkit.Section.act records
    again = section.check(fake_pool, target)
    assert again.after == "postgres.terminate"
    assert again.to_json()["after"] == "postgres.terminate"
    assert str(again).endswith("(after postgres.terminate)")
    assert section.results == [again]


def test_the_closing_re_measure_runs_only_once_something_changed() -> None:
    """ "Did it help?" after dry runs only would repeat every verdict: one quiet line instead;
    after an action that changed something, the probes are measured again, as before."""
    section = Section("db", namespace())
    target = LocalHost("db")
    first = section.check(fake_pool, target, full=True)
    assert first.status is Status.CRIT
    said = section.measure_again("fake.pool")
    assert repr(said) == "Nothing was changed above: fake.pool stand as measured."
    assert section.results == [first]
    section.after = "postgres.terminate"
    again = section.measure_again("fake.pool")
    assert [r.probe for r in again] == ["fake.pool"]  # type: ignore[union-attr]
    assert section.results[0].after == "postgres.terminate"
    assert section.results[0].status is Status.CRIT  # measured as it was: full=True again


def test_the_broker_is_known_only_when_configured(monkeypatch: pytest.MonkeyPatch) -> None:
    # The default guess (localhost:6379/0) must not make a cache there look like a broker.
    monkeypatch.delenv("IRKIT_CELERY_BROKER_URL", raising=False)
    ns = namespace(celery_broker_url="")
    ns["__annotations__"]["celery_broker_url"] = str
    assert Section("redis", ns).broker is None
    monkeypatch.setenv("IRKIT_CELERY_BROKER_URL", "redis://127.0.0.1:6390/2")
    broker = Section("redis", namespace(celery_broker_url="")).broker
    assert broker is not None
    assert broker.broker_url == "redis://127.0.0.1:6390/2"
    explicit = namespace(celery_broker_url="redis://127.0.0.1:6391/0")
    explicit["__annotations__"]["celery_broker_url"] = str
    assert Section("redis", explicit).broker is not None


def test_relative_files_in_the_parameters_are_the_kits_wherever_the_notebook_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A notebook prepared for JupyterLab runs in its own folder: `.sandbox/web/web.log` from
    the parameter file still names the kit's file, as under `irkit run`."""
    annotations = {"disk_paths": list[str], "log_files": list[str], "disk_log_pattern": str}
    values = {
        "disk_paths": ["/", ".sandbox/app/media"],
        "log_files": [".sandbox/web/*.log"],
        "disk_log_pattern": "*.log",  # not a path: left as it is
    }
    ns: dict[str, Any] = {"__annotations__": annotations, **values}
    monkeypatch.setenv("IRKIT_HOME", str(ROOT))
    monkeypatch.chdir(tmp_path)
    section = Section("disk", dict(ns))
    assert section.params["disk_paths"] == ["/", str(ROOT / ".sandbox/app/media")]
    assert section.params["log_files"] == [str(ROOT / ".sandbox/web/*.log")]
    assert section.params["disk_log_pattern"] == "*.log"
    # Run from the kit's folder, as `irkit run` runs it: the record keeps what was given.
    monkeypatch.chdir(ROOT)
    assert Section("disk", dict(ns)).params["disk_paths"] == ["/", ".sandbox/app/media"]
