"""Redis mitigations from runbook Scenario 4: clear the cache (`FLUSHDB`) and change
`maxmemory`. The Celery broker's db, and any db that holds what kombu keeps for Celery (queue
lists, their priority sub-queues, bindings, unacked bookkeeping), is refused unless
`allow_broker` says otherwise: flushing it drops every waiting task and the routing."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator, Sequence
from typing import cast

import redis
from kombu.transport.redis import Channel

from irkit.actions.guard import Item, Outcome, Plan, act_on
from irkit.catalogue.parameters import default
from irkit.errors import ConfigError
from irkit.probes.celery import priority_keys
from irkit.probes.redis import address, is_broker_db, session
from irkit.targets import CeleryTarget, RedisTarget
from irkit.units import human_bytes

# The parameter that lets a broker db be flushed, named in refusals.
ALLOW_BROKER = "redis_allow_broker_flush"
_SCAN_CALLS = 200  # about 200,000 keys looked at for kombu's keys
_LISTS_LOOKED_INTO = 50  # lists whose newest element is read for a kombu message
_ENOUGH = 10  # found this many: the verdict is clear, stop looking
_SEP = Channel.sep.encode()  # kombu's separator: "<queue>\\x06\\x16<priority>", binding members
_PRIORITY_QUEUE = re.compile(re.escape(_SEP) + rb"\d\Z")
_SIZE = re.compile(r"(?i)\s*(\d+(?:\.\d+)?)\s*(b|kb|mb|gb|k|m|g)?\s*")
# Redis' own reading of sizes: 1k = 1000, 1kb = 1024.
_UNITS = {
    "": 1,
    "b": 1,
    "k": 1000,
    "kb": 1024,
    "m": 1000**2,
    "mb": 1024**2,
    "g": 1000**3,
    "gb": 1024**3,
}


def _db(target: RedisTarget) -> int:
    return address(target)[3]


def broker_keys(target: RedisTarget, db: int, queues: Sequence[str]) -> list[str]:
    """What kombu keeps for Celery in `db`, each named with what it is: the named queues (priority
    sub-queues too), and, from a bounded walk of the keyspace, any list that is a queue (a
    priority sub-queue's name, a queue a binding routes to, or kombu messages inside), kombu's
    bindings and its unacked bookkeeping, under any key prefix (kombu's global_keyprefix)."""
    with session(target, db) as r:
        named = [k for q in queues for k in priority_keys(q) if r.exists(k)]
        found = [f"{_shown(k)} (a queue in celery_queues)" for k in named]
        with _bytes_client(r) as raw:
            found += _kombu_keys(raw, limit=_ENOUGH - len(found))
    return found


@contextlib.contextmanager
def _bytes_client(r: redis.Redis) -> Iterator[redis.Redis]:
    """The same connection, answering bytes: key names and messages need not be UTF-8."""
    pool = r.connection_pool
    kwargs = {**pool.connection_kwargs, "decode_responses": False}
    raw = redis.Redis(connection_pool=redis.ConnectionPool(pool.connection_class, **kwargs))
    try:
        yield raw
    finally:
        raw.close()


def _kombu_keys(r: redis.Redis, limit: int) -> list[str]:
    # A cache of millions of keys is not walked end to end in the middle of an incident.
    found: list[str] = []
    lists: list[bytes] = []
    bound_queues: set[bytes] = set()
    cursor, calls = 0, 0
    while calls < _SCAN_CALLS and len(found) < limit:
        cursor, keys = r.scan(cursor, count=1000)
        calls += 1
        pipe = r.pipeline(transaction=False)
        for name in keys:
            pipe.type(name)
        kinds: list[bytes] = pipe.execute()
        for key, kind in zip(cast(list[bytes], keys), kinds, strict=True):
            what = _kombu_kind(key, kind)
            if what:
                found.append(f"{_shown(key)} ({what})")
            if kind == b"set" and b"_kombu.binding." in key:
                # Members are "routing_key<sep>pattern<sep>queue": the queues Celery routes to,
                # under the binding's own key prefix (kombu's global_keyprefix).
                prefix = key[: key.index(b"_kombu.binding.")]
                members = cast(list[bytes], r.srandmember(key, 100) or [])
                bound_queues.update(prefix + m.rsplit(_SEP, 1)[-1] for m in members)
            elif kind == b"list" and not what:
                lists.append(key)
        if cursor == 0:
            break
    for key in lists[:_LISTS_LOOKED_INTO]:
        if len(found) >= limit:
            break
        if key in bound_queues:
            found.append(f"{_shown(key)} (a queue kombu's bindings route to)")
        elif _is_kombu_message(r.lindex(key, 0)):
            found.append(f"{_shown(key)} (a list of kombu messages)")
    return found[:limit]


def _kombu_kind(key: bytes, kind: bytes) -> str:
    """What kombu key this is, by its name and type alone ("" if none)."""
    if b"_kombu.binding" in key:  # _kombu.binding.<exchange>, kombu 5.5's binding_permanent/…
        return "kombu's routing"
    if kind == b"list" and _PRIORITY_QUEUE.search(key):
        return "a priority sub-queue"
    if (kind, key.rsplit(b"unacked", 1)[-1]) in {(b"hash", b""), (b"zset", b"_index")}:
        return "kombu's unacked tasks"
    return ""


def _is_kombu_message(element: object) -> bool:
    # kombu's Redis transport pushes JSON: {"body", "content-type", "headers", "properties":
    # {"delivery_tag", "delivery_info", …}}.
    return isinstance(element, bytes) and all(
        f'"{name}"'.encode() in element for name in ("body", "properties", "delivery_tag")
    )


def _shown(key: str | bytes) -> str:
    text = key.decode("utf-8", "backslashreplace") if isinstance(key, bytes) else key
    return text.encode("unicode_escape").decode("ascii")


class FlushDb:
    name = "redis.flushdb"

    def __init__(
        self,
        target: RedisTarget,
        *,
        queues: Sequence[str] = default("celery_queues"),
        broker: CeleryTarget | None = None,
        allow_broker: bool = False,
    ) -> None:
        self.target = target
        self.queues = list(queues)
        self.broker = broker
        self.allow_broker = allow_broker

    def plan(self) -> Plan:
        db = _db(self.target)
        with session(self.target, db) as r:
            size = int(r.dbsize())
            sample = []
            with contextlib.suppress(UnicodeDecodeError):  # a binary key name: no sample
                for key in r.scan_iter(count=100):
                    sample.append(key)
                    if len(sample) >= 10:
                        break
        broker = broker_keys(self.target, db, self.queues)
        label = f"db {db}: {size} keys"
        if not self.allow_broker:
            if self.broker is not None and is_broker_db(self.target, db, self.broker):
                why = (
                    f"it is the Celery broker's db ({self.broker.display}): flushing it drops "
                    f"every waiting task and kombu's bindings; set {ALLOW_BROKER} to do it anyway"
                )
                return Plan(self.name, self.target.display, f"FLUSHDB db {db}", (), ((label, why),))
            if broker:
                why = (
                    f"it holds Celery/kombu keys ({', '.join(broker[:5])}): flushing the broker "
                    f"drops the waiting tasks and kombu's bindings; set {ALLOW_BROKER} to do it "
                    "anyway"
                )
                return Plan(self.name, self.target.display, f"FLUSHDB db {db}", (), ((label, why),))
        if size == 0:
            return Plan(self.name, self.target.display, f"FLUSHDB db {db}: already empty")
        item = Item(
            f"db{db}",
            f"FLUSHDB {label}",
            {"db": db, "keys": size, "sample": sample, "broker_keys": broker},
        )
        return Plan(self.name, self.target.display, f"FLUSHDB db {db} ({size} keys)", (item,))

    def act(self, plan: Plan) -> Outcome:
        def still_matches(item: Item) -> str | None:
            broker = broker_keys(self.target, int(item.details["db"]), self.queues)
            if broker and not item.details["broker_keys"] and not self.allow_broker:
                return f"Celery/kombu keys appeared since the plan ({', '.join(broker[:3])})"
            return None

        def flush(item: Item) -> str:
            with session(self.target, int(item.details["db"])) as r:
                before = int(r.dbsize())
                r.flushdb()
                after = int(r.dbsize())
            return f"{before} keys removed ({after} now)"

        done, skipped, failed = act_on(plan, still_matches, flush)
        summary = done[0][1] if done else "nothing flushed"
        return Outcome(self.name, plan.target, tuple(done), tuple(skipped), tuple(failed), summary)


def parse_size(text: str) -> int:
    """`512mb` → 536870912, the way redis.conf reads sizes."""
    m = _SIZE.fullmatch(str(text))
    if not m:
        raise ConfigError(f"maxmemory {text!r}: give a size such as 512mb, 2gb or 0 (no limit)")
    return int(float(m.group(1)) * _UNITS[(m.group(2) or "").lower()])


class MaxMemory:
    name = "redis.maxmemory"

    def __init__(self, target: RedisTarget, new: str) -> None:
        self.target = target
        self.new = parse_size(new) if str(new).strip() else None

    def plan(self) -> Plan:
        if self.new is None:
            return Plan(self.name, self.target.display, "no new maxmemory given: nothing to do")
        with session(self.target) as r:
            current = int(r.config_get("maxmemory")["maxmemory"] or 0)
            used = int(r.info("memory")["used_memory"])
        shown = human_bytes(self.new) if self.new else "no limit"
        what = f"maxmemory {human_bytes(current) if current else 'no limit'} → {shown}"
        if self.new == current:
            return Plan(self.name, self.target.display, f"{what}: already so")
        if 0 < self.new <= used:
            why = f"{shown} is not above the {human_bytes(used)} in use: writes would fail at once"
            return Plan(self.name, self.target.display, what, (), ((what, why),))
        item = Item("maxmemory", what, {"from": current, "to": self.new, "used": used})
        return Plan(self.name, self.target.display, what, (item,))

    def act(self, plan: Plan) -> Outcome:
        def still_matches(item: Item) -> str | None:
            with session(self.target) as r:
                now = int(r.config_get("maxmemory")["maxmemory"] or 0)
            return None if now == item.details["from"] else f"it is {now} bytes now, not planned"

        def set_it(item: Item) -> str:
            with session(self.target) as r:
                r.config_set("maxmemory", int(item.details["to"]))
                now = int(r.config_get("maxmemory")["maxmemory"] or 0)
            return f"maxmemory is now {human_bytes(now) if now else 'no limit'}"

        done, skipped, failed = act_on(plan, still_matches, set_it)
        summary = done[0][1] if done else "not changed"
        return Outcome(self.name, plan.target, tuple(done), tuple(skipped), tuple(failed), summary)
