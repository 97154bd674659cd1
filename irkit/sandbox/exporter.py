"""The practice stack's exporter: what postgres_exporter, redis_exporter, a Celery exporter and
blackbox_exporter would give Prometheus in production, under their metric names, so that the
stack's alert rules are the rules a deployment would use with those exporters.

    python -m irkit.sandbox.exporter PORT

Read from the environment: IRKIT_SANDBOX_PGHOST, IRKIT_SANDBOX_PGPORT (and PGPASSWORD), the
Redis URLs IRKIT_SANDBOX_CACHE_URL and IRKIT_SANDBOX_BROKER_URL, and IRKIT_SANDBOX_TLS_ENDPOINTS
("name:port@address", comma-separated). One database session is kept open, as postgres_exporter
keeps one: when the application cannot get a connection any more, the exporter still can.
"""

from __future__ import annotations

import os
import socket
import ssl
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

from irkit.sandbox.postgres import SUPERUSER

# The Celery queues the practice app uses.
QUEUES = ("celery",)
TIMEOUT_S = 2.0


class Collector:
    def __init__(self) -> None:
        self._conn: Any = None
        self._lock = threading.Lock()

    def _pg(self) -> Any:
        import psycopg

        if self._conn is None or self._conn.closed:
            self._conn = psycopg.connect(
                host=os.environ["IRKIT_SANDBOX_PGHOST"],
                port=int(os.environ["IRKIT_SANDBOX_PGPORT"]),
                user=SUPERUSER,  # a reserved slot: never one the application could have had
                dbname="postgres",
                autocommit=True,
                connect_timeout=2,
                application_name="irkit-practice-exporter",
            )
        return self._conn

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import GaugeMetricFamily

        with self._lock:
            yield from self._postgres(GaugeMetricFamily)
            yield from self._redis(GaugeMetricFamily)
            yield from self._certificates(GaugeMetricFamily)

    def _postgres(self, gauge: Any) -> Iterator[Any]:
        up = gauge("pg_up", "Whether the last PostgreSQL scrape succeeded")
        try:
            conn = self._pg()
            states = conn.execute(
                "SELECT coalesce(state, 'unknown'), count(*) FROM pg_stat_activity "
                "WHERE backend_type = 'client backend' GROUP BY 1"
            ).fetchall()
            limit, reserved = conn.execute(
                "SELECT current_setting('max_connections')::int, "
                "current_setting('superuser_reserved_connections')::int"
            ).fetchone()
            (longest,) = conn.execute(
                "SELECT coalesce(max(extract(epoch FROM now() - xact_start)), 0) "
                "FROM pg_stat_activity WHERE state = 'active' AND backend_type = 'client backend'"
                " AND pid <> pg_backend_pid()"
            ).fetchone()
        except Exception:
            self._conn = None
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        count = gauge("pg_stat_activity_count", "Sessions by state", labels=["state"])
        for state, n in states:
            count.add_metric([state], n)
        yield count
        yield gauge("pg_settings_max_connections", "max_connections", value=limit)
        yield gauge(
            "pg_settings_superuser_reserved_connections",
            "superuser_reserved_connections",
            value=reserved,
        )
        yield gauge(
            "pg_stat_activity_max_tx_duration",
            "The oldest active transaction, in seconds",
            value=float(longest),
        )

    def _redis(self, gauge: Any) -> Iterator[Any]:
        import redis

        up = gauge("redis_up", "Whether the last Redis scrape succeeded")
        try:
            cache = redis.Redis.from_url(
                os.environ["IRKIT_SANDBOX_CACHE_URL"], socket_timeout=TIMEOUT_S
            )
            memory = cache.info("memory")
            broker = redis.Redis.from_url(
                os.environ["IRKIT_SANDBOX_BROKER_URL"], socket_timeout=TIMEOUT_S
            )
            lengths = {queue: broker.llen(queue) for queue in QUEUES}
        except Exception:
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield gauge("redis_memory_used_bytes", "used_memory", value=memory["used_memory"])
        yield gauge("redis_memory_max_bytes", "maxmemory", value=memory.get("maxmemory", 0))
        queue = gauge("celery_queue_length", "Tasks waiting in the queue", labels=["queue_name"])
        for name, length in lengths.items():
            queue.add_metric([name], length)
        yield queue

    def _certificates(self, gauge: Any) -> Iterator[Any]:
        endpoints = [e for e in os.environ.get("IRKIT_SANDBOX_TLS_ENDPOINTS", "").split(",") if e]
        expiry = gauge(
            "probe_ssl_earliest_cert_expiry",
            "When the served certificate expires, in Unix seconds",
            labels=["instance"],
        )
        for endpoint in endpoints:
            name_port, _, address = endpoint.partition("@")
            name, _, port = name_port.partition(":")
            try:
                expiry.add_metric([name_port], _not_after(name, address or name, int(port)))
            except (OSError, ValueError):
                continue
        yield expiry


def _not_after(name: str, address: str, port: int) -> float:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # the date is what is read, trusted or not
    with (
        socket.create_connection((address, port), timeout=TIMEOUT_S) as raw,
        context.wrap_socket(raw, server_hostname=name) as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    if der is None:
        raise ValueError("no certificate")
    from cryptography import x509

    return x509.load_der_x509_certificate(der).not_valid_after_utc.timestamp()


def main(argv: list[str]) -> int:
    from prometheus_client import REGISTRY, start_http_server

    REGISTRY.register(Collector())
    start_http_server(int(argv[0]), addr="127.0.0.1")
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
