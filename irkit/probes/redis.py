"""Redis probes: liveness, memory against its limit, and clients."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from irkit.errors import NotVisible, ServiceError, Unreachable
from irkit.probes.contract import Finding, check_thresholds, grade, probe
from irkit.result import Result, Status
from irkit.targets import CeleryTarget, RedisTarget
from irkit.units import human_age, human_bytes

# Key kombu's Redis transport keeps for each exchange: its presence marks a Celery broker db.
KOMBU_BINDING = "_kombu.binding.{}"


def client(target: RedisTarget, db: int | None = None) -> redis.Redis:
    """A client that gives up after one socket timeout: redis-py retries by default, which would
    multiply the wait on a hung server."""
    kwargs: dict[str, Any] = {
        "socket_timeout": target.socket_timeout_s,
        "socket_connect_timeout": target.socket_timeout_s,
        "retry": Retry(NoBackoff(), 0),
        "decode_responses": True,
        "client_name": "irkit",
    }
    if target.password:
        kwargs["password"] = target.password
    url = target.url
    if db is not None:
        # from_url prefers the URL's own db to a db argument, and its `db` query option to both;
        # the query option also works for unix:// URLs, whose path is the socket.
        parts = urlsplit(url)
        query = "&".join(q for q in parts.query.split("&") if q and not q.startswith("db="))
        url = urlunsplit(parts._replace(query=f"{query}&db={db}" if query else f"db={db}"))
    return redis.Redis.from_url(url, **kwargs)


@contextmanager
def session(target: RedisTarget, db: int | None = None) -> Iterator[redis.Redis]:
    conn = client(target, db)
    try:
        yield conn
    except redis.exceptions.BusyLoadingError:
        raise ServiceError(
            f"{target.display} is loading its dataset into memory and refuses commands until done"
        ) from None
    except redis.exceptions.AuthenticationError:
        raise Unreachable(
            f"authentication failed at {target.display}: check IRKIT_REDIS_PASSWORD",
            auth_failed=True,
        ) from None
    except redis.exceptions.TimeoutError:
        raise Unreachable(
            f"no answer from {target.display} within {target.socket_timeout_s:g} s: "
            "Redis is hung, overloaded or firewalled"
        ) from None
    except redis.exceptions.ConnectionError as exc:
        if "NOAUTH" in str(exc) or "invalid password" in str(exc).lower():
            raise Unreachable(
                f"{target.display} requires a password: set IRKIT_REDIS_PASSWORD", auth_failed=True
            ) from None
        raise Unreachable(f"cannot reach {target.display}: {exc}") from None
    except redis.exceptions.ResponseError as exc:
        if "NOAUTH" in str(exc) or "NOPERM" in str(exc):
            raise NotVisible(f"{target.display} refused: {exc}") from None
        raise ServiceError(f"{target.display} answered with an error: {exc}") from None
    finally:
        conn.close()


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


@probe(
    "redis.ping",
    measures="PING",
    grades="— / failure, or still loading its dataset",
    target="redis",
    area="redis",
    recheck=True,
    advice=_redis_ping,
)
def ping(target: RedisTarget) -> Finding:
    """PING, as `redis-cli PING` does in the runbook."""
    with session(target) as r:
        pong = r.ping()
        try:
            info = r.info("server")
        except redis.exceptions.ResponseError:
            info = {}  # an ACL may allow PING and deny INFO: the answer still stands
    evidence = {
        "pong": bool(pong),
        "redis_version": info.get("redis_version"),
        "uptime_s": info.get("uptime_in_seconds"),
        "role": info.get("role") or None,
    }
    summary = (
        f"PONG from Redis {info['redis_version']}, up {_uptime(info)}"
        if info
        else "PONG (INFO is not allowed for this user)"
    )
    return Finding(Status.OK, summary, evidence)


def address(target: RedisTarget) -> tuple[object, object, object, int]:
    """Host, port, socket path and db as redis-py reads the URL (no connection made)."""
    conn = client(target)
    try:
        kw = conn.connection_pool.connection_kwargs
        return kw.get("host"), kw.get("port"), kw.get("path"), int(kw.get("db") or 0)
    finally:
        conn.close()


def is_broker_db(target: RedisTarget, db: int, broker: CeleryTarget) -> bool:
    """Whether `db` of `target` is the db the Celery broker uses: the same address and db, or the
    same server (its run_id) reached under another name, e.g. localhost and 127.0.0.1."""
    if urlsplit(broker.broker_url).scheme not in ("redis", "rediss"):
        return False  # not a Redis broker, or one redis-py cannot address (redis+socket)
    on_broker = broker.redis()
    host, port, path, broker_db = address(on_broker)
    if broker_db != db:
        return False
    if address(target)[:3] == (host, port, path):
        return True
    try:
        with session(target) as r, session(on_broker) as b:
            return bool(r.info("server")["run_id"] == b.info("server")["run_id"])
    except (ServiceError, NotVisible):
        return False  # a broker out of reach is not this server as far as known: the keys decide


@probe(
    "redis.memory",
    measures="`used_memory` against `maxmemory`, evictions, fragmentation, policy",
    grades=(
        "{redis_memory_warn_pct} / {redis_memory_crit_pct}; no limit, or an `allkeys-*` policy "
        "on a Redis holding Celery queues: WARN"
    ),
    target="redis",
    thresholds={
        "warn_pct": "redis_memory_warn_pct",
        "crit_pct": "redis_memory_crit_pct",
        "broker_queues": "celery_queues",
    },
    uses={"broker": "broker"},
    area="redis",
    recheck=True,
    advice=_redis_memory,
)
def memory(
    target: RedisTarget,
    *,
    warn_pct: float,
    crit_pct: float,
    broker_queues: Sequence[str],
    broker: CeleryTarget | None = None,
) -> Finding:
    """`used_memory` against `maxmemory`, with evictions, fragmentation and the eviction policy.

    No limit at all is a WARN (Redis grows until the host runs out), and so is a policy that may
    evict any key on a server holding Celery's queues: evicted tasks are lost. A broker db is the
    `broker`'s own db when it is on this server, or one holding a queue named in
    `broker_queues` or kombu's bindings for it."""
    check_thresholds(warn_pct, crit_pct)
    with session(target) as r:
        info = r.info()  # the default sections hold memory, stats and keyspace: one round trip
        policy = str(info.get("maxmemory_policy", "noeviction"))
        broker_dbs = (
            _broker_dbs(target, info, broker_queues, broker) if policy.startswith("allkeys") else []
        )
    used = int(info["used_memory"])
    limit = int(info.get("maxmemory", 0))
    evidence: dict[str, Any] = {
        "used_memory": used,
        "used_memory_human": info.get("used_memory_human"),
        "maxmemory": limit,
        "maxmemory_policy": policy,
        "evicted_keys": info.get("evicted_keys", 0),
        "mem_fragmentation_ratio": info.get("mem_fragmentation_ratio"),
        "warn_pct": warn_pct,
        "crit_pct": crit_pct,
        "broker_dbs": broker_dbs,
        "broker_at_risk": bool(broker_dbs),
    }
    evicted = f"{info.get('evicted_keys', 0)} keys evicted since start"
    if limit == 0:
        summary = f"{human_bytes(used)} used with no maxmemory limit (policy {policy}); {evicted}"
        return Finding(Status.WARN, summary, evidence)
    pct = 100.0 * used / limit
    evidence["percent"] = round(pct, 1)
    status = grade(pct, warn_pct, crit_pct)
    summary = (
        f"{human_bytes(used)} of {human_bytes(limit)} maxmemory used ({pct:.0f}%), "
        f"policy {policy}; {evicted}"
    )
    if broker_dbs:
        summary += (
            f"; db {', '.join(map(str, broker_dbs))} holds Celery queues that {policy} may evict"
        )
        status = Status.worst([status, Status.WARN])
    return Finding(status, summary, evidence)


