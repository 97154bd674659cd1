"""Secrets reach irkit only through the environment and never land in anything it writes."""

from __future__ import annotations

import secrets
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest

from irkit import records
from irkit.sandbox.stack import BROKER_DB, CACHE_DB, Stack, free_ports
from irkit.secrets import MASK, known_secrets, redact, redact_url
from tests.helpers import files, irkit, serving

# Characters that need escaping in a URL or a config file, so that a half-escaped password shows.
PASSWORD = f"s3cret/%p@ss#?{secrets.token_hex(8)}"
WEBHOOK = f"https://hooks.slack.example/services/{secrets.token_hex(12)}"


@pytest.fixture(scope="module")
def guarded_stack() -> Iterator[Stack]:
    """Practice servers that demand the password: PostgreSQL (scram), Redis and the broker."""
    base = Path(tempfile.mkdtemp(prefix="irkit-secrets-"))
    base.chmod(0o755)
    stack = Stack(base, **free_ports(), password=PASSWORD)
    stack.up()
    yield stack
    stack.down()
    shutil.rmtree(base, ignore_errors=True)


def test_no_report_contains_a_secret(guarded_stack: Stack, tmp_path: Path) -> None:
    s = guarded_stack
    env = {
        "PGPASSWORD": PASSWORD,
        "IRKIT_REDIS_PASSWORD": PASSWORD,
        "IRKIT_CELERY_BROKER_PASSWORD": PASSWORD,
        "IRKIT_SLACK_WEBHOOK": WEBHOOK,
    }
    targets = {
        "db": [
            "-p",
            f"pg_host={s.postgres.host}",
            "-p",
            f"pg_port={s.postgres.port}",
            "-p",
            "pg_user=erp",
            "-p",
            "pg_database=himalytix",
        ],
        "redis": ["-p", f"redis_url={s.redis.url(CACHE_DB)}"],
        "celery": ["-p", f"celery_broker_url={s.redis.url(BROKER_DB)}"],
        "disk": [],
    }
    for section, args in targets.items():
        done = irkit("run", section, *args, "--html", reports=tmp_path, env=env)
        assert PASSWORD not in done.stdout + done.stderr
        if section != "disk":
            assert done.returncode == 0, (section, done.stdout, done.stderr)
    # A URL from the environment carrying the password is refused like a parameter: passwords
    # come only from their own variables.
    quoted = quote(PASSWORD, safe="")
    url_env = {"IRKIT_REDIS_URL": f"redis://:{quoted}@{s.redis.host}:{s.redis.port}/1"}
    done = irkit("run", "redis", reports=tmp_path, env=url_env)
    assert done.returncode == 3, done.stdout + done.stderr
    assert "IRKIT_REDIS_URL contains a password" in done.stderr
    # And a wrong password fails without echoing either one.
    wrong = irkit("run", "db", *targets["db"], reports=tmp_path, env={"PGPASSWORD": "wrong-pw-42"})
    assert wrong.returncode == 2
    assert "authentication failed" in wrong.stdout

    # The health report, posting its notice (to an address that refuses): a secret in none of it.
    args = [a for section in ("db", "redis", "celery") for a in targets[section]]
    # No web app there: CRIT, so the notice is due.
    health = irkit(
        "health", *args, "-p", "web_url=http://127.0.0.1:1", "--notify", reports=tmp_path, env=env
    )
    assert health.returncode == 2, health.stdout + health.stderr
    assert (
        "NOT posted" in records.read(next((tmp_path / "health").glob("*.ipynb"))).events[-1]["text"]
    )
    assert PASSWORD not in health.stdout + health.stderr
    assert "OK      postgres.connections" in health.stdout

    written = files(tmp_path)
    # Sections with HTML, the wrong password, health (and its environment's run lock, empty).
    assert len(written) == 4 * 2 + 1 + 2 + 1
    for path in written:
        content = path.read_bytes()
        for secret in (PASSWORD, quoted, PASSWORD[:12], WEBHOOK, "wrong-pw-42"):
            assert secret.encode() not in content, (path, secret)


