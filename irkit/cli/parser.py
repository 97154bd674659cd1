"""The whole `irkit` command line: every command, its options and its help, in one place (the
CLI contract, docs/design.md §4). Each command's handler is in the module named after it."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TypeAlias

from irkit import __version__
from irkit.cli import distributed, drill, health, incident, listen, report, run, sandbox
from irkit.cli.output import USER_ERROR


class _ArgumentParser(argparse.ArgumentParser):
    """argparse exits 2 on a usage error; 2 means CRIT here, so usage errors exit 3."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        print(f"irkit: {message}", file=sys.stderr)
        raise SystemExit(USER_ERROR)


# What `add_subparsers` returns: argparse has no public name for its type.
_Commands: TypeAlias = "argparse._SubParsersAction[_ArgumentParser]"


def build() -> argparse.ArgumentParser:
    parser = _ArgumentParser(
        prog="irkit",
        description="The Himalytix incident-response runbook as executable notebooks.",
    )
    parser.add_argument("--version", action="version", version=f"irkit {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _run(commands)
    _health(commands)
    _sandbox(commands)
    _drill(commands)
    _incident(commands)
    _report(commands)
    _postmortem(commands)
    _listen(commands)
    _worker(commands)
    _beat(commands)
    _recover(commands)
    return parser


def _run(commands: _Commands) -> None:
    parser = commands.add_parser(
        "run",
        help="execute one runbook section notebook",
        description=(
            "Execute one section notebook with papermill into reports/runs/ (never overwriting), "
            "print its verdicts and where it went. Exit code: the worst status, Nagios style "
            "(0 OK, 1 WARN, 2 CRIT, 3 UNKNOWN); 3 also for a usage error."
        ),
    )
    parser.add_argument("section", help="the notebook to run, e.g. db, redis, celery, disk")
    _parameter_options(parser)
    parser.add_argument("--output", type=Path, help="write the executed notebook exactly here")
    parser.add_argument(
        "--incident",
        metavar="ID",
        help="add the run to this incident as its next numbered notebook (see: irkit incident)",
    )
    parser.add_argument("--html", action="store_true", help="also write an HTML copy")
    parser.add_argument(
        "--show-parameters", action="store_true", help="list the section's parameters and stop"
    )
    parser.set_defaults(handler=run.run)


def _health(commands: _Commands) -> None:
    parser = commands.add_parser(
        "health",
        help="the scheduled health report: every read-only check at once",
        description=(
            "Run every read-only check of every section concurrently, bounded in time (about one "
            "timeout even when every target hangs; health_deadline_s at most), into "
            "reports/health/<UTC time>-health.ipynb and its .html. Prints each verdict; exit "
            "code: the worst status, Nagios style (0 OK, 1 WARN, 2 CRIT, 3 UNKNOWN or a usage "
            "error). For cron, a systemd timer, Airflow or Celery beat: see the README."
        ),
    )
    _parameter_options(parser)
    parser.add_argument(
        "--notify",
        action="store_true",
        help="post a Slack notice (IRKIT_SLACK_WEBHOOK) when the worst status or the set of "
        "failing checks changes, or while it stays CRIT at most every notify_repeat_min minutes",
    )
    parser.add_argument(
        "--keep",
        metavar="AGE",
        help="after the run, delete health reports older than AGE (e.g. 30d, 12h, 2w; never "
        "less than notify_repeat_min); incident records and other reports are never touched",
    )
    parser.set_defaults(handler=health.health)


def _sandbox(commands: _Commands) -> None:
    parser = commands.add_parser(
        "sandbox",
        help="the local practice servers",
        description=(
            "The practice stack, a Himalytix look-alike on loopback: PostgreSQL, Redis, a Celery "
            "worker, the Django app over HTTP and HTTPS, and Prometheus. up: start what is not "
            "running (again: repair what died); down: stop all, keep the data; status: what runs "
            "where (exit 1 if anything is down); reset: stop drills, delete all data, start "
            "afresh. "
            "The stack's own deployment commands, as the runbook's are for production: restart "
            "web|web-tls|celery-worker|redis; renew-cert (a fresh certificate for every name, then "
            "the HTTPS server restarted); manage ARGS (django-admin against the practice app, "
            "e.g. manage migrate). "
            "--compose: the same app deployed with Docker Compose (db, redis, web, celery, "
            "prometheus) on the kit's own Docker engine, for the containers section and the "
            "compose-* drills: up, down, status and reset; up writes "
            "parameters/sandbox-compose.yaml (irkit run SECTION --env sandbox-compose)."
        ),
    )
    parser.add_argument(
        "action", choices=["up", "down", "status", "reset", "restart", "renew-cert", "manage"]
    )
    parser.add_argument(
        "--compose",
        action="store_true",
        help="the Compose practice stack instead of the embedded one",
    )
    parser.add_argument("args", nargs=argparse.REMAINDER, help="for restart and manage")
    parser.set_defaults(handler=sandbox.sandbox)


def _drill(commands: _Commands) -> None:
    parser = commands.add_parser(
        "drill",
        help="rehearse a runbook scenario on the practice stack",
        description=(
            "Make one runbook scenario happen for real on the practice stack (list shows them "
            "and the notebook to run for each), and undo it with stop. The compose-* drills run "
            "on the Compose practice stack (irkit sandbox up --compose). Notebooks run while a "
            "drill is active are marked as drills and never count in the incident metrics."
        ),
    )
    parser.add_argument("action", choices=["list", "start", "stop", "status"])
    parser.add_argument("name", nargs="?", help="the drill, for start and stop (stop: or 'all')")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        dest="settings",
        help="start: tune the drill's fault by one of its settings (list shows them); repeatable",
    )
    parser.set_defaults(handler=drill.drill)


