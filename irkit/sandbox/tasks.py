"""The practice stack's Celery app: a few tasks shaped like Himalytix's (reports, e-mail).

Started by the practice worker as `celery -A irkit.sandbox.tasks worker`; the broker comes from
IRKIT_SANDBOX_BROKER_URL.
"""

from __future__ import annotations

import os
import time

from celery import Celery

app = Celery(
    "himalytix",
    broker=os.environ.get("IRKIT_SANDBOX_BROKER_URL", "redis://127.0.0.1:56379/0"),
)
app.conf.update(
    task_ignore_result=True,
    task_serializer="json",
    accept_content=["json"],
    worker_prefetch_multiplier=1,
    task_acks_late=True,
    broker_connection_retry_on_startup=True,
    worker_hijack_root_logger=False,
)


@app.task(name="reports.generate")  # type: ignore[untyped-decorator]
def generate_report(tenant: str = "acme", seconds: float = 0.5) -> str:
    """Stands in for a report export: takes a while, then is done."""
    time.sleep(seconds)
    return f"report for {tenant}"


@app.task(name="notifications.send_email")  # type: ignore[untyped-decorator]
def send_email(to: str = "user@example.com") -> str:
    return f"sent to {to}"


@app.task(name="sandbox.sleep")  # type: ignore[untyped-decorator]
def sleep(seconds: float = 1.0) -> float:
    """Holds a pool slot for `seconds`: how the tests and drills keep a worker busy."""
    time.sleep(seconds)
    return seconds
