"""Each notebook's parameters cell, generated from the declarations in `irkit.catalogue.parameters`.

A layout lists, in order, the lines of one cell: a parameter's name (its line is generated:
`name: type = default  # help`), a comment, or a blank line. `name  # other help` words a
parameter's help for that notebook alone. `./kit generate` writes the cells into the stored
notebooks; `./kit lint` fails when a stored cell differs from what would be generated, the way
`cog --check` keeps a project's docs in step with its code.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from irkit.catalogue import parameters
from irkit.catalogue.parameters import Parameter

PARAMETERS_TAG = "parameters"

# Blocks of lines that several notebooks share, in the same order.

# The PostgreSQL checks' thresholds.
PG_THRESHOLDS = (
    "pg_connect_warn_s",
    "pg_connections_warn_pct",
    "pg_connections_crit_pct",
    "pg_long_query_warn_s",
    "pg_long_query_crit_s",
    "pg_idle_in_transaction_warn_s",
    "pg_idle_in_transaction_crit_s",
    "pg_lock_wait_warn_s",
    "pg_lock_wait_crit_s",
    "pg_expected_migrations",
)

# Disk, memory and CPU thresholds.
HOST_THRESHOLDS = (
    "disk_warn_pct",
    "disk_crit_pct",
    "disk_log_max_age_days",
    "disk_temp_max_age_days",
    "host_memory_available_warn_pct",
    "host_memory_available_crit_pct",
    "host_window_min",
    "host_cpu_interval_s",
    "host_cpu_warn_pct",
    "host_cpu_crit_pct",
)

# Logs, deploys and diagnostic commands, each checked only when given.
OPTIONAL_SOURCES = (
    "log_files",
    "log_command",
    "log_window_min",
    "log_timeout_s",
    "deploy_repo",
    "deploy_window_min",
    "check_commands",
    "check_timeout_s",
)

# How to reach PostgreSQL, after pg_host (whose help some notebooks word).
PG_CONNECTION = (
    "pg_port",
    "pg_user",
    "pg_database",
    "pg_sslmode",
    "pg_connect_timeout_s",
    "pg_statement_timeout_s",
)

# How to reach the web app, after web_url.
WEB_CONNECTION = (
    "web_timeout_s",
    "web_verify_tls",
    "web_ca_file",
    "web_health_path",
    "web_smoke_paths",
)

# Which sessions postgres.terminate and postgres.cancel pick.
PG_KILL = (
    "pg_kill_mode",
    "pg_kill_older_than_s",
    "pg_kill_idle_in_transaction_s",
    "pg_kill_idle_min",
    "pg_kill_idle_role",
    "pg_kill_pids",
    "pg_kill_allow_superuser",
)

# The error rate's window and thresholds.
ERROR_RATE = (
    "prom_window",
    "prom_error_rate_warn_pct",
    "prom_error_rate_crit_pct",
    "prom_p95_warn_s",
)

# Opens the mitigations of a section notebook.
MITIGATIONS_HEAD = (
    "# Mitigations: dry run unless named here (papermill) or confirmed in the panel (JupyterLab)",
    "allow_actions",
    "confirmed_by",
)

# How long to wait on the broker and the workers.
CELERY_CONNECTION = (
    "celery_socket_timeout_s",
    "celery_inspect_timeout_s",
    "celery_expected_workers",
)

# Where a Compose deployment is: its project, and the Docker engine that runs it.
COMPOSE_TARGET = (
    "compose_dir",
    "compose_files",
    "compose_project",
    "docker_host",
    "compose_command",
    "compose_timeout_s",
)

# The containers' thresholds.
COMPOSE_THRESHOLDS = (
    "compose_services",
    "compose_restart_window_min",
    "compose_cpu_warn_pct",
    "compose_cpu_crit_pct",
    "compose_memory_warn_pct",
    "compose_memory_crit_pct",
)

# The deployment's own tooling, as a mitigation; on a Compose deployment, its Docker engine.
DEPLOY_COMMANDS = (
    "deploy_commands",
    "deploy_timeout_s",
    "# …or, on a Compose deployment, through its Docker engine (a step deploy_commands names wins)",
    *COMPOSE_TARGET,
)

LAYOUTS: dict[str, tuple[str, ...]] = {
    "alerts": (
        "environment",
        "incident_id",
        "",
        "# Where. Empty means the environment: IRKIT_BASE_URL, IRKIT_PROMETHEUS_URL,"
        " IRKIT_TLS_ENDPOINTS,",
        "# PGHOST…, IRKIT_REDIS_URL, IRKIT_CELERY_BROKER_URL. Passwords only from the environment.",
        "",
        "# Web app and Prometheus",
        "web_url",
        *WEB_CONNECTION,
        "prom_url",
        "prom_timeout_s",
        "",
        "# PostgreSQL, Redis, Celery (component-wise checks, slow queries, runaway tasks)",
        "pg_host",
        *PG_CONNECTION,
        "redis_url",
        "redis_socket_timeout_s",
        "celery_broker_url",
        *CELERY_CONNECTION,
        "",
        "# Certificates",
        "tls_endpoints",
        "tls_timeout_s",
        "",
        "# Logs, deploys and diagnostics: each checked only when given",
        *OPTIONAL_SOURCES,
        "",
        "# Thresholds",
        "host_window_min",
        "host_cpu_interval_s",
        "host_cpu_warn_pct",
        "host_cpu_crit_pct",
        "celery_min_workers",
        "celery_task_runaway_s",
        "web_slow_ms",
        *ERROR_RATE,
        "pg_connect_warn_s",
        "pg_long_query_warn_s",
        "pg_long_query_crit_s",
        "tls_warn_days",
        "tls_crit_days",
        "",
        *MITIGATIONS_HEAD,
        *PG_KILL,
        *DEPLOY_COMMANDS,
        "compose_web_service",
    ),
    "celery": (
        "environment",
        "incident_id",
        "",
        "# Where. Empty means IRKIT_CELERY_BROKER_URL from the environment, else"
        " redis://localhost:6379/0.",
        "celery_broker_url",
        *CELERY_CONNECTION,
        "celery_queues",
        "",
        "# Thresholds",
        "celery_queue_warn",
        "celery_queue_crit",
        "celery_min_workers",
        "celery_task_runaway_s",
        "",
        *MITIGATIONS_HEAD,
        "celery_purge_tasks",
        "celery_pool_change",
        "celery_pool_workers",
        "celery_autoscale_max",
        "celery_autoscale_min",
        *DEPLOY_COMMANDS,
        "compose_worker_service",
        "compose_celery_app",
        "compose_scale_workers_to",
    ),
    "containers": (
        "environment",
        "incident_id",
        "",
        "# Where. Empty means the environment (COMPOSE_PROJECT_NAME, DOCKER_HOST); a project not",
        "# named is the engine's only one.",
        *COMPOSE_TARGET,
        "",
        "# Thresholds",
        *COMPOSE_THRESHOLDS,
        "",
        "# Logs and the running image",
        "compose_log_services",
        "compose_log_lines",
        "log_window_min",
        "compose_web_service",
        "deploy_window_min",
        "deploy_git_revision",
        "",
        *MITIGATIONS_HEAD,
        "compose_worker_service",
        "compose_redis_service",
        "compose_scale_to",
        "deploy_commands",
        "deploy_timeout_s",
    ),
    "db": (
        "environment",
        "incident_id",
        "",
        "# Where. Empty means the environment (PGHOST, PGPORT, PGUSER, PGDATABASE), else"
        " libpq's default.",
        "pg_host",
        *PG_CONNECTION,
        "",
        "# Thresholds",
        *PG_THRESHOLDS,
        "pg_impact_window_min",
        "pg_impact_users_table",
        "pg_impact_last_login_column",
        "pg_impact_tenants_table",
        "",
        *MITIGATIONS_HEAD,
        *PG_KILL,
        *DEPLOY_COMMANDS,
        "compose_web_service",
        "pg_fake_migration",
    ),
    "disk": (
        "environment",
        "incident_id",
        "",
        "# Where",
        "disk_paths",
        "disk_log_dirs",
        "disk_log_pattern",
        "disk_temp_dirs",
        "# Memory and CPU of the app's machine: Prometheus' node_exporter metrics, else this one's",
        "prom_url  # Prometheus, e.g. http://localhost:9090 (empty: IRKIT_PROMETHEUS_URL)",
        "prom_timeout_s",
        "",
        "# Thresholds",
        *HOST_THRESHOLDS,
        "",
        *MITIGATIONS_HEAD,
        *DEPLOY_COMMANDS,
        "compose_web_service",
        "compose_scale_to",
    ),
    "health": (
        "environment",
        "# Where. Empty means the environment: PGHOST…, IRKIT_REDIS_URL, IRKIT_CELERY_BROKER_URL,",
        "# IRKIT_BASE_URL, IRKIT_PROMETHEUS_URL, IRKIT_TLS_ENDPOINTS. Passwords only"
        " from the environment.",
        "",
        "# Web app",
        "web_url",
        *WEB_CONNECTION,
        "web_slow_ms",
        "",
        "# PostgreSQL",
        "pg_host",
        *PG_CONNECTION,
        *PG_THRESHOLDS,
        "",
        "# Redis",
        "redis_url",
        "redis_socket_timeout_s",
        "redis_memory_warn_pct",
        "redis_memory_crit_pct",
        "redis_clients_warn_pct",
        "",
        "# Celery",
        "celery_broker_url",
        *CELERY_CONNECTION,
        "celery_queues",
        "celery_queue_warn",
        "celery_queue_crit",
        "celery_min_workers",
        "celery_task_runaway_s",
        "",
        "# Disk of this machine; memory and CPU of the app's (node_exporter when prom_url is set)",
        "disk_paths",
        "disk_log_dirs",
        "disk_log_pattern",
        "disk_temp_dirs",
        *HOST_THRESHOLDS,
        "",
        "# Certificates",
        "tls_endpoints",
        "tls_timeout_s",
        "tls_warn_days",
        "tls_crit_days",
        "",
        "# Prometheus",
        "prom_url",
        "prom_timeout_s",
        *ERROR_RATE,
        "",
        "# Containers: a Compose deployment, checked when compose_dir or compose_project is given",
        *COMPOSE_TARGET,
        *COMPOSE_THRESHOLDS,
        "",
        "# Optional sources: checked only when given (logs and deploys also from the containers)",
        *OPTIONAL_SOURCES,
        "compose_log_services",
        "compose_log_lines",
        "compose_web_service",
        "deploy_git_revision",
        "",
        "# The report",
        "health_deadline_s",
        "charts_always",
        "notify",
        "notify_repeat_min",
    ),
    "metrics": (
        "environment  # only the incidents of this environment (empty: every one)",
        "month",
        "months",
        "incidents_dir",
        "sla_goal_pct",
    ),
    "postmortem": (
        "environment",
        "incident_id  # the incident to write up",
        "author",
        "summary",
        "revenue_impact",
        "detection_review",
        "went_well",
        "went_wrong",
        "lucky",
        "follow_up",
        "action_items",
    ),
    "redis": (
        "environment",
        "incident_id",
        "",
        "# Where. Empty means IRKIT_REDIS_URL from the environment, else redis://localhost:6379/0.",
        "redis_url",
        "redis_socket_timeout_s",
        "# The Celery broker, so that FLUSHDB and the eviction check know its db. Empty:",
        "# IRKIT_CELERY_BROKER_URL, else none known (then only the kombu keys found in a db tell).",
        "celery_broker_url",
        "",
        "# Thresholds",
        "redis_memory_warn_pct",
        "redis_memory_crit_pct",
        "redis_clients_warn_pct",
        "celery_queues",
        "",
        *MITIGATIONS_HEAD,
        "redis_allow_broker_flush",
        "redis_new_maxmemory",
        *DEPLOY_COMMANDS,
        "compose_redis_service",
    ),
    "resolve": (
        "environment",
        "# The incident",
        "incident_id  # the incident this run belongs to; empty: a practice run, nothing is kept",
        "root_cause",
        "root_cause_key",
        "resolution",
        '# "action | owner | YYYY-MM-DD | P0-P3", e.g. "Add pool alert | Backend Lead |'
        ' 2026-12-01 | P1"',
        "action_items  # the action items, as above",
        "mitigated_at",
        "resolved_at",
        "declare_resolved",
        "notify  # post the resolution to Slack and the status page (IRKIT_STATUSPAGE_TOKEN)",
        "statuspage_page_id",
        "statuspage_api",
        "",
        "# Load test: the runbook's `ab -n 100 -c 10 http://localhost:8000/`",
        "load_path",
        "load_requests",
        "load_concurrency",
        "",
        "# Where",
        "",
        "web_url  # the web app, e.g. https://himalytix.com (else IRKIT_BASE_URL)",
        *WEB_CONNECTION,
        "prom_url  # Prometheus, e.g. http://localhost:9090 (else IRKIT_PROMETHEUS_URL)",
        "prom_timeout_s",
        "redis_url  # Redis (else IRKIT_REDIS_URL); the password goes in IRKIT_REDIS_PASSWORD",
        "celery_broker_url  # the Celery broker (else IRKIT_CELERY_BROKER_URL)",
        "tls_endpoints",
        "disk_paths",
        "",
        "pg_host  # PostgreSQL host, address or socket directory (else PGHOST)",
        *PG_CONNECTION,
        "",
        "# A Compose deployment: checked when compose_dir or compose_project is given",
        *COMPOSE_TARGET,
        "compose_services",
        "",
        "# Thresholds",
        "",
        "web_slow_ms",
        "compose_restart_window_min",
        *ERROR_RATE,
        "host_window_min  # the re-check judges CPU and memory over this window (runbook: 5 min)",
        "host_cpu_warn_pct",
        "host_cpu_crit_pct",
        "host_memory_available_warn_pct",
        "host_memory_available_crit_pct",
    ),
    "triage": (
        "environment",
        "# The incident (irkit incident open fills in incident_id; the rest is the"
        " responder's to add)",
        "incident_id  # the incident this run belongs to; empty: a practice run, nothing is kept",
        "title",
        "category",
        "responder",
        "impact",
        "detection_source",
        "impact_started_at",
        "detected_at",
        "acknowledged_at",
        "acknowledge",
        "tenants_affected",
        "",
        "# Severity: the runbook's decision list. Answers are inferred from the checks"
        " where they can be;",
        '# "yes" or "no" here overrides an inferred answer.',
        "severity",
        "answer_service_down",
        "answer_users_can_login",
        "answer_core_features_work",
        "answer_one_tenant_only",
        "answer_cosmetic_only",
        "",
        "# Communication: nothing is posted unless notify is True (or a button is clicked)",
        "notify  # post the messages (IRKIT_SLACK_WEBHOOK, IRKIT_STATUSPAGE_TOKEN)",
        "next_update_min",
        "statuspage_page_id",
        "statuspage_api",
        "contacts",
        "",
        "# Alerts: how irkit listen opens an incident from an alert and whom it pages",
        *(p.name for p in parameters.ALERT_INTAKE.parameters),
        "",
        "# Where",
        "grafana_url",
        "jaeger_url",
        "logs_command",
        "",
        "web_url  # the web app, e.g. https://himalytix.com (else IRKIT_BASE_URL)",
        *WEB_CONNECTION,
        "prom_url  # Prometheus, e.g. http://localhost:9090 (else IRKIT_PROMETHEUS_URL)",
        "prom_timeout_s",
        "web_login_path",
        "web_core_paths",
        "",
        "pg_host  # PostgreSQL host, address or socket directory (else PGHOST)",
        *PG_CONNECTION,
        "",
        "# A Compose deployment: checked when compose_dir or compose_project is given",
        *COMPOSE_TARGET,
        "compose_services",
        "",
        "# Thresholds",
        "",
        "web_slow_ms",
        "compose_restart_window_min",
        *ERROR_RATE,
        "pg_impact_window_min",
        "pg_impact_users_table",
        "pg_impact_last_login_column",
        "pg_impact_tenants_table",
    ),
}


def declared_in(section: str) -> list[Parameter]:
    """The parameters a section's notebook declares, in the order of its cell."""
    return [parameters.get(name) for name, _ in _items(section)]


