from __future__ import annotations

import pytest

from irkit.errors import ConfigError, NotVisible, ParameterError, ServiceError, Unreachable
from irkit.probes.contract import Finding, check_thresholds, grade, grade_low, probe
from irkit.result import Status
from irkit.targets import LocalHost


def run_body(body: object) -> object:
    @probe("test.body", target="t", left_out="a test of the contract")
    def p(target: LocalHost) -> Finding:
        if isinstance(body, BaseException):
            raise body
        assert isinstance(body, Finding)
        return body

    return p(LocalHost("here"))


def test_a_finding_becomes_a_timed_result() -> None:
    result = run_body(Finding(Status.WARN, "slow", {"n": 3}))
    assert result.probe == "test.body"
    assert result.target == "here"
    assert result.status is Status.WARN
    assert result.evidence == {"n": 3}
    assert result.elapsed_ms >= 0


def test_a_down_service_is_crit_with_its_reason() -> None:
    result = run_body(ServiceError("refused", pool_exhausted=True))
    assert result.status is Status.CRIT
    assert result.summary == "refused"
    assert result.evidence["pool_exhausted"] is True


def test_unreachable_is_marked_so_later_probes_can_skip() -> None:
    result = run_body(Unreachable("timed out"))
    assert result.status is Status.CRIT
    assert result.evidence["reachable"] is False


def test_not_visible_is_unknown() -> None:
    assert run_body(NotVisible("permission denied")).status is Status.UNKNOWN


def test_a_probe_bug_is_unknown_not_a_crash(caplog: pytest.LogCaptureFixture) -> None:
    result = run_body(ZeroDivisionError("division by zero"))
    assert result.status is Status.UNKNOWN
    assert "ZeroDivisionError" in result.summary
    assert "bug" in result.summary
    assert "probe test.body failed unexpectedly" in caplog.text


def test_bad_configuration_is_raised() -> None:
    with pytest.raises(ConfigError):
        run_body(ConfigError("no such thing"))


def test_secrets_from_the_environment_are_masked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PGPASSWORD", "hunter2-very-secret")
    result = run_body(ServiceError("login hunter2-very-secret refused"))
    assert "hunter2-very-secret" not in result.summary
    assert "hunter2-very-secret" not in str(result.evidence)
    assert "****" in result.summary


def test_a_secret_is_also_masked_as_a_url_would_carry_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IRKIT_REDIS_PASSWORD", "p@ss/word")
    result = run_body(ServiceError("redis://:p%40ss%2Fword@cache:6379/0 refused"))
    assert "p%40ss" not in result.summary


def test_grades() -> None:
    assert grade(79.9, 80, 95) is Status.OK
    assert grade(80, 80, 95) is Status.WARN
    assert grade(95, 80, 95) is Status.CRIT
    assert grade_low(11, 10, 5) is Status.OK
    assert grade_low(10, 10, 5) is Status.WARN
    assert grade_low(5, 10, 5) is Status.CRIT


def test_thresholds_in_the_wrong_order_are_refused() -> None:
    with pytest.raises(ParameterError, match="WARN threshold"):
        check_thresholds(95, 80)
    with pytest.raises(ParameterError, match="WARN threshold"):
        check_thresholds(5, 10, higher_is_worse=False)
