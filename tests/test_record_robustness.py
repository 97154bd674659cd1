"""The record's own robustness: refused ids write nothing, a damaged journal line costs only that
line, symlinks and FIFOs in the record are neither followed nor waited on, what a killed run
left is named and kept, and a full disk (a real tmpfs) leaves no half files and still shows the
health verdicts."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest

from irkit import htmlcopy, pids, records, safefiles
from irkit.errors import ConfigError
from irkit.health.alone import LOCK
from irkit.incident import load, postmortem, schema, store
from irkit.incident.log import JOURNAL, _append_line
from irkit.metrics import index, monthly
from irkit.result import utc_now
from tests.helpers import ROOT, irkit


def everything(folder: Path) -> list[Path]:
    """Every entry under `folder`, folders and hidden files included."""
    return sorted(folder.rglob("*")) if folder.exists() else []


def open_incident(reports_dir: Path, incident_id: str) -> Path:
    done = irkit(
        "incident", "open", "--title", "Login returns 500", "--id", incident_id, reports=reports_dir
    )
    assert done.returncode == 0, done.stderr
    return reports_dir / "incidents" / incident_id


def quality(reports_dir: Path) -> list[str]:
    """The monthly analysis's data-quality list for the current month."""
    analysis = monthly.analyse(incidents_dir=str(reports_dir / "incidents"))
    return [f"{q['incident_id']}: {q['reason']}" for q in analysis.quality]


def dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


# --- item 10: a refused `incident open --id` writes nothing ---------------------------------


@pytest.mark.parametrize("bad", ["../x", "", "/etc", ".hidden"])
def test_a_refused_id_writes_nothing_not_even_the_incidents_folder(
    tmp_path: Path, bad: str
) -> None:
    reports_dir = tmp_path / "reports"
    done = irkit("incident", "open", "--title", "t", "--id", bad, reports=reports_dir)
    assert done.returncode == 3, done.stdout + done.stderr
    assert "not a valid incident id" in done.stderr
    assert "Traceback" not in done.stderr
    assert not reports_dir.exists(), everything(reports_dir)


def test_an_empty_id_is_refused_and_no_id_makes_one_up(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="an empty id is not a valid incident id"):
        store.open_incident("t", incident_id="")
    made = irkit("incident", "open", "--title", "Disk full", reports=tmp_path)
    assert made.returncode == 0, made.stderr
    assert next((tmp_path / "incidents").iterdir()).name.endswith("-disk-full")


# --- item 11: one bad journal line ----------------------------------------------------------


