"""Unbounded or unchecked input is refused before anything runs or is written: oversized and
non-regular parameter files, numbers out of range (nan, inf, a percentage of 500, a month count of
100000), unknown actions and pids that are not numbers, and an `--output` that cannot be written."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import papermill
import pytest

from irkit import parameters, runner
from irkit.actions import celery, deployment, disk, postgres, redis
from irkit.errors import IrkitError, ParameterError
from irkit.section import Section
from irkit.targets import CeleryTarget, PostgresTarget, RedisTarget
from tests.helpers import ROOT, irkit


def written(folder: Path) -> list[Path]:
    return sorted(folder.rglob("*")) if folder.exists() else []


def refused_in_one_line(done: subprocess.CompletedProcess[str], message: str) -> None:
    assert done.returncode == 3, done.stderr
    assert done.stderr.count("\n") == 1, done.stderr
    assert message in done.stderr
    assert "Traceback" not in done.stderr


@pytest.fixture
def reports(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "reports"
    monkeypatch.setenv("IRKIT_REPORTS", str(folder))
    return folder


def in_notebook(section: str, **given: Any) -> Section:
    """A Section created as a notebook creates it, after papermill injected `given`."""
    declared = parameters.known()[section]
    namespace: dict[str, Any] = {
        "__annotations__": {name: d.type for name, d in declared.items()},
        **{name: d.default for name, d in declared.items()},
        **given,
    }
    return Section(section, namespace)


# --- 6. parameter files: regular, and small ---------------------------------------------------


def test_a_parameter_file_of_dev_zero_is_refused_without_reading_it() -> None:
    # Under an address-space limit, reading /dev/zero to the end fails instead of filling the
    # machine: the refusal must come before any read.
    code = (
        "import resource, sys; from pathlib import Path; "
        "resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30)); "
        "from irkit import parameters; from irkit.errors import ConfigError\n"
        "try: parameters.load_file(Path('/dev/zero'))\n"
        "except ConfigError as exc: print(exc)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        check=False,
    )
    assert done.stdout.strip() == "parameter file /dev/zero is a device, not a regular file"


@pytest.mark.parametrize("kind", ["fifo", "folder", "device"])
def test_a_parameter_file_that_is_not_a_regular_file_is_refused(tmp_path: Path, kind: str) -> None:
    path = {"fifo": tmp_path / "params.yaml", "folder": tmp_path, "device": Path("/dev/zero")}
    if kind == "fifo":
        os.mkfifo(path[kind])  # nobody writes: opening it for reading would wait for ever
    what = {"fifo": "a named pipe (FIFO)", "folder": "a folder", "device": "a device"}[kind]
    done = irkit("run", "db", "-f", str(path[kind]), reports=tmp_path / "reports", timeout=30)
    refused_in_one_line(done, f"parameter file {path[kind]} is {what}, not a regular file")
    assert written(tmp_path / "reports") == []


def test_an_oversized_parameter_file_is_refused(tmp_path: Path) -> None:
    big = tmp_path / "big.yaml"
    with big.open("w") as f:
        f.write("pg_host: db\n# padding\n" + "#" * (1024 * 1024 + 1) + "\n")
    done = irkit("run", "db", "-f", str(big), reports=tmp_path / "reports")
    refused_in_one_line(done, f"parameter file {big} is larger than 1024 KiB")
    assert written(tmp_path / "reports") == []


def test_a_parameter_file_given_to_postmortem_is_bounded_too(tmp_path: Path) -> None:
    done = irkit("postmortem", "SOME-ID", "-f", "/dev/zero", reports=tmp_path / "reports")
    refused_in_one_line(done, "is a device, not a regular file")


def test_an_oversized_ca_file_is_refused(tmp_path: Path, reports: Path) -> None:
    ca = tmp_path / "ca.pem"
    with ca.open("wb") as f:
        f.truncate(10 * 1024 * 1024 + 1)  # sparse: nothing is written to the disk
    with pytest.raises(IrkitError, match=r"parameter web_ca_file .* is larger than"):
        runner.plan("health", pairs=[f"web_ca_file={ca}"])
    assert written(reports) == []


# --- 7. counts and durations within bounds ---------------------------------------------------


@pytest.mark.parametrize("months", ["121", "100000"])
def test_report_months_is_bounded(tmp_path: Path, months: str) -> None:
    done = irkit("report", "monthly", "--months", months, reports=tmp_path / "reports")
    refused_in_one_line(done, "--months must be at least 1 and at most 120 months")
    assert written(tmp_path / "reports") == []


def test_health_keep_is_bounded(tmp_path: Path) -> None:
    done = irkit("health", "--keep", "100000000d", reports=tmp_path / "reports")
    refused_in_one_line(done, "at most 3650d")
    assert written(tmp_path / "reports") == []


def refused_before_planning(reports: Path, section: str, pair: str, message: str) -> None:
    """`-p pair` stops the run while it is planned, saying `message`, and nothing is written."""
    with pytest.raises(ParameterError, match=re.escape(message)):
        runner.plan(section, pairs=[pair])
    assert written(reports) == []


@pytest.mark.parametrize(
    ("section", "pair", "message"),
    [
        ("resolve", "load_requests=1000000", "load_requests must be at least 1 and at most 10000"),
        ("resolve", "load_requests=0", "load_requests must be at least 1"),
        (
            "resolve",
            "load_concurrency=100000",
            "load_concurrency must be at least 1 and at most 100",
        ),
        ("db", "pg_statement_timeout_s=100000", "at most 300 (a notebook cell is stopped after"),
        (
            "db",
            "pg_connect_timeout_s=100000",
            "pg_connect_timeout_s must be at least 1 and at most 300",
        ),
        (
            "health",
            "health_deadline_s=86400",
            "health_deadline_s must be a positive number of seconds, at most 300",
        ),
        (
            "health",
            "notify_repeat_min=1e9",
            "notify_repeat_min must be a positive number of minutes",
        ),
        (
            "disk",
            "host_cpu_interval_s=3600",
            "host_cpu_interval_s must be a positive number of seconds, at most 60",
        ),
        ("metrics", "months=100000", "months must be at least 1 and at most 120"),
        ("celery", "celery_pool_change=100000", "celery_pool_change must be at least -1000"),
        ("triage", "next_update_min=0", "next_update_min must be a positive number of minutes"),
        ("disk", "disk_log_max_age_days=0", "disk_log_max_age_days must be a positive number"),
        (
            "health",
            f"tls_endpoints=[{','.join(['x:443'] * 101)}]",
            "tls_endpoints has 101 entries; at most 100",
        ),
    ],
)
def test_counts_and_durations_are_bounded_before_anything_runs(
    reports: Path, section: str, pair: str, message: str
) -> None:
    refused_before_planning(reports, section, pair, message)


def test_every_number_a_notebook_declares_has_a_range_holding_its_default() -> None:
    from irkit import bounds

    for section, declared in parameters.known().items():
        for name, d in declared.items():
            if d.type in ("int", "float"):
                bound = bounds.range_for(name)
                assert bound is not None, f"{section}: {name} has no range in irkit.bounds"
                assert bound.admits(d.default), f"{section}: {name}={d.default} out of {bound}"
        parameters.check_values({}, declared)  # every default passes every check


# --- 8. nan, inf and percentages -------------------------------------------------------------


@pytest.mark.parametrize(
    ("section", "pair", "message"),
    [
        ("db", "pg_statement_timeout_s=inf", "pg_statement_timeout_s must be a finite number"),
        ("db", "pg_long_query_warn_s=nan", "pg_long_query_warn_s must be a finite number"),
        ("redis", "redis_socket_timeout_s=inf", "redis_socket_timeout_s must be a finite number"),
        ("db", "pg_long_query_crit_s=-inf", "pg_long_query_crit_s must be a finite number"),
        ("db", "pg_long_query_crit_s=1e400", "pg_long_query_crit_s must be a finite number"),
        (
            "db",
            "pg_connections_warn_pct=500",
            "pg_connections_warn_pct must be at least 0 and at most 100% (a percentage), got 500",
        ),
        ("redis", "redis_memory_crit_pct=-5", "redis_memory_crit_pct must be at least 0"),
        (
            "health",
            "host_cpu_crit_pct=101",
            "host_cpu_crit_pct must be at least 0 and at most 100%",
        ),
    ],
)
def test_non_finite_numbers_and_wild_percentages_are_refused(
    reports: Path, section: str, pair: str, message: str
) -> None:
    refused_before_planning(reports, section, pair, message)


@pytest.mark.parametrize(
    ("yaml", "message"),
    [
        ("pg_statement_timeout_s: .inf\n", "pg_statement_timeout_s must be a finite number"),
        ("pg_long_query_warn_s: .nan\n", "pg_long_query_warn_s must be a finite number"),
        ("sections: {redis: {redis_socket_timeout_s: .inf}}\n", "must be a finite number"),
        ("pg_connections_crit_pct: 500\n", "pg_connections_crit_pct must be at least 0"),
    ],
)
def test_non_finite_numbers_from_yaml_are_refused(
    tmp_path: Path, reports: Path, yaml: str, message: str
) -> None:
    file = tmp_path / "p.yaml"
    file.write_text(yaml)
    section = "redis" if "redis" in yaml else "db"
    with pytest.raises(ParameterError, match=re.escape(message)):
        runner.plan(section, [file])
    assert written(reports) == []


def test_the_cli_refuses_inf_in_one_line_and_writes_nothing(tmp_path: Path) -> None:
    done = irkit("run", "db", "-p", "pg_statement_timeout_s=inf", reports=tmp_path / "reports")
    refused_in_one_line(done, "parameter pg_statement_timeout_s must be a finite number, got inf")
    assert written(tmp_path / "reports") == []


@pytest.mark.parametrize(
    ("section", "given", "message"),
    [
        ("db", {"pg_statement_timeout_s": float("inf")}, "must be a finite number"),
        ("db", {"pg_long_query_warn_s": float("nan")}, "must be a finite number"),
        ("redis", {"redis_socket_timeout_s": float("inf")}, "must be a finite number"),
        ("db", {"pg_connections_warn_pct": 500.0}, "at most 100%"),
        ("metrics", {"months": 100000}, "months must be at least 1 and at most 120"),
        ("db", {"pg_kill_pids": ["abc"]}, "pg_kill_pids must be process ids"),
        ("db", {"allow_actions": ["postgres.terminat"]}, "did you mean 'postgres.terminate'?"),
    ],
)
def test_plain_papermill_values_are_checked_in_the_notebook(
    section: str, given: dict[str, Any], message: str
) -> None:
    with pytest.raises(ParameterError, match=re.escape(message)):
        in_notebook(section, **given)


# --- 9. action parameters --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("section", "pair", "message"),
    [
        (
            "db",
            'pg_kill_pids=["abc"]',
            "pg_kill_pids must be process ids (positive whole numbers), got ['abc']",
        ),
        ("db", "pg_kill_pids=12,-3", "got ['-3']"),
        ("alerts", 'pg_kill_pids=["1.5"]', "got ['1.5']"),
        (
            "db",
            "allow_actions=postgres.terminat",
            "allow_actions names an unknown action "
            "'postgres.terminat'; did you mean "
            "'postgres.terminate'?",
        ),
        ("redis", 'allow_actions=["redis.flushall"]', "did you mean 'redis.flushdb'?"),
        ("disk", "allow_actions=command.restartweb", "did you mean 'command.restart_web'?"),
        ("celery", "allow_actions=nonsense", "the actions: postgres.terminate"),
        (
            "db",
            "pg_kill_mode=terminat",
            "pg_kill_mode 'terminat' is not one of: cancel, terminate; did you mean 'terminate'?",
        ),
        (
            "db",
            "pg_kill_older_than_s=0",
            "pg_kill_older_than_s, pg_kill_idle_in_transaction_s and pg_kill_idle_min are all 0",
        ),
        ("celery", "celery_autoscale_max=2", "celery_autoscale_min (3) must be between 0 and"),
        ("redis", "redis_new_maxmemory=lots", "redis_new_maxmemory: maxmemory 'lots'"),
    ],
)
def test_action_parameters_are_checked_before_anything_runs(
    reports: Path, section: str, pair: str, message: str
) -> None:
    given = [pair, "celery_autoscale_min=3"] if "autoscale" in pair else [pair]
    with pytest.raises(ParameterError, match=re.escape(message)):
        runner.plan(section, pairs=given)
    assert written(reports) == []


def test_good_action_parameters_pass(reports: Path) -> None:
    plan = runner.plan(
        "db",
        pairs=['allow_actions=["postgres.cancel", "command.migrate"]', "pg_kill_pids=12, 345"],
    )
    assert plan.values["pg_kill_pids"] == ["12", "345"]


def test_every_action_the_notebooks_take_is_in_the_catalogue() -> None:
    from irkit.actions import catalogue

    pg, rd = PostgresTarget(), RedisTarget()
    broker = CeleryTarget()
    taken = [postgres.Backends(pg, mode=mode).name for mode in postgres.MODES]
    taken += [celery.Pool(broker, by).name for by in (1, -1)]
    taken += [celery.Purge(broker).name, celery.Autoscale(broker, 2, 1).name]
    taken += [celery.Purge(broker, tasks=["reports.runaway"]).name]
    taken += [redis.FlushDb(rd).name, redis.MaxMemory(rd, "").name]
    taken += [disk.OldFiles([], max_age_days=1).name]
    for notebook in (ROOT / "notebooks").glob("*.ipynb"):
        source = "".join("".join(c["source"]) for c in json.loads(notebook.read_text())["cells"])
        taken += re.findall(r"name=\"([a-z]+\.[a-z_]+)\"", source)
        taken += [f"command.{s}" for s in re.findall(r"deployment\.Named\(\s*\"(\w+)\"", source)]
    assert set(taken) - set(catalogue.known_names()) == set()
    assert set(catalogue.PG_KILL_MODES) == set(postgres.MODES)
    assert {f"command.{s}" for s in deployment.STEPS} <= set(catalogue.known_names())


def test_plain_papermill_stops_at_the_section_before_any_probe(tmp_path: Path) -> None:
    out = tmp_path / "db.ipynb"
    with pytest.raises(papermill.PapermillExecutionError, match="did you mean"):
        papermill.execute_notebook(
            str(ROOT / "notebooks" / "db.ipynb"),
            str(out),
            parameters={"allow_actions": ["postgres.terminat"]},
            cwd=str(ROOT),
            progress_bar=False,
        )
    verdicts = [
        o
        for c in json.loads(out.read_text())["cells"]
        for o in c.get("outputs", [])
        if "application/vnd.irkit.result+json" in o.get("data", {})
    ]
    assert verdicts == []


# --- 10. --output ----------------------------------------------------------------------------


def test_output_into_a_missing_folder_is_refused_and_creates_nothing(
    tmp_path: Path, reports: Path
) -> None:
    wanted = tmp_path / "nowhere" / "deeper" / "run.ipynb"
    with pytest.raises(IrkitError, match=r"the folder .*deeper does not exist; create it first"):
        runner.plan("disk", output=wanted)
    assert not (tmp_path / "nowhere").exists()
    assert written(reports) == []


def test_output_on_a_dangling_symlink_is_refused_before_any_probe(tmp_path: Path) -> None:
    folder = tmp_path / "out"
    folder.mkdir()
    link = folder / "run.ipynb"
    link.symlink_to(tmp_path / "missing-target.ipynb")
    done = irkit("run", "disk", "--output", str(link), reports=tmp_path / "reports")
    refused_in_one_line(done, f"--output {link} is a symbolic link")
    assert sorted(p.name for p in folder.iterdir()) == ["run.ipynb"]  # no hidden partial
    assert not (tmp_path / "missing-target.ipynb").exists()
    assert written(tmp_path / "reports") == []


def test_output_on_a_symlink_to_a_report_leaves_the_report_alone(
    tmp_path: Path, reports: Path
) -> None:
    kept = tmp_path / "kept.ipynb"
    kept.write_text("keep me")
    link = tmp_path / "link.ipynb"
    link.symlink_to(kept)
    with pytest.raises(IrkitError, match="is a symbolic link"):
        runner.plan("disk", output=link)
    assert kept.read_text() == "keep me"


def test_output_that_is_a_folder_is_refused(tmp_path: Path, reports: Path) -> None:
    with pytest.raises(IrkitError, match="is a folder: give the notebook's file name in it"):
        runner.plan("disk", output=tmp_path)
    assert not tmp_path.with_suffix(".ipynb").exists()


def test_output_in_a_folder_that_cannot_be_written_is_refused(
    tmp_path: Path, reports: Path
) -> None:
    if os.geteuid() == 0:
        # root writes everywhere by permission bits; a read-only mount refuses even root.
        folder = tmp_path / "ro"
        folder.mkdir()
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(folder)], check=True
        )
        try:
            with pytest.raises(IrkitError, match="cannot write in the folder"):
                runner.plan("disk", output=folder / "run.ipynb")
        finally:
            subprocess.run(["umount", str(folder)], check=True)
    else:
        folder = tmp_path / "ro"
        folder.mkdir(mode=0o555)
        with pytest.raises(IrkitError, match="cannot write in the folder"):
            runner.plan("disk", output=folder / "run.ipynb")


def test_an_existing_output_is_never_overwritten(tmp_path: Path, reports: Path) -> None:
    kept = tmp_path / "run.ipynb"
    kept.write_text("keep me")
    for given in (kept, tmp_path / "run"):  # the suffix is added: run → run.ipynb
        with pytest.raises(IrkitError, match="already exists; irkit never overwrites"):
            runner.plan("disk", output=given)
    assert kept.read_text() == "keep me"


# --- the same class elsewhere: output of a command, log files, the PromQL window --------------


def test_a_command_that_floods_its_output_keeps_only_the_end() -> None:
    # `cat /dev/zero` as a log command: under an address-space limit, keeping everything it
    # writes fails within its timeout; keeping the end does not.
    code = (
        "import resource; resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))\n"
        "from irkit import programs\n"
        "try: programs.run(['cat', '/dev/zero'], timeout_s=4)\n"
        "except programs.TimedOut as exc: print('kept', len(exc.stdout))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60
    )
    assert done.stdout.strip() == f"kept {16 * 1024 * 1024}", done.stderr[-500:]


def test_a_command_that_leaves_a_child_behind_keeps_its_output_and_is_stopped() -> None:
    from irkit import programs

    # Short output arrives whole, not only once a 64 KiB chunk has filled.
    done = programs.run(["sh", "-c", "echo hi; echo err >&2"], timeout_s=5)
    assert (done.returncode, done.stdout, done.stderr) == (0, "hi\n", "err\n")
    # A background child holds the pipes past the command's exit: it counts against the same
    # timeout, and is stopped with its session when that runs out.
    marker = f"sleep {29.5 + os.getpid() % 100 / 1000}"
    with pytest.raises(programs.TimedOut) as stopped:
        programs.run(["sh", "-c", f"{marker} & echo started"], timeout_s=2)
    assert stopped.value.stdout == "started\n"
    left = subprocess.run(["pgrep", "-f", f"^{marker}$"], capture_output=True, check=False)
    assert left.stdout == b"", "the background child outlived its command"


def test_a_log_glob_matching_too_many_files_is_said_not_read(tmp_path: Path) -> None:
    from irkit.probes import logs
    from irkit.targets import LogSource

    for n in range(65):
        (tmp_path / f"app-{n}.log").write_text("2026-11-30 10:00:00 ERROR boom\n")
    result = logs.errors(LogSource(files=(str(tmp_path / "*.log"),)), window_min=30)
    assert result.status.name == "UNKNOWN"
    assert "65 log files match; name at most 64" in result.summary


@pytest.mark.parametrize(
    ("window", "message"),
    [
        ("5m])) or vector(1) #", "prom_window must be a Prometheus duration"),
        ("100000d", "prom_window must be more than 0 and at most 1d"),
        ("9" * 5000 + "s", "prom_window must be a Prometheus duration"),
    ],
)
def test_the_promql_window_is_a_bounded_duration(reports: Path, window: str, message: str) -> None:
    with pytest.raises(ParameterError, match=re.escape(message)):
        runner.plan("health", pairs=[f"prom_window={window}"])
    assert written(reports) == []


def test_a_number_of_thousands_of_digits_is_refused_in_one_line(tmp_path: Path) -> None:
    file = tmp_path / "p.yaml"
    file.write_text("pg_port: " + "9" * 5000 + "\n")
    done = irkit("run", "db", "-f", str(file), reports=tmp_path / "reports")
    refused_in_one_line(done, "holds a number of thousands of digits")
    done = irkit("run", "db", "-p", "pg_port=" + "9" * 5000, reports=tmp_path / "reports")
    refused_in_one_line(done, "parameter pg_port must be an integer, got '999")
    assert len(done.stderr) < 200  # the value is quoted by its start, not in full
    assert written(tmp_path / "reports") == []


@pytest.mark.parametrize(
    "argv",
    [
        ["curl", "-u", "admin:S3cretPW", "http://127.0.0.1/"],
        ["curl", "--user=admin:S3cretPW", "http://127.0.0.1/"],
        ["curl", "-uadmin:S3cretPW", "http://127.0.0.1/"],
        ["curl", "-H", "Authorization: Bearer S3cretPW", "http://127.0.0.1/"],
        ["curl", "-H", "X-Api-Key: S3cretPW", "http://127.0.0.1/"],
        ["redis-cli", "-u", "redis://:S3cretPW@127.0.0.1:6379", "ping"],
    ],
)
def test_credentials_on_a_command_line_are_refused_without_echoing_them(argv: list[str]) -> None:
    from irkit import programs
    from irkit.errors import ConfigError

    with pytest.raises(ConfigError, match="carries a password") as refused:
        programs.refuse_passwords(argv, "check_commands probe")
    assert "S3cretPW" not in str(refused.value)


def test_command_lines_without_credentials_pass() -> None:
    from irkit import programs
    from irkit.errors import ConfigError

    for argv in (
        ["curl", "-u", "admin", "http://127.0.0.1/"],
        ["redis-cli", "-u", "redis://127.0.0.1:6379", "ping"],
        ["pg_isready", "-U", "erp", "-p", "5432"],
        ["curl", "-H", "Accept: application/json", "http://127.0.0.1/"],
        # The runbook's Scenario 3: -a is --all here, a password only to redis-cli.
        ["docker", "system", "prune", "-a", "-f"],
    ):
        programs.refuse_passwords(argv, "check_commands probe")
    with pytest.raises(ConfigError, match="carries a password"):
        programs.refuse_passwords(
            ["docker", "compose", "exec", "redis", "redis-cli", "-a", "S3cretPW"], "a command"
        )
