"""An incident opened with parameters (`incident open -f/-p/--env`): checked before anything is
written, written into the prepared triage notebook, and used by every later run of the incident
unless that run says otherwise."""

from __future__ import annotations

import os
from pathlib import Path

import nbformat
import pytest
import yaml

from irkit import environments, parameters, records, runner
from irkit.errors import ConfigError, IrkitError
from irkit.incident import store
from irkit.result import Result, Status
from irkit.sandbox.stack import Stack
from tests.helpers import ROOT, files, irkit, params_file, targets

SANDBOX = ROOT / "parameters" / "sandbox.yaml"
PROD_EXAMPLE = ROOT / "parameters" / "prod.example.yaml"


def injected(notebook: Path) -> str:
    nb = nbformat.read(notebook, as_version=4)
    cells = [c for c in nb.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert len(cells) == 1
    return str(cells[0].source)


def test_later_runs_of_the_incident_use_its_parameters(
    tmp_path: Path, stack: Stack, closed_port: int
) -> None:
    """Opened with the practice file pointed at the test stack: triage is prepared with the
    targets, and `irkit run db --incident` reaches the stack with no -f; its own -p wins."""
    test_stack = params_file(tmp_path / "params", targets(stack))
    opened = irkit(
        "incident",
        "open",
        "--title",
        "Pool exhausted",
        "--id",
        "PAR-1",
        "-f",
        str(SANDBOX),
        "-f",
        str(test_stack),
        "-p",
        "pg_kill_older_than_s=120",
        reports=tmp_path / "reports",
    )
    assert opened.returncode == 0, opened.stderr
    folder = tmp_path / "reports" / "incidents" / "PAR-1"
    assert f"parameters: {folder / store.PARAMETERS}" in opened.stdout

    cell = injected(folder / "01-triage.ipynb")
    assert f"pg_port = {stack.postgres.port}" in cell
    assert f'web_url = "{stack.web.url}"' in cell
    assert 'incident_id = "PAR-1"' in cell
    # Only what the triage section declares: a db threshold is kept for the db runs.
    assert "pg_kill_older_than_s" not in cell
    kept = yaml.safe_load((folder / store.PARAMETERS).read_text())
    assert kept["pg_port"] == stack.postgres.port
    assert kept["pg_kill_older_than_s"] == 120
    # Names, not values, head the file.
    assert (
        f"-f {SANDBOX}, -f {test_stack}, -p pg_kill_older_than_s"
        in ((folder / store.PARAMETERS).read_text().splitlines()[0])
    )

    db = irkit("run", "db", "--incident", "PAR-1", reports=tmp_path / "reports")
    assert db.returncode in (0, 1), db.stdout + db.stderr
    connect = [
        r for r in records.read(folder / "02-db.ipynb").results if r.probe == "postgres.connect"
    ]
    assert [r.status for r in connect] == [Status.OK], connect
    run = nbformat.read(folder / "02-db.ipynb", as_version=4)
    given = run.metadata.papermill.parameters
    assert given["pg_port"] == stack.postgres.port
    assert given["pg_kill_older_than_s"] == 120
    assert (
        given["pg_expected_migrations"]
        == yaml.safe_load(SANDBOX.read_text())["pg_expected_migrations"]
    )

    # A run's own -p wins over the incident's parameters.
    moved = irkit(
        "run",
        "db",
        "--incident",
        "PAR-1",
        "-p",
        f"pg_port={closed_port}",
        reports=tmp_path / "reports",
    )
    assert moved.returncode == Status.CRIT.exit_code, moved.stdout + moved.stderr
    assert nbformat.read(folder / "03-db.ipynb", as_version=4).metadata.papermill.parameters[
        "pg_port"
    ] == (closed_port)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["-p", "redis_url=redis://:topsecret@127.0.0.1:6379/0"],
            "parameter redis_url contains a password or token in its URL",
        ),
        (["-f", "secret.yaml"], "parameter web_url contains a password"),
        (["-p", "pg_hots=127.0.0.1"], "unknown parameter 'pg_hots' (no section declares it)"),
        (["-p", "pg_port=x"], "parameter pg_port must be an integer"),
        (["-f", "typo.yaml"], "unknown parameter 'pg_kill_older_than' in"),
        (
            ["--env", "no-such-env"],
            "unknown environment 'no-such-env': --env NAME reads parameters/NAME.yaml",
        ),
        # One run's decisions are never kept for every later run of the incident.
        (
            ["-p", 'allow_actions=["postgres.terminate"]'],
            "-p: allow_actions is one run's decision, never kept for later runs",
        ),
        (["-f", "decided.yaml"], "declare_resolved is one run's decision, never kept"),
        (["-p", "incident_id=OTHER"], "incident_id is the incident's own id (--id), not kept"),
        # A secret this process holds, pasted into a harmless-looking value.
        (["-p", 'contacts=["DBA: @dba hunter2xyz"]'], "contacts holds a secret"),
        (["--env", "../parameters/sandbox"], "unknown environment '../parameters/sandbox'"),
        (["--env", "prod.example"], "copy parameters/prod.example.yaml to parameters/prod.yaml"),
    ],
)
def test_bad_parameters_open_nothing(tmp_path: Path, args: list[str], message: str) -> None:
    (tmp_path / "secret.yaml").write_text("web_url: https://ops:topsecret@erp.example.com\n")
    (tmp_path / "typo.yaml").write_text("sections: {db: {pg_kill_older_than: 60}}\n")
    (tmp_path / "decided.yaml").write_text("sections: {resolve: {declare_resolved: true}}\n")
    args = [str(tmp_path / a) if a.endswith(".yaml") else a for a in args]
    reports = tmp_path / "reports"
    env = {"PGPASSWORD": "hunter2xyz"}
    done = irkit("incident", "open", "--title", "x", "--id", "BAD", *args, reports=reports, env=env)
    assert done.returncode == 3
    assert message in done.stderr
    assert "Traceback" not in done.stderr
    assert "topsecret" not in done.stderr + done.stdout
    assert "hunter2xyz" not in done.stderr + done.stdout
    assert not reports.exists() or files(reports) == []


