"""irkit's exceptions.

Two families. User errors (`IrkitError` and its children) say what is wrong and what to do; the CLI
prints them as one line, and in a notebook they render without a traceback. Service errors
(`ServiceError`) are raised inside probes at the driver boundary and become CRIT or UNKNOWN results:
a target that is down is a finding, not a crash.
"""

from __future__ import annotations


class IrkitError(Exception):
    """A user error: the message says what is wrong and what to do."""

    def _render_traceback_(self) -> list[str]:
        # IPython calls this instead of printing a traceback: the message is the whole story.
        return [f"{type(self).__name__}: {self}"]


class ParameterError(IrkitError):
    """A parameter is unknown, of the wrong type, or not allowed (a secret, say)."""


class ConfigError(IrkitError):
    """A configuration file or value cannot be used."""


class SandboxError(IrkitError):
    """The practice servers cannot be started, reached or stopped."""


class ServiceError(Exception):
    """The target answered badly or not at all: a CRIT finding with a human reason and, in
    `evidence`, what a tool reading the record needs to tell this failure from another."""

    def __init__(self, message: str, **evidence: object) -> None:
        super().__init__(message)
        self.evidence = evidence


class Unreachable(ServiceError):
    """No session could be opened (refused, timed out, rejected): later probes on the same target
    would only wait for the same failure."""


class NotVisible(Exception):
    """The probe ran but cannot see what it needs (permissions, a missing table): UNKNOWN."""


class UsageError(IrkitError):
    """A command line that cannot be carried out as given."""
