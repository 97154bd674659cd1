"""The `irkit` command."""

from __future__ import annotations

import argparse
import functools
import os
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from irkit import __version__, interrupt
from irkit.catalogue.parameters import default
from irkit.errors import IrkitError
from irkit.result import Status
from irkit.secrets import redact

if TYPE_CHECKING:
    from irkit.reports import RecordNotWritten
    from irkit.sandbox.stack import Stack

USER_ERROR = Status.UNKNOWN.exit_code


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    # A scheduler stops a run with SIGTERM: it unwinds like Ctrl-C, keeping the record so far.
    interrupt.install()
    try:
        code: int = args.handler(args)
        return code
    except IrkitError as exc:
        print(f"irkit: {redact(str(exc))}", file=sys.stderr)
        return USER_ERROR
    except BrokenPipeError:
        # The reader went away (`irkit … | head`): not an error of ours.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except OSError as exc:
        print(f"irkit: {redact(str(exc))}", file=sys.stderr)
        return USER_ERROR
    except KeyboardInterrupt:
        print("irkit: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        # A bug: one line (a scheduler reads exit 1 as WARN, so this is UNKNOWN), and the
        # traceback only when asked for.
        if os.environ.get("IRKIT_DEBUG"):
            traceback.print_exc()
        print(
            f"irkit: internal error ({type(exc).__name__}: {redact(str(exc))}); "
            "set IRKIT_DEBUG=1 for the traceback",
            file=sys.stderr,
        )
        return USER_ERROR


def _parser() -> argparse.ArgumentParser:
    parser = _ArgumentParser(
        prog="irkit",
        description="The Himalytix incident-response runbook as executable notebooks.",
    )
    parser.add_argument("--version", action="version", version=f"irkit {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = commands.add_parser(
        "run",
        help="execute one runbook section notebook",
        description=(
            "Execute one section notebook with papermill into reports/runs/ (never overwriting), "
            "print its verdicts and where it went. Exit code: the worst status, Nagios style "
            "(0 OK, 1 WARN, 2 CRIT, 3 UNKNOWN); 3 also for a usage error."
        ),
    )
    run.add_argument("section", help="the notebook to run, e.g. db, redis, celery, disk")
    _parameter_options(run)
    run.add_argument("--output", type=Path, help="write the executed notebook exactly here")
    run.add_argument(
        "--incident", metavar="ID",
        help="add the run to this incident as its next numbered notebook (see: irkit incident)",
    )  # fmt: skip
    run.add_argument("--html", action="store_true", help="also write an HTML copy")
    run.add_argument(
        "--show-parameters", action="store_true", help="list the section's parameters and stop"
    )
    run.set_defaults(handler=_run)

    health = commands.add_parser(
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
    _parameter_options(health)
    health.add_argument(
        "--notify", action="store_true",
        help="post a Slack notice (IRKIT_SLACK_WEBHOOK) when the worst status changes, or while "
             "it stays CRIT at most every notify_repeat_min minutes",
    )  # fmt: skip
    health.add_argument(
        "--keep", metavar="AGE",
        help="after the run, delete health reports older than AGE (e.g. 30d, 12h, 2w); "
             "incident records and other reports are never touched",
    )  # fmt: skip
    health.set_defaults(handler=_health)

    sandbox = commands.add_parser(
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
            "e.g. manage migrate)."
        ),
    )
    sandbox.add_argument(
        "action", choices=["up", "down", "status", "reset", "restart", "renew-cert", "manage"]
    )
    sandbox.add_argument("args", nargs=argparse.REMAINDER, help="for restart and manage")
    sandbox.set_defaults(handler=_sandbox)

    drill = commands.add_parser(
        "drill",
        help="rehearse a runbook scenario on the practice stack",
        description=(
            "Make one runbook scenario happen for real on the practice stack (list shows them "
            "and the notebook to run for each), and undo it with stop. Notebooks run while a "
            "drill is active are marked as drills and never count in the incident metrics."
        ),
    )
    drill.add_argument("action", choices=["list", "start", "stop", "status"])
    drill.add_argument("name", nargs="?", help="the drill, for start and stop (stop: or 'all')")
    drill.set_defaults(handler=_drill)

    incident = commands.add_parser(
        "incident",
        help="open, list and show incidents (their executed notebooks are the record)",
        description=(
            "open: create reports/incidents/<id>/ with 01-triage.ipynb prepared to step through "
            "in JupyterLab (or run: irkit run triage --incident ID). list: every incident. "
            "show: one incident's merged record, clocks and timeline."
        ),
    )
    incident_commands = incident.add_subparsers(dest="action", required=True, metavar="ACTION")
    opening = incident_commands.add_parser("open", help="declare an incident")
    opening.add_argument("--title", required=True, help="what is wrong, in a few words")
    opening.add_argument("--category", default="", help="database, infrastructure, application "
                         "or security (picks the escalation path)")  # fmt: skip
    opening.add_argument(
        "--severity", default="", help="P0-P3 if already known (else triage decides)"
    )
    opening.add_argument("--responder", default="", help="who responds (default: $USER)")
    opening.add_argument("--impact-started-at", default="", metavar="TIME",
                         help="when users were first affected, ISO-8601 UTC")  # fmt: skip
    opening.add_argument("--detected-at", default="", metavar="TIME",
                         help="when the alert fired (default: now), ISO-8601 UTC")  # fmt: skip
    opening.add_argument("--detection-source", default="", metavar="TEXT",
                         help="how it was detected, e.g. 'Prometheus alert'")  # fmt: skip
    opening.add_argument("--not-a-drill", action="store_true",
                         help="a real incident, even while a practice drill runs")  # fmt: skip
    opening.add_argument("--id", default=None, dest="incident_id",
                         help="the incident id (default: UTC time and title)")  # fmt: skip
    opening.set_defaults(handler=_incident_open)
    listing = incident_commands.add_parser("list", help="every incident, oldest first")
    listing.add_argument("--json", action="store_true", help="machine-readable")
    listing.set_defaults(handler=_incident_list)
    showing = incident_commands.add_parser("show", help="one incident's merged record")
    showing.add_argument("incident_id", metavar="ID")
    showing.add_argument("--json", action="store_true", help="machine-readable")
    showing.set_defaults(handler=_incident_show)

    report = commands.add_parser(
        "report",
        help="the monthly incident analysis",
        description=(
            "monthly: run the metrics notebook on the incident records (reports/incidents/, or "
            "--reports DIR) into reports/metrics/ with its HTML: MTTD/MTTA/MTTR with median, p90 "
            "and n, SLA compliance, categories, repeats, action items, charts, and the records "
            "that cannot be counted. Exit 0, also when there are no incidents."
        ),
    )
    report.add_argument("kind", choices=["monthly"])
    report.add_argument("--month", default="", help="YYYY-MM (default: the current month, UTC)")
    report.add_argument("--months", type=int, default=6,
                        help="months covered by the tables and trends (default 6)")  # fmt: skip
    report.add_argument("--reports", type=Path, metavar="DIR",
                        help="read the incidents here (reports folder or incidents/)")  # fmt: skip
    report.set_defaults(handler=_report)

    postmortem = commands.add_parser(
        "postmortem",
        help="fill the runbook's postmortem template from an incident's record",
        description=(
            "Run the postmortem notebook on the incident: it writes postmortem.md into the "
            "incident's folder (an earlier one is kept) and lists what the record is missing."
        ),
    )
    postmortem.add_argument("incident_id", metavar="ID")
    postmortem.add_argument("-f", "--file", dest="files", action="append", type=Path, default=[],
                            metavar="FILE", help="a YAML parameter file")  # fmt: skip
    postmortem.add_argument("-p", "--parameter", dest="pairs", action="append", default=[],
                            metavar="NAME=VALUE", help="e.g. -p author='Jane Doe'")  # fmt: skip
    postmortem.set_defaults(handler=_postmortem)
    return parser


def _parameter_options(parser: argparse.ArgumentParser) -> None:
    """-f FILE and -p NAME=VALUE, as every command that runs a notebook takes them."""
    parser.add_argument(
        "-f", "--file", dest="files", action="append", type=Path, default=[], metavar="FILE",
        help="a YAML parameter file (repeatable; later files win)",
    )  # fmt: skip
    parser.add_argument(
        "-p", "--parameter", dest="pairs", action="append", default=[], metavar="NAME=VALUE",
        help="one parameter (repeatable; wins over files)",
    )  # fmt: skip


def _html_copy(notebook: Path, *, exclude_input: bool = False) -> Path | None:
    """Write and print the HTML copy; a failure is said, never fatal (the record is safe)."""
    from irkit import htmlcopy

    try:
        html = htmlcopy.write(notebook, exclude_input=exclude_input)
    except Exception as exc:
        print(f"irkit: could not write the HTML copy: {exc}", file=sys.stderr)
        return None
    print(f"html:   {html}")
    return html


class _ArgumentParser(argparse.ArgumentParser):
    """argparse exits 2 on a usage error; 2 means CRIT here, so usage errors exit 3."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        print(f"irkit: {message}", file=sys.stderr)
        raise SystemExit(USER_ERROR)


def _not_kept(exc: RecordNotWritten) -> int:
    """The checks ran but their record could not be written (a full or read-only disk): a
    responder or a scheduler still gets the verdicts, and exit 3 for the lost record."""
    for result in exc.record.results:
        print(result)
    print(f"irkit: {exc}", file=sys.stderr)
    print(f"status: {exc.record.status.name} (not kept)")
    return USER_ERROR


def _run(args: argparse.Namespace) -> int:
    from irkit import htmlcopy, reports, runner

    if args.show_parameters:
        return _show_parameters(args.section)
    plan = runner.plan(args.section, args.files, args.pairs, args.output, args.incident)
    warm = htmlcopy.warm if args.html else None
    try:
        record = runner.execute(plan, progress=sys.stderr.isatty(), meanwhile=warm)
    except reports.RecordNotWritten as exc:
        return _not_kept(exc)
    for result in record.results:
        print(result)
    if not record.complete:
        why = record.error or "it stopped before the end"
        print(f"irkit: the notebook did not run to the end ({why})", file=sys.stderr)
    elif not record.results:
        print("irkit: the notebook produced no verdicts", file=sys.stderr)
    if args.html:
        _html_copy(record.path)
    print(f"report: {record.path}")
    print(f"status: {record.status.name}")
    return record.status.exit_code


def _health(args: argparse.Namespace) -> int:
    from datetime import timedelta

    from irkit import htmlcopy, reports, runner
    from irkit.health import history, retention
    from irkit.result import utc_now

    keep = retention.parse_age(args.keep) if args.keep else None
    pairs = [*args.pairs, *(["notify=true"] if args.notify else [])]
    folder = history.folder()
    plan = runner.plan("health", args.files, pairs, folder=folder)
    for adopted in reports.adopt_orphans(folder):
        print(f"irkit: kept the record of a run that was killed: {adopted}", file=sys.stderr)
    warm = functools.partial(htmlcopy.warm, exclude_input=True)
    try:
        record = runner.execute(plan, progress=sys.stderr.isatty(), meanwhile=warm)
    except reports.RecordNotWritten as exc:
        return _not_kept(exc)
    for result in record.results:
        print(result)
    if not record.complete:
        why = record.error or "it stopped before the end"
        print(f"irkit: the report did not run to the end ({why})", file=sys.stderr)
    html = _html_copy(record.path, exclude_input=True)
    written = [record.path, *([html] if html else [])]
    print(f"report: {record.path}")
    if keep is not None:
        # The last notice is found in the reports: keep them as long as a reminder may wait.
        repeat = timedelta(
            minutes=float(plan.values.get("notify_repeat_min", default("notify_repeat_min")))
        )
        removed = retention.prune(folder, max(keep, repeat), utc_now(), spare=written)
        if removed:
            print(f"pruned: {len(removed)} health report file(s) older than {args.keep}")
    counts = ", ".join(
        f"{n} {s.name}" for s in Status if (n := sum(r.status is s for r in record.results))
    )
    print(f"status: {record.status.name}" + (f" ({counts})" if counts else ""))
    return record.status.exit_code


def _report(args: argparse.Namespace) -> int:
    import json

    from irkit import bounds, htmlcopy, runner
    from irkit.home import reports_dir
    from irkit.metrics import report

    month = report.parse_month(args.month) if args.month else ""
    bounds.count("--months", "months", args.months)
    pairs = [f"month={month}", f"months={args.months}"]
    if args.reports is not None:
        folder = (
            args.reports / "incidents" if (args.reports / "incidents").is_dir() else args.reports
        )
        if not folder.is_dir():
            raise UsageError(f"no incident folder at {args.reports}: give the reports folder "
                             "that holds incidents/, or the incidents folder itself")  # fmt: skip
        pairs.append(f"incidents_dir={folder.resolve()}")
    plan = runner.plan("metrics", [], pairs, folder=reports_dir() / "metrics")
    warm = functools.partial(htmlcopy.warm, exclude_input=True)
    record = runner.execute(plan, progress=sys.stderr.isatty(), meanwhile=warm)
    if not record.complete:
        print(f"irkit: the analysis did not run to the end ({record.error})", file=sys.stderr)
        print(f"report: {record.path}")
        return USER_ERROR
    nb = json.loads(record.path.read_text(encoding="utf-8"))
    for cell in nb["cells"]:
        for output in cell.get("outputs", []):
            if report.METRICS_MIME in output.get("data", {}):
                print("".join(output["data"]["text/plain"]))
    _html_copy(record.path, exclude_input=True)
    print(f"report: {record.path}")
    return 0


def _show_parameters(section: str) -> int:
    import papermill

    from irkit.home import notebook_path
    from irkit.targets import ENV_FOR_PARAMETER

    for name, p in papermill.inspect_notebook(str(notebook_path(section))).items():
        env = f" (else ${ENV_FOR_PARAMETER[name]})" if name in ENV_FOR_PARAMETER else ""
        print(f"{name}: {p['inferred_type_name']} = {p['default']}{env}")
        if p["help"]:
            print(f"    {p['help']}")
    return 0


def _sandbox(args: argparse.Namespace) -> int:
    from irkit import drills
    from irkit.sandbox.stack import Stack, format_status

    stack = Stack.load()
    if args.action in ("restart", "renew-cert", "manage"):
        return _sandbox_operation(stack, args.action, args.args)
    if args.args:
        raise UsageError(f"irkit sandbox {args.action} takes no further arguments")
    if args.action in ("up", "reset"):
        if args.action == "reset":
            for active in drills.active(stack):
                drills.stop(stack, active.name)
            print(f"deleting the practice stack's data in {stack.base} …", file=sys.stderr)
            stack.reset()
        print(f"starting the practice stack in {stack.base} …", file=sys.stderr)
        held = drills.held_down(stack)
        rows = stack.up(held)
        if held:
            print(f"left down by active drills: {', '.join(sorted(held))}", file=sys.stderr)
    elif args.action == "down":
        rows = stack.down()
    else:
        rows = stack.status()
    print(format_status(rows))
    if args.action != "down":
        _print_active_drills(stack)
    if args.action == "status":
        healthy = all(r.state in ("running", "not installed") for r in rows)
        return 0 if healthy else Status.WARN.exit_code
    return 0


def _sandbox_operation(stack: Stack, action: str, rest: list[str]) -> int:
    from irkit.sandbox import certs

    if action == "manage":
        if not rest:
            raise UsageError("irkit sandbox manage needs a django-admin command, e.g. migrate")
        done = stack.app.manage(*rest)
        sys.stdout.write(done.stdout)
        sys.stderr.write(done.stderr)
        return done.returncode
    if action == "renew-cert":
        folder = stack.web_tls.tls_dir
        assert folder is not None
        for name in certs.NAMES:
            certs.issue_for(folder, name, certs.NORMAL_LIFETIME)
            print(f"renewed {name} for {certs.NORMAL_LIFETIME.days} days")
        stack.web_tls.restart()
        print(f"restarted web-tls at {stack.web_tls.url}")
        return 0
    components = {"web": stack.web, "web-tls": stack.web_tls}
    if len(rest) != 1 or rest[0] not in (*components, "celery-worker", "redis"):
        raise UsageError("irkit sandbox restart needs one of: web, web-tls, celery-worker, redis")
    if rest[0] in ("celery-worker", "redis"):
        server = stack.worker if rest[0] == "celery-worker" else stack.redis
        server.stop()
        server.start()
    else:
        components[rest[0]].restart()
    print(f"restarted {rest[0]}")
    return 0


def _drill(args: argparse.Namespace) -> int:
    from irkit import drills
    from irkit.sandbox.stack import Stack

    stack = Stack.load()
    if args.action == "list":
        for d in drills.catalogue().values():
            print(f"{d.name:<18} {d.scenario}")
            print(f"{'':<18} run: irkit run {d.section} -f parameters/sandbox.yaml")
            print(f"{'':<18} shows: {d.shows}")
        return 0
    if args.action == "status":
        if not drills.active(stack):
            print("no drill is active")
        _print_active_drills(stack)
        return 0
    if not args.name:
        raise UsageError(f"irkit drill {args.action} needs a drill name; see: irkit drill list")
    if args.action == "start":
        drill = drills.get(args.name)
        already = any(a.name == drill.name for a in drills.active(stack))
        active = drills.start(stack, drill.name)
        print(f"drill {drill.name} {'was already active since' if already else 'started at'} "
              f"{active.started_at}: {drill.scenario}")  # fmt: skip
        print(f"now run: irkit run {drill.section} -f parameters/sandbox.yaml")
        print(f"it should show: {drill.shows}")
        print(f"undo with: irkit drill stop {drill.name}")
        return 0
    names = [a.name for a in drills.active(stack)] if args.name == "all" else [args.name]
    for name in names:
        if drills.stop(stack, drills.get(name).name):
            print(f"drill {name} stopped; the practice stack is healthy again")
            if lingers := drills.get(name).lingers:
                print(f"note: {lingers}")
        else:
            print(f"drill {name} was not active")
    return 0


def _incident_open(args: argparse.Namespace) -> int:
    from irkit.home import active_drills
    from irkit.incident import schema, store

    detected = schema.parse_time(schema.time_parameter("--detected-at", args.detected_at))
    # Reads the drills' state files only: a broken practice stack must not stop a real incident.
    active = [] if args.not_a_drill else active_drills()
    opened = store.open_incident(
        args.title,
        category=args.category,
        severity=args.severity,
        responder=args.responder or os.environ.get("USER", ""),
        detected_at=detected,
        impact_started_at=args.impact_started_at,
        detection_source=args.detection_source,
        drill=bool(active),
        incident_id=args.incident_id,
    )
    print(f"incident: {opened.incident_id}" + (f" (drill: {', '.join(active)})" if active else ""))
    print(f"folder:   {opened.folder}")
    print(f"triage:   {opened.notebook}  (open it in JupyterLab: ./kit lab)")
    print(f"headless: irkit run triage --incident {opened.incident_id} -f parameters/<env>.yaml")
    if active:
        print("a drill is running: this incident is marked as one (--not-a-drill if it is real)")
    return 0


def _incident_list(args: argparse.Namespace) -> int:
    import json

    from irkit.incident import load, summary

    incidents, problems = load.load_all()
    for problem in problems:
        print(f"irkit: {problem}", file=sys.stderr)
    if args.json:
        print(json.dumps([i.to_json() for i in incidents], indent=2, default=str))
        return 0
    if not incidents:
        print("no incidents yet; open one with: irkit incident open --title …")
        return 0
    print(summary.table(incidents))
    return 0


def _incident_show(args: argparse.Namespace) -> int:
    import json

    from irkit.incident import load, summary

    incident = load.load(args.incident_id)
    if args.json:
        print(json.dumps(incident.to_json(), indent=2, default=str))
    else:
        print(summary.detail(incident))
    for warning in incident.warnings:
        print(f"irkit: {warning}", file=sys.stderr)
    return 0


def _postmortem(args: argparse.Namespace) -> int:
    from irkit import runner
    from irkit.incident import load

    plan = runner.plan("postmortem", args.files, args.pairs, None, args.incident_id)
    record = runner.execute(plan, progress=sys.stderr.isatty())
    print(f"report: {record.path}")
    if not record.complete:
        print(f"irkit: the postmortem notebook did not run to the end ({record.error})",
              file=sys.stderr)  # fmt: skip
        return USER_ERROR
    written = [e for e in record.events if e.get("kind") == "postmortem"]
    incident = load.load(args.incident_id)
    if written:
        print(f"postmortem: {incident.folder / str(written[-1].get('data', {}).get('file'))}")
    missing = next((e.get("data", {}).get("missing") for e in reversed(written)), None)
    if missing:
        print(f"missing from the record ({len(missing)}): {', '.join(missing)}")
    return 0


def _print_active_drills(stack: Stack) -> None:
    from irkit import drills

    for active in drills.active(stack):
        print(f"drill active: {active.name} (since {active.started_at})")


class UsageError(IrkitError):
    """A command line that cannot be carried out as given."""


if __name__ == "__main__":
    sys.exit(main())
