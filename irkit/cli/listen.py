"""`irkit listen`: receive Alertmanager's webhook and turn each alert group into an incident whose
triage and section notebooks have run, paging as the runbook routes it (irkit.intake)."""

from __future__ import annotations

import argparse
import ipaddress
import os

from irkit.catalogue.parameters import ALERT_INTAKE
from irkit.cli.incident import parameter_sources
from irkit.errors import ConfigError

# The triage parameters the receiver itself reads (the rest go to the notebooks).
ROUTING = (*(p.name for p in ALERT_INTAKE.parameters), "contacts")
TOKEN_ENV = "IRKIT_LISTEN_TOKEN"  # noqa: S105 - the variable's name, not a secret


def listen(args: argparse.Namespace) -> int:
    from irkit import parameters, runner
    from irkit.catalogue.parameters import default
    from irkit.home import reports_dir
    from irkit.intake.handle import Intake
    from irkit.intake.routes import TRIAGE, Router
    from irkit.intake.server import Receiver, serve
    from irkit.intake.spool import Spool

    token = os.environ.get(TOKEN_ENV, "")
    if not token:
        if not args.insecure_loopback:
            raise ConfigError(
                f"{TOKEN_ENV} is not set: set it to a long random string, and give Alertmanager "
                "the same one (http_config: authorization: credentials); or, for a receiver on "
                "loopback only, --insecure-loopback"
            )
        if not _loopback(args.host):
            raise ConfigError(
                f"--insecure-loopback listens on loopback only, not on {args.host}: "
                f"set {TOKEN_ENV} to listen there"
            )
    # Everything an incident is opened with is checked now, as `irkit incident open` checks it.
    kept = runner.incident_parameters(args.files, args.pairs)
    layers = [(str(file), parameters.load_file(file)) for file in args.files]
    given = runner.section_values(TRIAGE, layers, args.pairs)
    values = {name: given.get(name, default(name)) for name in ROUTING}
    taking_part = [s for s, declared in parameters.known().items() if "incident_id" in declared]
    router = Router(values, taking_part)
    spool = Spool(reports_dir() / "intake", int(values["alert_queue_size"]))
    intake = Intake(spool, router, values, kept, parameter_sources(args))
    receiver = Receiver(intake, token=token, workers=int(values["alert_max_runs"]))
    waiting = spool.waiting
    print(
        f"irkit listen: http://{_shown(args.host)}:{args.port}/alertmanager "
        f"({'bearer token required' if token else 'no token: loopback only'}); "
        f"incidents in {reports_dir() / 'incidents'}"
        + (f"; {waiting} notification(s) left unfinished are taken up again" if waiting else ""),
        flush=True,
    )
    serve(receiver, args.host, args.port)
    return 0


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _shown(host: str) -> str:
    return f"[{host}]" if ":" in host else host
