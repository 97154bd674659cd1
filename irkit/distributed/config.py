"""The Celery settings of irkit's app: where its broker is, its own queue, and what bounds a
worker (one task at a time per process, recycled processes, late ticks dropped)."""

from __future__ import annotations

import os
from typing import Any

from irkit.errors import ConfigError, IrkitError
from irkit.secrets import with_password

BROKER_ENV = "IRKIT_BROKER_URL"
BROKER_PASSWORD_ENV = "IRKIT_BROKER_PASSWORD"  # noqa: S105 - the variable's name, not a secret
BACKEND_ENV = "IRKIT_RESULT_BACKEND"
QUEUE_ENV = "IRKIT_QUEUE"
DEFAULT_QUEUE = "irkit"
# The practice stack's Redis keeps the app's broker in db 0 and its cache in db 1: irkit's
# broker is a database of its own, so that neither app sees the other's workers.
PRACTICE_DB = 2
# Runs at once per worker, each with its kernel: `irkit worker --concurrency`, and what a plain
# `celery -A irkit.distributed worker` gets too (Celery's own default is every CPU).
CONCURRENCY = 2
# How long `irkit worker` and `irkit beat` wait for the broker to answer as they start.
BROKER_CHECK_S = 5.0
# A worker's process is replaced after this many tasks, or once it holds this much memory (KiB,
# checked after each task): hours of runs do not grow a worker.
MAX_TASKS_PER_CHILD = 100
MAX_MEMORY_PER_CHILD_KB = 300 * 1024
# How long a task's result (its exit status, report and output) stays in the result backend.
RESULT_EXPIRES_S = 7 * 24 * 3600


def queue() -> str:
    return os.environ.get(QUEUE_ENV) or DEFAULT_QUEUE


def broker_url() -> str:
    """IRKIT_BROKER_URL (with IRKIT_BROKER_PASSWORD put in), else the practice stack's Redis;
    a ConfigError that says what to set if neither is there."""
    url = os.environ.get(BROKER_ENV, "") or _practice_broker()
    if not url:
        raise ConfigError(
            f"no broker: set {BROKER_ENV} to the Celery broker irkit's tasks go through, e.g. "
            "redis://redis.internal:6379/5 or amqp://irkit@rabbit.internal// (a password in "
            f"{BROKER_PASSWORD_ENV}), or start the practice stack (irkit sandbox up), whose Redis "
            "is the default"
        )
    return with_password(url, os.environ.get(BROKER_PASSWORD_ENV) or None)


def _practice_broker() -> str:
    """The practice stack's Redis, database PRACTICE_DB, when the stack has been set up here."""
    from irkit.home import sandbox_dir
    from irkit.sandbox.stack import PORTS_FILE, Stack

    try:
        if not (sandbox_dir() / PORTS_FILE).is_file():
            return ""
        stack = Stack.load()
    except IrkitError:
        return ""
    return with_password(stack.redis.url(PRACTICE_DB), stack.password)


def result_backend(broker: str) -> str | None:
    """IRKIT_RESULT_BACKEND; else the broker itself where it is Redis (results are small and
    expire); else, on RabbitMQ, Celery's RPC backend (each result sent back as a message to
    whoever sent the task and waits for it: the exit status reaches the sender, and nothing is
    kept for beat's ticks, whose sender does not wait); else none."""
    backend = os.environ.get(BACKEND_ENV, "")
    if backend:
        return backend
    if broker.startswith(("redis://", "rediss://")):
        return broker
    return "rpc://" if broker.startswith(("amqp://", "amqps://", "pyamqp://")) else None


def settings() -> dict[str, Any]:
    """The app's configuration. Without a broker the app still imports (a DAG, a test, `irkit
    beat --check`); `irkit worker` and `irkit beat` then say what to set."""
    q = queue()
    try:
        broker: str | None = broker_url()
    except ConfigError:
        broker = None
    return {
        "broker_url": broker,
        "result_backend": result_backend(broker) if broker else None,
        "result_expires": RESULT_EXPIRES_S,
        "task_default_queue": q,
        "task_routes": {"irkit.*": {"queue": q}},
        # A task's process runs one `irkit` at a time and takes the next only when it is done:
        # an idle worker elsewhere gets the tick instead of waiting behind a busy one.
        "worker_prefetch_multiplier": 1,
        "worker_concurrency": CONCURRENCY,
        "worker_max_tasks_per_child": MAX_TASKS_PER_CHILD,
        "worker_max_memory_per_child": MAX_MEMORY_PER_CHILD_KB,
        "broker_connection_retry_on_startup": True,
        "task_track_started": True,
        "timezone": "UTC",
        "enable_utc": True,
        # JSON only: a task's arguments are names and parameters, never pickled objects.
        "task_serializer": "json",
        "result_serializer": "json",
        "accept_content": ["json"],
    }
