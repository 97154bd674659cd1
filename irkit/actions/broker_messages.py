"""The tasks waiting in a Redis broker, by task name, and removing those of one task type only:
what a backlog of one runaway task type needs, where `celery purge` would discard every
waiting task.

kombu keeps a queue as Redis lists (the queue's key and its priority sub-keys) of JSON
messages; Celery's message protocol 2 names the task in `headers.task`. Removal runs as one Lua
script per queue, which Redis executes atomically: a worker cannot take a message, nor a client
add one, half-way through, so nothing but the named tasks is lost and the others keep their
order.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence

from irkit.errors import ConfigError
from irkit.probes.celery import priority_keys
from irkit.probes.redis import session
from irkit.targets import CeleryTarget

# A message without a readable task name (protocol 1, or not Celery's): counted, never removed.
UNNAMED = "(no task name)"
_CHUNK = 1000

# KEYS: the queue's lists; ARGV: the task names to remove. Rebuilds each list without them.
_REMOVE = """
local wanted = {}
for i = 1, #ARGV do wanted[ARGV[i]] = true end
local removed = 0
for _, key in ipairs(KEYS) do
  local messages = redis.call('LRANGE', key, 0, -1)
  local keep = {}
  for _, message in ipairs(messages) do
    local ok, decoded = pcall(cjson.decode, message)
    local task = nil
    if ok and type(decoded) == 'table' and type(decoded['headers']) == 'table' then
      task = decoded['headers']['task']
    end
    if task ~= nil and wanted[task] then
      removed = removed + 1
    else
      keep[#keep + 1] = message
    end
  end
  if #keep < #messages then
    redis.call('DEL', key)
    for i = 1, #keep, 1000 do
      redis.call('RPUSH', key, unpack(keep, i, math.min(i + 999, #keep)))
    end
  end
end
return removed
"""


def require_redis(target: CeleryTarget) -> None:
    if target.transport not in {"redis", "rediss"}:
        raise ConfigError(
            f"purging by task name reads the queues in Redis; the broker {target.display} is "
            f"{target.transport}: purge the whole queue instead"
        )


def task_name(message: bytes | str) -> str:
    try:
        headers = json.loads(message).get("headers")
    except (ValueError, AttributeError):
        return UNNAMED
    name = headers.get("task") if isinstance(headers, dict) else None
    return str(name) if name else UNNAMED


def waiting_by_task(target: CeleryTarget, queue: str) -> Counter[str]:
    """How many tasks of each name wait in `queue`, priority sub-queues included."""
    require_redis(target)
    counts: Counter[str] = Counter()
    with session(target.redis()) as r:
        for key in priority_keys(queue):
            length = int(r.llen(key))
            for start in range(0, length, _CHUNK):
                counts.update(task_name(m) for m in r.lrange(key, start, start + _CHUNK - 1))
    return counts


def remove_tasks(target: CeleryTarget, queue: str, names: Sequence[str]) -> int:
    """Remove the waiting tasks called `names` from `queue`, atomically; how many went."""
    require_redis(target)
    with session(target.redis()) as r:
        keys = priority_keys(queue)
        return int(r.eval(_REMOVE, len(keys), *keys, *names))
