"""Celery probes against a real broker and a real worker, with the faults made for real."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from celery import Celery

from irkit.probes import celery
from irkit.result import Status
from irkit.sandbox.process import port_open
from irkit.sandbox.stack import BROKER_DB, Stack
from irkit.targets import CeleryTarget


@pytest.fixture
def sender(stack: Stack) -> Iterator[Celery]:
    app = Celery("sender", broker=stack.redis.url(BROKER_DB), set_as_current=False)
    yield app
    app.close()


@pytest.fixture
def stopped_worker(stack: Stack) -> Iterator[None]:
    stack.worker.stop()
    yield
    client = stack.redis.client(BROKER_DB)
    client.delete(*celery.priority_keys("celery"))
    stack.worker.start()


def test_healthy_queue_and_worker(broker: CeleryTarget) -> None:
    queues = celery.queues(broker)
    assert queues.status is Status.OK
    assert queues.evidence["rows"][0]["queue"] == "celery"
    workers = celery.workers(broker)
    assert workers.status is Status.OK
    assert workers.evidence["workers"] == 1
    assert workers.evidence["rows"][0]["concurrency"] == 2


def test_backlog_with_no_worker(broker: CeleryTarget, sender: Celery, stopped_worker: None) -> None:
    for i in range(150):
        sender.send_task("reports.generate", args=[f"tenant-{i}"], queue="celery")
    for _ in range(5):
        sender.send_task("notifications.send_email", queue="celery", priority=9)
    queues = celery.queues(broker)
    assert queues.status is Status.WARN
    assert queues.evidence["total"] == 155
    by_key = queues.evidence["rows"][0]["by_key"]
    assert by_key["celery"] == 150
    assert by_key["celery\\x06\\x169"] == 5  # the priority sub-queue `LLEN celery` misses
    assert "celery is over 100" in queues.summary
    assert celery.queues(broker, crit=150).status is Status.CRIT

    started = time.monotonic()
    workers = celery.workers(broker)
    assert time.monotonic() - started < broker.inspect_timeout_s + 2
    assert workers.status is Status.CRIT
    assert "not proven dead" in workers.summary


def test_a_full_pool_is_a_warning(stack: Stack, broker: CeleryTarget, sender: Celery) -> None:
    for _ in range(stack.worker.concurrency):
        sender.send_task("sandbox.sleep", args=[4], queue="celery")
    deadline = time.monotonic() + 10
    while (result := celery.workers(broker)).evidence.get("active", 0) < stack.worker.concurrency:
        assert time.monotonic() < deadline, result.summary
    # Until the longest task has run a little while (its time is what is checked below).
    while (result := celery.workers(broker)).evidence["rows"][0]["longest_task_s"] < 0.3:
        assert time.monotonic() < deadline, result.summary
    assert result.status is Status.WARN
    assert "every pool slot is busy" in result.summary
    row = result.evidence["rows"][0]
    assert {t["name"] for t in row["active_tasks"]} == {"sandbox.sleep"}
    assert row["longest_task_s"] >= 0.3
    assert "longest task running" in result.summary
    assert celery.workers(broker, min_workers=2).status is Status.WARN
    while celery.workers(broker).evidence.get("active", 0):  # let the tasks finish
        assert time.monotonic() < deadline + 10
        time.sleep(0.2)


@pytest.mark.skipif(not port_open("127.0.0.1", 5672), reason="no RabbitMQ on 127.0.0.1:5672")
def test_queue_length_on_rabbitmq() -> None:
    from kombu import Connection, Exchange, Queue

    name = f"irkit-test-{time.time_ns()}"
    queue = Queue(name, Exchange(name), routing_key=name, auto_delete=False)
    with Connection("amqp://guest:guest@127.0.0.1:5672//") as conn:
        producer: Any = conn.Producer()
        for i in range(3):
            producer.publish({"n": i}, exchange=queue.exchange, routing_key=name, declare=[queue])
        try:
            target = CeleryTarget(broker_url="amqp://guest@127.0.0.1:5672//", password="guest")
            # Publishing without confirms: the broker may count a moment later.
            deadline = time.monotonic() + 5
            result = celery.queues(target, names=[name])
            while result.evidence.get("total") != 3 and time.monotonic() < deadline:
                time.sleep(0.1)
                result = celery.queues(target, names=[name])
            assert result.status is Status.OK
            assert result.evidence["total"] == 3
            assert "guest@" in result.target
            assert ":guest@" not in result.target
        finally:
            queue(conn.default_channel).delete()
