"""irkit on Celery: the app a team adds to the Celery deployment it already runs.

    celery -A irkit.distributed worker -Q irkit       # or: irkit worker
    celery -A irkit.distributed beat                  # or: irkit beat --schedule FILE

Its tasks (`irkit.run`, `irkit.health`, `irkit.monthly`, irkit.distributed.tasks) run the `irkit`
command in a process of its own, as cron would: the same records, the same exit status (the task's
result), the same secrets rules. They go to their own queue (`irkit`, IRKIT_QUEUE), never to the
app's. The broker is IRKIT_BROKER_URL (any Celery broker: Redis, RabbitMQ), else the practice
stack's Redis (irkit.distributed.config).
"""

from __future__ import annotations

from celery import Celery

from irkit.distributed import config

app = Celery("irkit", include=["irkit.distributed.tasks"])
app.conf.update(config.settings())

__all__ = ["app"]
