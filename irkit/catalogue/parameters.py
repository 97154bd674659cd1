"""Every parameter of every notebook, declared once: name, type, default and help, in a group per
target (`pg_*`, `redis_*`, `web_*`, …). The bound on a number comes from its name
(`irkit.bounds`: `…_timeout_s`, `…_pct`, `…_days`), its unit with it; an empty target parameter
falls back to the environment variable named by `env`.

The notebooks' parameters cells are generated from these declarations (`./kit generate`, see
`irkit.catalogue.cells`), and the probes and targets take their defaults from here: a default is
written in this file and nowhere else (tests/test_declarations.py checks it).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from irkit import bounds

TYPES = ("str", "int", "float", "bool", "list[str]")


@dataclass(frozen=True)
class Parameter:
    name: str
    type: str  # as annotated in a notebook: str, int, float, bool or list[str]
    default: Any
    help: str  # one line: what it is, its unit, what empty or 0 means
    env: str = ""  # the environment variable an empty value falls back to
    # A file or folder on the machine running irkit: relative means relative to the kit's
    # folder, wherever the notebook runs (JupyterLab starts a kernel in the notebook's folder).
    path: bool = False

    @property
    def range(self) -> bounds.Range | None:
        return bounds.range_for(self.name) if self.type in ("int", "float") else None

    @property
    def unit(self) -> str:
        bound = self.range
        return bound.unit if bound else ""

    @property
    def shown(self) -> str:
        """The default as the README's tables say it: "80 %", "5 min", "20 d"."""
        return quantity(self.default, self.unit)


def quantity(value: Any, unit: str) -> str:
    if unit == "milliseconds":
        value, unit = value / 1000, "seconds"
    if unit == "seconds":
        for size, name in ((86400, "d"), (3600, "h"), (60, "min")):
            if value >= size and value % size == 0:
                return f"{value / size:g} {name}"
        return f"{value:g} s"
    suffix = {"%": " %", "days": " d", "minutes": " min"}.get(unit, "")
    return f"{value:g}{suffix}" if isinstance(value, int | float) else str(value)


@dataclass(frozen=True)
class Group:
    title: str
    parameters: tuple[Parameter, ...]


def group(title: str, *parameters: Parameter) -> Group:
    return Group(title, parameters)


def text(name: str, default: str, help: str, *, env: str = "", path: bool = False) -> Parameter:
    return Parameter(name, "str", default, help, env, path)


def integer(name: str, default: int, help: str, *, env: str = "") -> Parameter:
    return Parameter(name, "int", default, help, env)


def number(name: str, default: float, help: str) -> Parameter:
    return Parameter(name, "float", default, help)


def flag(name: str, default: bool, help: str) -> Parameter:
    return Parameter(name, "bool", default, help)


def texts(name: str, default: list[str], help: str, *, path: bool = False) -> Parameter:
    return Parameter(name, "list[str]", tuple(default), help, path=path)


# Which of the team's environments a run is for: set by `--env NAME`, stamped on every verdict
# and record, and the health reports' history is kept per environment.
ENVIRONMENT = group(
    "Environment",
    text(
        "environment",
        "",
        "the environment this run is for, e.g. staging (set by --env NAME)",
    ),
)

