"""Targets built once from a section's parameters and the environment.

Precedence for a target field: a non-empty parameter (from `-p` or a parameter file) wins, then the
environment variable a scheduler or container would set (the parameter's declared `env`), then the
client library's own default. Passwords come only from their own variables: libpq reads
PGPASSWORD/PGPASSFILE itself, and Redis and the Celery broker take theirs from
IRKIT_REDIS_PASSWORD / IRKIT_CELERY_BROKER_PASSWORD. A password anywhere else (a URL's userinfo or
query, a libpq connection string) is refused while the targets are built (irkit.credentials),
from parameters and the environment alike.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Collection, Mapping
from typing import Any
from urllib.parse import urlsplit

from irkit.catalogue import parameters as declared
from irkit.catalogue.parameters import default
from irkit.credentials import refuse_in_parameters, refuse_in_postgres_field, refuse_in_url
from irkit.errors import ParameterError
from irkit.secrets import redact_url
from irkit.targets import (
    DEFAULT_PROMETHEUS_URL,
    DEFAULT_REDIS_URL,
    DEFAULT_WEB_URL,
    CeleryTarget,
    CommandTarget,
    ComposeTarget,
    HttpTarget,
    LogSource,
    PostgresTarget,
    RedisTarget,
    RepoTarget,
    TlsEndpoint,
    TlsTarget,
)

# Which environment variable stands in for an empty target parameter.
ENV_FOR_PARAMETER = {p.name: p.env for p in declared.BY_NAME.values() if p.env}

SSLMODES = ("", "disable", "allow", "prefer", "require", "verify-ca", "verify-full")
REDIS_SCHEMES = ("redis", "rediss", "unix")


def postgres_target(params: Mapping[str, Any]) -> PostgresTarget:
    for name in ("pg_host", "pg_user", "pg_database"):
        refuse_in_postgres_field(params, name)
    port = int(params.get("pg_port", default("pg_port")))
    if not 0 <= port <= 65535:
        raise ParameterError(f"parameter pg_port must be a port number (1-65535), got {port}")
    sslmode = str(params.get("pg_sslmode", ""))
    if sslmode not in SSLMODES:
        raise ParameterError(
            f"parameter pg_sslmode must be one of {', '.join(SSLMODES[1:])} (or empty), "
            f"got {sslmode!r}"
        )
    return PostgresTarget(
        host=str(params.get("pg_host", "")),
        port=port,
        user=str(params.get("pg_user", "")),
        dbname=str(params.get("pg_database", "")),
        sslmode=sslmode,
        connect_timeout_s=int(_positive(params, "pg_connect_timeout_s")),
        statement_timeout_s=_positive(params, "pg_statement_timeout_s", at_least=0.001),
    )


def redis_target(params: Mapping[str, Any]) -> RedisTarget:
    url = _url_parameter(params, "redis_url", REDIS_SCHEMES) or DEFAULT_REDIS_URL
    return RedisTarget(
        url=url,
        password=os.environ.get("IRKIT_REDIS_PASSWORD") or None,
        socket_timeout_s=_positive(params, "redis_socket_timeout_s"),
    )


def celery_target(params: Mapping[str, Any]) -> CeleryTarget:
    from kombu.transport import TRANSPORT_ALIASES

    url = _url_parameter(params, "celery_broker_url", tuple(TRANSPORT_ALIASES)) or DEFAULT_REDIS_URL
    return CeleryTarget(
        broker_url=url,
        password=os.environ.get("IRKIT_CELERY_BROKER_PASSWORD") or None,
        socket_timeout_s=_positive(params, "celery_socket_timeout_s"),
        inspect_timeout_s=_positive(params, "celery_inspect_timeout_s"),
    )


def web_target(params: Mapping[str, Any]) -> HttpTarget:
    url = _url_parameter(params, "web_url", ("http", "https")) or DEFAULT_WEB_URL
    return HttpTarget(
        base_url=url, timeout_s=_positive(params, "web_timeout_s"), verify=_verify(params)
    )


def prometheus_target(params: Mapping[str, Any]) -> HttpTarget:
    url = _url_parameter(params, "prom_url", ("http", "https")) or DEFAULT_PROMETHEUS_URL
    return HttpTarget(base_url=url, timeout_s=_positive(params, "prom_timeout_s"))


def tls_target(params: Mapping[str, Any]) -> TlsTarget:
    """The endpoints named, else IRKIT_TLS_ENDPOINTS (comma-separated), else the web app's own
    address when it is served over HTTPS; possibly none, which the probe reports as such."""
    raw = list(params.get("tls_endpoints") or [])
    if not raw and (from_env := os.environ.get("IRKIT_TLS_ENDPOINTS", "")):
        raw = [e for e in from_env.split(",") if e.strip()]
    if not raw:
        web = urlsplit(web_target(params).base_url)
        if web.scheme == "https" and web.hostname:
            raw = [f"{web.hostname}:{web.port or 443}"]
    return TlsTarget(
        endpoints=tuple(parse_endpoint(str(e)) for e in raw),
        timeout_s=_positive(params, "tls_timeout_s"),
    )


def logs_target(params: Mapping[str, Any]) -> LogSource:
    """Log files or a log command when given; else, when a Compose project is configured, its
    services' containers (`compose_log_services`, the runbook's `logs web celery`)."""
    from irkit.programs import split

    line = str(params.get("log_command", "") or "")
    files = tuple(str(f) for f in params.get("log_files") or [])
    command = tuple(split(line, "parameter log_command")) if line.strip() else ()
    compose = None
    if not (files or command):
        found = compose_target(params)
        compose = found if found.configured else None
    lines = int(params.get("compose_log_lines", default("compose_log_lines")))
    if lines < 1:
        raise ParameterError(f"parameter compose_log_lines must be at least 1, got {lines}")
    return LogSource(
        files=files,
        command=command,
        timeout_s=_positive(params, "log_timeout_s"),
        compose=compose,
        services=tuple(
            str(s)
            for s in params.get("compose_log_services", default("compose_log_services")) or []
        ),
        max_lines=lines,
    )


def compose_target(params: Mapping[str, Any], *, discover: bool = False) -> ComposeTarget:
    """The Compose project named by `compose_project` (or COMPOSE_PROJECT_NAME), else after its
    folder as Compose names it; not configured when neither a name nor a folder is given."""
    from irkit import compose
    from irkit.programs import split

    directory = str(params.get("compose_dir", "") or "")
    if directory and not os.path.isdir(directory):
        raise ParameterError(
            f"parameter compose_dir: no such folder {directory}; give the folder that holds "
            "the deployment's compose file"
        )
    files = tuple(
        f if os.path.isabs(f) or not directory else os.path.join(directory, f)
        for f in (str(f) for f in params.get("compose_files") or [])
    )
    for file in files:
        if not os.path.isfile(file):
            raise ParameterError(f"parameter compose_files: no such file {file}")
    project = str(params.get("compose_project", "") or "") or os.environ.get(
        "COMPOSE_PROJECT_NAME", ""
    )
    if project and compose.project_name(project) != project:
        raise ParameterError(
            f"parameter compose_project: {project!r} is not a Compose project name (lower-case "
            "letters, digits, - and _, starting with a letter or digit)"
        )
    if not project and (directory or files):
        project = compose.project_name(
            os.path.basename(os.path.abspath(directory or os.path.dirname(files[0])))
        )
    host = _url_parameter(params, "docker_host", compose.ENGINE_SCHEMES)
    line = str(params.get("compose_command", "") or "")
    return ComposeTarget(
        project=project,
        directory=directory,
        files=files,
        docker_host=host,
        command=tuple(split(line, "parameter compose_command")) if line.strip() else (),
        timeout_s=_positive(params, "compose_timeout_s"),
        discover=discover,
    )


def repo_target(params: Mapping[str, Any]) -> RepoTarget:
    """The deployed checkout (`deploy_repo`) and, when a Compose project is configured, its web
    service (`compose_web_service`): deploy.recent reads both."""
    found = compose_target(params)
    return RepoTarget(
        path=str(params.get("deploy_repo", "") or ""),
        compose=found if found.configured else None,
        web_service=str(params.get("compose_web_service", "") or default("compose_web_service")),
        git_revision=bool(params.get("deploy_git_revision", default("deploy_git_revision"))),
    )


def command_target(params: Mapping[str, Any], name: str) -> CommandTarget:
    from irkit.programs import parse_named

    argv = parse_named(params.get("check_commands") or [], "check_commands").get(name, [])
    return CommandTarget(
        name=name, argv=tuple(argv), timeout_s=_positive(params, "check_timeout_s")
    )


def parse_endpoint(text: str) -> TlsEndpoint:
    """`name[:port][@address]`: the name is sent by SNI and checked; the address, if given, is
    where to connect (a load balancer, or 127.0.0.1 for a name that does not resolve)."""
    name_port, _, address = text.strip().partition("@")
    name, _, port_text = name_port.partition(":")
    try:
        port = int(port_text) if port_text else 443
    except ValueError:
        port = -1
    if not name or not 0 < port <= 65535 or any(c in name for c in "/ "):
        raise ParameterError(
            f"tls_endpoints entry {text!r} is not name[:port][@address], "
            'e.g. "himalytix.com:443" or "himalytix.test:8443@127.0.0.1"'
        )
    return TlsEndpoint(server_name=name, port=port, address=address)


def check_all(params: Mapping[str, Any], declared: Collection[str]) -> None:
    """Build every target a section declares, so that a bad URL, port or endpoint (or a password
    in a URL) is refused before papermill writes the parameters into a notebook."""
    builders: dict[str, Callable[[Mapping[str, Any]], object]] = {
        "pg_host": postgres_target,
        "redis_url": redis_target,
        "celery_broker_url": celery_target,
        "web_url": web_target,
        "prom_url": prometheus_target,
        "tls_endpoints": tls_target,
        "compose_dir": compose_target,
        "log_command": lambda p: _installed(logs_target(p).command, "log_command"),
        "check_commands": _installed_commands,
        "deploy_commands": lambda p: _named(p, "deploy_commands"),
        "health_deadline_s": lambda p: _positive(p, "health_deadline_s"),
        "notify_repeat_min": lambda p: _positive_minutes(p, "notify_repeat_min"),
    }
    for marker, build in builders.items():
        if marker in declared:
            build(params)
    # The rest: links, API addresses, paths and text that may hold a URL with a credential.
    refuse_in_parameters(params)


def _named(params: Mapping[str, Any], parameter: str = "check_commands") -> list[str]:
    from irkit.programs import parse_named

    return list(parse_named(params.get(parameter) or [], parameter))


def _installed_commands(params: Mapping[str, Any]) -> None:
    for name in _named(params):
        _installed(command_target(params, name).argv, f"check_commands {name}")


def _installed(argv: tuple[str, ...], what: str) -> None:
    """A program that is not installed would fail every scheduled run: say so before any."""
    from irkit.errors import ConfigError
    from irkit.programs import resolve

    if argv:
        try:
            resolve(argv[0])
        except ConfigError as exc:
            raise ParameterError(f"{what}: {exc}") from None


def _positive_minutes(params: Mapping[str, Any], name: str) -> None:
    if name in params and float(params[name]) <= 0:
        raise ParameterError(f"parameter {name} must be a positive number of minutes")


def _verify(params: Mapping[str, Any]) -> bool | str:
    """Check the web app's certificate unless told not to; a CA file trusts a private CA."""
    ca_file = str(params.get("web_ca_file", "") or "")
    if ca_file:
        if not os.path.isfile(ca_file):
            raise ParameterError(f"parameter web_ca_file: no such file {ca_file}")
        return ca_file
    return bool(params.get("web_verify_tls", default("web_verify_tls")))


