"""Himalytix, in miniature: a small Django project that looks like the real ERP from the outside.

It serves what the runbook's commands expect (`/health/ready/` from django-health-check,
`/accounts/login/`, `/api/v1/health/`, `/metrics` from django-prometheus), on the practice
PostgreSQL, Redis and Celery. Real libraries, so the kit's probes meet the formats and metric names
they will meet in production. Configured entirely from the environment the stack passes in.
"""
