"""Posting a message: only when asked, only with the credential in the environment, never fatal.

The Slack incoming-webhook URL (IRKIT_SLACK_WEBHOOK) and the status-page token
(IRKIT_STATUSPAGE_TOKEN) are secrets: they are read here and never shown or recorded. Every
attempt, posted or failed, becomes a timeline event. What a failed post reports comes from the
remote server (which may echo the request's path, where a webhook keeps its secret) or from the
HTTP client (which may name the URL): it is scrubbed whole, before it is shortened, so that no cut
leaves half a secret unrecognised.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import httpx

from irkit.incident.log import IncidentLog
from irkit.incident.messages import Message
from irkit.secrets import scrub

SLACK_ENV = "IRKIT_SLACK_WEBHOOK"
STATUSPAGE_ENV = "IRKIT_STATUSPAGE_TOKEN"
STATUSPAGE_API = "https://api.statuspage.io/v1"
TIMEOUT_S = 10.0
_TITLES = {
    "detected": "INCIDENT DETECTED",
    "resolved": "INCIDENT RESOLVED",
}


@dataclass(frozen=True)
class Delivery:
    channel: str
    posted: bool
    detail: str
    # The status page's id for the incident it created (what later updates address).
    remote_id: str = ""

    def __str__(self) -> str:
        return f"{self.channel}: {'posted' if self.posted else 'NOT posted'} ({self.detail})"

    def _repr_mimebundle_(self, include: object = None, exclude: object = None) -> dict[str, str]:
        return {"text/plain": str(self)}


def post(channel: str, url: str, method: str = "POST", **kwargs: object) -> Delivery:
    """Send one request for `channel`; what the far end or the client said, scrubbed, if it
    did not take it. Never raises."""
    try:
        response = httpx.request(method, url, timeout=TIMEOUT_S, **kwargs)  # type: ignore[arg-type]
    except (httpx.HTTPError, httpx.InvalidURL, ValueError) as exc:
        # Never fatal: a bad URL in the environment is reported like a refused post.
        return Delivery(
            channel, False, scrub(f"{type(exc).__name__}: {exc}".replace(url, "the URL"))[:300]
        )
    if response.status_code >= 300:
        # A bounded head is enough for the 200 characters shown, and far from its cut.
        body = scrub(" ".join(response.text[:65536].split()))
        return Delivery(channel, False, f"HTTP {response.status_code}: {body[:200]}")
    return Delivery(channel, True, f"HTTP {response.status_code}", _remote_id(response))


def _remote_id(response: httpx.Response) -> str:
    """The `id` a status page answers a created incident with; empty from anything else."""
    try:
        answer = response.json()
    except ValueError:
        return ""
    found = answer.get("id") if isinstance(answer, dict) else None
    return found if isinstance(found, str) and found.isalnum() and len(found) <= 64 else ""


def slack(message: Message) -> Delivery:
    return post_slack(message.slack)


def post_slack(text: str) -> Delivery:
    """Post `text` to the incoming webhook in IRKIT_SLACK_WEBHOOK."""
    url = os.environ.get(SLACK_ENV, "")
    if not url:
        return Delivery("slack", False, f"{SLACK_ENV} is not set: paste the text above instead")
    return post("slack", url, json={"text": text})


def statuspage(
    message: Message, page_id: str, api: str = STATUSPAGE_API, incident: str = ""
) -> Delivery:
    """Create the status-page incident, or update the one created before (`incident`, its id
    there): its status (investigating, monitoring, resolved) and text, from the record."""
    token = os.environ.get(STATUSPAGE_ENV, "")
    if not token or not page_id:
        what = f"{STATUSPAGE_ENV} is not set" if not token else "statuspage_page_id is empty"
        return Delivery("statuspage", False, f"{what}: run the command above instead")
    url = f"{api.rstrip('/')}/pages/{page_id}/incidents"
    headers = {"Authorization": f"OAuth {token}"}
    if incident:
        return post(
            "statuspage", f"{url}/{incident}", method="PATCH", json=message.payload, headers=headers
        )
    return post("statuspage", url, json=message.payload, headers=headers)


def send(
    log: IncidentLog,
    message: Message,
    *,
    notify: bool,
    page_id: str = "",
    api: str = STATUSPAGE_API,
) -> Delivery | None:
    """Post `message` if asked; record the attempt. Returns None when not asked."""
    if not notify:
        return None
    title = _TITLES.get(message.kind, message.kind)
    if message.kind == "statuspage":
        known = str(log.fields.get("statuspage_incident_id") or "")
        delivery = statuspage(message, page_id, api, incident=known)
        status = message.payload.get("incident", {}).get("status", "")
        title = f"status-page {'update' if known else 'incident'} ({status})"
    else:
        delivery = slack(message)
    log.event(
        "message" if delivery.posted else "message-failed",
        f"{title} {'posted to' if delivery.posted else 'could not be posted to'} "
        f"{delivery.channel}: {delivery.detail}",
        channel=delivery.channel,
        message=message.markdown if message.kind != "statuspage" else message.payload,
    )
    if delivery.remote_id:
        log.update(statuspage_incident_id=delivery.remote_id)
    return delivery
