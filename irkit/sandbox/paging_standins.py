"""The pages' far ends, for the practice stack and the tests: PagerDuty's Events API v2 and a
Slack incoming webhook on one HTTP server, and a mail server that takes mail only over STARTTLS
with a login. Each checks what it is sent as the real service would, answers as it does, and
keeps what it took, one JSON line each, in `pagerduty.jsonl`, `slack.jsonl` and `email.jsonl`.

    python -m irkit.sandbox.paging_standins DIR HTTP_PORT SMTP_PORT CERT KEY

The routing key, the Slack webhook path and the mail login come from the environment
(IRKIT_PAGERDUTY_ROUTING_KEY, IRKIT_SLACK_WEBHOOK, IRKIT_SMTP_USER, IRKIT_SMTP_PASSWORD): the
same variables irkit sends with.
"""

from __future__ import annotations

import asyncio
import json
import os
import ssl
import sys
import threading
from email import message_from_bytes
from email.policy import default as email_policy
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

# PagerDuty's rules for an event (developer.pagerduty.com, Events API v2 overview).
PD_ACTIONS = ("trigger", "acknowledge", "resolve")
PD_SEVERITIES = ("critical", "error", "warning", "info")
PD_KEY_LENGTH = 32
PD_DEDUP_MAX = 255
PD_SUMMARY_MAX = 1024


def pagerduty_errors(event: Any, routing_key: str) -> list[str]:
    """What PagerDuty would refuse in `event`; empty: it would take it."""
    if not isinstance(event, dict):
        return ["Event object is invalid"]
    errors = []
    key = event.get("routing_key")
    if not isinstance(key, str) or len(key) != PD_KEY_LENGTH:
        errors.append(f"'routing_key' must be a {PD_KEY_LENGTH}-character string")
    elif key != routing_key:
        errors.append("'routing_key' is not an integration key of this service")
    action = event.get("event_action")
    if action not in PD_ACTIONS:
        errors.append(f"'event_action' must be one of {', '.join(PD_ACTIONS)}")
    dedup = event.get("dedup_key")
    if dedup is not None and (not isinstance(dedup, str) or len(dedup) > PD_DEDUP_MAX):
        errors.append(f"'dedup_key' must be a string of at most {PD_DEDUP_MAX} characters")
    if action in ("acknowledge", "resolve") and not dedup:
        errors.append(f"'dedup_key' is required to {action}")
    if action == "trigger":
        payload = event.get("payload")
        if not isinstance(payload, dict):
            return [*errors, "'payload' is required to trigger"]
        summary = payload.get("summary")
        if not isinstance(summary, str) or not summary or len(summary) > PD_SUMMARY_MAX:
            errors.append(f"'payload.summary' must be 1-{PD_SUMMARY_MAX} characters")
        if not isinstance(payload.get("source"), str) or not payload["source"]:
            errors.append("'payload.source' is required")
        if payload.get("severity") not in PD_SEVERITIES:
            errors.append(f"'payload.severity' must be one of {', '.join(PD_SEVERITIES)}")
        details = payload.get("custom_details")
        if details is not None and not isinstance(details, dict):
            errors.append("'payload.custom_details' must be an object")
        links = event.get("links", [])
        if not isinstance(links, list) or not all(
            isinstance(link, dict) and isinstance(link.get("href"), str) for link in links
        ):
            errors.append("'links' must be a list of {href, text}")
    return errors


class Kept:
    """Appends what a stand-in took, a JSON line at a time, from any thread."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._lock = threading.Lock()

    def add(self, kind: str, item: dict[str, Any]) -> None:
        with self._lock, (self.folder / f"{kind}.jsonl").open("a") as out:
            out.write(json.dumps(item) + "\n")


def read(folder: Path, kind: str) -> list[dict[str, Any]]:
    """What the stand-in of `kind` (pagerduty, slack, email) has taken so far."""
    path = folder / f"{kind}.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def http_app(kept: Kept, routing_key: str, slack_path: str) -> Any:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, PlainTextResponse, Response
    from starlette.routing import Route

    async def enqueue(request: Request) -> Response:
        try:
            event = json.loads(await request.body())
        except ValueError:
            return JSONResponse({"status": "invalid event", "message": "not JSON"}, 400)
        errors = pagerduty_errors(event, routing_key)
        kept.add("pagerduty", {"event": event, "accepted": not errors, "errors": errors})
        if errors:
            body = {
                "status": "invalid event",
                "message": "Event object is invalid",
                "errors": errors,
            }
            return JSONResponse(body, 400)
        reply = {
            "status": "success",
            "message": "Event processed",
            "dedup_key": event.get("dedup_key"),
        }
        return JSONResponse(reply, 202)

    async def slack(request: Request) -> Response:
        if request.url.path != slack_path:
            return PlainTextResponse("no_service", 404)  # a webhook URL with a wrong secret
        try:
            message = json.loads(await request.body())
        except ValueError:
            return PlainTextResponse("invalid_payload", 400)
        if not isinstance(message, dict) or not isinstance(message.get("text"), str):
            return PlainTextResponse("invalid_payload", 400)
        if not message["text"].strip():
            return PlainTextResponse("no_text", 400)
        kept.add("slack", {"text": message["text"]})
        return PlainTextResponse("ok")

    return Starlette(
        routes=[
            Route("/v2/enqueue", enqueue, methods=["POST"]),
            Route("/services/{rest:path}", slack, methods=["POST"]),
        ]
    )


class _MailHandler:
    def __init__(self, kept: Kept) -> None:
        self.kept = kept

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        mail = message_from_bytes(envelope.content, policy=email_policy)
        body = mail.get_body(preferencelist=("plain",))
        self.kept.add(
            "email",
            {
                "from": envelope.mail_from,
                "to": list(envelope.rcpt_tos),
                "subject": str(mail["Subject"]),
                "text": body.get_content() if body is not None else "",
                "tls": session.ssl is not None,
                "login": session.authenticated,
            },
        )
        return "250 Message accepted for delivery"


def smtp_server(kept: Kept, port: int, cert: Path, key: Path, user: str, password: str) -> Any:
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult, LoginPassword

    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)

    def authenticator(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> Any:
        ok = isinstance(data, LoginPassword) and (
            data.login.decode() == user and data.password.decode() == password
        )
        return AuthResult(success=ok, handled=False)  # aiosmtpd then answers 535 itself

    return Controller(
        _MailHandler(kept),
        hostname="127.0.0.1",
        port=port,
        tls_context=context,
        require_starttls=True,
        authenticator=authenticator,
        auth_required=True,
    )


def main(argv: list[str]) -> int:
    folder, http_port, smtp_port, cert, key = argv
    import uvicorn

    kept = Kept(Path(folder))
    webhook = os.environ.get("IRKIT_SLACK_WEBHOOK", "")
    smtp = smtp_server(
        kept,
        int(smtp_port),
        Path(cert),
        Path(key),
        os.environ.get("IRKIT_SMTP_USER", ""),
        os.environ.get("IRKIT_SMTP_PASSWORD", ""),
    )
    smtp.start()
    app = http_app(kept, os.environ.get("IRKIT_PAGERDUTY_ROUTING_KEY", ""), urlsplit(webhook).path)
    config = uvicorn.Config(app, host="127.0.0.1", port=int(http_port), log_level="warning")
    try:
        asyncio.run(uvicorn.Server(config).serve())
    finally:
        smtp.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
