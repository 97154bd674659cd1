"""Interactive use in a real browser: JupyterLab on loopback, the prepared triage notebook run in
headless Chromium (Debian's, driven by Playwright), the severity form answered, and the choice found
in the incident's record although Jupyter saves no widget state."""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from irkit import records
from irkit.incident import load
from irkit.result import RESULT_MIME, Status
from irkit.sandbox.process import free_port
from irkit.sandbox.stack import Stack
from tests.helpers import ROOT, irkit, params_file, targets, wait_for

LAB = ROOT / ".venv-lab" / "bin" / "jupyter"
CHROMIUM = os.environ.get("IRKIT_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
# Chromium as root in a container, on a machine without outside network.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture
def lab(tmp_path: Path, stack: Stack) -> Iterator[tuple[str, Path]]:
    """JupyterLab serving the reports folder, started as `./kit lab` installs it."""
    with jupyterlab(tmp_path, {**os.environ, "IRKIT_REPORTS": str(tmp_path / "reports")}) as lab:
        yield lab


@contextlib.contextmanager
def jupyterlab(tmp_path: Path, environment: dict[str, str]) -> Iterator[tuple[str, Path]]:
    """JupyterLab with `environment`, serving a new reports folder: the URL of a path in it (to
    format), and the folder."""
    if not LAB.exists():
        pytest.fail(f"{LAB} is missing: ./kit test installs JupyterLab there (see ./kit lab)")
    if not Path(CHROMIUM).exists():
        pytest.fail("Chromium is missing: ./kit test installs Debian's chromium")
    reports = tmp_path / "reports"
    reports.mkdir()
    port, token = free_port(), secrets.token_hex(16)
    home = tmp_path / "jupyter"
    env = {
        **environment,
        "JUPYTER_CONFIG_DIR": str(home / "config"),
        "JUPYTER_DATA_DIR": str(home / "data"),
        "JUPYTER_RUNTIME_DIR": str(home / "runtime"),
        "JUPYTERLAB_WORKSPACES_DIR": str(home / "workspaces"),
        "JUPYTERLAB_SETTINGS_DIR": str(home / "settings"),
    }
    # Render every cell: JupyterLab otherwise drops cells far from the viewport from the page.
    tracker = home / "settings" / "@jupyterlab" / "notebook-extension"
    tracker.mkdir(parents=True)
    # and start the notebook's kernel without asking.
    (tracker / "tracker.jupyterlab-settings").write_text(
        '{"windowingMode": "none", "autoStartDefaultKernel": true}'
    )
    log = (tmp_path / "lab.log").open("w")
    server = subprocess.Popen(
        [
            str(LAB),
            "lab",
            "--no-browser",
            "--allow-root",
            "--ip=127.0.0.1",
            f"--port={port}",
            f"--IdentityProvider.token={token}",
            f"--ServerApp.root_dir={reports}",
            "--LabApp.news_url=",
            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=reports,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/api/status?token={token}", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"JupyterLab did not start:\n{(tmp_path / 'lab.log').read_text()}")
            time.sleep(0.3)
        yield f"{base}/lab/tree/{{path}}?token={token}", reports
    finally:
        server.terminate()
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


@contextlib.contextmanager
def run_all(url: str, reports: Path) -> Iterator[Any]:
    """Open a notebook in headless Chromium, wait for its kernel, and Run > Run All Cells, as a
    responder would."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    from playwright.sync_api import expect, sync_playwright

    # A kernel's answer to a click can take seconds while the suite's other workers run:
    # assertions wait as long as the page's own steps do.
    expect.set_options(timeout=60_000)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(60_000)
            page.goto(url)
            page.locator(".jp-Notebook").first.wait_for()
            # JupyterLab may ask for the kernel anyway: answer its picker.
            picker = page.get_by_role("button", name="Select", exact=True)
            with contextlib.suppress(PlaywrightTimeout):
                picker.click(timeout=5_000)
            expect(page.get_by_text("Python 3 (ipykernel) | Idle")).to_be_visible()
            page.get_by_role("menuitem", name="Run", exact=True).click()
            page.get_by_role("menuitem", name="Run All Cells", exact=True).click()
            yield page
        finally:
            browser.close()


def test_the_severity_form_in_jupyterlab_lands_in_the_record(lab: tuple[str, Path]) -> None:
    from playwright.sync_api import expect

    url, reports = lab
    opened = irkit(
        "incident",
        "open",
        "--title",
        "Misaligned logo on the invoice page",
        "--category",
        "application",
        "--id",
        "LAB-1",
        reports=reports,
    )
    assert opened.returncode == 0, opened.stderr
    folder = reports / "incidents" / "LAB-1"

    with run_all(url.format(path="incidents/LAB-1/01-triage.ipynb"), reports) as page:
        form = page.locator(".irkit-record-severity")
        try:
            form.wait_for()
        except Exception:
            page.screenshot(path=str(reports.parent / "lab.png"), full_page=True)
            raise
        # The responder knows what the probes cannot: all tenants see a cosmetic glitch.
        page.locator(".irkit-answer-one_tenant_only select").select_option(label="no")
        page.locator(".irkit-answer-cosmetic_only select").select_option(label="yes")
        form.click()
        expect(page.get_by_text("Recorded: P3 - Low")).to_be_visible()

    # The notebook was never saved: the record still has the choice, from the journal.
    assert 'outputs": []' in (folder / "01-triage.ipynb").read_text()
    incident = load.load_folder(folder)
    assert incident.fields["severity"] == "P3"
    form_events = [e for e in incident.timeline if e["kind"] == "severity-form"]
    assert len(form_events) == 1
    assert form_events[0]["text"] == (
        "responder answered the severity form: Is only one tenant affected? no; "
        "Is it a UI cosmetic issue? yes"
    )
    changes = [e["text"] for e in incident.timeline if e["kind"] == "severity"]
    assert (
        changes[-1]
        == "severity: P2 → P3 (severity form: Is it a UI cosmetic issue? yes (responder))"
    )
    # What the cells recorded while they ran is there too: triage acknowledged it.
    assert incident.fields["acknowledged_at"]
    assert any(e["kind"] == "acknowledged" for e in incident.timeline)


def test_an_action_acts_only_after_the_count_is_typed(lab: tuple[str, Path]) -> None:
    """The confirmation panel: a wrong count does nothing; the right one acts, and who confirmed
    it is in the incident's timeline."""
    import nbformat
    from playwright.sync_api import expect

    url, reports = lab
    assert (
        irkit(
            "incident", "open", "--title", "Disk full", "--id", "LAB-2", reports=reports
        ).returncode
        == 0
    )
    logs = reports.parent / "app-logs"
    logs.mkdir()
    old = time.time() - 10 * 86400
    for name in ("a.log", "b.log"):
        (logs / name).write_text("x" * 100)
        os.utime(logs / name, (old, old))
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)"}
    params = nbformat.v4.new_code_cell(f'incident_id: str = "LAB-2"\nlogs_dir: str = "{logs}"')
    params.metadata["tags"] = ["parameters"]
    nb.cells = [
        nbformat.v4.new_code_cell(
            "import irkit\nfrom irkit import actions\nfrom irkit.probes import disk"
        ),
        params,
        nbformat.v4.new_code_cell('section = irkit.Section("disk", globals())'),
        # A finding for the clean-up to answer (any used space is over 0.01 %).
        nbformat.v4.new_code_cell(
            "section.check(disk.usage, section.host, paths=[logs_dir], warn_pct=0.01, crit_pct=100)"
        ),
        nbformat.v4.new_code_cell(
            "section.act(actions.disk.OldFiles([logs_dir], max_age_days=7, pattern='*.log'),"
            " when='disk.usage', confirmed_by='lab-tester')"
        ),
    ]
    nbformat.write(nb, reports / "cleanup.ipynb")

    with run_all(url.format(path="cleanup.ipynb"), reports) as page:
        button = page.locator(".irkit-confirm-act")
        button.wait_for()
        page.locator(".irkit-confirm-count input").fill("1")
        button.click()
        expect(page.get_by_text("Not done: type 2")).to_be_visible()
        assert (logs / "a.log").exists()
        measured = page.get_by_text("disk.usage", exact=True)
        expect(measured).to_have_count(1)
        page.locator(".irkit-confirm-count input").fill("2")
        button.click()
        expect(page.get_by_text("DONE disk.cleanup")).to_be_visible()
        # Its finding measured again in the panel, right under the result.
        expect(measured).to_have_count(2)
    assert not (logs / "a.log").exists()
    assert not (logs / "b.log").exists()
    timeline = load.load_folder(reports / "incidents" / "LAB-2").timeline
    kinds = [e["kind"] for e in timeline if e["kind"].startswith("action")]
    assert kinds == ["action-plan", "action-confirmed", "action-result"]
    confirmed = next(e for e in timeline if e["kind"] == "action-confirmed")
    assert "confirmed by lab-tester" in confirmed["text"]


def test_an_incident_opened_with_parameters_reaches_the_targets_from_jupyterlab(
    tmp_path: Path, stack: Stack
) -> None:
    """`incident open -f parameters/sandbox.yaml` (pointed at the test stack) prepares a triage
    notebook that JupyterLab runs with no irkit or libpq variable in its environment (not even
    where the reports are): its checks reach the real servers, and its record lands in the
    incident's folder. Its note box refuses an empty note and puts a written one on the
    timeline."""
    from playwright.sync_api import expect

    bare = {k: v for k, v in os.environ.items() if not k.startswith(("IRKIT_", "PG"))}
    test_stack = params_file(tmp_path / "params", {**targets(stack), "prom_window": "15s"})
    with jupyterlab(tmp_path, bare) as (url, reports):
        opened = irkit(
            "incident",
            "open",
            "--title",
            "Login page slow",
            "--category",
            "application",
            "--id",
            "LAB-3",
            "-f",
            str(ROOT / "parameters" / "sandbox.yaml"),
            "-f",
            str(test_stack),
            reports=reports,
        )
        assert opened.returncode == 0, opened.stderr
        folder = reports / "incidents" / "LAB-3"
        notebook = folder / "01-triage.ipynb"
        with run_all(url.format(path="incidents/LAB-3/01-triage.ipynb"), reports) as page:
            page.locator(".irkit-record-severity").wait_for()
            # Every code cell ran: each prompt holds its execution count, none is queued.
            page.wait_for_function(
                """() => [...document.querySelectorAll('.jp-CodeCell .jp-InputPrompt')]
                    .every(p => /\\[\\d+\\]/.test(p.textContent))""",
                timeout=120_000,
            )
            # Saved as a responder saves it (the toolbar's save button: a key press goes to
            # whichever widget has the focus): the executed notebook is the record.
            page.locator('.jp-NotebookPanel-toolbar [data-command="docmanager:save"]').click()
            wait_for(lambda: RESULT_MIME in notebook.read_text(), "the saved verdicts", timeout=60)
            # The note box writes to the journal, not the notebook (a widget's text box keeps
            # the keyboard, so this comes after the save).
            add = page.locator(".irkit-note-add")
            add.click()
            expect(page.get_by_text("Not added: a note needs its text")).to_be_visible()
            page.locator(".irkit-note-text textarea").fill("restarted celery-worker by hand")
            add.click()
            expect(page.get_by_text("Added to the timeline at")).to_be_visible()
            expect(page.locator(".irkit-note-text textarea")).to_have_value("")

    record = records.read(notebook)
    verdicts = {r.probe: r for r in record.results}
    # The practice stack's answers, from its own addresses: never a default's refusal.
    assert verdicts["http.health"].status is Status.OK, verdicts["http.health"].summary
    assert str(stack.web.port) in verdicts["http.health"].target
    assert verdicts["http.smoke"].status is Status.OK, verdicts["http.smoke"].summary
    assert verdicts["postgres.impact"].status is Status.OK, verdicts["postgres.impact"].summary
    assert str(stack.postgres.port) in verdicts["postgres.impact"].target
    assert verdicts["prometheus.alerts"].status is not Status.UNKNOWN
    assert str(stack.prometheus.port) in verdicts["prometheus.alerts"].target
    # What the kernel recorded went to the incident's folder, found from where it ran.
    incident = load.load_folder(folder)
    assert incident.fields["acknowledged_at"]
    assert not (ROOT / "reports" / "incidents" / "LAB-3").exists()
    notes = [e for e in incident.timeline if e["kind"] == "note"]
    assert len(notes) == 1
    assert notes[0]["text"].endswith(": restarted celery-worker by hand")
    assert notes[0]["text"].startswith(f"note by {notes[0]['data']['by']}: ")
