"""irkit on Celery: the app a team adds to the Celery deployment it already runs.

    celery -A irkit.distributed worker -Q irkit       # or: irkit worker
    irkit beat --schedule FILE                        # Celery beat, with irkit's schedule

Its tasks (`irkit.run`, `irkit.health`, `irkit.monthly`, irkit.distributed.tasks) run the `irkit`
command in a process of its own, as cron would: the same records, the same exit status (the task's
result), the same secrets rules. They go to their own queue (`irkit`, IRKIT_QUEUE), never to the
app's. The broker is IRKIT_BROKER_URL (any Celery broker: Redis, RabbitMQ), else the practice
stack's Redis (irkit.distributed.config).
"""

from __future__ import annotations

import logging
import os
from typing import Any

from celery import Celery
from celery.signals import celeryd_after_setup

from irkit import pids
from irkit.distributed import config
from irkit.errors import IrkitError

app = Celery("irkit", include=["irkit.distributed.tasks"])
app.conf.update(config.settings())

__all__ = ["app"]
_LOG = logging.getLogger(__name__)


@celeryd_after_setup.connect  # type: ignore[untyped-decorator]
def _publish_killed_runs(sender: Any, **_: Any) -> None:
    """As a worker of this app starts, before it takes a task (`irkit worker` or `celery -A
    irkit.distributed worker`): the records its host's runs left when they were killed outright
    are published. Its host is the worker's name after `@`, unless IRKIT_HOST says otherwise."""
    if not isinstance(sender, str):
        return
    from irkit.distributed import recovery

    os.environ.setdefault(pids.HOST_ENV, sender.rpartition("@")[2])
    try:
        published = recovery.adopt_everywhere()
    except (IrkitError, OSError) as exc:
        # A reports folder that cannot be read now (a symlinked incidents/, a mount not up yet)
        # is said; the worker still starts, and the next run in each folder publishes them.
        _LOG.error("could not publish the records of killed runs: %s", exc)
        return
    for path in published:
        _LOG.warning("kept the record of a run that was killed: %s", path)