def test_env_names_the_kits_parameter_files() -> None:
    assert environments.parameter_file("sandbox") == SANDBOX
    assert "sandbox" in environments.names()
    assert "prod.example" not in environments.names()
    with pytest.raises(ConfigError, match=r"\(there: .*sandbox"):
        environments.parameter_file("staging")


@pytest.mark.parametrize("section", sorted(parameters.known()))
def test_the_production_example_is_valid_for_every_section(section: str) -> None:
    """Loaded through the parameter loader and checked as a run checks it: names, types, ranges,
    URLs (no password), the deployment commands."""
    data = parameters.load_file(PROD_EXAMPLE)
    values = runner.section_values(section, [(str(PROD_EXAMPLE), data)])
    declared = parameters.known()[section]
    assert set(values) <= set(declared)
    assert all("example.com" in str(v) for k, v in values.items() if k.endswith("_url"))


def test_the_production_example_names_only_example_hosts() -> None:
    text = PROD_EXAMPLE.read_text()
    data = yaml.safe_load(text)
    hosts = [data["pg_host"], data["web_url"], data["prom_url"], data["redis_url"]]
    assert all(".example.com" in h for h in hosts)
    assert "password" not in {k.lower() for k in data}
    # It sets something for every section that checks a target.
    opened = runner.incident_parameters([PROD_EXAMPLE], [])
    assert opened["sections"]["db"]["pg_expected_migrations"]