INCIDENT = group(
    "The incident record",
    text("incident_id", "", "the incident this run belongs to (irkit run … --incident ID)"),
    text("title", "", "what is wrong, in a few words"),
    text("category", "", "database, infrastructure, application or security (the escalation path)"),
    text("responder", "", "who responds (empty: the record's responder, else $USER)"),
    text("impact", "", 'what users see, e.g. "Login page returns 500 errors"'),
    text("detection_source", "", 'how it was detected, e.g. "Prometheus alert HighErrorRate"'),
    text("impact_started_at", "", "when users were first affected, ISO-8601 UTC"),
    text("detected_at", "", "when the alert fired (empty: when the incident was opened)"),
    text("acknowledged_at", "", "when a responder took the page (empty: when triage first runs)"),
    flag("acknowledge", True, "False: a run nobody watches (irkit listen's) acknowledges nothing"),
    text("tenants_affected", "", '"all", a number or names (empty: from answer_one_tenant_only)'),
    text("severity", "", "P0, P1, P2 or P3 to override the decision list"),
    text("answer_service_down", "", "Is the service down completely? (inferred: health checks)"),
    text("answer_users_can_login", "", "Can users log in? (inferred: the login page's smoke test)"),
    text(
        "answer_core_features_work", "", "Journal entry, reports? (inferred: core URLs, error rate)"
    ),
    text("answer_one_tenant_only", "", "Is only one tenant affected? (the responder's answer)"),
    text("answer_cosmetic_only", "", "Is it a UI cosmetic issue? (the responder's answer)"),
)

RESOLUTION = group(
    "Resolution",
    texts("action_items", [], 'more action items: "action | owner | YYYY-MM-DD | P0-P3"'),
    text("root_cause", "", 'e.g. "PostgreSQL connection pool exhausted at max_connections 100"'),
    text("root_cause_key", "", 'a short slug for repeats, e.g. "pg-pool-exhausted"'),
    text("resolution", "", 'e.g. "Restarted web service, increased pool size to 200"'),
    text(
        "mitigated_at",
        "",
        "when the mitigation took effect, ISO-8601 UTC (empty: first action done)",
    ),
    text("resolved_at", "", "when service was restored, ISO-8601 UTC (empty: now, if checks pass)"),
    flag("declare_resolved", False, "resolve even though a check is CRIT (the record says which)"),
)

POSTMORTEM = group(
    "Postmortem",
    text("author", "", "who writes the postmortem (empty: the responder)"),
    text("summary", "", "one paragraph (empty: composed from impact, root cause and resolution)"),
    text("revenue_impact", "", 'e.g. "~$500 (estimated lost transactions)"'),
    text(
        "detection_review",
        "",
        'could detection be faster? e.g. "No - alert threshold is appropriate"',
    ),
    texts("went_well", [], "lessons: what went well"),
    texts("went_wrong", [], "lessons: what went wrong"),
    texts("lucky", [], "lessons: where we got lucky"),
    texts("follow_up", [], 'e.g. "Share postmortem in #engineering"'),
)

COMMUNICATION = group(
    "Communication",
    flag("notify", False, "post a Slack notice when the verdict changes (IRKIT_SLACK_WEBHOOK)"),
    number("notify_repeat_min", 60.0, "while CRIT, remind at most this often"),
    integer("next_update_min", 30, "when the next stakeholder update is due"),
    text("statuspage_page_id", "", "Statuspage.io page id"),
    text("statuspage_api", "https://api.statuspage.io/v1", "the status page's API"),
    texts("contacts", [], 'escalation handles, e.g. "Database Admin: @dba-oncall"'),
    text("grafana_url", "http://localhost:3000", "Grafana (metrics)"),
    text("jaeger_url", "http://localhost:16686", "Jaeger (traces)"),
    text("logs_command", "docker-compose logs -f web celery", "how to follow the logs"),
)

