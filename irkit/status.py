"""A verdict's status (OK, WARN, CRIT, UNKNOWN) and how statuses rank. On its own, below
`irkit.result` and `irkit.render`, so that rendering can colour a status without importing the
results it renders."""

from __future__ import annotations

import enum
from collections.abc import Iterable


class Status(enum.Enum):
    """A verdict, valued by its Nagios exit code."""

    OK = 0
    WARN = 1
    CRIT = 2
    UNKNOWN = 3

    @property
    def exit_code(self) -> int:
        return self.value

    @property
    def rank(self) -> int:
        # A known CRIT outranks not knowing, and not knowing outranks OK (monitoring-plugins'
        # max_state_alt); WARN sits above UNKNOWN so that one failed probe cannot hide a warning.
        return _RANK[self]

    @classmethod
    def worst(cls, statuses: Iterable[Status]) -> Status:
        return max(statuses, key=lambda s: s.rank, default=cls.OK)


_RANK = {Status.OK: 0, Status.UNKNOWN: 1, Status.WARN: 2, Status.CRIT: 3}
