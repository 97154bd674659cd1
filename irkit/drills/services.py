"""Drills on the services around the database: Redis memory (Scenario 4), a Celery backlog
(Common Incident 2), the web app down, a failing health check, an error spike, and expiring
certificates (Common Incident 3)."""

from __future__ import annotations

import datetime as dt
import shutil

import redis

from irkit.drills import Drill, State, agent
from irkit.probes.celery import priority_keys
from irkit.sandbox import certs
from irkit.sandbox.himalytix.flags import LEDGER_V2_FLAG
from irkit.sandbox.stack import BROKER_DB, CACHE_DB, Stack
from irkit.secrets import with_password

FILL_PREFIX = "drill:redis-memory:"
BACKLOG_TASKS = 6000


def _fill_redis(stack: Stack, state: State) -> None:
    """Lower maxmemory to a little above what is used, refuse eviction, and fill the cache db
    until Redis answers OOM: what a cache that grew without limit does."""
    r = stack.redis.client(CACHE_DB)
    state["maxmemory"] = r.config_get("maxmemory")["maxmemory"]
    state["policy"] = r.config_get("maxmemory-policy")["maxmemory-policy"]
    used = int(r.info("memory")["used_memory"])
    r.config_set("maxmemory-policy", "noeviction")
    r.config_set("maxmemory", str(used + (8 << 20)))
    value = b"x" * (64 << 10)
    for i in range(100_000):
        try:
            r.set(f"{FILL_PREFIX}{i}", value)
        except redis.exceptions.OutOfMemoryError:
            state["keys"] = i
            return
    state["keys"] = 100_000


def _drain_redis(stack: Stack, state: State) -> None:
    r = stack.redis.client(CACHE_DB)
    if "policy" in state:
        r.config_set("maxmemory-policy", state["policy"])
    keys = list(r.scan_iter(match=f"{FILL_PREFIX}*", count=1000))
    for i in range(0, len(keys), 1000):
        r.delete(*keys[i : i + 1000])
    if "maxmemory" in state:
        r.config_set("maxmemory", state["maxmemory"])


def _backlog(stack: Stack, state: State) -> None:
    """The worker stops consuming (stopped, as after an OOM kill) while the app keeps enqueuing:
    e-mails and report exports pile up past the runbook's 5000."""
    from irkit.sandbox.tasks import app

    stack.worker.stop()
    state["worker_stopped"] = True
    with app.connection_for_write(_broker_url(stack)) as conn:
        for i in range(BACKLOG_TASKS):
            if i % 10 == 0:
                app.send_task("reports.generate", kwargs={"tenant": "acme"}, connection=conn)
            else:
                app.send_task(
                    "notifications.send_email",
                    kwargs={"to": f"user{i % 40}@example.com"},
                    connection=conn,
                )
    state["enqueued"] = BACKLOG_TASKS


def _clear_backlog(stack: Stack, state: State) -> None:
    """`celery purge`, then the worker back."""
    stack.redis.client(BROKER_DB).delete(*priority_keys("celery"))


def _broker_url(stack: Stack) -> str:
    return with_password(stack.redis.url(BROKER_DB), stack.password)


def _stop_web(stack: Stack, state: State) -> None:
    stack.web.stop()


def _nothing(stack: Stack, state: State) -> None:
    """`irkit drill stop` brings back what the drill held down."""


def _break_storage(stack: Stack, state: State) -> None:
    """The uploads volume goes away (an unmounted or read-only share): the health check's storage
    component fails while database, cache and workers are fine."""
    media = stack.media_dir
    aside = media.with_name("media.drill-aside")
    media.rename(aside)
    media.write_text("the uploads volume is gone (irkit drill health-fail)\n")
    state["aside"] = str(aside)


def _mend_storage(stack: Stack, state: State) -> None:
    media = stack.media_dir
    aside = media.with_name("media.drill-aside")
    if media.is_file():
        media.unlink()
    if aside.exists():
        if media.exists():
            shutil.rmtree(aside)
        else:
            aside.rename(media)
    media.mkdir(parents=True, exist_ok=True)


def _error_spike(stack: Stack, state: State) -> None:
    """A half-finished feature switched on: the journal API fails with a 500 while users keep
    using the app."""
    stack.redis.client(CACHE_DB).set(f":1:{LEDGER_V2_FLAG}", 1)
    base = stack.web.url
    pages = ["/", "/api/v1/journal/", "/accounts/login/", "/api/v1/journal/", "/api/v1/health/"]
    state.update(agent.spawn(stack, "error-spike", "traffic", urls=[base + p for p in pages]))


def _error_spike_over(stack: Stack, state: State) -> None:
    agent.end(stack, "error-spike")
    stack.redis.client(CACHE_DB).delete(f":1:{LEDGER_V2_FLAG}")


def _expiring_certificates(stack: Stack, state: State) -> None:
    """The site's certificate expires in 3 days (renewal failed silently); the API's already
    expired yesterday."""
    folder = stack.web_tls.tls_dir
    assert folder is not None
    certs.issue_for(folder, certs.SITE, dt.timedelta(days=3))
    certs.issue_for(folder, certs.API, dt.timedelta(days=-1))
    stack.web_tls.restart()


def _renew_certificates(stack: Stack, state: State) -> None:
    """`certbot renew --force-renewal`, then reload the web server."""
    folder = stack.web_tls.tls_dir
    assert folder is not None
    for name in certs.NAMES:
        certs.issue_for(folder, name, certs.NORMAL_LIFETIME)
    stack.web_tls.restart()


DRILLS = [
    Drill(
        "redis-memory",
        "Scenario 4: Redis Memory Exceeded",
        "redis",
        "redis.memory at maxmemory with policy noeviction; writes refused with OOM",
        _fill_redis,
        _drain_redis,
    ),
    Drill(
        "celery-backlog",
        "Common Incident 2: Celery Task Queue Backlog",
        "celery",
        f"celery.queues above 5000 waiting ({BACKLOG_TASKS} enqueued), celery.workers: no "
        "worker answers",
        _backlog,
        _clear_backlog,
        holds_down=("celery-worker",),
    ),
    Drill(
        "web-down",
        "Quick Health Checks: the web service is not running",
        "alerts",
        "http.health and http.smoke: connection refused; Prometheus: WebDown firing",
        _stop_web,
        _nothing,
        holds_down=("web",),
    ),
    Drill(
        "health-fail",
        "Alert Triage: Health Check Failure",
        "alerts",
        "http.health: 500, the Storage component failing while database, cache and Celery are OK",
        _break_storage,
        _mend_storage,
        conflicts=("disk-full",),
    ),
    Drill(
        "error-spike",
        "Alert Triage: High Error Rate Alert (>5% requests)",
        "alerts",
        "prometheus.query: 5xx rate far above 5 %, from the api-journal view; HighErrorRate firing",
        _error_spike,
        _error_spike_over,
        lingers=(
            "Prometheus still counts the errors until they leave its rate window: HighErrorRate "
            "clears within about 40 s, prometheus.query over the window you ask for"
        ),
    ),
    Drill(
        "cert-expiry",
        "Common Incident 3: HTTPS Certificate Expired",
        "alerts",
        "tls.expiry: himalytix.test expires in 3 days, api.himalytix.test expired yesterday",
        _expiring_certificates,
        _renew_certificates,
    ),
]