# How `irkit listen` turns an Alertmanager notification into an incident and its pages (runbook
# §Detection: Prometheus alerts to Slack #incidents, health check failures to PagerDuty, an error
# rate over 5 % to email and Slack). "name: value" lines, as `contacts` are.
ALERT_INTAKE = group(
    "Alert intake",
    texts(
        "alert_severities",
        ["critical: P1", "error: P1", "warning: P2", "info: P3"],
        "an alert's severity label: the incident's severity (the decision list may raise it)",
    ),
    texts(
        "alert_sections",
        [
            "HighErrorRate: alerts",
            "HealthCheckFailing: alerts",
            "WebDown: alerts",
            "SlowRequests: alerts db",
            "HighCPU: disk",
            "PostgresConnectionsHigh: db",
            "SlowQueries: db",
            "RedisMemoryHigh: redis",
            "CeleryBacklog: celery",
            "CertificateExpiring: alerts",
        ],
        "alertname: the notebooks run after triage (a runbook_section label wins)",
    ),
    texts(
        "alert_pagerduty",
        ["HealthCheckFailing"],
        "alerts that page PagerDuty whatever their severity (P0 and P1 always page)",
    ),
    texts("alert_email", ["HighErrorRate"], "alerts that are also emailed to alert_email_to"),
    texts("alert_email_to", [], "who the email goes to, e.g. oncall@example.com"),
    integer("alert_max_runs", 2, "notebook runs at once; more alert groups wait their turn"),
    integer(
        "alert_queue_size", 50, "alert groups waiting at most; more get 503 (Alertmanager retries)"
    ),
    number("alert_run_timeout_s", 300.0, "a notebook run of an alert is stopped after this long"),
)

WEB = group(
    "Web app",
    text(
        "web_url",
        "",
        "the web app, e.g. https://himalytix.com (else http://localhost:8000)",
        env="IRKIT_BASE_URL",
    ),
    number("web_timeout_s", 5.0, "give up on a connect or a reply after this long"),
    flag("web_verify_tls", True, "check the web app's certificate (False only for a test box)"),
    text(
        "web_ca_file", "", "a CA bundle to trust instead of the system's (a private CA)", path=True
    ),
    text("web_health_path", "/health/ready/", "django-health-check's readiness endpoint"),
    texts(
        "web_smoke_paths",
        ["/health/ready/", "/accounts/login/", "/api/v1/health/"],
        "smoke test",
    ),
    number("web_slow_ms", 1000.0, "readiness answer slower than this: WARN"),
    text("load_path", "/", "the page to load"),
    integer("load_requests", 100, "requests in all"),
    integer("load_concurrency", 10, "requests at a time"),
    text("web_login_path", "/accounts/login/", 'the login page (answers "can users log in?")'),
    texts("web_core_paths", ["/api/v1/journal/"], "core features (journal entry, reports)"),
)

PROMETHEUS = group(
    "Prometheus",
    text("prom_url", "", "Prometheus, e.g. http://localhost:9090", env="IRKIT_PROMETHEUS_URL"),
    number("prom_timeout_s", 5.0, "give up on a Prometheus query after this long"),
    text("prom_window", "5m", "PromQL range for rates, as in the runbook's queries"),
    number("prom_error_rate_warn_pct", 1.0, "share of requests answered 5xx: WARN"),
    number("prom_error_rate_crit_pct", 5.0, "runbook High Error Rate Alert: over 5%"),
    number("prom_p95_warn_s", 1.0, "95th percentile of request time above this: WARN"),
)

