"""Mitigations: the runbook steps that change a target. Each is planned first (a dry run that
shows exactly what would be done), acts only after a confirmation or an explicit allow, re-checks
every item against its plan before touching it, and leaves the plan, the confirmation and the
result in the incident's timeline. See `guard`.
"""

from irkit.actions import celery, commands, disk, postgres, redis

__all__ = ["celery", "commands", "disk", "postgres", "redis"]
