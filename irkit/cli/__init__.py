"""The `irkit` command: parse the command line, run the chosen command, and turn what went wrong
into one line and a Nagios-style exit code. The commands themselves are in this package, one
module per command group; `parser` holds the whole command line."""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Sequence

from irkit import interrupt
from irkit.cli import parser
from irkit.cli.output import USER_ERROR
from irkit.errors import IrkitError
from irkit.secrets import redact


def main(argv: Sequence[str] | None = None) -> int:
    args = parser.build().parse_args(argv)
    # A scheduler stops a run with SIGTERM: it unwinds like Ctrl-C, keeping the record so far.
    interrupt.install()
    try:
        if getattr(args, "env", None):
            from irkit.cli import env_option

            env_option.apply(args)
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
    except KeyboardInterrupt as exc:
        if isinstance(exc, interrupt.Stopped):
            print(f"report: {exc.record}")  # marked incomplete: the cells that did not run say so
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
