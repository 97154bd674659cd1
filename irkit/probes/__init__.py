"""The probe catalogue. Each probe declares its entry beside its code (`@probe(name, target=…,
thresholds=…, area=…, recheck=…, advice=…)` in `irkit/probes/<service>.py`); the lists of probes
(the health report's, the resolve re-check's, the README's table) are read from those entries.

Modules are imported only when used, so that a notebook about PostgreSQL does not pay for
importing Celery: `catalogue()` loads every module, `get(name)` only the one that holds it.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

from irkit.errors import ConfigError
from irkit.probes.contract import REGISTRY, Entry
from irkit.result import Result

# The probe modules, in the order their probes appear in the health report's areas.
MODULES = (
    # The runbook's quick health check starts with `docker-compose ps`.
    "compose",
    "http",
    "postgres",
    "redis",
    "celery",
    "disk",
    "host",
    "tls",
    "prometheus",
    "logs",
    "deploy",
    "diagnostics",
)


def load_all() -> None:
    """Import every probe module, entering all their probes in the catalogue."""
    for module in MODULES:
        importlib.import_module(f"{__name__}.{module}")


def catalogue() -> list[Entry]:
    """Every probe's entry, in the order of MODULES and, within a module, of its code."""
    load_all()
    rank = {f"{__name__}.{m}": i for i, m in enumerate(MODULES)}
    order = {name: i for i, name in enumerate(REGISTRY)}
    # Probes defined elsewhere (a test's, a user's own module) are callable but not catalogued.
    entries = [entry for entry, _ in REGISTRY.values() if entry.module in rank]
    return sorted(entries, key=lambda e: (rank[e.module], order[e.name]))


def _registered(name: str) -> tuple[Entry, Callable[..., Result]]:
    if name not in REGISTRY:
        module = name.partition(".")[0]
        if module in MODULES:
            importlib.import_module(f"{__name__}.{module}")
        if name not in REGISTRY:
            load_all()
    try:
        return REGISTRY[name]
    except KeyError:
        raise ConfigError(
            f"no probe named {name!r}; the probes are: {', '.join(sorted(names()))}"
        ) from None


def get(name: str) -> Callable[..., Result]:
    """The probe called `name`, e.g. `postgres.connections`."""
    return _registered(name)[1]


def entry(name: str) -> Entry:
    """The catalogue entry of the probe called `name`."""
    return _registered(name)[0]


def names() -> list[str]:
    return [e.name for e in catalogue()]
