"""Pages out, as the runbook routes them: PagerDuty (Events API v2), email over SMTP, and Slack
messages that mention the on-call handles. Each attempt returns a `notify.Delivery` (never
raises: a page that cannot go out is said, and the incident goes on), and `record` puts it on the
incident's timeline.

Settings and secrets come from the environment only: IRKIT_PAGERDUTY_ROUTING_KEY (and
IRKIT_PAGERDUTY_URL, for a proxy or a stand-in), IRKIT_SMTP_HOST, _PORT, _USER, _PASSWORD, _FROM,
_STARTTLS (yes; no only towards a loopback relay) and _CA_FILE.
"""

from __future__ import annotations

import os
import re
import smtplib
import ssl
import uuid
from collections.abc import Mapping, Sequence
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from irkit import escape
from irkit.incident.log import JOURNAL, IncidentLog, append_to_journal
from irkit.incident.notify import SLACK_ENV, Delivery, post, post_slack
from irkit.result import utc_now
from irkit.secrets import redact, scrub

PAGERDUTY_KEY_ENV = "IRKIT_PAGERDUTY_ROUTING_KEY"
PAGERDUTY_URL_ENV = "IRKIT_PAGERDUTY_URL"
PAGERDUTY_URL = "https://events.pagerduty.com/v2/enqueue"
PAGERDUTY_ACTIONS = ("trigger", "acknowledge", "resolve")
# PagerDuty's own limits on a trigger's fields.
PAGERDUTY_SUMMARY_MAX = 1024
PAGERDUTY_SEVERITY = {"P0": "critical", "P1": "critical", "P2": "error", "P3": "warning"}
SMTP_TIMEOUT_S = 10.0
SOURCE = "irkit listen"
LOOPBACK = ("127.0.0.1", "::1", "localhost")


def pagerduty(
    action: str,
    incident_id: str,
    *,
    summary: str = "",
    severity: str = "",
    source: str = "irkit",
    links: Sequence[tuple[str, str]] = (),
    details: Mapping[str, Any] | None = None,
) -> Delivery:
    """Trigger, acknowledge or resolve the PagerDuty alert of `incident_id` (its dedup_key)."""
    if action not in PAGERDUTY_ACTIONS:
        raise ValueError(f"PagerDuty event action {action!r}")
    key = os.environ.get(PAGERDUTY_KEY_ENV, "")
    if not key:
        return Delivery("pagerduty", False, f"{PAGERDUTY_KEY_ENV} is not set: page by hand")
    body: dict[str, Any] = {"routing_key": key, "event_action": action, "dedup_key": incident_id}
    if action == "trigger":
        text = " ".join(summary.split()) or incident_id
        body["payload"] = {
            "summary": text[:PAGERDUTY_SUMMARY_MAX],
            "source": source,
            "severity": PAGERDUTY_SEVERITY.get(severity, "error"),
            "timestamp": utc_now().isoformat(),
            "custom_details": {"incident_id": incident_id, **redact(dict(details or {}))},
        }
        body["links"] = [{"href": href, "text": text} for text, href in links][:10]
    url = os.environ.get(PAGERDUTY_URL_ENV) or PAGERDUTY_URL
    return post("pagerduty", url, json=body)


def email(to: Sequence[str], subject: str, text: str) -> Delivery:
    """Send a plain-text email through the SMTP server the environment names: STARTTLS (certificate
    checked) and login when a user is set."""
    host = os.environ.get("IRKIT_SMTP_HOST", "")
    if not host or not to:
        what = "IRKIT_SMTP_HOST is not set" if not host else "alert_email_to is empty"
        return Delivery("email", False, f"{what}: nothing was emailed")
    try:
        port = int(os.environ.get("IRKIT_SMTP_PORT") or 587)
    except ValueError:
        return Delivery("email", False, "IRKIT_SMTP_PORT is not a port number")
    user = os.environ.get("IRKIT_SMTP_USER", "")
    password = os.environ.get("IRKIT_SMTP_PASSWORD", "")
    starttls = os.environ.get("IRKIT_SMTP_STARTTLS", "yes").strip().lower() not in ("no", "0")
    if not starttls and (user or host not in LOOPBACK):
        # A password, or mail about an incident, never crosses a network in clear text.
        return Delivery(
            "email", False, "IRKIT_SMTP_STARTTLS=no is only for a relay on loopback, without login"
        )
    message = EmailMessage()
    message["From"] = os.environ.get("IRKIT_SMTP_FROM") or (user or "irkit@localhost")
    message["To"] = ", ".join(to)
    message["Subject"] = " ".join(scrub(subject).split())[:200]
    message["Message-ID"] = f"<{uuid.uuid4().hex}@irkit>"
    message.set_content(scrub(text))
    try:
        with smtplib.SMTP(host, port, timeout=SMTP_TIMEOUT_S) as smtp:
            if starttls:
                context = ssl.create_default_context(cafile=os.environ.get("IRKIT_SMTP_CA_FILE"))
                smtp.starttls(context=context)
            if user:
                smtp.login(user, password)
            refused = smtp.send_message(message)
    except (OSError, smtplib.SMTPException, ssl.SSLError) as exc:
        return Delivery("email", False, scrub(f"{type(exc).__name__}: {exc}")[:300])
    if refused:
        return Delivery("email", False, f"refused for {', '.join(sorted(refused))}")
    return Delivery("email", True, f"sent to {len(to)} recipient(s) through {host}:{port}")


