"""Web probes: the readiness endpoint and its components, and the runbook's smoke URLs.

What `curl http://localhost:8000/health/ready/ | jq` and `curl -f URL || echo "FAILED"` answer, with
timeouts on connecting and on every read, so a web app that accepts and never answers is a CRIT
within the timeout rather than a hung notebook.
"""

from __future__ import annotations

import math
import re
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import httpx

from irkit import reasons
from irkit.errors import ServiceError, Unreachable
from irkit.probes.contract import Finding, probe
from irkit.result import Result, Status
from irkit.secrets import scrub
from irkit.targets import HttpTarget

# django-health-check names a component by its repr, which may carry an object address.
_ADDRESS = re.compile(r"<([^<>]*?) at 0x[0-9a-f]+>")


def new_client(target: HttpTarget) -> httpx.Client:
    """Every connect and read bounded by the target's timeout; no redirects followed (as
    `curl -f`); no proxy from the environment (a probe reaches its target directly)."""
    return httpx.Client(
        timeout=target.timeout_s, verify=target.verify, follow_redirects=False, trust_env=False
    )


@contextmanager
def client(target: HttpTarget) -> Iterator[httpx.Client]:
    """A client whose errors become findings that say what happened."""
    with new_client(target) as http:
        try:
            yield http
        except httpx.ConnectError as exc:
            raise Unreachable(f"cannot connect to {target.display}: {_reason(exc)}") from None
        except httpx.TimeoutException:
            raise Unreachable(
                f"no answer from {target.display} within {target.timeout_s:g} s: the web app "
                "accepts connections but does not answer (workers hung or all busy)"
            ) from None
        except httpx.HTTPError as exc:
            raise ServiceError(f"{target.display}: {_reason(exc)}") from None


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


@probe(
    "http.health",
    measures="`/health/ready/` (django-health-check): status code, time, each component's verdict",
    grades="> {web_slow_ms} / non-2xx, no answer, or a failing component (named)",
    target="web",
    thresholds={"path": "web_health_path", "slow_ms": "web_slow_ms"},
    area="web",
    advice=_http_health,
)
def health(target: HttpTarget, *, path: str, slow_ms: float) -> Finding:
    """The readiness endpoint (django-health-check): its status code and each component's
    verdict. A failing component, a non-2xx answer or a timeout is CRIT; slower than `slow_ms`
    is WARN."""
    url = target.url(path)
    with client(target) as http:
        started = time.perf_counter()
        response = http.get(url, headers={"Accept": "application/json"})
        elapsed_ms = (time.perf_counter() - started) * 1000
    components = _components(response)
    failing = {name: verdict for name, verdict in components.items() if verdict != "OK"}
    evidence: dict[str, Any] = {
        "url": url,
        "status_code": response.status_code,
        "response_ms": round(elapsed_ms, 1),
        "components": components,
        "failing": sorted(failing),
        "slow_ms": slow_ms,
    }
    if failing:
        # The app quotes its drivers' messages, over many lines: one short line each here, the
        # whole text in `components`.
        listed = "; ".join(f"{name}: {reasons.short(v, 100)}" for name, v in failing.items())
        return Finding(
            Status.CRIT,
            f"{path} answered {response.status_code}: {len(failing)} of {len(components)} "
            f"components failing ({listed})",
            evidence,
        )
    if not response.is_success:
        return Finding(
            Status.CRIT,
            f"{path} answered {response.status_code} {response.reason_phrase}",
            evidence,
        )
    if not components:
        # Scrubbed whole, then cut: a secret the cut fell across would not be recognised.
        evidence["body"] = scrub(response.text)[:500]
    summary = f"{path} answered {response.status_code} in {elapsed_ms:.0f} ms"
    if components:
        summary += f", all {len(components)} components OK"
    if elapsed_ms > slow_ms:
        return Finding(Status.WARN, f"{summary}: slower than {slow_ms:g} ms", evidence)
    return Finding(Status.OK, summary, evidence)


