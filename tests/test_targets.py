from __future__ import annotations

import pytest

from irkit import target_builders
from irkit.errors import ParameterError
from irkit.secrets import redact_url


def test_postgres_parameters_win_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PGHOST", "env-host")
    monkeypatch.setenv("PGPORT", "6000")
    monkeypatch.setenv("PGUSER", "env-user")
    monkeypatch.setenv("PGDATABASE", "env-db")
    assert (
        target_builders.postgres_target({}).display == "postgresql://env-user@env-host:6000/env-db"
    )
    t = target_builders.postgres_target({"pg_host": "db", "pg_port": 5433})
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
        target_builders.postgres_target({"pg_connect_timeout_s": 1}).connect_kwargs()[
            "connect_timeout"
        ]
        == 2
    )


def test_redis_url_from_parameter_environment_or_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("IRKIT_REDIS_URL", raising=False)
    assert target_builders.redis_target({}).url == "redis://localhost:6379/0"
    monkeypatch.setenv("IRKIT_REDIS_URL", "redis://cache:6380/1")
    assert target_builders.redis_target({}).url == "redis://cache:6380/1"
    assert (
        target_builders.redis_target({"redis_url": "redis://other:1/2"}).url == "redis://other:1/2"
    )


def test_password_comes_from_its_own_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IRKIT_REDIS_PASSWORD", "pw-from-env")
    monkeypatch.setenv("IRKIT_CELERY_BROKER_PASSWORD", "broker-pw")
    assert target_builders.redis_target({"redis_url": "redis://c:1/0"}).password == "pw-from-env"
    assert (
        target_builders.celery_target({"celery_broker_url": "amqp://u@r//"}).password == "broker-pw"
    )


def test_a_password_in_a_url_parameter_is_refused() -> None:
    with pytest.raises(ParameterError, match="IRKIT_REDIS_PASSWORD"):
        target_builders.redis_target({"redis_url": "redis://:secret@cache:6379/0"})
    with pytest.raises(ParameterError, match="IRKIT_CELERY_BROKER_PASSWORD"):
        target_builders.celery_target({"celery_broker_url": "amqp://guest:guest@mq:5672//"})


# What redis-py, kombu, libpq and HTTP APIs accept as a credential in a URL's query.
SECRET_QUERIES = [
    "password=S3cret",
    "db=1&pass=S3cret",
    "auth=S3cret",
    "ssl_password=S3cret",
    "sslpassword=S3cret",
    "Passwd=S3cret",
    "token=S3cret",
    "access_token=S3cret",
    "api_key=S3cret",
    "X-Amz-Signature=S3cret",
    "key=S3cret",
]


@pytest.mark.parametrize("query", SECRET_QUERIES)
def test_a_password_in_a_url_query_is_refused_from_parameters_and_environment(
    monkeypatch: pytest.MonkeyPatch, query: str
) -> None:
    cases = [
        ("redis_url", "IRKIT_REDIS_URL", target_builders.redis_target, "redis://cache:6379/1"),
        (
            "celery_broker_url",
            "IRKIT_CELERY_BROKER_URL",
            target_builders.celery_target,
            "redis://cache:6379/0",
        ),
        ("web_url", "IRKIT_BASE_URL", target_builders.web_target, "http://erp:8000/"),
        (
            "prom_url",
            "IRKIT_PROMETHEUS_URL",
            target_builders.prometheus_target,
            "http://prom:9090/",
        ),
    ]
    for name, env, build, base in cases:
        url = f"{base}?{query}"
        with pytest.raises(ParameterError, match=f"parameter {name} contains a password") as exc:
            build({name: url})
        assert "S3cret" not in str(exc.value)
        monkeypatch.setenv(env, url)
        with pytest.raises(ParameterError, match=f"{env} contains a password") as exc:
            build({})
        assert "S3cret" not in str(exc.value)
        monkeypatch.delenv(env)


