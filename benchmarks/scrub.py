"""What keeping secrets out of the record costs, measured in one run.

    .venv/bin/python benchmarks/scrub.py [--runs 15] [--rows 200]

Every verdict's summary and evidence passes through `irkit.secrets.redact` before it is shown or
written, and every value a postmortem or an HTML output shows passes through `irkit.escape`. They
are timed against what every result costs anyway, in the same process: the kernel showing it
(its display bundle, text, HTML table and result JSON, serialised to JSON), the baseline.

The evidence is large on purpose: a `postgres.connections`-like table of `--rows` sessions with
their queries and a `logs.errors`-like sample, with five secrets in the environment as a
production run has them (passwords, a webhook, a token).

1. `redact` of the result: target at most 1.5x the baseline;
2. the same with no secret held (the scrubber still masks credentials it was not told about:
   `password=…`, URL userinfo and query), same target;
3. `escape.markdown` and `escape.html` of every string of the evidence (the postmortem's and the
   HTML copy's escaping, done once per value): target at most 5x the baseline;
4. for reference, the scrubber this kit had before it knew more than the database passwords (a
   `str.replace` per secret), on the same result.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from collections.abc import Callable
from typing import Any

from irkit import escape, secrets
from irkit.result import Result, Status

REDACT_TARGET = 1.5
ESCAPE_TARGET = 5.0
SECRETS = {
    "PGPASSWORD": "pg-s3cret/%p@ss#?2f9c",
    "IRKIT_REDIS_PASSWORD": "redis-S3cret-8841",
    "IRKIT_CELERY_BROKER_PASSWORD": "broker-S3cret-1187",
    "IRKIT_SLACK_WEBHOOK": "https://hooks.example.test/services/T0AAAA1/B0BBBB2/XyZ123secretTail",
    "IRKIT_STATUSPAGE_TOKEN": "sp-0123456789abcdef",
}


def evidence(rows: int) -> dict[str, Any]:
    sessions = [
        {
            "pid": 1000 + i,
            "user": "erp",
            "application_name": "gunicorn",
            "state": "active" if i % 3 else "idle in transaction",
            "age_s": i * 1.5,
            "query": f"SELECT * FROM accounting_journalentry WHERE tenant_id = {i} "
            "AND created_at > now() - interval '1 day' ORDER BY id DESC LIMIT 50",
        }
        for i in range(rows)
    ]
    errors = [
        {
            "exception": "django.db.utils.OperationalError",
            "count": 12,
            "sample": f"2026-11-30 03:0{i % 10}:00 ERROR connection to server at "
            '"db.internal" (127.0.0.1), port 5432 failed: FATAL: too many clients',
        }
        for i in range(rows // 10)
    ]
    return {"sessions": sessions, "errors": errors, "max_connections": 100, "warn_pct": 80.0}


def strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in strings(v)]
    return []


def median_ms(fn: Callable[[], object], runs: int) -> float:
    fn()  # warm: caches (the scrubber's list of secrets), imports
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15, help="runs per median")
    parser.add_argument("--rows", type=int, default=200, help="sessions in the evidence")
    args = parser.parse_args()
    data = evidence(args.rows)
    texts = strings(data)
    size = len(json.dumps(data))
    print(f"evidence: {args.rows} sessions, {len(texts)} strings, {size / 1024:.0f} KiB as JSON")

    shown = Result(
        probe="postgres.connections",
        target="db",
        status=Status.OK,
        summary="42 of 97 connections",
        evidence=data,
    )
    saved = {name: os.environ.get(name) for name in SECRETS}
    os.environ.update(SECRETS)
    try:
        baseline = median_ms(lambda: json.dumps(shown._repr_mimebundle_()), args.runs)
        held = median_ms(lambda: secrets.redact(data), args.runs)
        escaped = median_ms(
            lambda: [(escape.markdown(t), escape.html(t)) for t in texts], args.runs
        )
        # The old one held ten forms: five secrets, each also percent-encoded.
        before = median_ms(lambda: replace_each(data, secrets.known_secrets()[:10]), args.runs)
        assert all(s not in json.dumps(secrets.redact(data)) for s in SECRETS.values())
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    none_held = median_ms(lambda: secrets.redact(data), args.runs)

    print(f"baseline, the result shown:     {baseline:7.2f} ms")
    failed = False
    for label, ms, target in (
        ("redact, 5 secrets held", held, REDACT_TARGET),
        ("redact, no secret held", none_held, REDACT_TARGET),
        ("escape.markdown + html", escaped, ESCAPE_TARGET),
    ):
        ratio = ms / baseline
        met = ratio <= target
        failed |= not met
        print(
            f"{label + ':':<32}{ms:7.2f} ms  {ratio:5.2f}x  "
            f"(target <= {target:.1f}x: {'met' if met else 'MISSED'})"
        )
    print(f"{'the old scrubber, for reference:':<32}{before:7.2f} ms  {before / baseline:5.2f}x")
    return 1 if failed else 0


def replace_each(value: Any, held: list[str]) -> Any:
    """The scrubber as it was: each secret (and its percent-encoded form) replaced in turn."""
    if isinstance(value, str):
        for secret in held:
            value = value.replace(secret, secrets.MASK)
        return value
    if isinstance(value, dict):
        return {k: replace_each(v, held) for k, v in value.items()}
    if isinstance(value, list):
        return [replace_each(v, held) for v in value]
    return value


if __name__ == "__main__":
    raise SystemExit(main())
