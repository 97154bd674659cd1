"""The Celery app under the name the runbook uses: `celery -A dashboard inspect active`."""

from irkit.sandbox.tasks import app

__all__ = ["app"]
