"""The alert intake's pure parts: Alertmanager's body read strictly, the route an alert takes,
and Slack mentions from contact handles."""

from __future__ import annotations

import json
from typing import Any

import pytest

from irkit import parameters
from irkit.catalogue.parameters import default
from irkit.errors import ParameterError
from irkit.incident import paging
from irkit.intake import alertmanager
from irkit.intake.routes import Router


def body(**changes: Any) -> dict[str, Any]:
    """A version-4 notification as Alertmanager 0.25 posts it."""
    alert = {
        "status": "firing",
        "labels": {"alertname": "PostgresConnectionsHigh", "severity": "critical"},
        "annotations": {"summary": "Connections near the limit"},
        "startsAt": "2026-12-01T10:00:00.123456789Z",
        "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": "http://127.0.0.1:9090/graph?g0.expr=x",
        "fingerprint": "0123456789abcdef",
    }
    data = {
        "version": "4",
        "groupKey": '{}:{alertname="PostgresConnectionsHigh"}',
        "truncatedAlerts": 0,
        "status": "firing",
        "receiver": "irkit",
        "groupLabels": {"alertname": "PostgresConnectionsHigh"},
        "commonLabels": dict(alert["labels"]),  # type: ignore[call-overload]
        "commonAnnotations": dict(alert["annotations"]),  # type: ignore[call-overload]
        "externalURL": "http://127.0.0.1:9093",
        "alerts": [alert],
    }
    data.update(changes)
    return data


def test_a_notification_is_read_whole() -> None:
    n = alertmanager.parse(json.dumps(body()).encode())
    assert n.name == "PostgresConnectionsHigh"
    assert n.label("severity") == "critical"
    assert n.annotation("summary") == "Connections near the limit"
    assert n.started_at is not None
    assert n.started_at.isoformat() == "2026-12-01T10:00:00.123456+00:00"
    assert n.alerts[0].ends_at is None  # Alertmanager's zero time: no end yet
    assert [a.fingerprint for a in n.firing] == ["0123456789abcdef"]


@pytest.mark.parametrize(
    ("raw", "says"),
    [
        (b"{not json", "the body is not JSON"),
        (b"[]", "must be a JSON object, not list"),
        (json.dumps(body(version="3")).encode(), "version '3' is not supported"),
        (json.dumps(body(version=None)).encode(), "version None is not supported"),
        (json.dumps(body(groupKey="")).encode(), "groupKey is missing"),
        (json.dumps(body(status="pending")).encode(), "status must be firing or resolved"),
        (json.dumps(body(alerts=[])).encode(), "alerts is empty"),
        (json.dumps(body(alerts={})).encode(), "alerts must be a list"),
        (json.dumps(body(alerts=["x"])).encode(), "alerts[0] must be an object"),
        (json.dumps(body(commonLabels={"a": 1})).encode(), "commonLabels must map names"),
        (json.dumps(body(truncatedAlerts=-1)).encode(), "truncatedAlerts must be a count"),
        (
            json.dumps(body(alerts=[{**body()["alerts"][0], "startsAt": "yesterday"}])).encode(),
            "alerts[0].startsAt is not an RFC 3339 time: 'yesterday'",
        ),
        (b'{"version": "4", "receiver": "\xff"}', "the body is not JSON"),
    ],
)
def test_a_malformed_notification_is_refused_naming_the_field(raw: bytes, says: str) -> None:
    with pytest.raises(alertmanager.PayloadError) as refused:
        alertmanager.parse(raw)
    assert says in str(refused.value)


def routing(**changes: Any) -> Router:
    names = ("alert_severities", "alert_sections", "alert_pagerduty", "alert_email")
    values = {name: default(name) for name in names} | changes
    sections = [s for s, d in parameters.known().items() if "incident_id" in d]
    return Router(values, sections)


def test_the_route_follows_the_runbook_defaults() -> None:
    route = routing().route(alertmanager.parse_object(body()))
    assert route.sections == ("db",)
    assert (route.severity, route.category) == ("P1", "database")
    assert route.pagerduty
    assert not route.email
    assert route.title == "PostgresConnectionsHigh: Connections near the limit"
    assert "severity critical → P1" in route.why
    # The runbook: health check failures page, an error rate over 5 % emails too.
    health = routing().route(alertmanager.parse_object(_named("HealthCheckFailing", "warning")))
    assert health.pagerduty
    assert health.severity == "P2"
    errors = routing().route(alertmanager.parse_object(_named("HighErrorRate", "warning")))
    assert errors.email
    assert not errors.pagerduty


def _named(name: str, severity: str, **labels: str) -> dict[str, Any]:
    lab = {"alertname": name, "severity": severity, **labels}
    return body(groupLabels={"alertname": name}, commonLabels=lab)


def test_a_runbook_section_label_wins_and_a_wrong_one_is_set_aside() -> None:
    router = routing()
    chosen = router.route(
        alertmanager.parse_object(_named("Anything", "info", runbook_section="redis celery"))
    )
    assert chosen.sections == ("redis", "celery")
    assert chosen.severity == "P3"
    assert not chosen.pagerduty
    wrong = router.route(
        alertmanager.parse_object(_named("SlowQueries", "page", runbook_section="nosuch"))
    )
    assert wrong.sections == ("db",)
    assert "no section 'nosuch'" in wrong.why
    assert wrong.severity == ""
    assert "the decision list decides" in wrong.why
    unknown = router.route(alertmanager.parse_object(_named("Unheard", "critical")))
    assert unknown.sections == ()
    assert "triage only" in unknown.why


def test_an_unknown_category_label_falls_back_to_the_sections() -> None:
    route = routing().route(
        alertmanager.parse_object(_named("CeleryBacklog", "warning", category="security"))
    )
    assert route.category == "security"
    route = routing().route(
        alertmanager.parse_object(_named("CeleryBacklog", "warning", category="weather"))
    )
    assert route.category == "infrastructure"


@pytest.mark.parametrize(
    ("changes", "says"),
    [
        ({"alert_severities": ["critical P1"]}, "alert_severities: 'critical P1' is not"),
        ({"alert_severities": ["critical: P9"]}, "critical: 'P9' is not one of P0, P1, P2, P3"),
        ({"alert_sections": ["HighCPU: cpu"]}, "alert_sections: HighCPU: no section 'cpu'"),
    ],
)
def test_wrong_routing_parameters_are_refused_at_start(changes: dict[str, Any], says: str) -> None:
    with pytest.raises(ParameterError, match=says):
        routing(**changes)


def test_slack_mentions_from_contact_handles() -> None:
    assert paging.mention("U024BE7LH") == "<@U024BE7LH>"
    assert paging.mention("@W0123ABCDE") == "<@W0123ABCDE>"
    assert paging.mention("S0614TZR7") == "<!subteam^S0614TZR7>"
    assert paging.mention("@here") == "<!here>"
    # A display name is not resolved from a webhook: shown as text, escaped for Slack.
    assert paging.mention("@dba <oncall> & co") == "@dba &lt;oncall&gt; &amp; co"
    contacts = ["On-call Engineer: U024BE7LH", "Database Admin: S0614TZR7", "broken line"]
    handles = paging.oncall_handles(contacts, ["Database Admin", "on-call engineer", "CTO"])
    assert handles == ["S0614TZR7", "U024BE7LH"]