def _incident(commands: _Commands) -> None:
    parser = commands.add_parser(
        "incident",
        help="open, list and show incidents (their executed notebooks are the record)",
        description=(
            "open: create reports/incidents/<id>/ with 01-triage.ipynb prepared to step through "
            "in JupyterLab (or run: irkit run triage --incident ID), with the parameters given "
            "(-f, -p, --env) written in and kept for the incident's later runs. list: every "
            "incident. "
            "show: one incident's merged record, clocks and timeline. note: a step done "
            "outside the kit, on the timeline."
        ),
    )
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")

    opening = actions.add_parser("open", help="declare an incident")
    opening.add_argument("--title", required=True, help="what is wrong, in a few words")
    opening.add_argument(
        "--category",
        default="",
        help="database, infrastructure, application or security (picks the escalation path)",
    )
    opening.add_argument(
        "--severity", default="", help="P0-P3 if already known (else triage decides)"
    )
    opening.add_argument("--responder", default="", help="who responds (default: $USER)")
    opening.add_argument(
        "--impact-started-at",
        default="",
        metavar="TIME",
        help="when users were first affected, ISO-8601 UTC",
    )
    opening.add_argument(
        "--detected-at",
        default="",
        metavar="TIME",
        help="when the alert fired (default: now), ISO-8601 UTC",
    )
    opening.add_argument(
        "--detection-source",
        default="",
        metavar="TEXT",
        help="how it was detected, e.g. 'Prometheus alert'",
    )
    practice = opening.add_mutually_exclusive_group()
    practice.add_argument(
        "--not-a-drill",
        action="store_true",
        help="a real incident, even while a practice drill runs",
    )
    practice.add_argument(
        "--drill",
        action="store_true",
        help="a practice incident (as ./kit demo opens): marked as a drill, never counted in "
        "the metrics",
    )
    opening.add_argument(
        "--id",
        default=None,
        dest="incident_id",
        help="the incident id (default: UTC time and title)",
    )
    # The targets its notebooks check, kept for every later run of the incident.
    _parameter_options(opening)
    opening.set_defaults(handler=incident.open_incident)

    listing = actions.add_parser("list", help="every incident, oldest first")
    listing.add_argument("--json", action="store_true", help="machine-readable")
    listing.add_argument(
        "--env",
        metavar="NAME",
        help="only the incidents of this environment (parameters/NAME.yaml)",
    )
    listing.set_defaults(handler=incident.list_incidents, reads_records=True)

    showing = actions.add_parser("show", help="one incident's merged record")
    showing.add_argument("incident_id", metavar="ID")
    showing.add_argument("--json", action="store_true", help="machine-readable")
    showing.add_argument(
        "--env",
        metavar="NAME",
        help="refuse an incident of another environment (parameters/NAME.yaml)",
    )
    showing.set_defaults(handler=incident.show_incident, reads_records=True)

    noting = actions.add_parser(
        "note",
        help="put a step done outside the kit on the incident's timeline",
        description=(
            "Add a note to the incident's timeline: a manual restart, a phone call, a decision. "
            "It is recorded with who wrote it ($USER, or --by), secrets redacted."
        ),
    )
    noting.add_argument("incident_id", metavar="ID")
    noting.add_argument("text", help="what was done or decided, in a sentence")
    noting.add_argument(
        "--at",
        default="",
        metavar="TIME",
        help="when it happened, if earlier: ISO-8601, UTC unless it says otherwise (not later "
        "than now)",
    )
    noting.add_argument("--by", default="", metavar="NAME", help="who did it (default: $USER)")
    noting.set_defaults(handler=incident.note)


