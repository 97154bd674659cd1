"""A PostgreSQL server of the kit's own: own data directory, own port, loopback only.

System binaries are used where present (Debian's postgresql package); otherwise the ones the
`pgserver` package ships. When run as root the server runs as an unprivileged account, because
PostgreSQL refuses to run as root.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from irkit.errors import SandboxError
from irkit.sandbox import process

SUPERUSER = "irkit"
APP_USER = "erp"
APP_DATABASE = "himalytix"


def find_bin_dir() -> Path:
    """IRKIT_POSTGRES_BIN if set; else the system's server binaries (newest version first);
    else the build the pgserver package ships."""
    candidates: list[Path] = []
    if chosen := os.environ.get("IRKIT_POSTGRES_BIN"):
        if not (Path(chosen) / "initdb").exists():
            raise SandboxError(f"IRKIT_POSTGRES_BIN={chosen} holds no initdb")
        candidates.append(Path(chosen))
    if pg_config := shutil.which("pg_config"):
        out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=False)
        candidates.append(Path(out.stdout.strip()))
    versions = sorted(
        Path("/usr/lib/postgresql").glob("*/bin"),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
        reverse=True,
    )
    candidates.extend(versions)
    # pgserver's bundled build is the fallback; locate it without importing it (the import has
    # side effects on start-up).
    spec = importlib.util.find_spec("pgserver")
    if spec is not None and spec.submodule_search_locations:
        candidates.append(Path(spec.submodule_search_locations[0]) / "pginstall" / "bin")
    for candidate in candidates:
        if (candidate / "initdb").exists() and (candidate / "pg_ctl").exists():
            return candidate
    raise SandboxError(
        "PostgreSQL server binaries not found: install them (apt-get install postgresql) "
        "or the pgserver package (pip install 'irkit[sandbox]')"
    )


def bin_dir() -> Path:
    """The binaries to run. As root the server runs as an unprivileged account, which may not
    reach binaries inside a private folder (a virtualenv under /root): those are copied once to
    the temp folder, where it can."""
    found = find_bin_dir()
    user = process.unprivileged_user()
    if user is None or process.blocking_parent(found / "postgres", user) is None:
        return found
    install = found.parent
    digest = hashlib.sha256(str(install).encode()).hexdigest()[:10]
    copy = Path(tempfile.gettempdir()) / f"irkit-postgres-{digest}"
    # A wheel keeps its shared libraries in "<package>.libs" beside the package and finds them
    # through a relative RPATH (pgserver: $ORIGIN/../../../pgserver.libs): copy that too, keeping
    # the layout.
    package = install.parent
    libs = package.parent / f"{package.name}.libs"
    relative = Path(package.name, install.name) if libs.is_dir() else Path()
    if not (copy / relative / "bin" / "postgres").exists():
        staging = copy.with_name(f"{copy.name}.{os.getpid()}.partial")
        shutil.copytree(install, staging / relative, symlinks=True, dirs_exist_ok=True)
        if libs.is_dir():
            shutil.copytree(libs, staging / libs.name, symlinks=True, dirs_exist_ok=True)
        staging.rename(copy)
    return copy / relative / "bin"


@dataclass
class PostgresServer:
    data_dir: Path
    port: int
    host: str = "127.0.0.1"
    password: str | None = field(default=None, repr=False)
    settings: dict[str, str] = field(default_factory=dict)

    @property
    def pgdata(self) -> Path:
        return self.data_dir / "pgdata"

    @property
    def log(self) -> Path:
        return self.data_dir / "postgres.log"

    def conninfo(self, user: str = SUPERUSER, dbname: str = "postgres") -> dict[str, Any]:
        info: dict[str, Any] = {"host": self.host, "port": self.port, "user": user}
        info["dbname"] = dbname
        if self.password:
            info["password"] = self.password
        return info

    @property
    def pid(self) -> int | None:
        return process.read_pid(self.pgdata / "postmaster.pid")

    def running(self) -> bool:
        return self.pid is not None and process.port_open(self.host, self.port)

    def start(self) -> None:
        """Initialise on first use, then start; does nothing if already running."""
        if self.running():
            return
        self.data_dir.mkdir(parents=True, exist_ok=True)
        user = process.unprivileged_user()
        if user is not None:
            if blocked := process.blocking_parent(self.data_dir, user):
                raise SandboxError(
                    f"{blocked} cannot be entered by the '{user.pw_name}' account that runs "
                    "PostgreSQL for root; put the data directory elsewhere"
                )
            os.chown(self.data_dir, user.pw_uid, user.pw_gid)
        if not (self.pgdata / "PG_VERSION").exists():
            self._initdb()
        self._pg_ctl("start", "-w", "-t", "60", "-l", str(self.log), "-o", f"-p {self.port}")
        process.wait_until(self.running, 30, "PostgreSQL", self.log)

    def stop(self) -> None:
        if self.pid is None:
            return
        self._pg_ctl("stop", "-m", "fast", "-w", "-t", "30")

    def _initdb(self) -> None:
        args = [str(bin_dir() / "initdb"), "-D", str(self.pgdata), "-U", SUPERUSER, "-E", "UTF8"]
        args += ["--no-locale", "--auth-local=trust"]
        pwfile = None
        if self.password:
            pwfile = tempfile.NamedTemporaryFile("w", dir=self.data_dir, delete=False)  # noqa: SIM115
            pwfile.write(self.password)
            pwfile.close()
            _give_to_server(Path(pwfile.name))
            args += ["--auth-host=scram-sha-256", f"--pwfile={pwfile.name}"]
        else:
            args += ["--auth-host=trust"]
        try:
            self._run(args, "initdb")
        finally:
            if pwfile:
                os.unlink(pwfile.name)
        conf = {
            "listen_addresses": f"'{self.host}'",
            "port": str(self.port),
            "unix_socket_directories": f"'{self.pgdata}'",
            # A practice server: durability is not worth the start-up and write time.
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
            "max_connections": "50",
            **self.settings,
        }
        with (self.pgdata / "postgresql.auto.conf").open("a") as f:
            f.writelines(f"{k} = {v}\n" for k, v in conf.items())

    def _pg_ctl(self, *args: str) -> None:
        self._run([str(bin_dir() / "pg_ctl"), "-D", str(self.pgdata), *args], "pg_ctl")

    def _run(self, args: list[str], what: str) -> None:
        user = process.unprivileged_user()
        result = subprocess.run(
            args,
            capture_output=True,
            text=True,
            check=False,
            user=user.pw_uid if user else None,
            group=user.pw_gid if user else None,
            cwd=self.data_dir,
            timeout=120,
        )
        if result.returncode != 0:
            detail = (result.stderr or result.stdout).strip().splitlines()[-3:]
            raise SandboxError(f"{what} failed: {' / '.join(detail)} (log: {self.log})")

    def seed(self) -> bool:
        """Create the application role and database the runbook names (`psql -U erp -d himalytix`);
        safe to run again. True when the database was created now: the app's migrations build its
        schema."""
        with self.connect() as conn:
            if not conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [APP_USER]).fetchone():
                conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(APP_USER)))
            if self.password:
                conn.execute(
                    sql.SQL("ALTER ROLE {} PASSWORD {}").format(
                        sql.Identifier(APP_USER), sql.Literal(self.password)
                    )
                )
            # pg_monitor lets the application role see every session in pg_stat_activity.
            conn.execute(sql.SQL("GRANT pg_monitor TO {}").format(sql.Identifier(APP_USER)))
            exists = conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", [APP_DATABASE]
            ).fetchone()
            if not exists:
                conn.execute(
                    sql.SQL("CREATE DATABASE {} OWNER {}").format(
                        sql.Identifier(APP_DATABASE), sql.Identifier(APP_USER)
                    )
                )
        return not exists

    def missing_migrations(self, wanted: dict[str, list[str]]) -> list[str]:
        """Which of `wanted` (app label: migration names) django_migrations lacks."""
        with self.connect(APP_DATABASE) as conn:
            if conn.execute("SELECT to_regclass('django_migrations')").fetchone() == (None,):
                return [f"{app}.{name}" for app, names in wanted.items() for name in names]
            rows = conn.execute("SELECT app, name FROM django_migrations").fetchall()
        applied = {f"{app}.{name}" for app, name in rows}
        return [
            f"{app}.{name}"
            for app, names in wanted.items()
            for name in names
            if f"{app}.{name}" not in applied
        ]

    def refresh_last_logins(self) -> None:
        """Keep the practice users "active": spread their last logins over the last 40 minutes."""
        with self.connect(APP_DATABASE) as conn:
            conn.execute(
                "UPDATE auth_user SET last_login = now() - ((id % 40) || ' minutes')::interval"
            )

    def connect(self, dbname: str = "postgres") -> psycopg.Connection[Any]:
        """A superuser session (autocommit), for setting the practice server up and faulting it."""
        return psycopg.connect(**self.conninfo(dbname=dbname), autocommit=True, connect_timeout=5)


def _give_to_server(path: Path) -> None:
    user = process.unprivileged_user()
    if user is not None:
        os.chown(path, user.pw_uid, user.pw_gid)
