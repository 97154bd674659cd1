"""Disk probes on this machine, with the faults made for real where the machine allows (the memory
and CPU probes: tests/test_host.py)."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from irkit.probes import disk
from irkit.result import Status
from irkit.targets import LocalHost

HERE = LocalHost()
DAY = 86400


def age(path: Path, days: float) -> Path:
    stamp = time.time() - days * DAY
    os.utime(path, (stamp, stamp), follow_symlinks=False)
    return path


def test_usage_ok_and_over_lowered_thresholds(tmp_path: Path) -> None:
    ok = disk.usage(HERE, paths=[str(tmp_path)], warn_pct=100, crit_pct=100)
    assert ok.status is Status.OK
    row = ok.evidence["rows"][0]
    assert row["mount"]
    assert row["total"] > 0
    crit = disk.usage(HERE, paths=[str(tmp_path)], warn_pct=0.0001, crit_pct=0.0002)
    assert crit.status is Status.CRIT


def test_a_missing_path_is_unknown_not_ok(tmp_path: Path) -> None:
    result = disk.usage(HERE, paths=[str(tmp_path), str(tmp_path / "gone")])
    assert result.status is not Status.OK
    assert result.evidence["rows"][1] == {
        "path": str(tmp_path / "gone"),
        "error": "No such file or directory",
    }
    assert "No such file or directory" in result.summary


@pytest.fixture
def small_tmpfs(tmp_path: Path) -> Iterator[Path]:
    mount = tmp_path / "small"
    mount.mkdir()
    made = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m,nr_inodes=64", "tmpfs", str(mount)],
        capture_output=True,
        check=False,
    )
    if made.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({made.stderr.decode().strip()})")
    yield mount
    subprocess.run(["umount", str(mount)], check=True)


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tmpfs needs root")
def test_a_really_full_filesystem_is_crit(small_tmpfs: Path) -> None:
    assert disk.usage(HERE, paths=[str(small_tmpfs)]).status is Status.OK
    (small_tmpfs / "fill").write_bytes(b"x" * (1024 * 1024 - 64 * 1024))
    result = disk.usage(HERE, paths=[str(small_tmpfs)])
    assert result.status is Status.CRIT
    row = result.evidence["rows"][0]
    assert row["mount"] == str(small_tmpfs)
    assert row["used_pct"] >= 90


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tmpfs needs root")
def test_running_out_of_inodes_is_crit(small_tmpfs: Path) -> None:
    for i in range(60):
        (small_tmpfs / f"f{i}").touch()
    result = disk.usage(HERE, paths=[str(small_tmpfs)])
    assert result.status is Status.CRIT
    assert result.evidence["rows"][0]["inodes_used_pct"] >= 90
    assert "inodes" in result.summary


def test_old_files_follow_the_runbook_ages(tmp_path: Path) -> None:
    logs, temp, elsewhere = tmp_path / "logs", tmp_path / "temp", tmp_path / "elsewhere"
    for d in (logs, temp, elsewhere, logs / "nested"):
        d.mkdir()
    (logs / "old.log").write_bytes(b"x" * 1000)
    (logs / "nested" / "older.log").write_bytes(b"x" * 3000)
    (logs / "new.log").write_bytes(b"x" * 500)
    (logs / "old.txt").write_bytes(b"x" * 700)
    (temp / "upload.tmp").write_bytes(b"x" * 2000)
    (temp / "recent.tmp").write_bytes(b"x" * 100)
    (elsewhere / "precious.log").write_bytes(b"x" * 9999)
    age(logs / "old.log", 10)
    age(logs / "nested" / "older.log", 20)
    age(logs / "old.txt", 10)
    age(temp / "upload.tmp", 40)
    age(temp / "recent.tmp", 10)
    age(elsewhere / "precious.log", 100)
    (logs / "link").symlink_to(elsewhere)  # not followed
    age(logs / "link", 100)

    result = disk.old_files(HERE, log_dirs=[str(logs)], temp_dirs=[str(temp)])
    assert result.status is Status.OK
    assert result.evidence["files"] == 3
    assert result.evidence["bytes"] == 1000 + 3000 + 2000
    assert result.evidence["rows"][0]["path"].endswith("older.log")  # largest first
    paths = {row["path"] for row in result.evidence["rows"]}
    assert not any("precious" in p for p in paths)
    assert "3 old files" in result.summary


def test_old_files_in_a_missing_folder_is_unknown(tmp_path: Path) -> None:
    result = disk.old_files(HERE, log_dirs=[str(tmp_path / "nope")])
    assert result.status is Status.UNKNOWN
    assert "not a directory" in result.summary
    assert disk.old_files(HERE).summary == "no log or temp directories configured"