def _broker_dbs(
    target: RedisTarget, info: dict[str, Any], queues: Sequence[str], broker: CeleryTarget | None
) -> list[int]:
    """The dbs that are the broker's, or hold kombu's bindings or a Celery queue key (EXISTS
    only: no scans; a probe stays cheap, the FLUSHDB guard looks harder)."""
    found = []
    keys = [KOMBU_BINDING.format(q) for q in queues] + list(queues)
    # INFO's keyspace section lists each db holding keys as `dbN`.
    for db in sorted(int(name[2:]) for name in info if re.fullmatch(r"db\d+", name)):
        if broker is not None and is_broker_db(target, db, broker):
            found.append(db)
            continue
        with session(target, db) as r:
            if r.exists(*keys):
                found.append(db)
    return found


@probe(
    "redis.clients",
    measures="connected, blocked and rejected clients",
    grades="{redis_clients_warn_pct} of `maxclients` / any rejected since start",
    target="redis",
    thresholds={"warn_pct": "redis_clients_warn_pct"},
    area="redis",
    recheck=True,
    advice=_redis_clients,
)
def clients(target: RedisTarget, *, warn_pct: float) -> Finding:
    """Connected, blocked and rejected clients. Rejections are counted since the server started,
    so any at all is CRIT: Redis turned clients away at `maxclients`."""
    with session(target) as r:
        info = r.info()  # clients, stats and server sections in one round trip
        maxclients = int(info.get("maxclients") or 0)
        if not maxclients:  # INFO shows it from Redis 7 on; before, ask CONFIG if allowed
            try:
                maxclients = int(r.config_get("maxclients").get("maxclients") or 0)
            except redis.exceptions.ResponseError:
                maxclients = 0  # CONFIG is often disabled on managed Redis
    connected = int(info.get("connected_clients", 0))
    rejected = int(info.get("rejected_connections", 0))
    evidence: dict[str, Any] = {
        "connected_clients": connected,
        "blocked_clients": int(info.get("blocked_clients", 0)),
        "rejected_connections": rejected,
        "maxclients": maxclients,
        "uptime_s": info.get("uptime_in_seconds"),
        "warn_pct": warn_pct,
    }
    summary = f"{connected} clients connected ({evidence['blocked_clients']} blocked)"
    if maxclients:
        summary += f" of maxclients {maxclients}"
    if rejected:
        summary += f"; {rejected} connections rejected since start (up {_uptime(info)})"
        return Finding(Status.CRIT, summary, evidence)
    if maxclients and 100.0 * connected / maxclients >= warn_pct:
        return Finding(Status.WARN, summary, evidence)
    return Finding(Status.OK, summary, evidence)


def _uptime(info: dict[str, Any]) -> str:
    return human_age(int(info.get("uptime_in_seconds", 0)))
