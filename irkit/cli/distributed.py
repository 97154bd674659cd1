"""`irkit worker` and `irkit beat`: irkit's Celery app (irkit.distributed) started for a team's
broker, a worker that runs the kit's tasks and the beat that sends them on a schedule."""

from __future__ import annotations

import argparse
import os
from typing import TYPE_CHECKING

from irkit import pids

if TYPE_CHECKING:
    from celery import Celery


def worker(args: argparse.Namespace) -> int:
    from irkit.distributed import app, config

    _require_broker(app)
    if args.hostname:
        # Before the pool starts: every run of this worker names its files with it.
        os.environ[pids.HOST_ENV] = args.hostname
    # The records its host's runs left when they were killed are published as the worker
    # starts (irkit.distributed, on Celery's celeryd_after_setup), before it takes a task.
    host = pids.this_host()
    if args.concurrency:
        app.conf.worker_concurrency = args.concurrency
    if args.max_tasks_per_child:
        app.conf.worker_max_tasks_per_child = args.max_tasks_per_child
    if args.max_memory_per_child:
        app.conf.worker_max_memory_per_child = args.max_memory_per_child * 1024
    code = app.worker_main(
        [
            "worker",
            "--queues",
            config.queue(),
            "--concurrency",
            str(app.conf.worker_concurrency),
            "--hostname",
            f"irkit@{host}",
            "--loglevel",
            args.loglevel,
            # Gossip and mingle synchronise workers' logical clocks and revokes at start-up:
            # nothing irkit's tasks use, and a second at every start.
            "--without-gossip",
            "--without-mingle",
        ]
    )
    return int(code or 0)


def beat(args: argparse.Namespace) -> int:
    from irkit.distributed import app, config, schedule
    from irkit.home import reports_dir

    entries = schedule.load(args.schedule)
    queue = config.queue()
    for entry in entries:
        when = f"every {entry.every_s:g}s" if entry.every_s is not None else f"cron {entry.cron}"
        deadline = f", deadline {entry.deadline_s:g}s" if entry.deadline_s is not None else ""
        print(f"{entry.name}: {entry.line} ({when}, expires {entry.expires_s:g}s{deadline})")
    if args.check:
        return 0
    _require_broker(app)
    app.conf.beat_schedule = {e.name: e.beat_entry(queue) for e in entries}
    state = args.state or reports_dir() / ".beat" / "schedule"
    state.parent.mkdir(parents=True, exist_ok=True)
    code = app.start(["beat", "--schedule", str(state), "--loglevel", args.loglevel])
    return int(code or 0)


def recover(args: argparse.Namespace) -> int:
    """Publish the records a machine gone for good left hidden (its runs killed with it)."""
    from irkit import records
    from irkit.distributed import recovery
    from irkit.errors import UsageError

    if not records.HOST_PATTERN.fullmatch(args.host):
        raise UsageError(
            f"--host {args.host[:60]!r} is not a host name as the runs' files carry it "
            "(letters, digits and '-', the name after '@')"
        )
    published = recovery.adopt_for_lost_host(args.host)
    for path in published:
        print(f"kept the record of a run that was killed: {path}")
    if not published:
        print(f"nothing to publish: no run of {args.host} left a record hidden")
    return 0


def _require_broker(app: Celery) -> None:
    """A clear error now rather than a connection retried for ever: the app was configured
    without a broker (irkit.distributed.config says what to set), or its broker cannot be
    reached or refuses the login. Once started, Celery reconnects to a broker it loses."""
    from irkit.distributed import config
    from irkit.errors import ConfigError
    from irkit.secrets import redact, redact_url

    if not app.conf.broker_url:
        config.broker_url()  # raises, naming what to set
    url = redact_url(str(app.conf.broker_url))
    try:
        # Bounded at every step: a broker that accepts the connection and then never answers
        # (a half-dead server, a wrong port) is said as one that refuses.
        limit = config.BROKER_CHECK_S
        with app.connection_for_write(
            connect_timeout=limit, transport_options={"socket_timeout": limit}
        ) as connection:
            # One try: a broker that refuses now is said now, not after Celery's back-off.
            connection.ensure_connection(max_retries=0, timeout=limit)
    except Exception as exc:  # each transport has its own errors: all mean "no broker"
        why = redact(str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__)
        raise ConfigError(
            f"cannot connect to the broker {url} ({why}): start it, or point "
            f"{config.BROKER_ENV} (and {config.BROKER_PASSWORD_ENV}) at one that runs"
        ) from None