def _report(commands: _Commands) -> None:
    parser = commands.add_parser(
        "report",
        help="the monthly incident analysis",
        description=(
            "monthly: run the metrics notebook on the incident records (reports/incidents/, or "
            "--reports DIR) into reports/metrics/ with its HTML: MTTD/MTTA/MTTR with median, p90 "
            "and n, SLA compliance, categories, repeats, action items, charts, and the records "
            "that cannot be counted. Exit 0, also when there are no incidents."
        ),
    )
    parser.add_argument("kind", choices=["monthly"])
    parser.add_argument("--month", default="", help="YYYY-MM (default: the current month, UTC)")
    parser.add_argument(
        "--months",
        type=int,
        default=6,
        help="months covered by the tables and trends (default 6)",
    )
    parser.add_argument(
        "--reports",
        type=Path,
        metavar="DIR",
        help="read the incidents here (reports folder or incidents/)",
    )
    _parameter_options(parser)  # e.g. -p sla_goal_pct=99
    parser.set_defaults(handler=report.report, reads_records=True)


def _postmortem(commands: _Commands) -> None:
    parser = commands.add_parser(
        "postmortem",
        help="fill the runbook's postmortem template from an incident's record",
        description=(
            "Run the postmortem notebook on the incident: it writes postmortem.md into the "
            "incident's folder (an earlier one is kept) and lists what the record is missing."
        ),
    )
    parser.add_argument("incident_id", metavar="ID")
    _parameter_options(parser)  # e.g. -p author='Jane Doe'
    parser.set_defaults(handler=incident.postmortem)


def _listen(commands: _Commands) -> None:
    parser = commands.add_parser(
        "listen",
        help="receive Alertmanager's alerts: open incidents, run their notebooks, page",
        description=(
            "Receive Alertmanager's webhook (version 4) at POST /alertmanager. Each alert group "
            "opens one incident (joined again while it is open), whose triage and section "
            "notebooks run headless into its folder; PagerDuty, Slack and email are paged as "
            "the alert_* parameters route it. Requests need Authorization: Bearer "
            "$IRKIT_LISTEN_TOKEN. GET /healthz answers for the receiver itself; GET / lists "
            "the recent intakes. The parameters (-f, -p, --env) are kept with every incident."
        ),
    )
    parser.add_argument("--host", default="127.0.0.1", help="the address to listen on")
    parser.add_argument("--port", type=_port, default=9095, help="the port (default 9095)")
    parser.add_argument(
        "--insecure-loopback",
        action="store_true",
        help="without IRKIT_LISTEN_TOKEN: accept any request, on a loopback address only",
    )
    _parameter_options(parser)
    parser.set_defaults(handler=listen.listen)


