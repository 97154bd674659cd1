"""Unique secrets given in every place a secret can be given, and none of them, in any form a
server or a serialiser would echo, in anything irkit writes or prints.

Where a place is refused (a password in a parameter, a YAML file or a URL), the refusal is one line
on stderr, exit 3, and nothing written. Where it is accepted (the dedicated variables, the webhook,
the token), every section runs against servers that demand the password, posting for real to a
server that answers 500 and echoes what it was sent.
"""

from __future__ import annotations

import html
import json
import secrets
import shutil
import tempfile
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import quote, quote_plus

import pytest

from irkit import cli
from irkit.incident import notify
from irkit.sandbox.postgres import PostgresServer
from irkit.sandbox.process import free_port
from irkit.sandbox.redis import RedisServer
from irkit.sandbox.stack import Stack
from tests.helpers import files, irkit

BROKER_USER = "broker"


def _secret(kind: str) -> tuple[str, str]:
    """A secret with characters that need escaping in a URL, JSON and HTML, and a random tail
    that no escaping changes: finding any half of the tail finds a leak in any form, a cut
    one included."""
    tail = secrets.token_hex(10)
    return f'{kind}/%p@s"s#?&<{tail}', tail


PG_PASSWORD, PG_TAIL = _secret("pg")
REDIS_PASSWORD, REDIS_TAIL = _secret("rd")
BROKER_PASSWORD, BROKER_TAIL = _secret("mq")
TOKEN_TAIL = secrets.token_hex(12)
STATUSPAGE_TOKEN = f"sp-{TOKEN_TAIL}"
WEBHOOK_PARTS = (f"T{secrets.token_hex(5)}", f"B{secrets.token_hex(5)}", secrets.token_hex(12))


def forms(secret: str) -> set[str]:
    """The secret as sent, percent-encoded, JSON- and HTML-escaped."""
    found = {secret, quote(secret, safe=""), quote(secret), quote_plus(secret)}
    for form in list(found):
        escaped = json.dumps(form)[1:-1]
        found |= {escaped, escaped.replace("/", "\\/"), html.escape(form)}
    return found


