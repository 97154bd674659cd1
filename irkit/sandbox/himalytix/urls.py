"""The URLs the runbook's commands use, plus the pages a smoke test and a load test hit."""

from datetime import timedelta

from django.contrib.auth import views as auth_views
from django.urls import path
from django_prometheus import exports
from health_check.views import HealthCheckView

from irkit.sandbox.himalytix import views

# The components the runbook's health check covers: database, cache (Redis), the broker and the
# Celery workers, and file storage for uploads and exports.
READINESS_CHECKS = [
    "health_check.checks.Database",
    "health_check.checks.Cache",
    "health_check.checks.Storage",
    ("health_check.contrib.redis.Redis", {"client_factory": views.broker_client}),
    (
        "health_check.contrib.celery.Ping",
        {"app": views.celery_app(), "timeout": timedelta(seconds=2), "limit": 1},
    ),
]

urlpatterns = [
    path("", views.home, name="home"),
    path("health/ready/", HealthCheckView.as_view(checks=READINESS_CHECKS), name="health-ready"),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("api/v1/health/", views.api_health, name="api-health"),
    path("api/v1/journal/", views.journal, name="api-journal"),
    path("metrics", exports.ExportToDjangoView, name="prometheus-django-metrics"),
]
