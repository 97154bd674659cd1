"""The `irkit` command."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path

from irkit import __version__
from irkit.errors import IrkitError
from irkit.result import Status
from irkit.secrets import redact

USER_ERROR = Status.UNKNOWN.exit_code


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    # A scheduler stops a run with SIGTERM: unwind like Ctrl-C, so the record written so far is
    # kept under its name.
    signal.signal(signal.SIGTERM, _terminated)
    try:
        code: int = args.handler(args)
        return code
    except IrkitError as exc:
        print(f"irkit: {exc}", file=sys.stderr)
        return USER_ERROR
    except OSError as exc:
        print(f"irkit: {redact(str(exc))}", file=sys.stderr)
        return USER_ERROR
    except KeyboardInterrupt:
        print("irkit: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (`irkit … | head`): not an error of ours.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
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


def _terminated(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


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
    run.add_argument(
        "-f", "--file", dest="files", action="append", type=Path, default=[], metavar="FILE",
        help="a YAML parameter file (repeatable; later files win)",
    )  # fmt: skip
    run.add_argument(
        "-p", "--parameter", dest="pairs", action="append", default=[], metavar="NAME=VALUE",
        help="one parameter (repeatable; wins over files)",
    )  # fmt: skip
    run.add_argument("--output", type=Path, help="write the executed notebook exactly here")
    run.add_argument("--html", action="store_true", help="also write an HTML copy")
    run.add_argument(
        "--show-parameters", action="store_true", help="list the section's parameters and stop"
    )
    run.set_defaults(handler=_run)

    sandbox = commands.add_parser(
        "sandbox",
        help="the local practice servers",
        description="Start, stop or show the practice PostgreSQL, Redis and Celery worker.",
    )
    sandbox.add_argument("action", choices=["up", "down", "status"])
    sandbox.set_defaults(handler=_sandbox)
    return parser


class _ArgumentParser(argparse.ArgumentParser):
    """argparse exits 2 on a usage error; 2 means CRIT here, so usage errors exit 3."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        print(f"irkit: {message}", file=sys.stderr)
        raise SystemExit(USER_ERROR)


def _run(args: argparse.Namespace) -> int:
    from irkit import runner

    if args.show_parameters:
        return _show_parameters(args.section)
    plan = runner.plan(args.section, args.files, args.pairs, args.output)
    record = runner.execute(plan, progress=sys.stderr.isatty())
    for result in record.results:
        print(result)
    if not record.complete:
        why = record.error or "it stopped before the end"
        print(f"irkit: the notebook did not run to the end ({why})", file=sys.stderr)
    elif not record.results:
        print("irkit: the notebook produced no verdicts", file=sys.stderr)
    if args.html:
        try:
            print(f"html:   {runner.write_html(record.path)}")
        except Exception as exc:  # the record itself is safe; say what went wrong with the copy
            print(f"irkit: could not write the HTML copy: {exc}", file=sys.stderr)
    print(f"report: {record.path}")
    print(f"status: {record.status.name}")
    return record.status.exit_code


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
    from irkit.sandbox.stack import Stack, format_status

    stack = Stack()
    if args.action == "up":
        print(f"starting the practice servers in {stack.base} …", file=sys.stderr)
        rows = stack.up()
    elif args.action == "down":
        rows = stack.down()
    else:
        rows = stack.status()
    print(format_status(rows))
    if args.action == "status":
        return 0 if all(r.state == "running" for r in rows) else Status.WARN.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
