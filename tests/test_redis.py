"""Redis probes against a real server, with the faults made for real."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
import redis as redislib
from redis.backoff import NoBackoff
from redis.retry import Retry

from irkit.probes import redis
from irkit.result import Status
from irkit.sandbox.process import free_port
from irkit.sandbox.redis import RedisServer
from irkit.sandbox.stack import BROKER_DB, Stack
from irkit.targets import CeleryTarget, RedisTarget

FILL_DB = 3


@pytest.fixture
def admin(stack: Stack) -> Iterator[redislib.Redis]:
    """A client for making faults; whatever a test changes is put back afterwards."""
    client = stack.redis.client()
    saved = {k: client.config_get(k)[k] for k in ("maxmemory", "maxmemory-policy", "maxclients")}
    yield client
    stack.redis.client(FILL_DB).flushdb()
    for key, value in saved.items():
        client.config_set(key, value)
    client.config_resetstat()
    client.close()


def test_ping(redis_target: RedisTarget) -> None:
    result = redis.ping(redis_target)
    assert result.status is Status.OK
    assert result.evidence["redis_version"].startswith(("6", "7", "8"))


def test_memory_ok_with_a_limit(redis_target: RedisTarget) -> None:
    result = redis.memory(redis_target)
    assert result.status is Status.OK
    assert result.evidence["maxmemory"] > 0
    assert result.evidence["broker_at_risk"] is False


def test_memory_filled_to_maxmemory_is_crit(
    stack: Stack, redis_target: RedisTarget, admin: redislib.Redis
) -> None:
    used = int(admin.info("memory")["used_memory"])
    admin.config_set("maxmemory", str(used + 2 * 1024 * 1024))
    filler = stack.redis.client(FILL_DB)
    with contextlib.suppress(redislib.exceptions.ResponseError):  # OOM: full, as intended
        for i in range(10_000):
            filler.set(f"cache:{i}", b"x" * 4096)
    result = redis.memory(redis_target)
    assert result.status is Status.CRIT
    assert result.evidence["percent"] >= 95
    assert "maxmemory used" in result.summary


def test_no_limit_is_a_warning(redis_target: RedisTarget, admin: redislib.Redis) -> None:
    admin.config_set("maxmemory", "0")
    result = redis.memory(redis_target)
    assert result.status is Status.WARN
    assert "no maxmemory limit" in result.summary


def test_an_evicting_policy_on_the_broker_is_a_warning(
    redis_target: RedisTarget, admin: redislib.Redis
) -> None:
    # The practice worker consumes from db 0, so kombu's binding key lives there.
    admin.config_set("maxmemory-policy", "allkeys-lru")
    result = redis.memory(redis_target)
    assert result.status is Status.WARN
    assert result.evidence["broker_dbs"] == [BROKER_DB]
    assert "holds Celery queues" in result.summary
    admin.config_set("maxmemory-policy", "volatile-lru")  # queue keys have no TTL: safe
    assert redis.memory(redis_target).status is Status.OK


def test_an_evicting_policy_on_the_brokers_own_db_is_a_warning_whatever_its_queues_are_named(
    stack: Stack, redis_target: RedisTarget, admin: redislib.Redis
) -> None:
    # A broker whose queues are not the ones named in celery_queues, reached under another
    # name of the same server: the db is the broker's all the same.
    stack.redis.client(FILL_DB).rpush("billing-tasks", "a task")
    broker = CeleryTarget(broker_url=stack.redis.url(FILL_DB).replace("127.0.0.1", "localhost"))
    admin.config_set("maxmemory-policy", "allkeys-lru")
    without = redis.memory(redis_target, broker_queues=["nothing-here"])
    assert FILL_DB not in without.evidence["broker_dbs"]
    result = redis.memory(redis_target, broker_queues=["nothing-here"], broker=broker)
    assert result.status is Status.WARN
    assert FILL_DB in result.evidence["broker_dbs"]
    assert "holds Celery queues" in result.summary


def test_rejected_clients_are_crit(
    stack: Stack, redis_target: RedisTarget, admin: redislib.Redis
) -> None:
    assert redis.clients(redis_target).status is Status.OK
    connected = int(admin.info("clients")["connected_clients"])
    admin.config_set("maxclients", str(connected + 1))
    port = stack.redis.port
    extra = [redislib.Redis(port=port, retry=Retry(NoBackoff(), 0)) for _ in range(3)]
    for client in extra:
        with contextlib.suppress(redislib.exceptions.ConnectionError):
            client.ping()
    admin.config_set("maxclients", "10000")
    result = redis.clients(redis_target)
    assert result.status is Status.CRIT
    assert result.evidence["rejected_connections"] >= 1
    assert result.evidence["maxclients"] == 10000
    assert "rejected since start" in result.summary
    for client in extra:
        client.close()


@pytest.fixture
def guarded(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path / "redis", free_port(), password="right-password-1")
    server.start()
    yield server
    server.stop()


def test_authentication_is_named(guarded: RedisServer) -> None:
    target = RedisTarget(url=guarded.url())
    no_password = redis.ping(target)
    assert no_password.status is Status.CRIT
    assert "IRKIT_REDIS_PASSWORD" in no_password.summary
    wrong = redis.ping(replace(target, password="wrong-password"))
    assert wrong.status is Status.CRIT
    assert "authentication failed" in wrong.summary
    right = redis.ping(replace(target, password="right-password-1"))
    assert right.status is Status.OK
