"""Practice servers for the whole test run, started with the kit's own sandbox machinery on free
ports in a temporary folder, so the tests work whether or not anything else runs on this machine.

The environment variables set here point the notebooks' defaults at these servers, which is how
`pytest --nbval-lax notebooks/` runs the notebooks as stored.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

from irkit.sandbox import readiness
from irkit.sandbox.stack import BROKER_DB, CACHE_DB, Stack, free_ports

# Low on purpose: the pool-exhaustion tests fill it for real.
MAX_CONNECTIONS = 20

_stack: Stack | None = None
_base: Path | None = None


def session_stack() -> Stack:
    """The test run's practice servers, started on first use."""
    global _stack, _base
    if _stack is None:
        # Not under pytest's own tmp folder: that one is private to root, and PostgreSQL runs as
        # an unprivileged account when the tests run as root.
        _base = Path(tempfile.mkdtemp(prefix="irkit-test-"))
        _base.chmod(0o755)
        stack = Stack(
            _base,
            **free_ports(),
            postgres_settings={"max_connections": str(MAX_CONNECTIONS)},
        )
        _stack = stack
        stack.up()
        # Rates need two scrapes: a notebook run in the first seconds would rightly say "no data".
        readiness.wait_until_ready(stack)
        os.environ.update(
            PGHOST=stack.postgres.host,
            PGPORT=str(stack.postgres.port),
            PGUSER="erp",
            PGDATABASE="himalytix",
            IRKIT_REDIS_URL=stack.redis.url(CACHE_DB),
            IRKIT_CELERY_BROKER_URL=stack.redis.url(BROKER_DB),
            IRKIT_BASE_URL=stack.web.url,
            IRKIT_PROMETHEUS_URL=stack.prometheus.url,
            IRKIT_TLS_ENDPOINTS=",".join(tls_endpoints(stack)),
            IRKIT_SANDBOX_DIR=str(_base),
        )
    return _stack


def started_stack() -> Stack | None:
    """The test run's practice servers if a test has started them, without starting them."""
    return _stack


def tls_endpoints(stack: Stack) -> list[str]:
    """The practice HTTPS listener's two names, reached on loopback."""
    return stack.tls_endpoints


def pytest_collection_finish(session: pytest.Session) -> None:
    # Notebooks collected by nbval run on their stored defaults, which read the environment.
    if any(item.nodeid.endswith(".ipynb") or ".ipynb::" in item.nodeid for item in session.items):
        session_stack()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if _stack is not None:
        _stack.down()
    if _base is not None:
        shutil.rmtree(_base, ignore_errors=True)
