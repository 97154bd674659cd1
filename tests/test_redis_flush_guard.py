"""FLUSHDB never drops Celery's waiting tasks unless told to: the broker's own db, and any db that
holds what kombu keeps for Celery (whatever the queue is called), are refused without
`redis_allow_broker_flush`. Against the practice stack's Redis, with messages Celery itself sent,
through `irkit run redis` as a responder runs it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from celery import Celery

from irkit.actions.redis import broker_keys
from irkit.sandbox.stack import Stack
from irkit.targets import RedisTarget
from tests.helpers import irkit

QUEUE_DB, BROKER_LIKE_DB = 6, 7  # dbs no other test uses
QUEUE = "irkit-test-reports"  # a Celery queue the redis section was not told about
SEP = "\x06\x16"  # kombu's separator
ALLOW = ["-p", 'allow_actions=["redis.flushdb"]']
OVERRIDE = ["-p", "redis_allow_broker_flush=true"]


@pytest.fixture
def dbs(stack: Stack) -> Iterator[dict[int, redis.Redis]]:
    clients = {db: stack.redis.client(db) for db in (QUEUE_DB, BROKER_LIKE_DB)}
    for client in clients.values():
        client.flushdb()
    yield clients
    for client in clients.values():
        client.flushdb()
        client.close()


def flush_plan(report_dir: Path) -> dict[str, Any]:
    """The FLUSHDB plan the run recorded in its notebook."""
    (path,) = [p for p in report_dir.rglob("*-redis.ipynb") if not p.name.startswith(".")]
    for cell in json.loads(path.read_text())["cells"]:
        for output in cell.get("outputs", []):
            event = output.get("data", {}).get("application/vnd.irkit.event+json", {})
            plan = event.get("data", {}).get("plan", {})
            if plan.get("action") == "redis.flushdb":
                return dict(plan)
    raise AssertionError(f"no FLUSHDB plan in {path}")


# Memory over a threshold this low: the flush is offered only while Redis's memory is a finding.
MEMORY_HIGH = ["-p", "redis_memory_warn_pct=0.01", "-p", "redis_memory_crit_pct=100"]


def run_redis(tmp_path: Path, name: str, *args: str, env: dict[str, str] | None = None) -> Any:
    reports = tmp_path / name
    done = irkit("run", "redis", *MEMORY_HIGH, *args, reports=reports, env=env)
    assert done.returncode < 3, done.stdout + done.stderr
    assert done.stderr == ""
    return flush_plan(reports)


@pytest.mark.parametrize("left", ["queue list", "priority sub-queue"])
def test_a_db_holding_a_celery_queue_not_in_celery_queues_is_refused(
    tmp_path: Path, stack: Stack, dbs: dict[int, redis.Redis], left: str
) -> None:
    db = dbs[QUEUE_DB]
    app = Celery("irkit-test", broker=stack.redis.url(QUEUE_DB), set_as_current=False)
    try:
        app.send_task("reports.monthly", queue=QUEUE)
        app.send_task("reports.monthly", queue=QUEUE, priority=5)  # its priority sub-queue
    finally:
        app.close()
    # kombu's bindings live beside its queues (if this process had not declared the queue
    # already); without them, the queues alone must do.
    if bindings := db.keys("_kombu.binding*"):
        db.delete(*bindings)
    if left == "priority sub-queue":
        db.delete(QUEUE)
    kept = sorted(db.keys("*"))
    assert kept  # Celery's own messages, as a worker would find them
    url = ["-p", f"redis_url={stack.redis.url(QUEUE_DB)}"]

    plan = run_redis(tmp_path, "dry", *url)
    assert plan["items"] == []
    (refused,) = plan["refused"]
    assert QUEUE in refused["why"]
    assert "redis_allow_broker_flush" in refused["why"]
    # Named in allow_actions, it is still refused: the queue is not cache.
    plan = run_redis(tmp_path, "allowed", *url, *ALLOW)
    assert plan["refused"]
    assert sorted(db.keys("*")) == kept

    plan = run_redis(tmp_path, "override", *url, *ALLOW, *OVERRIDE)
    assert plan["refused"] == []
    assert db.dbsize() == 0


def test_the_brokers_db_is_refused_even_with_no_kombu_keys_in_it(
    tmp_path: Path, stack: Stack, dbs: dict[int, redis.Redis]
) -> None:
    # A broker that no worker has used yet (or whose queues were just purged) holds no kombu keys;
    # the section knows it is the broker from celery_broker_url, as the celery section does.
    db = dbs[BROKER_LIKE_DB]
    db.mset({f"irkit-test:{n}": n for n in range(5)})
    url = ["-p", f"redis_url={stack.redis.url(BROKER_LIKE_DB)}"]
    by_env = {"IRKIT_CELERY_BROKER_URL": stack.redis.url(BROKER_LIKE_DB)}
    # The same server under another name: it is asked who it is.
    alias = stack.redis.url(BROKER_LIKE_DB).replace("127.0.0.1", "localhost")
    assert alias != stack.redis.url(BROKER_LIKE_DB)
    for name, args, env in [
        ("by-env", [*url, *ALLOW], by_env),
        ("by-parameter", [*url, *ALLOW, "-p", f"celery_broker_url={alias}"], None),
    ]:
        plan = run_redis(tmp_path, name, *args, env=env)
        (refused,) = plan["refused"]
        assert "the Celery broker's db" in refused["why"], refused
        assert "redis_allow_broker_flush" in refused["why"]
        assert db.dbsize() == 5

    # Another db of the same server is not the broker's: the cache there is flushed.
    other = {"IRKIT_CELERY_BROKER_URL": stack.redis.url(QUEUE_DB)}
    plan = run_redis(tmp_path, "not-the-broker", *url, *ALLOW, env=other)
    assert plan["refused"] == []
    assert db.dbsize() == 0

    db.mset({f"irkit-test:{n}": n for n in range(5)})
    plan = run_redis(tmp_path, "override", *url, *ALLOW, *OVERRIDE, env=by_env)
    assert plan["refused"] == []
    assert db.dbsize() == 0


def test_every_shape_kombu_leaves_is_found_under_any_key_prefix(
    stack: Stack, dbs: dict[int, redis.Redis]
) -> None:
    db = dbs[QUEUE_DB]
    target = RedisTarget(url=stack.redis.url(QUEUE_DB))
    # A cache: lists and hashes, none of them kombu's.
    db.lpush("recent-logins", json.dumps({"user": 1, "body": "not a task"}))
    db.hset("session:1", "user", "1")
    db.set(b"binary-\xff", b"\x00")
    assert broker_keys(target, QUEUE_DB, ["celery"]) == []

    # kombu's keys as it writes them with global_keyprefix "app:".
    db.sadd("app:_kombu.binding.mail", f"mail{SEP}{SEP}mail")
    db.lpush("app:mail", b"\x00not json either")  # a queue a binding routes to
    db.hset("app:unacked", "tag", "{}")
    db.zadd("app:unacked_index", {"tag": 1.0})
    db.lpush(f"other{SEP}9", "x")  # a priority sub-queue
    found = " / ".join(broker_keys(target, QUEUE_DB, ["celery"]))
    shown = [
        "app:_kombu.binding.mail",
        "app:mail (a queue kombu's bindings route to)",
        "app:unacked (kombu's unacked tasks)",
        "app:unacked_index (kombu's unacked",
        "other\\x06\\x169 (a priority sub-queue)",
    ]
    for each in shown:
        assert each in found, found
