"""Prometheus probes: the alerts firing now, and the runbook's two queries (error rate and 95th
percentile of request time) over django-prometheus' metrics.

The runbook's example PromQL names
`django_http_requests_total_by_view_transport_method_total{status=~"5.."}` and
`django_http_request_duration_seconds_bucket`; django-prometheus has no such status label and no
such histogram. The queries below use the metrics it does export, with the runbook's intent.
"""

from __future__ import annotations

import math
from typing import Any

import httpx

from irkit.errors import ServiceError
from irkit.probes.contract import Finding, check_thresholds, grade, probe
from irkit.probes.http import client
from irkit.result import Result, Status
from irkit.secrets import scrub
from irkit.targets import HttpTarget

RESPONSES = "django_http_responses_total_by_status_view_method_total"
LATENCY_BUCKETS = "django_http_requests_latency_seconds_by_view_method_bucket"


def error_rate_query(window: str) -> str:
    # `or vector(0)`: with no 5xx at all the numerator has no series, and the ratio would vanish
    # instead of being 0.
    return (
        f'(sum(rate({RESPONSES}{{status=~"5.."}}[{window}])) or vector(0))'
        f" / sum(rate({RESPONSES}[{window}]))"
    )


def errors_by_view_query(window: str) -> str:
    return f'sum by (view, status) (rate({RESPONSES}{{status=~"5.."}}[{window}])) > 0'


def p95_query(window: str) -> str:
    return f"histogram_quantile(0.95, sum by (le) (rate({LATENCY_BUCKETS}[{window}])))"


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


@probe(
    "prometheus.alerts",
    measures="alerts firing (`/api/v1/alerts`), with their runbook section",
    grades="any firing / any `severity=critical`",
    target="prometheus",
    area="monitoring",
    recheck=True,
    advice=_prometheus_alerts,
)
def alerts(target: HttpTarget) -> Finding:
    """Alerts firing now (`GET /api/v1/alerts`): any firing alert is WARN, one labelled
    `severity=critical` is CRIT. Pending alerts are listed but do not count yet."""
    with client(target) as http:
        data = api(http, target, "/api/v1/alerts")
    listed = [
        {
            "alertname": a.get("labels", {}).get("alertname", "?"),
            "state": a.get("state"),
            "severity": a.get("labels", {}).get("severity", ""),
            "since": a.get("activeAt"),
            "summary": a.get("annotations", {}).get("summary", ""),
            "runbook": a.get("annotations", {}).get("runbook", ""),
            "labels": a.get("labels", {}),
        }
        for a in data.get("alerts", [])
    ]
    firing = [a for a in listed if a["state"] == "firing"]
    pending = [a for a in listed if a["state"] == "pending"]
    evidence: dict[str, Any] = {"firing": firing, "pending": pending}
    if not firing:
        tail = f" ({len(pending)} pending: {_names(pending)})" if pending else ""
        return Finding(Status.OK, f"no alerts firing{tail}", evidence)
    critical = [a for a in firing if a["severity"] == "critical"]
    status = Status.CRIT if critical else Status.WARN
    return Finding(status, f"{len(firing)} alerts firing: {_names(firing)}", evidence)


@probe(
    "prometheus.query",
    measures="share of requests answered 5xx, the failing views, p95 request time",
    grades=(
        "{prom_error_rate_warn_pct} / {prom_error_rate_crit_pct} (runbook: > 5 %); p95 > "
        "{prom_p95_warn_s}: WARN"
    ),
    target="prometheus",
    thresholds={
        "window": "prom_window",
        "warn_pct": "prom_error_rate_warn_pct",
        "crit_pct": "prom_error_rate_crit_pct",
        "p95_warn_s": "prom_p95_warn_s",
    },
    area="monitoring",
    advice=_prometheus_query,
)
def error_rate(
    target: HttpTarget,
    *,
    window: str,
    warn_pct: float,
    crit_pct: float,
    p95_warn_s: float,
) -> Finding:
    """The share of requests answered 5xx over `window` (runbook: alert above 5 %), the views
    that fail, and the 95th percentile of request time (WARN above `p95_warn_s`)."""
    check_thresholds(warn_pct, crit_pct)
    queries = {
        "error_rate": error_rate_query(window),
        "errors_by_view": errors_by_view_query(window),
        "p95_seconds": p95_query(window),
    }
    with client(target) as http:  # one connection for the three queries
        answers = {
            name: api(http, target, "/api/v1/query", {"query": query})
            for name, query in queries.items()
        }
    ratio, p95 = _scalar(answers["error_rate"]), _scalar(answers["p95_seconds"])
    failing_views = sorted(
        (
            {
                "view": s["metric"].get("view", "?"),
                "status": s["metric"].get("status", "?"),
                "per_second": round(float(s["value"][1]), 3),
            }
            for s in answers["errors_by_view"].get("result", [])
        ),
        key=lambda v: -v["per_second"],
    )
    evidence: dict[str, Any] = {
        "window": window,
        "error_rate_pct": None if ratio is None else round(ratio * 100, 2),
        "p95_seconds": None if p95 is None else round(p95, 3),
        "failing_views": failing_views,
        "queries": queries,
        "warn_pct": warn_pct,
        "crit_pct": crit_pct,
        "p95_warn_s": p95_warn_s,
    }
    if ratio is None:
        return Finding(
            Status.UNKNOWN,
            f"no request metrics over the last {window}: is Prometheus scraping the app's "
            f"/metrics (django-prometheus' {RESPONSES})?",
            evidence,
        )
    pct = ratio * 100
    status = grade(pct, warn_pct, crit_pct)
    summary = f"{pct:.1f} % of requests failed with 5xx over the last {window}"
    if failing_views:
        top = failing_views[0]
        summary += f", most from {top['view']} ({top['status']}, {top['per_second']:g}/s)"
    if p95 is not None:
        summary += f"; 95 % of requests took under {p95:.2f} s"
        if p95 > p95_warn_s:
            status = Status.worst([status, Status.WARN])
            summary += f" (slow: above {p95_warn_s:g} s)"
    return Finding(status, summary, evidence)


def api(
    http: httpx.Client, target: HttpTarget, path: str, params: dict[str, str] | None = None
) -> dict[str, Any]:
    response = http.get(target.url(path), params=params)
    try:
        body = response.json()
    except ValueError:
        raise ServiceError(
            f"{target.display} answered {response.status_code} with no JSON: is this Prometheus?"
        ) from None
    if body.get("status") != "success":
        why = scrub(str(body.get("error", response.text)))[:200]  # scrubbed whole, then cut
        raise ServiceError(f"Prometheus refused {path}: {why}")
    data: dict[str, Any] = body.get("data", {})
    return data


def _scalar(data: dict[str, Any]) -> float | None:
    """The single value of an instant query, or None when it has no series or is NaN (no
    requests at all make the ratio 0/0)."""
    result = data.get("result", [])
    if not result:
        return None
    value = float(result[0]["value"][1])
    return None if math.isnan(value) else value


def _names(alerts_: list[dict[str, Any]]) -> str:
    return ", ".join(
        f"{a['alertname']} ({a['severity']})" if a["severity"] else a["alertname"] for a in alerts_
    )