# Slack ids: users U…/W…, user groups S…; `@here`, `@channel` and `@everyone` are special.
_SLACK_USER = re.compile(r"@?([UW][A-Z0-9]{6,20})")
_SLACK_GROUP = re.compile(r"@?(S[A-Z0-9]{6,20})")
_SLACK_SPECIAL = {"@here": "<!here>", "@channel": "<!channel>", "@everyone": "<!everyone>"}


def mention(handle: str) -> str:
    """A contact handle as Slack shows it: a user or group id as a mention; anything else (a
    display name, which Slack does not resolve from a webhook) as escaped text."""
    handle = handle.strip()
    if handle in _SLACK_SPECIAL:
        return _SLACK_SPECIAL[handle]
    if match := _SLACK_USER.fullmatch(handle):
        return f"<@{match[1]}>"
    if match := _SLACK_GROUP.fullmatch(handle):
        return f"<!subteam^{match[1]}>"
    return escape.slack(handle)


def oncall_handles(contacts: Sequence[str], roles: Sequence[str]) -> list[str]:
    """The handles of `roles` (the category's first escalation level, the on-call engineer)
    from `contacts` lines ("Role: handle")."""
    by_role: dict[str, str] = {}
    for line in contacts:
        role, sep, handle = line.partition(":")
        if sep and handle.strip():
            by_role.setdefault(role.strip().lower(), handle.strip())
    wanted = [by_role.get(role.lower()) for role in roles]
    return list(dict.fromkeys(h for h in wanted if h))


def slack(text: str, handles: Sequence[str]) -> Delivery:
    """Post `text` (already escaped for Slack) after the mentions of `handles`."""
    if not os.environ.get(SLACK_ENV):
        return Delivery("slack", False, f"{SLACK_ENV} is not set: nothing was posted")
    mentions = " ".join(mention(h) for h in handles)
    return post_slack(f"{mentions} {text}" if mentions else text)


def record(folder: Path, delivery: Delivery, what: str, **data: Any) -> dict[str, Any]:
    """The attempt as a timeline event of the incident in `folder` (appended to its journal)."""
    now = utc_now()
    stamp = now.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    verb = "sent" if delivery.posted else "NOT sent"
    event: dict[str, Any] = {
        "at": stamp,
        "kind": "page" if delivery.posted else "page-failed",
        "text": redact(f"{what} {verb} via {delivery.channel}: {delivery.detail}"),
        "source": SOURCE,
        "id": uuid.uuid4().hex,
        "data": redact({"channel": delivery.channel, **data}),
    }
    append_to_journal(folder / JOURNAL, {"at": stamp, "event": event, "source": SOURCE})
    return event


# What PagerDuty's alert becomes when the incident moves on: a responder's triage acknowledges
# it, a resolution resolves it. Only an alert irkit triggered is followed up.
_FOLLOWED = {"acknowledge": ("triggered",), "resolve": ("triggered", "acknowledged")}
_STATE = {"acknowledge": "acknowledged", "resolve": "resolved"}


def follow_up(log: IncidentLog, action: str) -> Delivery | None:
    """Acknowledge or resolve the PagerDuty alert of the incident `log` records, if irkit
    triggered it and it is still at an earlier step; the attempt goes on its timeline."""
    if log.fields.get("pagerduty") not in _FOLLOWED[action] or not log.incident_id:
        return None
    delivery = pagerduty(action, log.incident_id)
    log.event(
        "page" if delivery.posted else "page-failed",
        f"PagerDuty {action} {'sent' if delivery.posted else 'NOT sent'}: {delivery.detail}",
        channel="pagerduty",
    )
    if delivery.posted:
        log.update(pagerduty=_STATE[action])
    return delivery