POSTGRES = group(
    "PostgreSQL",
    text("pg_host", "", "PostgreSQL host, address or socket directory", env="PGHOST"),
    integer("pg_port", 0, "port; 0 means PGPORT, else 5432", env="PGPORT"),
    text("pg_user", "", "role to connect as; with pg_monitor it sees every session", env="PGUSER"),
    text("pg_database", "", "database, e.g. himalytix", env="PGDATABASE"),
    text("pg_sslmode", "", "libpq sslmode (disable, require, verify-full); empty: libpq's default"),
    integer(
        "pg_connect_timeout_s", 3, "give up connecting after this many seconds (libpq: at least 2)"
    ),
    number("pg_statement_timeout_s", 5.0, "cancel any monitoring query that runs longer"),
    number("pg_connect_warn_s", 2.0, "connecting takes longer than this: WARN"),
    number("pg_long_query_warn_s", 1.0, "runbook Slow Query Alert: queries over 1 s"),
    number("pg_long_query_crit_s", 300.0, "runbook Scenario 2: kill candidates over 5 min"),
    text("pg_kill_mode", "terminate", "terminate (end the session) or cancel (stop the statement)"),
    number("pg_kill_older_than_s", 300.0, "runbook: kill queries running longer than 5 min"),
    number(
        "pg_kill_idle_in_transaction_s",
        0.0,
        "also sessions idle in a transaction this long (0: no)",
    ),
    number(
        "pg_kill_idle_min",
        0.0,
        "also plain idle sessions of pg_kill_idle_role this old (0: no)",
    ),
    text("pg_kill_idle_role", "", "the app's role, for pg_kill_idle_min (empty: pg_user's)"),
    texts("pg_kill_pids", [], "or exactly these pids (the filters above are then ignored)"),
    flag("pg_kill_allow_superuser", False, "include superusers' sessions"),
    number("pg_connections_warn_pct", 80.0, "share of usable connection slots in use: WARN"),
    number("pg_connections_crit_pct", 95.0, "share of usable connection slots in use: CRIT"),
    number("pg_idle_in_transaction_warn_s", 60.0, "idle in a transaction this long: WARN"),
    number("pg_idle_in_transaction_crit_s", 300.0, "idle in a transaction this long: CRIT"),
    number("pg_lock_wait_warn_s", 60.0, "a session waits on a lock this long: WARN"),
    number("pg_lock_wait_crit_s", 120.0, "a session waits on a lock this long: CRIT"),
    texts("pg_expected_migrations", [], 'migrations that must be applied, as "app.name"'),
    text("pg_fake_migration", "", 'migrate_fake marks this one applied, as "app.name" (if stuck)'),
    number("pg_impact_window_min", 5.0, "runbook: active users in the last 5 min"),
    text("pg_impact_users_table", "auth_user", "table of users, with a last-login column"),
    text("pg_impact_last_login_column", "last_login", "timestamp of each user's last login"),
    text("pg_impact_tenants_table", "tenancy_tenant", "table of tenants"),
)

REDIS = group(
    "Redis",
    text(
        "redis_url",
        "",
        "e.g. redis://localhost:6379/1; the password goes in IRKIT_REDIS_PASSWORD",
        env="IRKIT_REDIS_URL",
    ),
    number("redis_socket_timeout_s", 2.0, "give up on a connect or reply after this long"),
    number("redis_memory_warn_pct", 80.0, "used_memory as a share of maxmemory: WARN"),
    number("redis_memory_crit_pct", 95.0, "used_memory as a share of maxmemory: CRIT"),
    number("redis_clients_warn_pct", 80.0, "connected clients as a share of maxclients: WARN"),
    flag("redis_allow_broker_flush", False, "flush even a db holding Celery queues (drops them)"),
    text("redis_new_maxmemory", "", "set maxmemory to this, e.g. 512mb (empty: leave it)"),
)

CELERY = group(
    "Celery",
    text(
        "celery_broker_url",
        "",
        "e.g. redis://localhost:6379/0; password: IRKIT_CELERY_BROKER_PASSWORD",
        env="IRKIT_CELERY_BROKER_URL",
    ),
    number("celery_socket_timeout_s", 2.0, "give up on the broker after this long"),
    number("celery_inspect_timeout_s", 1.0, "how long workers have to answer (Celery's default)"),
    integer(
        "celery_expected_workers", 0, "workers deployed: stop waiting once all answer (0: wait)"
    ),
    integer("celery_min_workers", 1, "fewer workers answering than this: WARN (none at all: CRIT)"),
    number("celery_task_runaway_s", 300.0, "a task running this long is a runaway: WARN"),
    texts("celery_queues", ["celery"], "Celery queue names: a db holding them is a broker db"),
    integer("celery_queue_warn", 100, "tasks waiting in one queue: WARN"),
    integer("celery_queue_crit", 5000, 'tasks waiting in one queue: CRIT (runbook: "5000+")'),
    texts("celery_purge_tasks", [], "purge only these task names (empty: the whole queue)"),
    integer("celery_pool_change", 0, "grow (> 0) or shrink (< 0) each worker's pool by this many"),
    texts("celery_pool_workers", [], "the workers to resize (empty: every one that answers)"),
    integer("celery_autoscale_max", 0, "autoscale bounds for workers started with --autoscale"),
    integer("celery_autoscale_min", 0, "(0 and 0: leave the autoscaler alone)"),
)

