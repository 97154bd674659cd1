"""Celery mitigations from Common Incident 2: purge a queue (`celery -A … purge`), or only the
tasks of one runaway type; grow or shrink a worker's pool (the runbook scales workers; a running
worker's pool grows through the control API without a restart)."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence
from typing import Any

from irkit.actions import broker_messages
from irkit.actions.guard import Item, Outcome, Plan, act_on
from irkit.catalogue.parameters import default
from irkit.errors import ConfigError
from irkit.probes import celery as probes
from irkit.targets import CeleryTarget

RESIZE_WAIT_S = 15.0


def _waiting(target: CeleryTarget, queues: Sequence[str]) -> dict[str, int]:
    result = probes.queues(target, names=list(queues), warn=10**9, crit=10**9)
    if result.evidence.get("reachable") is False or "rows" not in result.evidence:
        raise ConfigError(f"cannot count the queues: {result.summary}")
    return {r["queue"]: int(r["waiting"]) for r in result.evidence["rows"]}


class Purge:
    """Discard the tasks waiting in the named queues, priority sub-queues included: every one
    (kombu's own purge, as `celery purge` does: `celery.purge`), or only those of the task names
    in `tasks` (`celery.purge_tasks`, on a Redis broker). The plan counts them per task name."""

    def __init__(
        self,
        target: CeleryTarget,
        queues: Sequence[str] = default("celery_queues"),
        tasks: Sequence[str] = (),
    ) -> None:
        if not queues:
            raise ConfigError("name the queues to purge (celery_queues)")
        self.target = target
        self.queues = list(queues)
        self.tasks = [t.strip() for t in tasks if t.strip()]
        self.name = "celery.purge_tasks" if self.tasks else "celery.purge"

    def plan(self) -> Plan:
        if self.tasks:
            # Said before counting: another broker's queues cannot be read by task name, and an
            # empty plan would tell the responder that none of those tasks wait.
            broker_messages.require_redis(self.target)
        waiting = _waiting(self.target, self.queues)
        by_task = self._by_task(waiting)
        if self.tasks:
            return self._plan_tasks(waiting, by_task)
        items = tuple(
            Item(q, f"queue {q}: {n} tasks waiting", {"queue": q, "waiting": n})
            for q, n in waiting.items()
            if n
        )
        total = sum(waiting.values())
        notes = [f"queue {q}, by task: {_counted(c)}" for q, c in by_task.items() if c]
        if items:
            notes.append(
                "this discards every waiting task, of every name; to discard only a runaway "
                "task type, name it in celery_purge_tasks"
            )
        return Plan(
            self.name, self.target.display, f"purge {total} tasks", items, notes=tuple(notes)
        )

    def _by_task(self, waiting: dict[str, int]) -> dict[str, Counter[str]]:
        if self.target.transport not in {"redis", "rediss"}:
            return {}  # only a Redis broker lets waiting messages be read without taking them
        return {q: broker_messages.waiting_by_task(self.target, q) for q, n in waiting.items() if n}

    def _plan_tasks(self, waiting: dict[str, int], by_task: dict[str, Counter[str]]) -> Plan:
        items, notes = [], []
        for queue, counts in by_task.items():
            named = {t: counts[t] for t in self.tasks if counts[t]}
            notes.append(f"queue {queue}, by task: {_counted(counts)}")
            if named:
                n = sum(named.values())
                items.append(
                    Item(
                        queue,
                        f"queue {queue}: {n} of {waiting[queue]} waiting tasks are "
                        + ", ".join(f"{c} {t}" for t, c in named.items()),
                        {"queue": queue, "waiting": n, "tasks": named},
                    )
                )
        total = sum(int(i.details["waiting"]) for i in items)
        what = f"purge {total} waiting {' / '.join(self.tasks)} tasks, and no other"
        return Plan(self.name, self.target.display, what, tuple(items), notes=tuple(notes))

    def act(self, plan: Plan) -> Outcome:
        if self.tasks:
            done, skipped, failed = act_on(plan, lambda item: None, self._remove_tasks)
        else:
            done, skipped, failed = self._purge_queues(plan)
        total = sum(int(text.split()[0]) for _, text in done)
        summary = f"{total} tasks discarded from {len(done)} queue(s)"
        return Outcome(self.name, plan.target, tuple(done), tuple(skipped), tuple(failed), summary)

    def _remove_tasks(self, item: Item) -> str:
        # Tasks of the named types that arrived since the plan go too: they are the runaway
        # work the responder chose to discard, and no other task is touched.
        removed = broker_messages.remove_tasks(self.target, item.key, self.tasks)
        return f"{removed} tasks discarded (planned {item.details['waiting']})"

    def _purge_queues(self, plan: Plan) -> tuple[list[tuple[str, str]], ...]:
        from kombu import Connection

        from irkit.secrets import with_password

        url = with_password(self.target.broker_url, self.target.password)
        with Connection(
            url, connect_timeout=self.target.socket_timeout_s, transport_options={"max_retries": 0}
        ) as conn:
            channel = conn.default_channel

            def purge(item: Item) -> str:
                discarded = int(channel.queue_purge(item.key) or 0)
                return f"{discarded} tasks discarded (planned {item.details['waiting']})"

            def still_matches(item: Item) -> str | None:
                now = _waiting(self.target, [item.key])[item.key]
                planned = int(item.details["waiting"])
                if now > planned:
                    return (
                        f"{now} tasks wait now, the plan was for {planned}: new work arrived, "
                        "plan again"
                    )
                return None

            return act_on(plan, still_matches, purge)


def _counted(counts: Counter[str]) -> str:
    return ", ".join(f"{n} {name}" for name, n in counts.most_common(10)) + (
        f", {len(counts) - 10} more names" if len(counts) > 10 else ""
    )


def pool_sizes(target: CeleryTarget) -> dict[str, int]:
    """Each answering worker's pool size (`inspect stats`)."""
    with probes._app(target) as app:
        stats = app.control.inspect(timeout=target.inspect_timeout_s).stats() or {}
    return {name: probes.pool_size(s) or 0 for name, s in stats.items()}


def _answering(
    target: CeleryTarget, wanted: Sequence[str]
) -> tuple[dict[str, int], list[str], list[tuple[str, str]]]:
    """Pool sizes, the wanted workers that answer (all, if none named), and those that don't."""
    sizes = pool_sizes(target)
    names = list(wanted) or sorted(sizes)
    refused = [
        (n, "did not answer (not running, or too busy to reply)") for n in names if n not in sizes
    ]
    return sizes, [n for n in names if n in sizes], refused


def _control(target: CeleryTarget, worker: str, method: str, *args: int) -> None:
    """One control-API call to one worker; its refusal (an `error` reply) raised as such."""
    with probes._app(target) as app:
        call: Any = getattr(app.control, method)
        replies = call(
            *args, destination=[worker], reply=True, timeout=max(target.inspect_timeout_s, 2.0)
        )
    if not replies:
        raise ConfigError("the worker did not acknowledge")
    errors = [
        r.get("error")
        for reply in replies
        for r in reply.values()
        if isinstance(r, dict) and r.get("error")
    ]
    if errors:
        raise ConfigError(f"the worker refused: {errors[0]}")


class Pool:
    """Grow (`by` > 0) or shrink (`by` < 0) the pool of each named worker (all that answer, if
    none are named) by `by` processes."""

    def __init__(self, target: CeleryTarget, by: int, workers: Sequence[str] = ()) -> None:
        self.name = "celery.pool_grow" if by > 0 else "celery.pool_shrink"
        self.target = target
        self.by = by
        self.workers = list(workers)

    def plan(self) -> Plan:
        if self.by == 0:
            return Plan(self.name, self.target.display, "no pool change asked: nothing to do")
        sizes, names, refused = _answering(self.target, self.workers)
        items = []
        for name in names:
            new = sizes[name] + self.by
            if new < 1:
                refused.append((name, f"its pool has {sizes[name]}: it cannot lose {-self.by}"))
                continue
            items.append(
                Item(
                    name,
                    f"{name}: pool {sizes[name]} → {new}",
                    {"worker": name, "from": sizes[name], "to": new},
                )
            )
        verb = "grow" if self.by > 0 else "shrink"
        what = f"{verb} the pool of {len(items)} worker(s) by {abs(self.by)}"
        return Plan(self.name, self.target.display, what, tuple(items), tuple(refused))

    def act(self, plan: Plan) -> Outcome:
        def still_matches(item: Item) -> str | None:
            now = pool_sizes(self.target).get(item.key)
            if now is None:
                return "no longer answers"
            return None if now == item.details["from"] else f"its pool is {now} now, not planned"

        def resize(item: Item) -> str:
            method = "pool_grow" if self.by > 0 else "pool_shrink"
            _control(self.target, item.key, method, abs(self.by))
            # The worker acknowledges first and resizes after: wait to see it done.
            deadline = time.monotonic() + RESIZE_WAIT_S
            now = pool_sizes(self.target).get(item.key)
            while now != item.details["to"] and time.monotonic() < deadline:
                time.sleep(0.2)
                now = pool_sizes(self.target).get(item.key)
            if now != item.details["to"]:
                # Asked and acknowledged, but not seen done: say so rather than claim it.
                raise ConfigError(
                    f"the worker acknowledged {method}, but its pool is still {now} after "
                    f"{RESIZE_WAIT_S:g} s; check it again with the celery notebook"
                )
            return f"pool is now {now}"

        done, skipped, failed = act_on(plan, still_matches, resize)
        summary = f"{len(done)} of {len(plan.items)} pools resized"
        return Outcome(self.name, plan.target, tuple(done), tuple(skipped), tuple(failed), summary)


class Autoscale:
    """Set the autoscaler's bounds of each named worker (all that answer, if none): the
    control API's `autoscale max min`. Only workers started with --autoscale accept it; the
    others say so, and the outcome reports it."""

    name = "celery.autoscale"

    def __init__(
        self, target: CeleryTarget, maximum: int, minimum: int, workers: Sequence[str] = ()
    ) -> None:
        if maximum and not 0 <= minimum <= maximum:
            raise ConfigError(f"autoscale {maximum},{minimum}: need 0 <= min <= max")
        self.target = target
        self.maximum = maximum
        self.minimum = minimum
        self.workers = list(workers)

    def plan(self) -> Plan:
        if not self.maximum:
            return Plan(self.name, self.target.display, "no autoscale bounds asked: nothing to do")
        sizes, names, refused = _answering(self.target, self.workers)
        items = []
        for name in names:
            items.append(
                Item(
                    name,
                    f"{name}: pool {sizes[name]}, autoscale to {self.minimum}..{self.maximum}",
                    {"worker": name, "from": sizes[name]},
                )
            )
        what = f"autoscale {len(items)} worker(s) between {self.minimum} and {self.maximum}"
        return Plan(self.name, self.target.display, what, tuple(items), tuple(refused))

    def act(self, plan: Plan) -> Outcome:
        def still_matches(item: Item) -> str | None:
            return None if item.key in pool_sizes(self.target) else "no longer answers"

        def autoscale(item: Item) -> str:
            _control(self.target, item.key, "autoscale", self.maximum, self.minimum)
            return f"autoscaling between {self.minimum} and {self.maximum}"

        done, skipped, failed = act_on(plan, still_matches, autoscale)
        summary = f"{len(done)} of {len(plan.items)} workers autoscaling"
        if failed:
            summary += f"; {failed[0][1]}"
        return Outcome(self.name, plan.target, tuple(done), tuple(skipped), tuple(failed), summary)