@probe(
    "http.smoke",
    measures=(
        "the runbook's smoke URLs, like `curl -f` (once the server does not answer at all, the "
        "rest are not tried)"
    ),
    grades="— / any 4xx, 5xx, refusal or timeout",
    target="web",
    thresholds={"paths": "web_smoke_paths"},
    area="web",
    advice=_http_smoke,
)
def smoke(target: HttpTarget, *, paths: Sequence[str]) -> Finding:
    """The runbook's smoke test, `curl -f URL || echo "FAILED"` for each path: a 4xx or 5xx
    answer, a refused connection or a timeout fails it. Once the server has not answered at all,
    the remaining paths are not tried: a hung app costs one timeout, not one per URL."""
    rows = []
    silent = ""
    with new_client(target) as http:
        for path in paths:
            url = target.url(path)
            started = time.perf_counter()
            row: dict[str, Any] = {"path": path, "url": url}
            if silent:
                rows.append({**row, "ok": False, "error": f"not tried: {silent}"})
                continue
            try:
                response = http.get(url)
            except httpx.TimeoutException:
                row.update(ok=False, error=f"no answer within {target.timeout_s:g} s")
                silent = f"no answer to {path}"
            except httpx.ConnectError as exc:
                row.update(ok=False, error=_reason(exc))
                silent = f"could not connect for {path}"
            except httpx.HTTPError as exc:
                row.update(ok=False, error=_reason(exc))
            else:
                row.update(ok=response.status_code < 400, status_code=response.status_code)
            row["response_ms"] = round((time.perf_counter() - started) * 1000, 1)
            rows.append(row)
    failed = [r for r in rows if not r["ok"]]
    evidence: dict[str, Any] = {"requests": rows, "failed": [r["path"] for r in failed]}
    if not rows:
        return Finding(Status.UNKNOWN, "no smoke paths given", evidence)
    if len(failed) == len(rows) and all("status_code" not in r for r in rows):
        # Nothing answered at all: the same as an outage, and later web probes need not wait.
        evidence["reachable"] = False
    if failed:
        listed = ", ".join(
            f"{r['path']} ({r.get('status_code') or r.get('error')})" for r in failed
        )
        return Finding(
            Status.CRIT, f"{len(failed)} of {len(rows)} smoke URLs FAILED: {listed}", evidence
        )
    slowest = max(rows, key=lambda r: float(r["response_ms"]))
    return Finding(
        Status.OK,
        f"all {len(rows)} smoke URLs answered (slowest {slowest['path']}, "
        f"{slowest['response_ms']:.0f} ms)",
        evidence,
    )


def _components(response: httpx.Response) -> dict[str, str]:
    """django-health-check's JSON: {"Database(alias='default')": "OK", "...": "error text"}."""
    if "json" not in response.headers.get("content-type", ""):
        return {}
    try:
        body = response.json()
    except ValueError:
        return {}
    if not isinstance(body, dict):
        return {}
    return {_ADDRESS.sub(r"<\1>", str(k)): str(v) for k, v in body.items()}


def _reason(exc: Exception) -> str:
    text = str(exc) or type(exc).__name__
    if "Connection refused" in text:
        return "connection refused (nothing listens there: the server is down)"
    if "CERTIFICATE_VERIFY_FAILED" in text:
        return f"its TLS certificate does not verify ({text.rsplit(':', 1)[-1].strip(' )')})"
    return text