def test_one_bad_byte_in_the_journal_costs_only_that_line(tmp_path: Path) -> None:
    folder = open_incident(tmp_path, "J1")
    lines_before = len((folder / JOURNAL).read_bytes().splitlines())
    # Written after the opening: the journal is merged in time order.
    later = {"at": schema.format_time(utc_now()), "incident": {"status": "mitigated"}}
    with (folder / JOURNAL).open("ab") as journal:
        journal.write(b"\xff\n" + json.dumps(later).encode() + b"\n")
    bad_line = lines_before + 1
    incident = load.load_folder(folder)
    assert incident.fields["title"] == "Login returns 500"
    assert incident.time("detected_at") is not None
    assert incident.fields["status"] == "mitigated"  # the line after the bad one still counts
    named = f"journal.jsonl line {bad_line}: skipped, not UTF-8 (byte 0xff at column 1)"
    assert incident.warnings == [named]
    shown = irkit("incident", "show", "J1", reports=tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert "J1: Login returns 500" in shown.stdout
    assert named in shown.stdout
    assert named in shown.stderr
    assert f"J1: {named}" in quality(tmp_path)


def test_a_line_cut_short_does_not_swallow_the_next(tmp_path: Path) -> None:
    journal = tmp_path / JOURNAL
    journal.write_bytes(b'{"at": "2026-11-30T10:00:00Z", "incident": {"stat')  # a full disk
    _append_line(
        journal, json.dumps({"at": "2026-11-30T10:01:00Z", "incident": {"x": 1}}).encode() + b"\n"
    )
    warnings: list[str] = []
    updates, _ = load._read_journal(journal, warnings)
    assert [fields for _, fields in updates] == [{"x": 1}]
    assert len(warnings) == 1
    assert warnings[0].startswith("journal.jsonl line 1: skipped, not JSON (Unterminated string")


# --- item 12: symlinks and FIFOs in the record ----------------------------------------------


def test_a_symlinked_incident_folder_is_refused_for_runs_postmortem_and_show(
    tmp_path: Path,
) -> None:
    reports_dir = tmp_path / "reports"
    open_incident(reports_dir, "REAL")
    outside = tmp_path / "outside"
    outside.mkdir()
    (reports_dir / "incidents" / "EVIL").symlink_to(outside, target_is_directory=True)
    for args in (
        ["run", "disk", "--incident", "EVIL"],
        ["postmortem", "EVIL"],
        ["incident", "show", "EVIL"],
    ):
        done = irkit(*args, reports=reports_dir)
        assert done.returncode == 3, (args, done.stdout, done.stderr)
        assert "is a symlink, not an incident folder" in done.stderr, args
        assert "Traceback" not in done.stderr
    assert list(outside.iterdir()) == []
    listed = irkit("incident", "list", reports=reports_dir)
    assert listed.returncode == 0
    assert "EVIL: a symlink, not an incident folder; not followed" in listed.stderr
    assert "REAL" in listed.stdout
    assert "EVIL" not in listed.stdout
    assert "EVIL: EVIL: a symlink, not an incident folder; not followed" in quality(reports_dir)


def test_a_symlinked_incidents_folder_is_refused(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (tmp_path / "reports").mkdir()
    (tmp_path / "reports" / "incidents").symlink_to(elsewhere, target_is_directory=True)
    done = irkit("incident", "open", "--title", "t", "--id", "A", reports=tmp_path / "reports")
    assert done.returncode == 3
    assert "is a symlink: irkit never keeps incidents through one" in done.stderr
    assert list(elsewhere.iterdir()) == []


def test_symlinked_files_in_an_incident_are_not_read_nor_written_through(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = open_incident(tmp_path, "S1")
    secret = tmp_path / "secret.ipynb"
    nbformat.write(nbformat.v4.new_notebook(), secret)
    (folder / "02-db.ipynb").symlink_to(secret)
    target = tmp_path / "target.txt"
    target.write_text("untouched\n")
    journal = folder / JOURNAL
    journal.rename(tmp_path / "journal.kept")
    journal.symlink_to(target)
    incident = load.load_folder(folder)
    assert "02-db.ipynb: skipped, not read: 02-db.ipynb is a symlink (not followed)" in (
        incident.warnings
    )
    assert any(w.startswith("journal.jsonl: skipped") and "symlink" in w for w in incident.warnings)
    # A notebook's journal entry (JupyterLab) is not appended through the symlink either.
    monkeypatch.setenv("JPY_SESSION_NAME", "x.ipynb")
    from irkit.incident.log import IncidentLog

    log = IncidentLog("S1", "triage", folder)
    with pytest.warns(UserWarning, match="could not add to the incident journal"):
        log._journal({"at": "2026-11-30T10:00:00Z", "event": {}})
    assert target.read_text() == "untouched\n"


def test_a_fifo_in_an_incident_does_not_hang_show_list_or_the_analysis(tmp_path: Path) -> None:
    folder = open_incident(tmp_path, "F1")
    os.mkfifo(folder / "07-redis.ipynb")
    os.mkfifo(tmp_path / "incidents" / index.NAME)
    named = (
        "07-redis.ipynb: skipped, not read: "
        "07-redis.ipynb is not a regular file (a named pipe (FIFO))"
    )
    for args in (["incident", "show", "F1"], ["incident", "list", "--json"]):
        done = subprocess.run(
            [sys.executable, "-m", "irkit", *args],
            capture_output=True,
            text=True,
            cwd=ROOT,
            timeout=60,
            check=False,
            env={**os.environ, "IRKIT_REPORTS": str(tmp_path)},
        )
        assert done.returncode == 0, (args, done.stderr)
        assert named in done.stdout + done.stderr, args
    assert f"F1: {named}" in quality(tmp_path)


def test_a_file_larger_than_any_record_is_named_not_read(tmp_path: Path) -> None:
    folder = open_incident(tmp_path, "B1")
    # Sparse: it takes no disk space, but reading it whole would take 300 MB of memory.
    with (folder / "07-redis.ipynb").open("wb") as huge:
        huge.truncate(300 << 20)
    shown = irkit("incident", "show", "B1", reports=tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert "07-redis.ipynb is larger than 256 MiB (not read)" in shown.stdout
    assert any("larger than 256 MiB" in q for q in quality(tmp_path))
    small = tmp_path / "small.json"
    small.write_bytes(b"x" * 11)
    with pytest.raises(safefiles.TooLarge):
        safefiles.read_regular(small, limit=10)
    assert safefiles.read_regular(small, limit=11) == b"x" * 11


def test_a_fifo_in_place_of_the_lock_is_refused_not_waited_on(tmp_path: Path) -> None:
    folder = open_incident(tmp_path, "L1")
    os.mkfifo(folder / ".lock")
    run = tmp_path / ".db.partial.ipynb"
    run.write_text("{}")
    with pytest.raises(ConfigError, match="remove it"):
        store.publish_numbered(run, folder, "db")
    assert run.exists()  # the run's record is still there to publish once the FIFO is gone


def test_a_notebook_of_the_wrong_shape_is_named_and_the_rest_still_read(tmp_path: Path) -> None:
    folder = open_incident(tmp_path, "M1")
    # An executed notebook from the record fixture, one of its cells' metadata made null and one
    # output's data a list: valid JSON, wrong shape.
    data = json.loads((ROOT / "tests/fixtures/incidents/API-502/02-triage.ipynb").read_text())
    code = [c for c in data["cells"] if c["cell_type"] == "code" and c.get("outputs")]
    code[0]["metadata"] = None
    code[1]["outputs"][0]["data"] = []
    (folder / "02-db.ipynb").write_text(json.dumps(data))
    shown = irkit("incident", "show", "M1", reports=tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert "02-db.ipynb" in shown.stdout
    assert "not a notebook" in shown.stdout
    assert "M1: " in shown.stdout  # the title and the rest of the record are still there
    listed = irkit("incident", "list", reports=tmp_path)
    assert listed.returncode == 0, listed.stderr


def test_a_password_file_that_is_a_fifo_or_a_device_does_not_stop_the_scrubber(
    tmp_path: Path,
) -> None:
    fifo = tmp_path / "pgpass"
    os.mkfifo(fifo)
    for passfile in (fifo, Path("/dev/zero")):
        done = subprocess.run(
            [sys.executable, "-c", "from irkit.secrets import redact; print(redact('x=1'))"],
            capture_output=True,
            text=True,
            cwd=ROOT,
            timeout=30,
            check=False,
            env={**os.environ, "PGPASSFILE": str(passfile)},
        )
        assert done.stdout == "x=1\n", (passfile, done.stderr)


# --- item 13: what a killed run left ----------------------------------------------------------


def test_a_killed_incident_run_is_named_in_show_postmortem_and_analysis_then_kept(
    tmp_path: Path,
) -> None:
    folder = open_incident(tmp_path, "K1")
    run = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "irkit",
            "run",
            "disk",
            "--incident",
            "K1",
            "-p",
            f"disk_paths={json.dumps([str(tmp_path)])}",
        ],
        cwd=ROOT,
        env={**os.environ, "IRKIT_REPORTS": str(tmp_path)},
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    partial = folder / f".disk.{run.pid}@{pids.this_host()}.partial.ipynb"
    deadline = time.monotonic() + 60
    while not partial.exists() and run.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    os.killpg(run.pid, signal.SIGKILL)  # the run and its kernel: nothing gets to clean up
    run.wait(timeout=30)
    assert partial.exists(), "the run ended before it could be killed"
    killed = (
        f"{partial.name}: the run (pid {run.pid} on {pids.this_host()}) was killed before it "
        "finished"
    )
    shown = irkit("incident", "show", "K1", reports=tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert killed in shown.stdout
    assert f"{partial.name} " in shown.stdout.split("notebooks:")[1]  # listed with the notebooks
    assert any(q.startswith(f"K1: {killed}") for q in quality(tmp_path))
    document = postmortem.build(load.load_folder(folder))
    about = document.markdown.split("## About this record")[1]
    assert killed in about
    # The next run on the incident numbers it first: it is never lost.
    after = irkit("postmortem", "K1", reports=tmp_path)
    assert after.returncode == 0, after.stderr
    assert killed in (folder / "postmortem.md").read_text()
    assert sorted(p.name for p in folder.glob("0*.ipynb")) == [
        "01-triage.ipynb",
        "02-disk.ipynb",
        "03-postmortem.ipynb",
    ]
    assert not list(folder.glob(".*.ipynb*"))
    assert not load.load_folder(folder).notebooks[1].complete


def test_the_analysis_index_sees_a_run_killed_since_it_was_built(tmp_path: Path) -> None:
    folder = open_incident(tmp_path, "K2")
    assert quality(tmp_path) == []  # the index is built
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x")])
    nbformat.write(nb, folder / f".db.{dead_pid()}.partial.ipynb")
    assert any("was killed before it finished" in q for q in quality(tmp_path))


# --- item 14: a full disk (a real tmpfs) ---------------------------------------------------


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 4 MiB tmpfs of its own, unmounted at the end."""
    mount = tmp_path / "disk"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)], check=True)
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(disk: Path) -> None:
    """Take every free byte of `disk`."""
    with contextlib.suppress(OSError), (disk / "filler").open("wb") as filler:
        while True:
            filler.write(b"\0" * 65536)
            filler.flush()
    assert os.statvfs(disk).f_bavail == 0


def test_a_full_disk_leaves_no_half_copy_and_no_used_id(small_disk: Path) -> None:
    reports_dir = small_disk / "reports"
    open_incident(reports_dir, "D0")
    notebook = reports_dir / "incidents" / "D0" / "01-triage.ipynb"
    fill(small_disk)
    before = everything(reports_dir)
    with pytest.raises(OSError, match="No space left"):
        htmlcopy.write(notebook)
    with pytest.raises(OSError, match="No space left"):
        postmortem.Postmortem("# x\n" * 100_000, ()).write(notebook.parent)
    assert everything(reports_dir) == before  # no `.html.NNN.partial`, no postmortem.md
    done = irkit("incident", "open", "--title", "t", "--id", "D1", reports=reports_dir)
    assert done.returncode == 3
    assert "No space left on device; nothing was kept, and the id D1 is still free" in done.stderr
    assert "Traceback" not in done.stderr
    assert everything(reports_dir) == before
    (small_disk / "filler").unlink()
    open_incident(reports_dir, "D1")  # the id was not used up


def test_health_on_a_full_disk_prints_its_verdicts_and_says_the_record_is_lost(
    small_disk: Path,
) -> None:
    reports_dir = small_disk / "reports"
    (reports_dir / "health").mkdir(parents=True)
    fill(small_disk)
    unreachable = [
        "-p",
        "pg_port=1",
        "-p",
        "web_url=http://127.0.0.1:1",
        "-p",
        "prom_url=http://127.0.0.1:1",
        "-p",
        "redis_url=redis://127.0.0.1:1/1",
        "-p",
        "celery_broker_url=redis://127.0.0.1:1/0",
        "-p",
        f"disk_paths={json.dumps([str(small_disk)])}",
    ]
    done = irkit("health", *unreachable, reports=reports_dir)
    assert done.returncode == 3, done.stdout + done.stderr
    assert "CRIT    disk.usage" in done.stdout  # the full disk itself, among the verdicts
    assert "postgres.connect" in done.stdout
    assert "the record could not be written" in done.stderr
    assert "No space left on device" in done.stderr
    assert "status: CRIT (not kept)" in done.stdout
    # No .writing, no partial: only the folder and the empty lock one report at a time holds.
    assert everything(reports_dir) == [reports_dir / "health", reports_dir / "health" / LOCK]


def test_a_run_on_a_full_disk_leaves_nothing_and_says_so(small_disk: Path) -> None:
    fill(small_disk)
    out = small_disk / "runs"
    out.mkdir()
    done = irkit(
        "run",
        "disk",
        "--output",
        str(out / "d.ipynb"),
        "-p",
        f"disk_paths={json.dumps([str(small_disk)])}",
        reports=small_disk / "reports",
    )
    assert done.returncode == 3, done.stdout + done.stderr
    assert "the record could not be written" in done.stderr
    assert "Traceback" not in done.stderr
    # The checks ran: their verdicts are printed even though the record is lost.
    assert "disk.usage" in done.stdout
    assert "(not kept)" in done.stdout
    assert everything(out) == []


def test_a_save_that_fails_leaves_no_writing_file(small_disk: Path) -> None:
    path = small_disk / f".x.{os.getpid()}.partial.ipynb"
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("x" * 100_000)])
    fill(small_disk)
    error = records.save_whole(nb, path)
    assert error is not None
    assert "No space left" in str(error)
    assert sorted(p.name for p in small_disk.iterdir()) == ["filler"]
