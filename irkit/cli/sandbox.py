"""`irkit sandbox`: the practice stack's servers (up, down, status, reset) and its own deployment
commands (restart, renew-cert, manage), as the runbook's are for production. With --compose:
the Compose practice stack (up, down, status, reset), whose deployment commands are Compose's."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

from irkit.cli.drill import print_active
from irkit.errors import UsageError
from irkit.result import Status

if TYPE_CHECKING:
    from irkit.sandbox.stack import Stack


def sandbox(args: argparse.Namespace) -> int:
    from irkit import drills
    from irkit.sandbox import readiness
    from irkit.sandbox.stack import Stack

    # `irkit sandbox up --compose`: the option follows the action, where the remainder (the
    # arguments of restart and manage) would take it.
    if "--compose" in args.args:
        args.args = [a for a in args.args if a != "--compose"]
        args.compose = True
    if getattr(args, "compose", False):
        return _compose(args)
    stack = Stack.load()
    if args.action in ("restart", "renew-cert", "manage"):
        return _deployment(stack, args.action, args.args)
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
        stack.up(held)
        # Returned only once a health report would see real data, Prometheus's included.
        print("waiting until every component answers and Prometheus has data …", file=sys.stderr)
        readiness.wait_until_ready(stack, held)
        rows = stack.status()
        if held:
            print(f"left down by active drills: {', '.join(sorted(held))}", file=sys.stderr)
    elif args.action == "down":
        rows = stack.down()
    else:
        rows = stack.status()
    return _shown(stack, args.action, rows, healthy=("running", "not installed"))


def _compose(args: argparse.Namespace) -> int:
    from irkit import drills
    from irkit.errors import SandboxError
    from irkit.sandbox.compose_stack import INSTALL_HINT, ComposeStack

    stack = ComposeStack.load()
    if args.action not in ("up", "down", "status", "reset"):
        raise UsageError(
            f"irkit sandbox {args.action} is for the embedded stack; on the Compose stack use "
            f"Compose itself: cd {stack.compose_dir} && DOCKER_HOST={stack.docker_host} "
            "docker-compose …"
        )
    if args.args:
        raise UsageError(f"irkit sandbox {args.action} takes no further arguments")
    if args.action in ("up", "reset") and not stack.installed:
        raise SandboxError(f"Docker is not installed: {INSTALL_HINT}")
    if args.action in ("up", "reset"):
        if args.action == "reset":
            for active in drills.active(stack):
                drills.stop(stack, active.name)
            print(f"deleting the Compose practice stack's data in {stack.base} …", file=sys.stderr)
            stack.reset()
        print(f"starting the Compose practice stack in {stack.base} …", file=sys.stderr)
        held = drills.held_down(stack)
        rows = stack.up(held)
        print(f"parameters for the notebooks: {stack.parameters_file}", file=sys.stderr)
        if held:
            print(f"left as active drills hold them: {', '.join(sorted(held))}", file=sys.stderr)
    elif args.action == "down":
        rows = stack.down()
    else:
        rows = stack.status()
    return _shown(stack, args.action, rows, healthy=("running",))


def _shown(stack: Any, action: str, rows: list[Any], *, healthy: tuple[str, ...]) -> int:
    """Either stack's table, its active drills, and for `status` whether all is well."""
    from irkit.sandbox.stack import format_status

    print(format_status(rows))
    if action != "down":
        print_active(stack)
    if action == "status" and not all(r.state in healthy for r in rows):
        return Status.WARN.exit_code
    return 0


def _deployment(stack: Stack, action: str, rest: list[str]) -> int:
    """restart, renew-cert and manage: what `deploy_commands` name for the practice stack."""
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
