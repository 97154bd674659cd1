"""The health report's areas, in the runbook's order of a quick health check. A probe names its
area in its catalogue entry (`@probe(…, area="postgres")`)."""

from __future__ import annotations

AREAS = {
    "containers": "Containers: the Compose services",
    "web": "Web app: health endpoint and smoke URLs",
    "postgres": "PostgreSQL",
    "redis": "Redis",
    "celery": "Celery",
    "host": "Disk, memory and CPU",
    "tls": "Certificates",
    "monitoring": "Alerts, error rate and logs",
}