TLS = group(
    "Certificates",
    texts("tls_endpoints", [], '"name[:port][@address]"; empty: the web_url\'s host when https'),
    number("tls_timeout_s", 5.0, "give up on a TLS handshake after this long"),
    number("tls_warn_days", 20.0, "certificate expires within this many days: WARN"),
    number("tls_crit_days", 15.0, "certificate expires within this many days (or expired): CRIT"),
)

HOST = group(
    "Disk of this machine; memory and CPU of the app's",
    number("host_window_min", 5.0, "runbook High CPU Alert: CPU and memory judged over 5 min"),
    number("host_cpu_interval_s", 0.5, "how long to sample the busiest processes (evidence)"),
    number("host_cpu_warn_pct", 80.0, "runbook High CPU Alert: over 80% for 5 min"),
    number("host_cpu_crit_pct", 95.0, "CPU use: CRIT"),
    texts("disk_paths", ["/"], "check the filesystem holding each of these paths", path=True),
    texts("disk_log_dirs", [], 'application log folders, e.g. ["/app/logs"]', path=True),
    text("disk_log_pattern", "*.log", "which files in them are logs"),
    texts("disk_temp_dirs", [], 'media/temp folders, e.g. ["/app/media/temp"]', path=True),
    number("disk_warn_pct", 80.0, "space or inodes used: WARN"),
    number("disk_crit_pct", 90.0, "space or inodes used: CRIT"),
    number("disk_log_max_age_days", 7.0, "runbook: logs older than 7 days can go"),
    number("disk_temp_max_age_days", 30.0, "runbook: temp files older than 30 days can go"),
    number("host_memory_available_warn_pct", 10.0, "memory still available at or below this: WARN"),
    number("host_memory_available_crit_pct", 5.0, "memory still available at or below this: CRIT"),
)

CONTAINERS = group(
    "The Compose deployment",
    text(
        "compose_dir",
        "",
        "the project's folder, where docker-compose runs (empty: none)",
        path=True,
    ),
    texts("compose_files", [], "its compose files, as -f (empty: Compose's own in compose_dir)"),
    text(
        "compose_project",
        "",
        "its name (empty: COMPOSE_PROJECT_NAME, else compose_dir's)",
        env="COMPOSE_PROJECT_NAME",
    ),
    text(
        "docker_host",
        "",
        "the engine, e.g. unix:///var/run/docker.sock (empty: DOCKER_HOST)",
        env="DOCKER_HOST",
    ),
    text("compose_command", "", "docker-compose or docker compose (empty: whichever is here)"),
    number("compose_timeout_s", 10.0, "give up on the Docker engine after this long"),
    texts("compose_services", [], "services that must run (empty: every service of the project)"),
    text("compose_web_service", "web", "the Django service: manage.py runs in it"),
    text("compose_worker_service", "celery", "the Celery service: celery inspect runs in it"),
    text("compose_celery_app", "dashboard", "the Celery app for celery -A (runbook: dashboard)"),
    texts("compose_log_services", ["web", "celery"], "runbook: docker-compose logs web celery"),
    integer("compose_log_lines", 2000, "read at most this many log lines per service"),
    number("compose_restart_window_min", 15.0, "a container restarted this recently: WARN"),
    number("compose_cpu_warn_pct", 80.0, "runbook High CPU Alert: a container's CPU of its limit"),
    number("compose_cpu_crit_pct", 95.0, "a container's CPU of its limit: CRIT"),
    number("compose_memory_warn_pct", 80.0, "a container's memory of its limit: WARN"),
    number("compose_memory_crit_pct", 90.0, "a container's memory of its limit: CRIT"),
    text("compose_redis_service", "redis", "the Redis service (Scenario 4: restart redis)"),
    integer("compose_scale_to", 3, "runbook Scenario 1: scale web to 3 containers"),
    integer("compose_scale_workers_to", 4, "runbook Incident 2: scale celery to 4 containers"),
    flag("deploy_git_revision", False, "ask git rev-parse HEAD inside the web container"),
)