def cell_source(section: str) -> str:
    """The parameters cell of `section`, as it would be generated."""
    lines = []
    for entry in LAYOUTS[section]:
        if not entry or entry.startswith("#"):
            lines.append(entry)
            continue
        name, _, own_help = entry.partition("  # ")
        parameter = parameters.get(name)
        lines.append(_line(parameter, own_help or parameter.help))
    return "\n".join(lines)


def _items(section: str) -> list[tuple[str, str]]:
    return [
        (name, own_help)
        for entry in LAYOUTS[section]
        if entry and not entry.startswith("#")
        for name, _, own_help in [entry.partition("  # ")]
    ]


# The notebooks are formatted as the code is (ruff format, 100 columns).
LINE_LENGTH = 100


def _line(parameter: Parameter, help: str) -> str:
    line = f"{parameter.name}: {parameter.type} = {literal(parameter.default)}"
    comment = f"  # {help}" if help else ""
    if len(line + comment) <= LINE_LENGTH or not isinstance(parameter.default, list | tuple):
        return line + comment
    # A long list one item a line, with the trailing comma that keeps ruff format from joining
    # it again; papermill reads the help from the last line.
    items = "".join(f"    {literal(item)},\n" for item in parameter.default)
    return f"{parameter.name}: {parameter.type} = [\n{items}]{comment}"


