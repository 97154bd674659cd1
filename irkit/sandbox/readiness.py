"""When the practice stack is ready: every component answers, and Prometheus has data from the
app and node_exporter. Until Prometheus has scraped the app twice, a health report rightly says
"no request metrics"; `irkit sandbox up` waits for this so that the first report after it is
a real one."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from irkit.errors import SandboxError
from irkit.sandbox.prometheus import NODE_JOB, WEB_JOB

if TYPE_CHECKING:
    from irkit.sandbox.stack import Stack

# Prometheus scrapes every second; the first scrapes come within a few seconds of its start.
READY_WITHIN_S = 60.0

# The app's request counter (django-prometheus) that the error-rate check reads.
REQUESTS = "django_http_responses_total_by_status_view_method_total"


def wait_until_ready(
    stack: Stack, held_down: frozenset[str] = frozenset(), timeout_s: float = READY_WITHIN_S
) -> None:
    """Return once every component answers (those an active drill holds down aside); past
    `timeout_s`, fail naming the component that is not ready and what it lacks."""
    deadline = time.monotonic() + timeout_s
    while True:
        waiting = not_ready(stack, held_down)
        if waiting is None:
            return
        if time.monotonic() > deadline:
            raise SandboxError(f"the practice stack is not ready after {timeout_s:g} s: {waiting}")
        time.sleep(0.25)


def not_ready(stack: Stack, held_down: frozenset[str] = frozenset()) -> str | None:
    """The first component that is not ready, and why; None when all are."""
    for name, ready, why in _checks(stack):
        if name not in held_down and not ready():
            return f"{name}: {why}"
    return None


def _checks(stack: Stack) -> list[tuple[str, Callable[[], bool], str]]:
    prom = stack.prometheus
    checks: list[tuple[str, Callable[[], bool], str]] = [
        ("postgres", stack.postgres.running, "PostgreSQL does not accept connections"),
        ("redis", stack.redis.running, "Redis does not accept connections"),
        ("celery-worker", stack.worker.running, "the Celery worker is not running"),
        ("web", stack.web.answers, f"the web app does not answer at {stack.web.url}"),
        ("web-tls", stack.web_tls.answers, f"the web app does not answer at {stack.web_tls.url}"),
    ]
    if stack.node_exporter.installed:
        checks.append(
            (
                "node-exporter",
                stack.node_exporter.ready,
                f"node_exporter does not answer at {stack.node_exporter.url}/metrics",
            )
        )
    if not prom.installed:
        return checks
    checks.append(("prometheus", prom.ready, f"Prometheus does not answer at {prom.url}"))
    checks.append(
        ("web", lambda: _up(stack, WEB_JOB), f"Prometheus has not scraped the app (job {WEB_JOB})")
    )
    checks.append(
        (
            "web",
            lambda: bool(prom.query(f"sum(rate({REQUESTS}[1m])) > 0")),
            f"Prometheus has no request metrics from the app yet ({REQUESTS})",
        )
    )
    if prom.node_target:
        checks.append(
            (
                "node-exporter",
                # The host check's own query: a rate needs two scrapes, and its points are
                # aligned to whole steps (`up` alone, or a plain rate, come a moment too early).
                lambda: bool(prom.query(_host_cpu_query())),
                f"Prometheus has no CPU rate from node_exporter yet (job {NODE_JOB})",
            )
        )
    return checks


def _host_cpu_query() -> str:
    """What host.cpu asks Prometheus over its default window."""
    from irkit.catalogue.parameters import default
    from irkit.probes import node

    window_min = float(default("host_window_min"))
    return node.sustained_query(node.promql_range(window_min), node.step_for(window_min))


def _up(stack: Stack, job: str) -> bool:
    return bool(stack.prometheus.query(f'up{{job="{job}"}} == 1'))