def _positive(params: Mapping[str, Any], name: str, at_least: float = 0.0) -> float:
    """A timeout: zero would mean "wait for ever" to the drivers, which is what they are for."""
    value = float(params.get(name, default(name)))
    if value <= 0 or value < at_least:
        raise ParameterError(
            f"parameter {name} must be a positive number of seconds, got {value:g}"
        )
    return value


def _url_parameter(params: Mapping[str, Any], name: str, schemes: tuple[str, ...]) -> str:
    """A URL parameter, else its environment variable; refused if it carries a password."""
    value = str(params.get(name, "") or "")
    source = f"parameter {name}"
    if not value:
        value = os.environ.get(ENV_FOR_PARAMETER[name], "")
        source = ENV_FOR_PARAMETER[name]
    if value:
        refuse_in_url(source, value, name)
        _check_url(source, value, schemes)
    return value


def _check_url(name: str, value: str, schemes: tuple[str, ...]) -> None:
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018  (parsing the port is what validates it)
    except ValueError as exc:
        raise ParameterError(f"{name} is not a valid URL ({exc}): {redact_url(value)}") from None
    if not parts.scheme or not (parts.hostname or parts.path):
        raise ParameterError(
            f"{name} is not a valid URL: {redact_url(value)}; expected e.g. {schemes[0]}://host:port"
        )
    if parts.scheme.split("+")[0] not in schemes:
        raise ParameterError(
            f"{name} has an unknown scheme {parts.scheme!r}; expected one of: {', '.join(schemes)}"
        )
