"""`irkit run SECTION`: one section notebook executed into its record, its verdicts printed;
`--show-parameters` lists what the section takes instead."""

from __future__ import annotations

import argparse
import sys

from irkit.cli.output import execute, html_copy, not_kept


def run(args: argparse.Namespace) -> int:
    from irkit import htmlcopy, records, runner

    if args.show_parameters:
        return show_parameters(args.section)
    plan = runner.plan(args.section, args.files, args.pairs, args.output, args.incident)
    warm = htmlcopy.warm if args.html else None
    try:
        record = execute(plan, "the notebook", meanwhile=warm)
    except records.RecordNotWritten as exc:
        return not_kept(exc)
    if record.complete and not record.results:
        print("irkit: the notebook produced no verdicts", file=sys.stderr)
    if args.html:
        html_copy(record.path)
    print(f"report: {record.path}")
    print(f"status: {record.status.name}")
    return record.status.exit_code


def show_parameters(section: str) -> int:
    import papermill

    from irkit.home import notebook_path
    from irkit.target_builders import ENV_FOR_PARAMETER

    for name, p in papermill.inspect_notebook(str(notebook_path(section))).items():
        env = f" (else ${ENV_FOR_PARAMETER[name]})" if name in ENV_FOR_PARAMETER else ""
        print(f"{name}: {p['inferred_type_name']} = {p['default']}{env}")
        if p["help"]:
            print(f"    {p['help']}")
    return 0