def assert_nowhere(secret_values: list[str], tails: list[str], texts: dict[str, str]) -> None:
    needles = {f for s in secret_values for f in forms(s)}
    needles |= {half for t in tails for half in (t[: len(t) // 2], t[len(t) // 2 :])}
    for where, text in texts.items():
        for needle in needles:
            assert needle not in text, f"{needle!r} in {where}"


def written(folder: Path) -> dict[str, str]:
    return {str(p): p.read_bytes().decode("utf-8", "replace") for p in files(folder)}


class Echo:
    """An HTTP server that fails every request with 500 and echoes the request's path (raw, as
    JSON with escaped slashes, percent-encoded) and its Authorization header, as a misconfigured
    proxy or a chatty API would."""

    def __init__(self) -> None:
        self.paths: list[str] = []
        seen = self.paths

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                seen.append(self.path)
                echoed = {
                    "error": "no_service",
                    "path": self.path,
                    "authorization": self.headers.get("Authorization", ""),
                }
                body = (
                    json.dumps(echoed).replace("/", "\\/")
                    + f" {self.path} "
                    + quote(self.path, safe="")
                ).encode()
                self.send_response(500)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def webhook(self) -> str:
        return f"{self.url}/services/{'/'.join(WEBHOOK_PARTS)}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


@pytest.fixture(scope="module")
def echo() -> Iterator[Echo]:
    server = Echo()
    yield server
    server.close()


class Guarded:
    """PostgreSQL and Redis that demand a password, each its own; the broker is a Redis user of
    its own with a third password."""

    def __init__(self, base: Path) -> None:
        self.postgres = PostgresServer(base / "postgres", free_port(), password=PG_PASSWORD)
        self.redis = RedisServer(base / "redis", free_port(), password=REDIS_PASSWORD)

    def up(self) -> None:
        self.postgres.start()
        self.postgres.seed()
        # The tables triage counts affected users and tenants in: without them that check is
        # UNKNOWN (a question for this test's database, not about secrets).
        with self.postgres.connect("himalytix") as conn:
            conn.execute("SET ROLE erp")
            conn.execute("CREATE TABLE auth_user (id serial PRIMARY KEY, last_login timestamptz)")
            conn.execute("CREATE TABLE tenancy_tenant (id serial PRIMARY KEY)")
        self.redis.start()
        self.redis.client().acl_setuser(
            BROKER_USER,
            enabled=True,
            passwords=[f"+{BROKER_PASSWORD}"],
            keys=["*"],
            channels=["*"],
            commands=["+@all"],
        )

    def down(self) -> None:
        self.redis.stop()
        self.postgres.stop()

    def env(self, echo: Echo) -> dict[str, str]:
        """Every accepted place, each with its own secret."""
        r = self.redis
        return {
            "PGHOST": self.postgres.host,
            "PGPORT": str(self.postgres.port),
            "PGUSER": "erp",
            "PGDATABASE": "himalytix",
            "PGPASSWORD": PG_PASSWORD,
            "IRKIT_REDIS_URL": f"redis://{r.host}:{r.port}/1",
            "IRKIT_REDIS_PASSWORD": REDIS_PASSWORD,
            "IRKIT_CELERY_BROKER_URL": f"redis://{BROKER_USER}@{r.host}:{r.port}/0",
            "IRKIT_CELERY_BROKER_PASSWORD": BROKER_PASSWORD,
            "IRKIT_SLACK_WEBHOOK": echo.webhook,
            "IRKIT_STATUSPAGE_TOKEN": STATUSPAGE_TOKEN,
        }


@pytest.fixture(scope="module")
def guarded() -> Iterator[Guarded]:
    # Not under pytest's tmp folder: PostgreSQL runs as an unprivileged account under root.
    base = Path(tempfile.mkdtemp(prefix="irkit-secrets-everywhere-"))
    base.chmod(0o755)
    servers = Guarded(base)
    try:
        servers.up()
        yield servers
    finally:
        servers.down()
        shutil.rmtree(base, ignore_errors=True)


def test_a_failed_post_reports_no_part_of_the_webhook_wherever_the_cut_falls(
    echo: Echo, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The reason is scrubbed whole and only then shortened: a secret cut in half by the
    200-character limit would not be recognised any more."""
    for prefix in range(100, 200, 3):
        # A plain word (not secret) that moves the echoed secret across the cut.
        webhook = f"{echo.url}/{'p' * prefix}/services/{'/'.join(WEBHOOK_PARTS)}"
        monkeypatch.setenv("IRKIT_SLACK_WEBHOOK", webhook)
        delivery = notify.post_slack("text")
        assert not delivery.posted
        assert delivery.detail.startswith("HTTP 500: "), delivery
        assert_nowhere(list(WEBHOOK_PARTS), list(WEBHOOK_PARTS), {str(prefix): str(delivery)})


def test_triage_with_a_failed_slack_post_leaves_the_webhook_nowhere(
    stack: Stack, echo: Echo, tmp_path: Path
) -> None:
    """The server answers 500 and echoes the request path, where the webhook keeps its
    secret: the failure is recorded, the secret is not (notebook, HTML, later a postmortem)."""
    env = {"IRKIT_SLACK_WEBHOOK": echo.webhook}
    assert (
        irkit(
            "incident", "open", "--title", "t", "--id", "W1", reports=tmp_path, env=env
        ).returncode
        == 0
    )
    done = irkit(
        "run",
        "triage",
        "--incident",
        "W1",
        "--html",
        "-p",
        "notify=true",
        reports=tmp_path,
        env=env,
    )
    assert done.returncode < 3, done.stdout + done.stderr
    assert irkit("postmortem", "W1", reports=tmp_path, env=env).returncode == 0
    record = written(tmp_path)
    assert "could not be posted to slack: HTTP 500" in "".join(record.values())
    printed = {"printed": done.stdout + done.stderr}
    assert_nowhere(list(WEBHOOK_PARTS), list(WEBHOOK_PARTS), {**record, **printed})


ALL_SECRETS = [PG_PASSWORD, REDIS_PASSWORD, BROKER_PASSWORD, STATUSPAGE_TOKEN, *WEBHOOK_PARTS]
ALL_TAILS = [PG_TAIL, REDIS_TAIL, BROKER_TAIL, TOKEN_TAIL, *WEBHOOK_PARTS]


def test_every_section_health_incident_and_postmortem_keep_every_secret_out(
    stack: Stack, guarded: Guarded, echo: Echo, tmp_path: Path
) -> None:
    """The web app and Prometheus are the test run's practice stack; the database, Redis and
    the broker demand their passwords. One run per section."""
    env = guarded.env(echo)
    printed: dict[str, str] = {}

    def run(*args: str, ok: int = 2) -> None:
        done = irkit(*args, reports=tmp_path, env=env)
        printed[" ".join(args)] = done.stdout + done.stderr
        assert done.returncode <= ok, (args, done.stdout, done.stderr)

    for section in ("db", "redis", "celery", "disk", "alerts"):
        run("run", section, "--html")
    # The passwords were used: the servers let the probes in.
    db_and_redis = printed["run db --html"] + printed["run redis --html"]
    assert "OK      postgres.connect" in db_and_redis
    assert "OK      redis.ping" in db_and_redis
    assert "authentication failed" not in printed["run celery --html"]

    # No worker listens on the guarded broker: CRIT, so the health notice is due, and posted
    # to the echoing server, which fails it.
    run("health", "--notify")
    assert (
        "health notice NOT posted"
        in written(tmp_path / "health")[next(str(p) for p in (tmp_path / "health").glob("*.ipynb"))]
    )

    assert (
        irkit(
            "incident", "open", "--title", "secrets", "--id", "S1", reports=tmp_path, env=env
        ).returncode
        == 0
    )
    posting = ("--incident", "S1", "--html", "-p", "notify=true")
    statuspage = ("-p", "statuspage_page_id=p1", "-p", f"statuspage_api={echo.url}/v1")
    run("run", "triage", *posting, *statuspage)
    run("run", "resolve", *posting, "-p", "load_requests=10")
    run("postmortem", "S1", ok=0)
    run("report", "monthly", "--month", f"{datetime.now(UTC):%Y-%m}", ok=0)

    # Slack (detected, resolved, health) and the status page were really tried, and failed.
    assert sum(p.startswith("/services/") for p in echo.paths) >= 3
    assert any(p == "/v1/pages/p1/incidents" for p in echo.paths)
    record = written(tmp_path)
    triage_text = "".join(t for p, t in record.items() if p.endswith("-triage.ipynb"))
    assert "could not be posted to slack: HTTP 500" in triage_text
    assert "could not be posted to statuspage: HTTP 500" in triage_text
    sections = {Path(p).name.split("-", 1)[-1] for p in record if p.endswith(".ipynb")}
    assert {
        "db.ipynb",
        "redis.ipynb",
        "celery.ipynb",
        "disk.ipynb",
        "alerts.ipynb",
        "health.ipynb",
        "triage.ipynb",
        "resolve.ipynb",
        "postmortem.ipynb",
        "metrics.ipynb",
    } <= sections, sections
    assert any(p.endswith("postmortem.md") for p in record)
    assert sum(p.endswith(".html") for p in record) >= 9

    assert_nowhere(ALL_SECRETS, ALL_TAILS, {**record, **printed})


def _refused(
    argv: list[str], reports: Path, capsys: pytest.CaptureFixture[str], *secret: str
) -> str:
    """Run the CLI in this process (no kernel starts for a refusal), and check the refusal."""
    before = files(reports)
    code = cli.main(argv)
    out, err = capsys.readouterr()
    assert code == 3, (argv, out, err)
    assert err.startswith("irkit: "), err
    assert err.count("\n") == 1, err
    assert files(reports) == before, "a refused command wrote something"
    assert_nowhere(list(secret), [], {"stdout": out, "stderr": err})
    return err


def test_a_password_in_a_url_or_connection_string_is_refused_everywhere(
    stack: Stack,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Parameters, parameter files and the environment: userinfo, query and libpq forms."""
    reports = tmp_path / "reports"
    reports.mkdir()
    monkeypatch.setenv("IRKIT_REPORTS", str(reports))
    s = secrets.token_hex(8)
    host = f"{stack.redis.host}:{stack.redis.port}"
    by_parameter = [
        ("redis", f"redis_url=redis://:{s}@{host}/1", "IRKIT_REDIS_PASSWORD"),
        ("redis", f"redis_url=redis://{host}/1?password={s}", "IRKIT_REDIS_PASSWORD"),
        ("celery", f"celery_broker_url=redis://{host}/0?auth={s}", "IRKIT_CELERY_BROKER_PASSWORD"),
        ("celery", f"celery_broker_url=amqp://guest:{s}@{host}//", "IRKIT_CELERY_BROKER_PASSWORD"),
        ("alerts", f"web_url={stack.web.url}/?access_token={s}", "take no credentials"),
        ("alerts", f"prom_url=http://ops:{s}@{stack.prometheus.url[7:]}", "take no credentials"),
        ("db", f"pg_database=dbname=himalytix password={s}", "must be a database name"),
        (
            "db",
            f"pg_database=postgresql://erp:{s}@{stack.postgres.host}/himalytix",
            "must be a database name",
        ),
        ("db", f"pg_host=erp:{s}@{stack.postgres.host}", "must be a host name"),
        ("triage", f"statuspage_api=https://api.example.com/v1?api_key={s}", "contains a password"),
        # A value refused for its type is quoted in the error: scrubbed there too.
        ("db", f"pg_port=postgresql://erp:{s}@db/himalytix", "must be an integer"),
    ]
    for section, pair, advice in by_parameter:
        assert advice in _refused(["run", section, "-p", pair], reports, capsys, s)
        name, _, value = pair.partition("=")
        yaml = tmp_path / f"{section}.yaml"
        yaml.write_text(f"{name}: {json.dumps(value)}\n")
        assert advice in _refused(["run", section, "-f", str(yaml)], reports, capsys, s)
    # The health report takes the same targets.
    _refused(["health", "-p", f"redis_url=redis://{host}/1?password={s}"], reports, capsys, s)

    by_environment = [
        ("redis", "IRKIT_REDIS_URL", f"redis://:{s}@{host}/1"),
        ("redis", "IRKIT_REDIS_URL", f"redis://{host}/1?password={s}"),
        ("celery", "IRKIT_CELERY_BROKER_URL", f"redis://{host}/0?pass={s}"),
        ("alerts", "IRKIT_BASE_URL", f"{stack.web.url}/?token={s}"),
        ("alerts", "IRKIT_PROMETHEUS_URL", f"http://u:{s}@{stack.prometheus.url[7:]}"),
        ("db", "PGDATABASE", f"host=db password={s}"),
    ]
    for section, variable, value in by_environment:
        monkeypatch.setenv(variable, value)
        assert variable in _refused(["run", section], reports, capsys, s)
        monkeypatch.undo()
        monkeypatch.setenv("IRKIT_REPORTS", str(reports))
    assert files(reports) == []
