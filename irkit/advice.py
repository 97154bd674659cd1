"""What to do next, in the runbook's words, for each verdict that is not OK."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from html import escape
from typing import Any

from irkit.render import badge
from irkit.result import Result, Status

Advice = Callable[[Result], str]


def _pids(result: Result, key: str = "rows", limit: int = 10) -> str:
    rows = result.evidence.get(key) or []
    pids = [str(row["pid"]) for row in rows if isinstance(row, dict) and "pid" in row]
    shown = ", ".join(pids[:limit]) + (" …" if len(pids) > limit else "")
    return f" (pids {shown})" if shown else ""


def _postgres_connect(r: Result) -> str:
    if r.evidence.get("pool_exhausted"):
        return (
            "Runbook Scenario 2, connection pool exhausted: PostgreSQL refuses new clients. Close "
            "the application's idle connections (restart the web service), then use the "
            "long-query and idle-in-transaction checks below to pick backends to terminate."
        )
    if r.status is Status.WARN:
        return "Connecting is slow: the server or its network is struggling; watch the pool checks."
    return (
        "Database unreachable: treat as P0 if users are affected (runbook severity 1). Runbook "
        "'Health Check Failure': `pg_isready -U erp`, then the PostgreSQL log and "
        "`docker-compose ps` for the postgres service."
    )


def _postgres_connections(r: Result) -> str:
    e = r.evidence
    return (
        f"Runbook Scenario 2, connection pool: {e.get('used', '?')} of {e.get('available', '?')} "
        "usable connections taken. Close idle Django connections (restart the web service), "
        "then terminate the long-running queries found below (>5 min are the kill candidates)."
    )


def _postgres_long_queries(r: Result) -> str:
    if r.status is Status.CRIT:
        return (
            f"{r.evidence.get('over_crit', 'Some')} queries older than the kill threshold"
            f"{_pids(r)}: the runbook's 'Kill long-running queries (>5 min)' step; check what "
            "each one is, then `SELECT pg_terminate_backend(pid)`."
        )
    return (
        f"Runbook 'Slow Query Alert': {r.evidence.get('over_warn', 'some')} slow queries"
        f"{_pids(r)}; EXPLAIN them and watch whether they finish."
    )


def _postgres_idle(r: Result) -> str:
    return (
        f"Sessions idle in a transaction{_pids(r)} hold locks and a pool slot while doing "
        "nothing: the application opened a transaction and did not finish it. They are "
        "terminate candidates (`SELECT pg_terminate_backend(pid)`)."
    )


def _postgres_blocking(r: Result) -> str:
    blockers = r.evidence.get("blockers") or []
    who = ", ".join(str(b) for b in blockers[:5])
    return (
        f"Sessions wait on locks held by pid {who or '?'}: look at the blocker's query; "
        "terminating the blocker (`SELECT pg_terminate_backend(pid)`) releases the waiters."
    )


def _postgres_migrations(r: Result) -> str:
    return (
        "Runbook Incident 1, database migration failure: `python manage.py showmigrations`, "
        "then `python manage.py migrate`; if one is stuck, `migrate --fake app_name "
        "migration_name`; restore from backup if data is corrupt."
    )


def _redis_ping(r: Result) -> str:
    return (
        "Redis is down or not answering: the cache and the Celery broker depend on it. Runbook "
        "'Health Check Failure': `redis-cli PING`; then Scenario 4: restart Redis."
    )


def _redis_memory(r: Result) -> str:
    if r.evidence.get("broker_at_risk"):
        return (
            "This Redis holds Celery's queues and its eviction policy may drop them: set "
            "`maxmemory-policy noeviction` (or move the broker to its own Redis)."
        )
    if r.evidence.get("maxmemory", 1) == 0 and r.status is Status.WARN:
        return "No maxmemory limit: Redis grows until the host runs out of memory; set one."
    return (
        "Runbook Scenario 4, Redis memory exceeded: `INFO memory`; clear the cache db with "
        "FLUSHDB only if it holds nothing but cache (never the broker db); restart Redis."
    )


def _redis_clients(r: Result) -> str:
    return (
        "Redis turned clients away (maxclients reached): look for a connection leak with "
        "`CLIENT LIST`, and raise maxclients only once the leak is understood."
    )


def _celery_queues(r: Result) -> str:
    return (
        f"Runbook Incident 2, Celery task queue backlog ({r.evidence.get('total', '?')} waiting): "
        "check the workers below (`celery -A dashboard inspect active`), scale them "
        "(`docker-compose up -d --scale celery=4`), and purge only tasks known to be failed."
    )


def _celery_workers(r: Result) -> str:
    runaway = r.evidence.get("runaway") or []
    if runaway:
        first = runaway[0]
        return (
            f"Runbook 'High CPU Alert', runaway Celery tasks: {len(runaway)} task(s) running past "
            f"the limit, e.g. {first.get('name')} [{first.get('id')}] on {first.get('worker')}. "
            "Find why (its args are in the evidence), then revoke it "
            "(`celery -A dashboard control revoke --terminate ID`) or restart that worker."
        )
    if r.status is Status.WARN:
        return (
            "Every pool slot is busy: look for stuck or runaway tasks in the active list, "
            "then scale workers (`docker-compose up -d --scale celery=4`)."
        )
    return (
        "No worker answered: they may be down, or too busy to reply. Check the worker "
        "processes and their logs (`docker-compose logs celery`), restart them, then re-run."
    )


def _disk_usage(r: Result) -> str:
    return (
        "Runbook Scenario 3, disk space full: rotate application logs "
        "(`find /app/logs -name '*.log' -mtime +7 -delete`), remove old media/temp files "
        "(`-mtime +30`), `docker system prune`; see the reclaimable-files check below."
    )


def _disk_old_files(r: Result) -> str:
    return (
        f"{r.evidence.get('files', 0)} old files ({r.evidence.get('human', '?')}) can go: the "
        "runbook's log rotation (>7 days) and temp clean-up (>30 days)."
    )


def _host_memory(r: Result) -> str:
    return (
        "Runbook Scenario 1, high memory usage: the largest processes are in the evidence; "
        "restart the web service if it is out of memory, scale it out "
        "(`docker-compose up -d --scale web=3`)."
    )


def _host_cpu(r: Result) -> str:
    return (
        "Runbook 'High CPU Alert': the busiest processes are in the evidence; check for runaway "
        "Celery tasks (`celery inspect active`), and roll back a deployment that coincides."
    )


def _http_health(r: Result) -> str:
    failing = r.evidence.get("failing") or []
    if failing:
        return (
            f"Runbook 'Health Check Failure': failing component(s) {', '.join(failing)}. Check "
            "each one directly: the db notebook (`pg_isready`), the redis notebook (PING), the "
            "celery notebook (workers), the disk notebook (storage volume); then "
            "`python manage.py check --deploy` and the web log."
        )
    if r.evidence.get("reachable") is False:
        return (
            "The web app does not answer: runbook Quick Health Checks, `docker-compose ps` and "
            "`docker-compose logs --tail=100 web`; restart the web service. Users cannot work: "
            "P0 by the runbook's severity list."
        )
    return (
        f"Runbook 'Health Check Failure': `curl -v` the endpoint and read the web log "
        f"({r.summary})."
    )


def _http_smoke(r: Result) -> str:
    return (
        f"Smoke test FAILED for {', '.join(r.evidence.get('failed') or [])}: the service is not "
        "restored; do not declare the incident resolved. Read the web log for these views."
    )


def _http_load(r: Result) -> str:
    return (
        f"Under load the app is not healthy yet ({r.summary}): keep the incident open, watch the "
        "error rate, and scale out (`docker-compose up -d --scale web=3`) if it is capacity."
    )


def _tls_expiry(r: Result) -> str:
    return (
        "Runbook Common Incident 3, HTTPS certificate: renew it (`certbot renew "
        "--force-renewal`), reload the web server (`docker-compose restart web`), then verify "
        "with `curl -vI https://…` and re-run this check."
    )


def _prometheus_alerts(r: Result) -> str:
    names = ", ".join(a.get("alertname", "?") for a in r.evidence.get("firing", []))
    return (
        f"Firing: {names}. Each alert's runbook section is in the evidence; start with the "
        "critical ones and check whether they share a cause (one component down fires several)."
    )


def _prometheus_query(r: Result) -> str:
    views = ", ".join(v["view"] for v in r.evidence.get("failing_views", [])[:3])
    where = f" (failing views: {views})" if views else ""
    return (
        f"Runbook 'High Error Rate Alert'{where}: group the web log's errors by type "
        "(`docker-compose logs web --since 30m | grep ERROR`), check Sentry, and roll back a "
        "deployment that coincides."
    )


def _logs_errors(r: Result) -> str:
    top = (r.evidence.get("rows") or [{}])[0]
    return (
        f"Runbook 'High Error Rate Alert', errors by type: most are {top.get('type')} "
        f"({top.get('count')}, e.g. {top.get('sample')!r}). Read one whole traceback in the log, "
        "and check Sentry for the same type."
    )


def _deploy_recent(r: Result) -> str:
    return (
        "Runbook 'High CPU Alert': a deploy landed shortly before; if the alert began after it, "
        "roll it back (redeploy the previous commit, listed in the evidence) and watch the alert."
    )


def _command_check(r: Result) -> str:
    return (
        f"Runbook 'Health Check Failure', component-wise checks: {r.summary}. Its output is in "
        "the evidence; fix what it names, then re-run the health check."
    )


ADVICE: dict[str, Advice] = {
    "postgres.connect": _postgres_connect,
    "postgres.connections": _postgres_connections,
    "postgres.long_queries": _postgres_long_queries,
    "postgres.idle_in_transaction": _postgres_idle,
    "postgres.blocking": _postgres_blocking,
    "postgres.migrations": _postgres_migrations,
    "redis.ping": _redis_ping,
    "redis.memory": _redis_memory,
    "redis.clients": _redis_clients,
    "celery.queues": _celery_queues,
    "celery.workers": _celery_workers,
    "disk.usage": _disk_usage,
    "disk.old_files": _disk_old_files,
    "host.memory": _host_memory,
    "host.cpu": _host_cpu,
    "http.health": _http_health,
    "http.smoke": _http_smoke,
    "http.load": _http_load,
    "tls.expiry": _tls_expiry,
    "prometheus.alerts": _prometheus_alerts,
    "prometheus.query": _prometheus_query,
    "deploy.recent": _deploy_recent,
    "command.check": _command_check,
}


def advise(result: Result) -> str | None:
    """The next step for one result; None when it needs no action."""
    if result.status is Status.UNKNOWN:
        return f"Could not tell: {result.summary}. Fix what stops the check and re-run it."
    if result.status is Status.OK:
        # Informational probes can still point at something useful (reclaimable files).
        if result.probe == "disk.old_files" and result.evidence.get("files"):
            return _disk_old_files(result)
        if result.probe == "logs.errors" and result.evidence.get("total"):
            return _logs_errors(result)
        return None
    advice = ADVICE.get(result.probe)
    return advice(result) if advice else result.summary


class NextSteps:
    """A section's closing summary: its verdict and the runbook steps its findings call for."""

    def __init__(self, section: str, results: Sequence[Result]) -> None:
        self.section = section
        self.results = list(results)
        self.status = Status.worst(r.status for r in self.results)
        order = sorted(self.results, key=lambda r: -r.status.rank)
        self.steps = [(r, text) for r in order if (text := advise(r))]

    def headline(self) -> str:
        counts = {s: sum(r.status is s for r in self.results) for s in Status}
        tally = ", ".join(f"{n} {s.name}" for s, n in counts.items() if n)
        if not self.results:
            return f"{self.section}: no checks have run yet"
        if not self.steps:
            return f"{self.section}: {self.status.name}: all {len(self.results)} checks OK"
        return f"{self.section}: {self.status.name} ({tally})"

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        text = [self.headline()]
        text += [f"- {r.status.name} {r.probe}: {step}" for r, step in self.steps]
        items = "".join(
            f"<li>{badge(r.status)} <code>{escape(r.probe)}</code>: {escape(step)}</li>"
            for r, step in self.steps
        )
        html = f"<h3>{badge(self.status)} {escape(self.headline())}</h3>"
        html += f"<ol>{items}</ol>" if items else "<p>Nothing in this section needs action.</p>"
        return {"text/plain": "\n".join(text), "text/html": html}
