from __future__ import annotations

import pytest

from irkit import targets
from irkit.errors import ParameterError
from irkit.secrets import redact_url


def test_postgres_parameters_win_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PGHOST", "env-host")
    monkeypatch.setenv("PGPORT", "6000")
    monkeypatch.setenv("PGUSER", "env-user")
    monkeypatch.setenv("PGDATABASE", "env-db")
    assert targets.postgres_target({}).display == "postgresql://env-user@env-host:6000/env-db"
    t = targets.postgres_target({"pg_host": "db", "pg_port": 5433})
    assert t.display == "postgresql://env-user@db:5433/env-db"
    # Empty fields are left to libpq, which reads the same variables itself.
    assert t.connect_kwargs() == {
        "host": "db",
        "port": 5433,
        "connect_timeout": 3,
        "application_name": "irkit",
    }


def test_libpq_connect_timeout_minimum() -> None:
    assert (
        targets.postgres_target({"pg_connect_timeout_s": 1}).connect_kwargs()["connect_timeout"]
        == 2
    )


def test_redis_url_from_parameter_environment_or_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("IRKIT_REDIS_URL", raising=False)
    assert targets.redis_target({}).url == "redis://localhost:6379/0"
    monkeypatch.setenv("IRKIT_REDIS_URL", "redis://:envsecret@cache:6380/1")
    env_target = targets.redis_target({})
    assert env_target.password == "envsecret"
    assert env_target.display == "redis://cache:6380/1"
    assert "envsecret" not in repr(env_target)
    assert targets.redis_target({"redis_url": "redis://other:1/2"}).url == "redis://other:1/2"


def test_password_comes_from_its_own_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IRKIT_REDIS_PASSWORD", "pw-from-env")
    monkeypatch.setenv("IRKIT_CELERY_BROKER_PASSWORD", "broker-pw")
    assert targets.redis_target({"redis_url": "redis://c:1/0"}).password == "pw-from-env"
    assert targets.celery_target({"celery_broker_url": "amqp://u@r//"}).password == "broker-pw"


def test_a_password_in_a_url_parameter_is_refused() -> None:
    with pytest.raises(ParameterError, match="IRKIT_REDIS_PASSWORD"):
        targets.redis_target({"redis_url": "redis://:secret@cache:6379/0"})
    with pytest.raises(ParameterError, match="IRKIT_CELERY_BROKER_PASSWORD"):
        targets.celery_target({"celery_broker_url": "amqp://guest:guest@mq:5672//"})


def test_malformed_urls_are_refused() -> None:
    with pytest.raises(ParameterError, match="not a valid URL"):
        targets.redis_target({"redis_url": "redis://cache:notaport/0"})
    with pytest.raises(ParameterError, match="not a valid URL"):
        targets.redis_target({"redis_url": "cache"})


def test_redact_url() -> None:
    assert redact_url("redis://:s3cret@h:1/0") == "redis://:****@h:1/0"
    assert redact_url("amqp://guest:pw@[::1]:5672//") == "amqp://guest:****@[::1]:5672//"
    assert redact_url("redis://h:1/0") == "redis://h:1/0"
    assert redact_url("redis://:s3cret@h:bad/0") == "redis://****@h:bad/0"
