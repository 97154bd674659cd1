"""Where a secret may not be given, and the one-line refusal that says where it goes instead.

Passwords and tokens come only from variables of their own (PGPASSWORD or PGPASSFILE,
IRKIT_REDIS_PASSWORD, IRKIT_CELERY_BROKER_PASSWORD, IRKIT_SLACK_WEBHOOK, IRKIT_STATUSPAGE_TOKEN):
one place to look after them, and one list for the scrubber. Anywhere else they are refused before
anything runs: in a parameter (papermill writes parameters into the executed notebook), in a URL
from a parameter or the environment (a URL is what irkit shows, and drivers echo it in their
errors; redis-py even takes `?password=` from the query), and in libpq's fields (libpq expands a
`dbname` holding `dbname=x password=…` or a `postgresql://` URI).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any

from irkit.errors import ParameterError
from irkit.secrets import secret_query_names, url_password, url_secrets

_PASSWORD_ENV = {
    "redis_url": "IRKIT_REDIS_PASSWORD",
    "celery_broker_url": "IRKIT_CELERY_BROKER_PASSWORD",
}
_NO_CREDENTIALS = ("web_url", "prom_url")

# A URL in a text, or a path with a query (`/health/?token=…`, joined to the web app's URL).
_URL_IN_TEXT = re.compile(r"(?i)\b[a-z][a-z0-9+.-]*://\S+|(?<![\w/])/\S*\?\S+")

# What each libpq field must not look like: a connection string or URI (`dbname` is expanded by
# libpq itself), or `user:password@host` typed into one field.
_NOT_PLAIN = {
    "pg_database": re.compile(r"(?i)=|^postgres(ql)?://"),
    "pg_host": re.compile(r"[=@\s]|://"),
    "pg_user": re.compile(r"[=:]"),
}
_POSTGRES_FIELDS = {
    "pg_host": ("PGHOST", "a host name, an IP address or a socket folder"),
    "pg_user": ("PGUSER", "a role name"),
    "pg_database": ("PGDATABASE", "a database name"),
}


def refuse_in_url(source: str, url: str, name: str = "") -> None:
    """Refuse a URL that carries a password or token, in its userinfo or its query; `source`
    names where it came from (a parameter or an environment variable), never the secret."""
    if not url_secrets(url):
        return
    names = secret_query_names(url)
    places = ["userinfo"] if url_password(url) is not None else []
    if names:
        places.append(f"query parameter {', '.join(repr(n) for n in names)}")
    if name in _PASSWORD_ENV:
        advice = f"put the password in {_PASSWORD_ENV[name]} and remove it from the URL"
    elif name in _NO_CREDENTIALS:
        advice = "the web and Prometheus checks take no credentials: remove them from the URL"
    else:
        advice = "remove it: passwords and tokens come only from the environment"
    raise ParameterError(
        f"{source} contains a password or token in its URL ({' and '.join(places)}), and a URL "
        f"is shown and written into the record; {advice}"
    )


def refuse_in_parameters(values: Mapping[str, Any]) -> None:
    """Any parameter holding a URL (or a path with a query) that carries a credential: the status
    page API, Grafana and Jaeger links, health and smoke paths, a list entry, a title."""
    for name, value in values.items():
        items = value if isinstance(value, list | tuple) else [value]
        for item in (i for i in items if isinstance(i, str)):
            for url in _URL_IN_TEXT.findall(item):
                refuse_in_url(f"parameter {name}", url, name)


def refuse_in_postgres_field(params: Mapping[str, Any], name: str) -> None:
    """pg_host, pg_user or pg_database (else PGHOST, PGUSER, PGDATABASE) holding a connection
    string, a URI or `user:password@host`: refused, whichever of the two it came from."""
    env, what = _POSTGRES_FIELDS[name]
    value = str(params.get(name, "") or "")
    source = f"parameter {name}"
    if not value:
        value, source = os.environ.get(env, ""), env
    if _NOT_PLAIN[name].search(value):
        raise ParameterError(
            f"{source} must be {what}, not a connection string or URI (it may carry a password, "
            "and would be shown and written into the record); give host, port, user and "
            "database as pg_host, pg_port, pg_user and pg_database, and the password in "
            "PGPASSWORD or PGPASSFILE"
        )
