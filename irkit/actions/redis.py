"""Redis mitigations from runbook Scenario 4: clear the cache (`FLUSHDB`) and change
`maxmemory`. A db that holds Celery queues or kombu's bindings is the broker: flushing it drops
every waiting task and the routing, so it is refused unless `allow_broker` says otherwise."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Sequence

from irkit.actions.guard import Item, Outcome, Plan, act_on
from irkit.errors import ConfigError
from irkit.probes.celery import priority_keys
from irkit.probes.redis import KOMBU_BINDING, session
from irkit.targets import RedisTarget
from irkit.units import human_bytes

_SCAN_CALLS = 200  # about 200,000 keys looked at for kombu's bindings
_SIZE = re.compile(r"(?i)\s*(\d+(?:\.\d+)?)\s*(b|kb|mb|gb|k|m|g)?\s*")
_UNITS = {
    "": 1,
    "b": 1,
    "k": 1000,
    "kb": 1024,
    "m": 1000**2,
    "mb": 1024**2,
    "g": 1000**3,
    "gb": 1024**3,
}  # fmt: skip  (Redis' own reading: 1k = 1000, 1kb = 1024)


def _db(target: RedisTarget) -> int:
    with session(target) as r:
        return int(r.connection_pool.connection_kwargs.get("db", 0))


def broker_keys(target: RedisTarget, db: int, queues: Sequence[str]) -> list[str]:
    """The Celery/kombu keys present in `db`: queues (priority sub-queues too), bindings and
    kombu's unacked bookkeeping."""
    with session(target, db) as r:
        found = [k for q in queues for k in priority_keys(q) if r.exists(k)]
        found += [k for k in ("unacked", "unacked_index") if r.exists(k)]
        # Bindings under any key prefix (kombu's global_keyprefix): a scan, bounded so that a
        # cache of millions of keys is not walked end to end in the middle of an incident.
        cursor, calls = 0, 0
        pattern = "*" + KOMBU_BINDING.format("*")
        while calls < _SCAN_CALLS and len(found) < 10:
            cursor, keys = r.scan(cursor, match=pattern, count=1000)
            found += [str(k) for k in keys]
            calls += 1
            if cursor == 0:
                break
    return [k.encode("unicode_escape").decode("ascii") for k in found]


class FlushDb:
    name = "redis.flushdb"

    def __init__(
        self,
        target: RedisTarget,
        *,
        queues: Sequence[str] = ("celery",),
        allow_broker: bool = False,
    ) -> None:
        self.target = target
        self.queues = list(queues)
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
        if broker and not self.allow_broker:
            why = (
                f"it holds Celery/kombu keys ({', '.join(broker[:5])}): flushing the broker drops "
                "the waiting tasks and kombu's bindings; set allow_broker_flush to do it anyway"
            )
            return Plan(self.name, self.target.display, f"FLUSHDB db {db}", (), ((label, why),))
        if size == 0:
            return Plan(self.name, self.target.display, f"FLUSHDB db {db}: already empty")
        item = Item(f"db{db}", f"FLUSHDB {label}", {"db": db, "keys": size, "sample": sample,
                                                       "broker_keys": broker})  # fmt: skip
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
