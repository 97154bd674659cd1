"""Settings for the practice Himalytix. Every address comes from the environment set by
`irkit.sandbox.web`; nothing here is meant for production."""

from __future__ import annotations

import os
from pathlib import Path

HERE = Path(__file__).resolve().parent
STATE = Path(os.environ.get("IRKIT_SANDBOX_DIR", HERE / ".state"))

# A practice key, the same on every machine: the stack holds no real sessions.
SECRET_KEY = "irkit-practice-stack-not-a-secret"  # noqa: S105
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "himalytix.test", "api.himalytix.test"]

INSTALLED_APPS = [
    "django_prometheus",
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "django.contrib.sessions",
    "django.contrib.messages",
    "health_check",
    "irkit.sandbox.himalytix.tenancy",
    "irkit.sandbox.himalytix.accounting",
]

MIDDLEWARE = [
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django_prometheus.middleware.PrometheusAfterMiddleware",
]

ROOT_URLCONF = "irkit.sandbox.himalytix.urls"
WSGI_APPLICATION = "irkit.sandbox.himalytix.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [HERE / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]

DATABASES = {
    "default": {
        # django-prometheus's wrapper of the PostgreSQL backend adds the django_db_* metrics.
        "ENGINE": "django_prometheus.db.backends.postgresql",
        "HOST": os.environ.get("IRKIT_SANDBOX_PGHOST", "127.0.0.1"),
        "PORT": os.environ.get("IRKIT_SANDBOX_PGPORT", "55432"),
        "USER": "erp",
        "NAME": "himalytix",
        "PASSWORD": os.environ.get("IRKIT_SANDBOX_PASSWORD", ""),
        "OPTIONS": {"connect_timeout": 3, "application_name": "himalytix-web"},
    }
}

CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": os.environ.get("IRKIT_SANDBOX_CACHE_URL", "redis://127.0.0.1:56379/1"),
        "OPTIONS": {"socket_timeout": 2, "socket_connect_timeout": 2},
    }
}

MEDIA_ROOT = STATE / "media"
STATIC_URL = "static/"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
USE_TZ = True
TIME_ZONE = "UTC"
LOGIN_REDIRECT_URL = "/"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
    },
    "handlers": {
        # gunicorn sends stderr to the web log the kit reads (logs.errors, the runbook's
        # `docker-compose logs web`).
        "stderr": {"class": "logging.StreamHandler", "formatter": "plain"},
    },
    "root": {"handlers": ["stderr"], "level": "INFO"},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}