@probe(
    "http.load",
    measures=(
        "the runbook's `ab -n 100 -c 10`: p50/p95/p99 and errors, with a progress bar; a server "
        "that answers none of the first wave is not sent the rest"
    ),
    grades="p95 > {web_slow_ms}, or cut short / errors (5xx, refused, timeout) > 1 %, or no answer",
    target="web",
    thresholds={
        "path": "load_path",
        "requests": "load_requests",
        "concurrency": "load_concurrency",
        "slow_ms": "web_slow_ms",
    },
    advice=_http_load,
    left_out=("a load test is run on purpose (the resolve notebook), never on a schedule"),
)
def load(
    target: HttpTarget,
    *,
    path: str,
    requests: int,
    concurrency: int,
    crit_error_pct: float = 1.0,
    slow_ms: float,
    progress: bool = True,
) -> Finding:
    """The runbook's `ab -n 100 -c 10 URL`: `requests` GETs, `concurrency` at a time, with their
    p50/p95/p99 time and errors (5xx, refused, timed out). Errors above `crit_error_pct` % are
    CRIT, a p95 slower than `slow_ms` or a test cut short is WARN. A server that
    answers none of the first wave is not sent the rest, and the test stops sending before the
    probe's deadline."""
    from concurrent.futures import ThreadPoolExecutor, as_completed

    from tqdm import tqdm  # type: ignore[import-untyped]

    if requests < 1 or concurrency < 1:
        raise ServiceError("the load test needs at least one request and one connection")
    concurrency = min(concurrency, requests)
    url = target.url(path)
    stop_at = time.monotonic() + target.deadline_s - target.timeout_s - 1.0
    silent = threading.Event()

    def one(http: httpx.Client) -> tuple[int | str, float]:
        if silent.is_set() or time.monotonic() > stop_at:
            return "not sent", 0.0
        started = time.perf_counter()
        try:
            code: int | str = http.get(url).status_code
        except httpx.TimeoutException:
            code = "timeout"
        except httpx.HTTPError as exc:
            code = type(exc).__name__
        return code, (time.perf_counter() - started) * 1000

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    wall = time.perf_counter()
    outcomes: list[tuple[int | str, float]] = []
    with (
        httpx.Client(
            timeout=target.timeout_s, verify=target.verify, trust_env=False, limits=limits
        ) as http,
        ThreadPoolExecutor(concurrency, thread_name_prefix="irkit-load") as pool,
        tqdm(
            total=requests,
            desc=f"GET {path}",
            unit="req",
            disable=not progress,
            leave=False,
            mininterval=0.5,
        ) as bar,
    ):
        futures = [pool.submit(one, http) for _ in range(requests)]
        for future in as_completed(futures):
            outcomes.append(future.result())
            bar.update()
            first_wave = outcomes[:concurrency]
            if len(first_wave) == concurrency and all(isinstance(c, str) for c, _ in first_wave):
                silent.set()
    wall_s = time.perf_counter() - wall
    sent = [(c, ms) for c, ms in outcomes if c != "not sent"]
    answered = sorted(ms for c, ms in sent if isinstance(c, int))
    errors = [c for c, _ in sent if not isinstance(c, int) or c >= 500]
    by_code: dict[str, int] = {}
    for code, _ in outcomes:
        by_code[str(code)] = by_code.get(str(code), 0) + 1
    evidence: dict[str, Any] = {
        "url": url,
        "requests": requests,
        "concurrency": concurrency,
        "sent": len(sent),
        "errors": len(errors),
        "by_status": by_code,
        "wall_s": round(wall_s, 2),
        "requests_per_s": round(len(sent) / wall_s, 1) if wall_s else None,
        "thresholds": {"crit_error_pct": crit_error_pct, "warn_p95_ms": slow_ms},
    }
    for q in (50, 95, 99):
        evidence[f"p{q}_ms"] = round(_percentile(answered, q), 1) if answered else None
    if not answered:
        evidence["reachable"] = False
        return Finding(Status.CRIT, f"no answer to any of {len(sent)} requests to {path}", evidence)
    error_pct = 100 * len(errors) / len(sent)
    evidence["error_pct"] = round(error_pct, 2)
    summary = (
        f"{len(sent)} requests to {path}, {concurrency} at a time: {len(errors)} errors "
        f"({error_pct:.1f} %), p50 {evidence['p50_ms']:.0f} ms, p95 {evidence['p95_ms']:.0f} ms, "
        f"p99 {evidence['p99_ms']:.0f} ms"
    )
    if len(sent) < requests:
        summary += f"; stopped after {len(sent)} of {requests}"
    if error_pct > crit_error_pct:
        return Finding(Status.CRIT, summary, evidence)
    if len(sent) < requests:
        return Finding(Status.WARN, summary, evidence)
    if evidence["p95_ms"] > slow_ms:
        return Finding(Status.WARN, f"{summary}: p95 slower than {slow_ms:g} ms", evidence)
    return Finding(Status.OK, summary, evidence)


def _percentile(sorted_ms: Sequence[float], q: float) -> float:
    """Nearest-rank percentile, as ab reports it."""
    rank = max(1, math.ceil(q / 100 * len(sorted_ms)))
    return sorted_ms[rank - 1]
