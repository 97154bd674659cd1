"""The probe catalogue. Probes are listed here by name and imported only when used, so that a
notebook about PostgreSQL does not pay for importing Celery."""

from __future__ import annotations

import importlib
from collections.abc import Callable

from irkit.errors import ConfigError
from irkit.result import Result

CATALOGUE = {
    "postgres.connect": "irkit.probes.postgres:connect",
    "postgres.connections": "irkit.probes.postgres:connections",
    "postgres.long_queries": "irkit.probes.postgres:long_queries",
    "postgres.idle_in_transaction": "irkit.probes.postgres:idle_in_transaction",
    "postgres.blocking": "irkit.probes.postgres:blocking",
    "postgres.migrations": "irkit.probes.postgres:migrations",
    "postgres.impact": "irkit.probes.postgres:impact",
    "redis.ping": "irkit.probes.redis:ping",
    "redis.memory": "irkit.probes.redis:memory",
    "redis.clients": "irkit.probes.redis:clients",
    "celery.queues": "irkit.probes.celery:queues",
    "celery.workers": "irkit.probes.celery:workers",
    "disk.usage": "irkit.probes.disk:usage",
    "disk.old_files": "irkit.probes.disk:old_files",
    "host.memory": "irkit.probes.host:memory",
    "host.cpu": "irkit.probes.host:cpu",
    "http.health": "irkit.probes.http:health",
    "http.smoke": "irkit.probes.http:smoke",
    "http.load": "irkit.probes.http:load",
    "tls.expiry": "irkit.probes.tls:expiry",
    "prometheus.alerts": "irkit.probes.prometheus:alerts",
    "prometheus.query": "irkit.probes.prometheus:error_rate",
    "logs.errors": "irkit.probes.logs:errors",
    "deploy.recent": "irkit.probes.deploy:recent",
    "command.check": "irkit.probes.diagnostics:check",
}


def get(name: str) -> Callable[..., Result]:
    """The probe called `name`, e.g. `postgres.connections`."""
    try:
        module, _, attr = CATALOGUE[name].partition(":")
    except KeyError:
        raise ConfigError(
            f"no probe named {name!r}; the probes are: {', '.join(sorted(CATALOGUE))}"
        ) from None
    probe: Callable[..., Result] = getattr(importlib.import_module(module), attr)
    return probe


def names() -> list[str]:
    return list(CATALOGUE)