def test_a_password_in_a_url_from_the_environment_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The same rule as for parameters: passwords only in their own variables."""
    monkeypatch.setenv("IRKIT_REDIS_URL", "redis://:envsecret@cache:6380/1")
    with pytest.raises(ParameterError, match=r"IRKIT_REDIS_URL contains .* IRKIT_REDIS_PASSWORD"):
        target_builders.redis_target({})
    monkeypatch.setenv("IRKIT_CELERY_BROKER_URL", "amqp://guest:guest@mq:5672//")
    with pytest.raises(ParameterError, match="IRKIT_CELERY_BROKER_PASSWORD"):
        target_builders.celery_target({})
    monkeypatch.setenv("IRKIT_PROMETHEUS_URL", "http://ops:envsecret@prom:9090")
    with pytest.raises(ParameterError, match="take no credentials"):
        target_builders.prometheus_target({})


def test_harmless_queries_and_user_names_pass() -> None:
    assert target_builders.redis_target(
        {"redis_url": "redis://cache:1/0?db=2&socket_timeout=3"}
    ).url
    assert target_builders.redis_target({"redis_url": "redis://monitor@cache:1/0"}).password is None
    assert target_builders.web_target({"web_url": "https://erp.example.com/?keyboard=1"}).base_url


@pytest.mark.parametrize(
    "value",
    [
        "dbname=himalytix password=S3cret",
        "host=db password=S3cret",
        "himalytix sslpassword=S3cret",
        "postgresql://erp:S3cret@db/himalytix",
        "postgres://erp:S3cret@db/himalytix",
        "POSTGRESQL://db/himalytix?password=S3cret",
    ],
)
def test_a_connection_string_in_pg_database_is_refused(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    """libpq expands a dbname holding "=" or a URI prefix: the password in it would be used,
    shown as the target and written into the record."""
    with pytest.raises(ParameterError, match="parameter pg_database must be a database name") as e:
        target_builders.postgres_target({"pg_database": value})
    assert "S3cret" not in str(e.value)
    monkeypatch.setenv("PGDATABASE", value)
    with pytest.raises(ParameterError, match="PGDATABASE must be a database name"):
        target_builders.postgres_target({})


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("pg_host", "erp:S3cret@db.internal"),
        ("pg_host", "postgresql://erp:S3cret@db"),
        ("pg_host", "db password=S3cret"),
        ("pg_user", "erp:S3cret"),
        ("pg_user", "erp password=S3cret"),
    ],
)
def test_credentials_in_other_postgres_fields_are_refused(name: str, value: str) -> None:
    with pytest.raises(ParameterError, match=f"parameter {name} must be") as exc:
        target_builders.postgres_target({name: value})
    assert "S3cret" not in str(exc.value)


def test_any_parameter_holding_a_url_with_a_credential_is_refused() -> None:
    for name, value in [
        ("statuspage_api", "https://api.example.com/v1?api_key=S3cret"),
        ("grafana_url", "https://admin:S3cret@grafana.example.com/d/x"),
        ("web_smoke_paths", ["/health/ready/", "/api/v1/health/?token=S3cret"]),
        ("title", "see https://ops:S3cret@wiki.example.com/x"),
        # URLs urlsplit cannot read, or reads without a password: a client may still send it.
        ("grafana_url", "http://u:S3cret@[x/"),
        ("title", "see redis://:S3cret@[::1/0"),
    ]:
        with pytest.raises(ParameterError, match=f"parameter {name} contains") as exc:
            target_builders.check_all({name: value}, set())
        assert "S3cret" not in str(exc.value)
    # Read otherwise, or not a URL at all: refused, and the error does not echo the password.
    for url in ("redis:/:S3cret@cache/0", "redis//:S3cret@cache/0"):
        with pytest.raises(ParameterError) as exc:
            target_builders.redis_target({"redis_url": url})
        assert "S3cret" not in str(exc.value)


def test_malformed_urls_are_refused() -> None:
    with pytest.raises(ParameterError, match="not a valid URL"):
        target_builders.redis_target({"redis_url": "redis://cache:notaport/0"})
    with pytest.raises(ParameterError, match="not a valid URL"):
        target_builders.redis_target({"redis_url": "cache"})


def test_redact_url() -> None:
    assert redact_url("redis://:s3cret@h:1/0") == "redis://:****@h:1/0"
    assert redact_url("amqp://guest:pw@[::1]:5672//") == "amqp://guest:****@[::1]:5672//"
    assert redact_url("redis://h:1/0") == "redis://h:1/0"
    assert redact_url("redis://:s3cret@h:bad/0") == "redis://****@h:bad/0"
    # Query strings too: redis-py takes a password from `?password=`.
    assert redact_url("redis://h:1/0?password=s3cret&db=2") == "redis://h:1/0?password=****&db=2"
    assert redact_url("http://h/x?access_token=t0k&x=1") == "http://h/x?access_token=****&x=1"
    assert redact_url("redis://h:bad/0?auth=s3cret") == "redis://h:bad/0?auth=****"
