"""`irkit report monthly`: the monthly incident analysis, its headline tables printed."""

from __future__ import annotations

import argparse
import functools

from irkit.cli.output import USER_ERROR, execute, html_copy
from irkit.errors import UsageError


def report(args: argparse.Namespace) -> int:
    import json

    from irkit import bounds, htmlcopy, runner
    from irkit.home import reports_dir
    from irkit.metrics import monthly

    month = monthly.parse_month(args.month) if args.month else ""
    bounds.count("--months", "months", args.months)
    pairs = [f"month={month}", f"months={args.months}"]
    if args.reports is not None:
        given = args.reports
        folder = given / "incidents" if (given / "incidents").is_dir() else given
        if not folder.is_dir():
            raise UsageError(
                f"no incident folder at {given}: give the reports folder that holds incidents/, "
                "or the incidents folder itself"
            )
        pairs.append(f"incidents_dir={folder.resolve()}")
    plan = runner.plan(
        "metrics", args.files, [*pairs, *args.pairs], folder=reports_dir() / "metrics"
    )
    warm = functools.partial(htmlcopy.warm, exclude_input=True)
    record = execute(plan, "the analysis", meanwhile=warm)
    if not record.complete:
        print(f"report: {record.path}")
        return USER_ERROR
    nb = json.loads(record.path.read_text(encoding="utf-8"))
    for cell in nb["cells"]:
        for output in cell.get("outputs", []):
            if monthly.METRICS_MIME in output.get("data", {}):
                print("".join(output["data"]["text/plain"]))
    html_copy(record.path, exclude_input=True)
    print(f"report: {record.path}")
    return 0