def literal(value: Any) -> str:
    """A default as the notebooks spell it: strings in double quotes, lists of them likewise."""
    if isinstance(value, bool | int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(literal(v) for v in value) + "]"
    raise TypeError(f"no notebook literal for {type(value).__name__}")


def _parameters_cell(notebook: dict[str, Any]) -> dict[str, Any] | None:
    for cell in notebook.get("cells", []):
        tags = cell.get("metadata", {}).get("tags", [])
        if cell.get("cell_type") == "code" and PARAMETERS_TAG in tags:
            return cell  # type: ignore[no-any-return]
    return None


def stale(folder: Path) -> list[str]:
    """The sections whose stored parameters cell differs from the generated one (or is missing)."""
    found = []
    for section in sorted(LAYOUTS):
        path = folder / f"{section}.ipynb"
        notebook = json.loads(path.read_text(encoding="utf-8"))
        cell = _parameters_cell(notebook)
        source = cell.get("source", "") if cell else None
        if isinstance(source, list):
            source = "".join(source)
        if source != cell_source(section):
            found.append(section)
    return found


def write(folder: Path) -> list[str]:
    """Generate every stored notebook's parameters cell; returns the sections changed."""
    import nbformat

    changed = []
    for section in stale(folder):
        path = folder / f"{section}.ipynb"
        notebook = nbformat.read(path, as_version=4)
        cell = _parameters_cell(notebook)
        if cell is None:
            raise SystemExit(f"{path}: no cell tagged {PARAMETERS_TAG!r} to generate")
        cell["source"] = cell_source(section)
        nbformat.write(notebook, path)
        changed.append(section)
    return changed
