"""Celery probes against a real broker and a real worker, with the faults made for real."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from celery import Celery

from irkit.errors import ConfigError
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


# --- what the celery notebook's mitigations see and do ------------------------------------------


def test_the_pool_reported_after_pool_grow_is_the_real_one(broker: CeleryTarget) -> None:
    """`max-concurrency` in `inspect stats` keeps the size a worker started with; its processes
    are its pool now."""
    from irkit.actions.celery import Pool

    row = celery.workers(broker).evidence["rows"][0]
    worker, size = row["worker"], row["concurrency"]
    grow = Pool(broker, 2, [worker])
    try:
        assert grow.act(grow.plan()).verdict == "DONE"
        result = celery.workers(broker)
        grown = result.evidence["rows"][0]
        assert (grown["concurrency"], grown["pool_processes"]) == (size + 2, size + 2)
        assert grown["started_with"] == size
        assert f"of {size + 2} pool slots busy" in result.summary
    finally:
        shrink = Pool(broker, -2, [worker])
        shrink.act(shrink.plan())
    assert celery.workers(broker).evidence["rows"][0]["concurrency"] == size


def test_purge_by_task_name_takes_only_that_task_and_keeps_the_others_in_order(
    stack: Stack, broker: CeleryTarget, sender: Celery
) -> None:
    from irkit.actions import guard
    from irkit.actions.broker_messages import waiting_by_task
    from irkit.actions.celery import Purge
    from irkit.incident.log import IncidentLog

    queue = "irkit-test-purge-tasks"  # no worker consumes it
    client = stack.redis.client(BROKER_DB)
    try:
        for n in range(30):
            name = "reports.runaway" if n % 3 else "notifications.send_email"
            sender.send_task(name, args=[n], queue=queue, priority=[0, 5, 9][(n // 3) % 3])
        kept_before = {
            key: [m for m in client.lrange(key, 0, -1) if b"notifications.send_email" in m]
            for key in celery.priority_keys(queue)
        }
        whole = Purge(broker, [queue]).plan()
        assert whole.action == "celery.purge"
        assert f"queue {queue}, by task: 20 reports.runaway, 10 notifications.send_email" in (
            whole.notes
        )
        assert (
            "to discard only a runaway task type, name it in celery_purge_tasks" in whole.notes[-1]
        )

        action = Purge(broker, [queue], tasks=["reports.runaway"])
        plan = action.plan()
        assert plan.action == "celery.purge_tasks"
        assert plan.what == "purge 20 waiting reports.runaway tasks, and no other"
        assert plan.items[0].details["tasks"] == {"reports.runaway": 20}
        log = IncidentLog("", "test")
        # Allowing the whole queue's purge does not allow this one, nor the other way round.
        assert guard.guarded(log, action, allow_actions=["celery.purge"]) is None
        assert waiting_by_task(broker, queue)["reports.runaway"] == 20
        outcome = guard.guarded(log, action, allow_actions=["celery.purge_tasks"])
        assert outcome is not None
        assert outcome.summary == "20 tasks discarded from 1 queue(s)"
        assert waiting_by_task(broker, queue) == {"notifications.send_email": 10}
        for key, messages in kept_before.items():
            assert client.lrange(key, 0, -1) == messages  # the same messages, in the same order
    finally:
        client.delete(*celery.priority_keys(queue))


def test_a_deployment_command_that_fails_is_a_failed_outcome_with_its_reason(
    stack: Stack,
) -> None:
    from irkit.actions import guard
    from irkit.actions.deployment import Named
    from irkit.incident.log import IncidentLog

    texts: list[str] = []

    class Recorded(IncidentLog):
        def event(self, kind: str, text: str, **data: Any) -> dict[str, Any]:
            texts.append(text)
            return super().event(kind, text, **data)

    # The practice stack's scale_workers, sent to a worker that is not there: "No nodes replied".
    command = (
        f"scale_workers: celery -A irkit.sandbox.tasks -b {stack.redis.url(BROKER_DB)} "
        "control -d nobody@nowhere pool_grow 1"
    )
    log = Recorded("", "test")
    outcome = guard.guarded(
        log, Named("scale_workers", [command]), allow_actions=["command.scale_workers"]
    )
    assert outcome is not None
    assert outcome.verdict == "FAILED"
    assert "No nodes replied" in outcome.summary
    shown = outcome._repr_mimebundle_()
    assert shown["text/plain"].startswith(
        "FAILED command.scale_workers on deployment: exit code 69"
    )
    assert "No nodes replied" in shown["text/html"]
    assert texts[-1].startswith("command.scale_workers: FAILED: exit code")


def test_restart_worker_brings_back_workers_that_do_not_answer(
    broker: CeleryTarget, stopped_worker: None
) -> None:
    from irkit.actions import guard
    from irkit.actions.deployment import Named
    from irkit.incident.log import IncidentLog

    assert celery.workers(broker).status is Status.CRIT
    restart = Named("restart_worker", ["restart_worker: irkit sandbox restart celery-worker"])
    outcome = guard.guarded(
        IncidentLog("", "test"), restart, allow_actions=["command.restart_worker"]
    )
    assert outcome is not None
    assert outcome.verdict == "DONE", outcome
    deadline = time.monotonic() + 20
    while (result := celery.workers(broker)).status is not Status.OK:
        assert time.monotonic() < deadline, result.summary


def test_purging_by_task_name_on_another_broker_says_why_not() -> None:
    """A broker whose queues cannot be read by task name gets no plan, with why: an empty plan
    would say that none of those tasks wait."""
    from irkit.actions.celery import Purge
    from irkit.target_builders import celery_target

    amqp = celery_target({"celery_broker_url": "amqp://guest@127.0.0.1:1//"})
    with pytest.raises(ConfigError, match="purging by task name reads the queues in Redis"):
        Purge(amqp, ["celery"], ["reports.generate"]).plan()
