"""Regenerate the README's screenshots of the monthly analysis and the health report:

    .venv/bin/python docs/screens.py

The monthly analysis is run on the test records (tests/fixtures/incidents, 25 incidents over
September to November 2026); the health report on practice servers of its own, started on free
ports in a temporary folder: once healthy, then during the celery-backlog drill (the worker
stopped, 6000 tasks waiting), so the second report shows what needs attention and what changed.
Chromium (Debian's `chromium`, or IRKIT_CHROMIUM) draws the HTML copies, as a reader sees them.

Writes docs/monthly.png (headline and durations), docs/monthly-trend.png, docs/monthly-sla.png,
docs/monthly-actions.png and docs/health.png (the summary).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from conftest import session_stack  # noqa: E402  (the tests' practice servers, on free ports)
from tests.helpers import healthy  # noqa: E402

DOCS = ROOT / "docs"
CHROMIUM = os.environ.get("IRKIT_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
# Chromium as root in a container, without outside network.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-sync"]
WIDTH = 1100


def irkit(*args: str, reports: Path) -> Path:
    """Run an irkit command writing under `reports`; return the HTML copy it wrote."""
    done = subprocess.run(
        [str(Path(sys.executable).parent / "irkit"), *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "IRKIT_REPORTS": str(reports)},
        check=False,
    )
    print(done.stdout, end="")
    if done.returncode not in (0, 1, 2):
        sys.exit(f"irkit {' '.join(args)} failed ({done.returncode}):\n{done.stderr}")
    (html,) = sorted(reports.rglob("*.html"), key=lambda p: p.stat().st_mtime)[-1:]
    return html


def monthly(work: Path) -> Path:
    reports = work / "monthly"
    shutil.copytree(ROOT / "tests" / "fixtures" / "incidents", reports / "incidents")
    return irkit("report", "monthly", "--month", "2026-11", "--months", "3", reports=reports)


def health(work: Path) -> Path:
    from irkit import drills

    stack = session_stack()
    try:
        params = work / "health.yaml"
        params.write_text(yaml.safe_dump(healthy(stack)))
        reports = work / "health"
        irkit("health", "-f", str(params), reports=reports)
        drills.start(stack, "celery-backlog")
        try:
            return irkit("health", "-f", str(params), reports=reports)
        finally:
            drills.stop(stack, "celery-backlog")
    finally:
        import conftest

        stack.down()
        shutil.rmtree(conftest._base or work / "none", ignore_errors=True)


def shoot(html: Path, regions: dict[str, tuple[str, str]]) -> None:
    """Screenshot each region of the page, full width: from the top of the element the first
    selector finds to the top of the one the second finds (playwright selectors)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": WIDTH, "height": 900})
            page.goto(html.as_uri())
            for name, (start, end) in regions.items():
                top, bottom = _top(page, start), _top(page, end)
                page.screenshot(
                    path=str(DOCS / name),
                    full_page=True,
                    clip={"x": 0, "y": top - 8, "width": WIDTH, "height": bottom - top},
                )
                print(f"wrote docs/{name}")
        finally:
            browser.close()


def _top(page: Any, selector: str) -> float:
    box = page.locator(selector).first.bounding_box()
    if box is None:
        sys.exit(f"nothing matches {selector!r} in the report")
    return float(box["y"])


def heading(text: str) -> str:
    return f"h1:has-text({text!r}), h2:has-text({text!r})"


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="irkit-screens-"))
    try:
        shoot(
            monthly(work),
            {
                # The headline and the durations grids, down to the first chart.
                "monthly.png": (heading("Headline"), 'img[alt="chart"]'),
                # The median TTR per month (the fourth chart), n under each month.
                "monthly-trend.png": ('img[alt="chart"] >> nth=3', heading("SLA compliance")),
                "monthly-sla.png": (
                    heading("SLA compliance"),
                    heading("Incidents by severity and category"),
                ),
                "monthly-actions.png": (heading("Action items"), heading("Drills")),
            },
        )
        shoot(health(work), {"health.png": (heading("Summary"), heading("1. Web app"))})
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