def test_an_incident_record_holds_no_secret(guarded_stack: Stack, tmp_path: Path) -> None:
    """Triage, resolve and postmortem with a Slack webhook and a status-page token in the
    environment, posting for real (to an address that refuses): the failure is recorded, the
    secrets are not."""
    s = guarded_stack
    token = f"sp-{secrets.token_hex(10)}"
    env = {
        "PGPASSWORD": PASSWORD,
        "IRKIT_REDIS_PASSWORD": PASSWORD,
        "IRKIT_CELERY_BROKER_PASSWORD": PASSWORD,
        # Nothing listens on port 9: the post fails, and its error must not echo the URL.
        "IRKIT_SLACK_WEBHOOK": f"http://127.0.0.1:9/services/{secrets.token_hex(12)}",
        "IRKIT_STATUSPAGE_TOKEN": token,
    }
    where = [
        "-p",
        f"pg_host={s.postgres.host}",
        "-p",
        f"pg_port={s.postgres.port}",
        "-p",
        "pg_user=erp",
        "-p",
        "pg_database=himalytix",
    ]
    assert irkit("incident", "open", "--title", "t", "--id", "S1", reports=tmp_path).returncode == 0
    triage = irkit(
        "run",
        "triage",
        "--incident",
        "S1",
        *where,
        "-p",
        "notify=true",
        "-p",
        "statuspage_page_id=p1",
        "-p",
        "statuspage_api=http://127.0.0.1:9/v1",
        reports=tmp_path,
        env=env,
    )
    assert triage.returncode < 3, triage.stdout + triage.stderr
    resolve = irkit(
        "run",
        "resolve",
        "--incident",
        "S1",
        *where,
        "-p",
        "notify=true",
        "-p",
        f"redis_url={s.redis.url(CACHE_DB)}",
        "-p",
        f"celery_broker_url={s.redis.url(BROKER_DB)}",
        "-p",
        "load_requests=10",
        reports=tmp_path,
        env=env,
    )
    assert resolve.returncode < 3, resolve.stdout + resolve.stderr
    assert irkit("postmortem", "S1", reports=tmp_path, env=env).returncode == 0
    journal = (tmp_path / "incidents" / "S1").glob("*.ipynb")
    assert "could not be posted to slack" in "".join(p.read_text() for p in journal)
    for path in files(tmp_path):
        content = path.read_bytes()
        for secret in (PASSWORD, env["IRKIT_SLACK_WEBHOOK"], token):
            assert secret.encode() not in content, (path, secret)


def test_the_scrubber_knows_every_secret_the_process_holds(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Webhook path parts, tokens, passwords in their variables and in URLs, a libpq password
    file, and variables whose names say they hold a secret."""
    hook = ("T0AB12CD3", "B0EF45GH6", secrets.token_hex(12))
    token, key, smtp, url_pw, query_pw, file_pw = (secrets.token_hex(8) for _ in range(6))
    passfile = tmp_path / "pgpass"
    passfile.write_text(f"db.internal:5432:*:erp:{file_pw}\\:x\n")
    env = {
        "IRKIT_SLACK_WEBHOOK": f"https://hooks.slack.example/services/{'/'.join(hook)}",
        "IRKIT_STATUSPAGE_TOKEN": token,
        "IRKIT_PAGERDUTY_ROUTING_KEY": key,
        "IRKIT_SMTP_PASSWORD": smtp,
        "IRKIT_SANDBOX_BROKER_URL": f"redis://:{url_pw}@h:1/0?x=1",
        "OTHER_URL": f"https://h/x?access_token={query_pw}",
        "PGPASSFILE": str(passfile),
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    held = [*hook, token, key, smtp, url_pw, query_pw, f"{file_pw}:x"]
    known = known_secrets()
    for secret in held:
        assert secret in known, secret
        assert quote(secret, safe="") in known
    # Plain words of a webhook path, and short flags, are not secrets.
    assert "services" not in known
    # The server echoes the path alone, percent-encoded, or as JSON with escaped slashes.
    path = "/services/" + "/".join(hook)
    for echoed in (path, quote(path, safe=""), path.replace("/", "\\/")):
        assert not any(part in redact(f"no_service: {echoed}") for part in hook), echoed


def test_redact_masks_credentials_it_was_not_told_about() -> None:
    """A last line of defence: a URL's password and secret-named query values, and libpq- or
    command-line-style assignments, whatever their value."""
    text = (
        "Error connecting to redis://monitor:hunter2@cache:6379/0; GET "
        "https://api.example.com/v1?api_key=abc123&page=2 failed; "
        "conninfo host=db password=zz9 sslpassword='a b'; run --token=t0k"
    )
    scrubbed = redact(text)
    for secret in ("hunter2", "abc123", "zz9", "a b", "t0k"):
        assert secret not in scrubbed
    assert "page=2" in scrubbed
    assert "host=db" in scrubbed
    assert MASK in scrubbed
    assert redact_url("redis://h:1/0?password=x1&db=2") == "redis://h:1/0?password=****&db=2"


def test_a_remote_body_is_scrubbed_before_it_is_cut(monkeypatch: pytest.MonkeyPatch) -> None:
    """A health endpoint echoing a secret where the evidence's 500-character cut falls: the
    masked text is cut, never a secret cut in half past recognition."""
    from http.server import BaseHTTPRequestHandler

    from irkit.probes import http
    from irkit.targets import HttpTarget

    token = f"tok_{secrets.token_hex(12)}"
    monkeypatch.setenv("IRKIT_STATUSPAGE_TOKEN", token)

    class Echo(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = ("x" * 485 + token).encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    with serving(Echo) as url:
        body = http.health(HttpTarget(base_url=url)).evidence["body"]
    assert token[:8] not in body
    assert body.endswith(MASK)