def _worker(commands: _Commands) -> None:
    parser = commands.add_parser(
        "worker",
        help="a Celery worker for irkit's tasks (runs, health reports, monthly analyses)",
        description=(
            "Start a Celery worker of irkit's app (irkit.distributed:app) on the broker "
            "IRKIT_BROKER_URL (else the practice stack's Redis), taking tasks from irkit's own "
            "queue (IRKIT_QUEUE, default irkit). Each task runs the irkit command in a process "
            "of its own, with a deadline; at most --concurrency run at once. At start it "
            "publishes the records its host's runs left when they were killed."
        ),
    )
    parser.add_argument(
        "--concurrency",
        type=_positive,
        help="runs at once, each with its kernel (default 2)",
    )
    parser.add_argument(
        "--hostname",
        default="",
        help="this worker's host name (default: the machine's); unique per machine sharing a "
        "reports folder",
    )
    # Their defaults are irkit.distributed.config's (what `celery -A irkit.distributed` uses too);
    # the help says them, and a test checks that it says them right.
    parser.add_argument(
        "--max-tasks-per-child",
        type=_positive,
        help="replace a worker process after this many tasks (default 100)",
    )
    parser.add_argument(
        "--max-memory-per-child",
        type=_positive,
        metavar="MB",
        help="replace a worker process once it holds this much memory (default 300 MB)",
    )
    parser.add_argument("--loglevel", default="INFO", help="Celery's log level (default INFO)")
    parser.set_defaults(handler=distributed.worker)


def _beat(commands: _Commands) -> None:
    parser = commands.add_parser(
        "beat",
        help="Celery beat: send irkit's tasks on a schedule (environments x tasks x when)",
        description=(
            "Read the schedule file (schedule: a list of entries, each a task, health, run or "
            "monthly, for one or more environments, every N or on a crontab, UTC), print each "
            "entry and the command it runs, and send them to irkit's queue as Celery beat. A "
            "tick no worker started within its expiry (default: until the next tick) is "
            "dropped, not piled up. Run one beat per broker."
        ),
    )
    parser.add_argument(
        "--schedule", type=Path, required=True, metavar="FILE", help="the schedule (YAML)"
    )
    parser.add_argument(
        "--check", action="store_true", help="check the schedule, print its entries, and stop"
    )
    parser.add_argument(
        "--state",
        type=Path,
        metavar="FILE",
        help="beat's own state (default: reports/.beat/schedule)",
    )
    parser.add_argument("--loglevel", default="INFO", help="Celery's log level (default INFO)")
    parser.set_defaults(handler=distributed.beat)


def _recover(commands: _Commands) -> None:
    parser = commands.add_parser(
        "recover",
        help="publish the records a machine gone for good left hidden",
        description=(
            "A run killed outright leaves its record in a hidden file named with its pid and "
            "host; the next run or worker on that host publishes it. When that host is gone for "
            "good, this publishes its records everywhere under the reports folder, marked "
            "incomplete. Only then: a run of another host cannot be told from a live one, and "
            "one still writing would lose what it writes after."
        ),
    )
    parser.add_argument(
        "--host", required=True, metavar="NAME", help="the lost machine's name (after '@')"
    )
    parser.set_defaults(handler=distributed.recover)


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of at least 1")
    return int(text)


def _port(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number (1-65535)")
    return int(text)


def _parameter_options(parser: argparse.ArgumentParser) -> None:
    """-f FILE and -p NAME=VALUE, as every command that runs a notebook takes them."""
    parser.add_argument(
        "-f",
        "--file",
        dest="files",
        action="append",
        type=Path,
        default=[],
        metavar="FILE",
        help="a YAML parameter file (repeatable; later files win)",
    )
    parser.add_argument(
        "--env",
        metavar="NAME",
        help="a named environment: its parameter file parameters/NAME.yaml, under -f and -p",
    )
    parser.add_argument(
        "-p",
        "--parameter",
        dest="pairs",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="one parameter (repeatable; wins over files)",
    )