SOURCES = group(
    "Optional sources: logs, deploys and diagnostic commands",
    texts("log_files", [], 'application log files or globs, e.g. ["/app/logs/*.log"]', path=True),
    text("log_command", "", 'or a command printing it: "docker compose logs web -t --since 30m"'),
    number("log_window_min", 30.0, "runbook: errors of the last 30 min"),
    number("log_timeout_s", 10.0, "stop a log command that runs longer than this"),
    text("deploy_repo", "", "the deployed checkout, for git log (empty: not checked)", path=True),
    number("deploy_window_min", 60.0, "a deploy this recent may be the cause: WARN"),
    texts("check_commands", [], 'read-only diagnostics, "name: command line"'),
    number("check_timeout_s", 20.0, "stop a diagnostic command that runs longer than this"),
    texts("deploy_commands", [], 'the deployment\'s own tooling, "name: command line"'),
    number("deploy_timeout_s", 300.0, "stop a deployment command that runs longer than this"),
)

ACTIONS = group(
    "Mitigations",
    texts("allow_actions", [], 'actions to carry out without asking, e.g. ["postgres.terminate"]'),
    text("confirmed_by", "", "who confirms, for the record (empty: $USER)"),
)

HEALTH = group(
    "The health report",
    number("health_deadline_s", 30.0, "wait no longer for any check (then: CRIT, hung)"),
    flag("charts_always", False, "charts for every area (else where something is wrong)"),
)

METRICS = group(
    "The monthly analysis",
    text("month", "", "the month analysed, YYYY-MM (empty: the current month, UTC)"),
    integer("months", 6, "how many months the tables and trends cover, ending with that one"),
    text(
        "incidents_dir", "", "the incident folders to read (empty: reports/incidents/)", path=True
    ),
    number("sla_goal_pct", 95.0, "share of incidents each SLA clock should meet: below it, red"),
)

GROUPS: tuple[Group, ...] = (
    ENVIRONMENT,
    INCIDENT,
    RESOLUTION,
    POSTMORTEM,
    COMMUNICATION,
    ALERT_INTAKE,
    WEB,
    PROMETHEUS,
    POSTGRES,
    REDIS,
    CELERY,
    TLS,
    HOST,
    CONTAINERS,
    SOURCES,
    ACTIONS,
    HEALTH,
    METRICS,
)

BY_NAME: dict[str, Parameter] = {p.name: p for g in GROUPS for p in g.parameters}
# One run's decisions and the incident's own fields: never kept with an incident for its later
# runs, nor written into notebooks prepared for a deployment (a kept `allow_actions` would act on
# every later run without anyone naming it).
PER_RUN: frozenset[str] = frozenset(
    p.name for g in (INCIDENT, RESOLUTION, POSTMORTEM, ACTIONS) for p in g.parameters
) | {"notify", "pg_kill_pids", "pg_fake_migration", "celery_purge_tasks"}


def get(name: str) -> Parameter:
    try:
        return BY_NAME[name]
    except KeyError:
        raise KeyError(f"no parameter named {name!r} is declared") from None


def default(name: str) -> Any:
    """A parameter's default, as a fresh value (a list default is a new list each time)."""
    value = get(name).default
    return list(value) if isinstance(value, tuple) else copy.copy(value)