def test_stacked_files_give_what_the_files_give_in_turn() -> None:
    """The incident's one stored mapping gives each section what its files and -p did."""
    first = {"pg_port": 1, "sections": {"db": {"pg_port": 2, "pg_user": "a"}}}
    second = {"pg_port": 3}
    third = {"sections": {"db": {"pg_user": "b"}}}
    merged = parameters.stacked([first, second, third])
    assert merged == {"pg_port": 3, "sections": {"db": {"pg_user": "b"}}}


def test_kit_lab_prepares_the_section_notebooks(
    tmp_path: Path, stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`./kit lab -f … -p …` writes every section notebook with its parameters in; run as it is,
    where JupyterLab runs it (in its own folder, with no irkit or libpq variable), a prepared
    notebook reaches the stack, and a relative folder in the parameters is the kit's."""
    import papermill

    from irkit import lab

    monkeypatch.setenv("IRKIT_REPORTS", str(tmp_path / "reports"))
    options, rest = lab.parse(["--env", "sandbox", "-f", "x.yaml", "-p", "a=b", "--port=9"])
    assert (options.env, options.files, options.pairs, rest) == (
        "sandbox",
        [Path("x.yaml")],
        ["a=b"],
        ["--port=9"],
    )
    test_stack = params_file(tmp_path / "params", targets(stack))
    folder = lab.prepare(
        [SANDBOX, test_stack], ["pg_connect_warn_s=3", 'disk_paths=["tests"]'], "sandbox"
    )
    assert folder.parent == tmp_path / "reports" / "lab"
    assert sorted(p.stem for p in folder.glob("*.ipynb")) == sorted(lab.SECTIONS)
    cell = injected(folder / "db.ipynb")
    assert f"pg_port = {stack.postgres.port}" in cell
    assert "pg_connect_warn_s = 3" in cell
    assert "pg_expected_migrations" in cell  # from the file's sections: db

    for name in [n for n in os.environ if n.startswith(("IRKIT_", "PG"))]:
        monkeypatch.delenv(name)

    def run(section: str) -> list[Result]:
        ran = tmp_path / f"ran-{section}.ipynb"
        papermill.execute_notebook(
            str(folder / f"{section}.ipynb"),
            str(ran),
            kernel_name="python3",
            progress_bar=False,
            cwd=str(folder),
        )
        return records.read(ran).results

    connect = [r for r in run("db") if r.probe == "postgres.connect"]
    assert [r.status for r in connect] == [Status.OK], connect
    (usage,) = [r for r in run("disk") if r.probe == "disk.usage"]
    assert usage.status is not Status.UNKNOWN, usage.summary
    assert str(ROOT / "tests") in usage.summary, usage.summary
    monkeypatch.setenv("IRKIT_REPORTS", str(tmp_path / "reports"))

    # A password is refused before anything is written.
    with pytest.raises(IrkitError, match="contains a password"):
        lab.prepare([], ["web_url=https://ops:topsecret@erp.example.com"])
    assert list((tmp_path / "reports" / "lab").iterdir()) == [folder]


def test_kit_lab_never_reuses_a_folder_and_says_why_it_cannot_write(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from irkit import lab

    monkeypatch.setenv("IRKIT_REPORTS", str(tmp_path / "reports"))
    first = lab.prepare([SANDBOX], [], "sandbox")
    second = lab.prepare([SANDBOX], [], "sandbox")  # within the same second, most likely
    assert first != second
    assert first.parent == second.parent
    assert sorted(p.name for p in second.glob("*.ipynb")) == sorted(
        f"{s}.ipynb" for s in lab.SECTIONS
    )
    # Reports that cannot be written (here: a file where the folder should be): one line, 3.
    blocked = tmp_path / "blocked"
    blocked.write_text("")
    monkeypatch.setenv("IRKIT_REPORTS", str(blocked))
    assert lab.main(["--env", "sandbox"]) == 3
    said = capsys.readouterr().err
    assert said.startswith("kit: cannot prepare the notebooks in ")
    assert "Traceback" not in said
