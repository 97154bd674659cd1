"""The web, TLS and Prometheus probes against the practice stack's real servers, and against a
listener that never answers: every failure a finding within its timeout, named for what it is."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from irkit.errors import ParameterError
from irkit.probes import http, prometheus, tls
from irkit.result import Result, Status
from irkit.sandbox.stack import Stack
from irkit.target_builders import parse_endpoint, tls_target
from irkit.targets import HttpTarget, TlsEndpoint, TlsTarget
from tests.helpers import serving

TIMEOUT_S = 1.0


def web(stack: Stack) -> HttpTarget:
    return HttpTarget(base_url=stack.web.url, timeout_s=TIMEOUT_S)


def test_health_names_every_component_of_the_real_endpoint(stack: Stack) -> None:
    result = http.health(web(stack))
    assert result.status is Status.OK, result.summary
    names = {name.split("(")[0] for name in result.evidence["components"]}
    assert names == {"Database", "Cache", "Storage", "Redis", "Ping"}
    assert " at 0x" not in str(result.evidence["components"])  # object addresses are dropped


def test_smoke_fails_on_a_missing_page_like_curl_f(stack: Stack) -> None:
    result = http.smoke(web(stack), paths=["/accounts/login/", "/no-such-page/"])
    assert result.status is Status.CRIT
    assert result.evidence["failed"] == ["/no-such-page/"]
    assert "(404)" in result.summary
    assert result.evidence.get("reachable") is not False  # the app answered


@pytest.mark.parametrize("check", [http.health, http.smoke, prometheus.alerts])
def test_a_listener_that_never_answers_is_crit_within_the_timeout(
    check: Callable[..., Result], hanging_port: int
) -> None:
    started = time.monotonic()
    result = check(HttpTarget(base_url=f"http://127.0.0.1:{hanging_port}", timeout_s=TIMEOUT_S))
    assert time.monotonic() - started < TIMEOUT_S * 3
    assert result.status is Status.CRIT
    assert "within 1 s" in result.summary


def test_nothing_listening_is_named_as_down(closed_port: int) -> None:
    result = http.health(HttpTarget(base_url=f"http://127.0.0.1:{closed_port}"))
    assert result.status is Status.CRIT
    assert "connection refused" in result.summary
    assert result.evidence["reachable"] is False


def test_tls_reads_both_names_by_sni(stack: Stack) -> None:
    endpoints = tuple(
        TlsEndpoint(name, stack.web_tls.port, "127.0.0.1")
        for name in ("himalytix.test", "api.himalytix.test")
    )
    result = tls.expiry(TlsTarget(endpoints=endpoints))
    assert result.status is Status.OK
    rows = result.evidence["certificates"]
    assert [r["subject"] for r in rows] == ["himalytix.test", "api.himalytix.test"]
    assert all(89 < r["days_left"] <= 90 and r["name_matches"] for r in rows)


def test_tls_on_a_plain_port_and_a_silent_one(stack: Stack, hanging_port: int) -> None:
    plain = TlsEndpoint("himalytix.test", stack.web.port, "127.0.0.1")
    silent = TlsEndpoint("himalytix.test", hanging_port, "127.0.0.1")
    started = time.monotonic()
    result = tls.expiry(TlsTarget(endpoints=(plain, silent), timeout_s=TIMEOUT_S))
    assert time.monotonic() - started < TIMEOUT_S * 3
    assert result.status is Status.CRIT
    errors = [r["error"] for r in result.evidence["certificates"]]
    assert errors[0].startswith("TLS handshake failed")
    assert errors[1].startswith("no TLS handshake within 1 s")
    assert result.evidence["reachable"] is False


def test_tls_with_nothing_to_check_says_so() -> None:
    result = tls.expiry(TlsTarget(endpoints=()))
    assert result.status is Status.UNKNOWN
    assert "set tls_endpoints" in result.summary


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("himalytix.com", TlsEndpoint("himalytix.com", 443, "")),
        ("himalytix.test:8443@127.0.0.1", TlsEndpoint("himalytix.test", 8443, "127.0.0.1")),
    ],
)
def test_endpoints_are_parsed(text: str, expected: TlsEndpoint) -> None:
    assert parse_endpoint(text) == expected


@pytest.mark.parametrize("text", ["", ":443", "host:http", "host:0", "https://host"])
def test_bad_endpoints_are_refused(text: str) -> None:
    with pytest.raises(ParameterError, match="is not name\\[:port\\]\\[@address\\]"):
        parse_endpoint(text)


def test_an_https_web_url_is_the_default_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("IRKIT_TLS_ENDPOINTS", raising=False)
    target = tls_target({"web_url": "https://erp.example.com:8443"})
    assert target.endpoints == (TlsEndpoint("erp.example.com", 8443, ""),)


def test_prometheus_reads_the_real_api(stack: Stack) -> None:
    target = HttpTarget(base_url=stack.prometheus.url)
    assert prometheus.alerts(target).status is Status.OK
    # Latency is not what this reads for: other workers' load can slow the app past 1 s.
    result = prometheus.error_rate(target, window="1m", p95_warn_s=60.0)
    assert result.status is Status.OK, result.summary
    assert result.evidence["error_rate_pct"] == 0.0
    assert (
        "django_http_responses_total_by_status_view_method_total"
        in (result.evidence["queries"]["error_rate"])
    )


def test_something_that_is_not_prometheus_is_named(stack: Stack) -> None:
    result = prometheus.alerts(web(stack))
    assert result.status is Status.CRIT
    assert "answered 404 with no JSON: is this Prometheus?" in result.summary


def test_load_on_the_practice_app_reports_percentiles(stack: Stack) -> None:
    result = http.load(web(stack), requests=40, concurrency=8, progress=False)
    assert result.status is Status.OK, result.summary
    e = result.evidence
    assert (e["sent"], e["errors"], e["by_status"]) == (40, 0, {"200": 40})
    assert 0 < e["p50_ms"] <= e["p95_ms"] <= e["p99_ms"]


def test_load_counts_server_errors_for_real() -> None:
    """Every tenth answer a 500: 10 % errors, over the 1 % the catalogue allows."""
    from http.server import BaseHTTPRequestHandler

    count = iter(range(10**6))

    class Flaky(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(500 if next(count) % 10 == 0 else 200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: object) -> None:
            pass

    with serving(Flaky) as url:
        result = http.load(HttpTarget(base_url=url), requests=50, concurrency=5, progress=False)
    assert result.status is Status.CRIT
    assert result.evidence["errors"] == 5
    assert result.evidence["error_pct"] == 10.0
    assert "5 errors (10.0 %)" in result.summary


def test_load_on_a_silent_listener_stops_after_the_first_wave(hanging_port: int) -> None:
    started = time.monotonic()
    target = HttpTarget(base_url=f"http://127.0.0.1:{hanging_port}", timeout_s=TIMEOUT_S)
    result = http.load(target, requests=100, concurrency=10, progress=False)
    assert result.status is Status.CRIT
    assert result.evidence["reachable"] is False
    assert result.evidence["sent"] < 100
    assert time.monotonic() - started < 3 * TIMEOUT_S + 2
