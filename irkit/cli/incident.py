"""`irkit incident open|list|show|note` and `irkit postmortem ID`: an incident's record from the
command line (its executed notebooks are the record)."""

from __future__ import annotations

import argparse
import os
import sys

from irkit.cli.output import USER_ERROR, execute
from irkit.errors import ConfigError


def open_incident(args: argparse.Namespace) -> int:
    from irkit import runner
    from irkit.home import active_drills
    from irkit.incident import schema, store

    detected = schema.parse_time(schema.time_parameter("--detected-at", args.detected_at))
    # Checked for every section before anything is written, as `irkit run` checks them.
    kept = runner.incident_parameters(args.files, args.pairs)
    triage = runner.section_values("triage", [("the parameters", kept)]) if kept else {}
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
        drill=args.drill or bool(active),
        incident_id=args.incident_id,
        parameters=kept,
        triage_values=triage,
        parameters_from=parameter_sources(args),
    )
    drill = f" (drill: {', '.join(active)})" if active else " (drill)" if args.drill else ""
    print(f"incident: {opened.incident_id}{drill}")
    print(f"folder:   {opened.folder}")
    print(f"triage:   {opened.notebook}  (open it in JupyterLab: ./kit lab)")
    if kept:
        print(f"parameters: {opened.folder / store.PARAMETERS} (every run of it starts from them)")
        print(f"headless: irkit run triage --incident {opened.incident_id}")
    else:
        print(
            f"headless: irkit run triage --incident {opened.incident_id} -f parameters/<env>.yaml"
            "  (or open the incident with -f/--env: its notebooks then need neither)"
        )
    if active:
        print("a drill is running: this incident is marked as one (--not-a-drill if it is real)")
    return 0


def parameter_sources(args: argparse.Namespace) -> str:
    """Where the incident's parameters came from, for the head of its parameter file: names
    only (values are in the file itself)."""
    given = [f"--env {args.env}"] if args.env else []
    given += [f"-f {file}" for file in args.files[1 if args.env else 0 :]]
    given += [f"-p {pair.partition('=')[0].strip()}" for pair in args.pairs]
    return ", ".join(given)


def list_incidents(args: argparse.Namespace) -> int:
    import json

    from irkit.incident import load, summary

    incidents, problems = load.load_all()
    for problem in problems:
        print(f"irkit: {problem}", file=sys.stderr)
    if args.env:
        incidents = [i for i in incidents if i.get("environment") == args.env]
    if args.json:
        print(json.dumps([i.to_json() for i in incidents], indent=2, default=str))
        return 0
    if not incidents:
        if args.env:
            print(f"no incidents of environment {args.env}")
        else:
            print("no incidents yet; open one with: irkit incident open --title …")
        return 0
    print(summary.table(incidents))
    return 0


def show_incident(args: argparse.Namespace) -> int:
    import json

    from irkit.incident import load, summary

    incident = load.load(args.incident_id)
    theirs = incident.get("environment") or ""
    if args.env and theirs != args.env:
        # A responder who named the environment is shown nothing of another one's incident.
        where = f"is of environment {theirs!r}" if theirs else "names no environment"
        instead = f"with --env {theirs} or without --env" if theirs else "without --env"
        raise ConfigError(
            f"incident {args.incident_id} {where}, not {args.env!r}: show it {instead}"
        )
    if args.json:
        print(json.dumps(incident.to_json(), indent=2, default=str))
    else:
        print(summary.detail(incident))
    for warning in incident.warnings:
        print(f"irkit: {warning}", file=sys.stderr)
    return 0


def note(args: argparse.Namespace) -> int:
    from irkit.escape import one_line
    from irkit.incident import notes

    event = notes.add(args.incident_id, args.text, at=args.at, by=args.by)
    print(f"noted on {args.incident_id} at {event['at']}: {one_line(event['text'])}")
    return 0


def postmortem(args: argparse.Namespace) -> int:
    from irkit import runner
    from irkit.incident import load

    plan = runner.plan("postmortem", args.files, args.pairs, None, args.incident_id)
    record = execute(plan, "the postmortem notebook")
    print(f"report: {record.path}")
    if not record.complete:
        return USER_ERROR
    written = [e for e in record.events if e.get("kind") == "postmortem"]
    incident = load.load(args.incident_id)
    if written:
        print(f"postmortem: {incident.folder / str(written[-1].get('data', {}).get('file'))}")
    missing = next((e.get("data", {}).get("missing") for e in reversed(written)), None)
    if missing:
        print(f"missing from the record ({len(missing)}): {', '.join(missing)}")
    return 0
