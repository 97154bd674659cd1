"""Alertmanager's webhook body (version 4), read strictly: a malformed notification is refused
with the field that is wrong, never half understood.

https://prometheus.io/docs/alerting/latest/configuration/#webhook_config
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from irkit.incident import schema

VERSION = "4"
STATUSES = ("firing", "resolved")
# Alertmanager's "no end yet" is the zero time.
_ZERO_TIME = "0001-01-01T00:00:00Z"


class PayloadError(ValueError):
    """The body is not an Alertmanager version-4 notification; the message names what is wrong."""


@dataclass(frozen=True)
class Alert:
    status: str
    labels: dict[str, str]
    annotations: dict[str, str]
    starts_at: datetime | None
    ends_at: datetime | None
    fingerprint: str
    generator_url: str

    @property
    def name(self) -> str:
        return self.labels.get("alertname", "")


@dataclass(frozen=True)
class Notification:
    group_key: str
    status: str
    receiver: str
    group_labels: dict[str, str]
    common_labels: dict[str, str]
    common_annotations: dict[str, str]
    external_url: str
    alerts: tuple[Alert, ...]
    truncated: int = 0

    @property
    def firing(self) -> list[Alert]:
        return [a for a in self.alerts if a.status == "firing"]

    @property
    def name(self) -> str:
        """The alert's name: the group's, else the one all its alerts share, else the first's."""
        return (
            self.group_labels.get("alertname")
            or self.common_labels.get("alertname")
            or (self.alerts[0].name if self.alerts else "")
        )

    def label(self, name: str) -> str:
        """A label every alert of the group carries (the group's or the common labels)."""
        return self.group_labels.get(name) or self.common_labels.get(name, "")

    def annotation(self, name: str) -> str:
        found = self.common_annotations.get(name)
        if found:
            return found
        return next((a.annotations[name] for a in self.alerts if a.annotations.get(name)), "")

    @property
    def started_at(self) -> datetime | None:
        """When the earliest of its firing alerts started: the impact's start, as rules saw it."""
        starts = [a.starts_at for a in self.firing if a.starts_at is not None]
        return min(starts) if starts else None


def parse(body: bytes) -> Notification:
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PayloadError(f"the body is not JSON: {exc}") from None
    return parse_object(data)


def parse_object(data: Any) -> Notification:
    """A notification as `json.loads` read it (also what the spool keeps)."""
    if not isinstance(data, dict):
        raise PayloadError(f"the body must be a JSON object, not {type(data).__name__}")
    version = data.get("version")
    if version != VERSION:
        raise PayloadError(
            f"version {version!r} is not supported: irkit reads Alertmanager's webhook "
            f"version {VERSION!r}"
        )
    alerts = _list(data, "alerts")
    if not alerts:
        raise PayloadError("alerts is empty: a notification carries at least one alert")
    return Notification(
        group_key=_text(data, "groupKey", required=True),
        status=_status(data, "status"),
        receiver=_text(data, "receiver"),
        group_labels=_labels(data, "groupLabels"),
        common_labels=_labels(data, "commonLabels"),
        common_annotations=_labels(data, "commonAnnotations"),
        external_url=_text(data, "externalURL"),
        alerts=tuple(_alert(a, f"alerts[{n}]") for n, a in enumerate(alerts)),
        truncated=_count(data, "truncatedAlerts"),
    )


def _alert(data: Any, where: str) -> Alert:
    if not isinstance(data, dict):
        raise PayloadError(f"{where} must be an object, not {type(data).__name__}")
    return Alert(
        status=_status(data, "status", where),
        labels=_labels(data, "labels", where),
        annotations=_labels(data, "annotations", where),
        starts_at=_time(data, "startsAt", where),
        ends_at=_time(data, "endsAt", where),
        fingerprint=_text(data, "fingerprint", where=where),
        generator_url=_text(data, "generatorURL", where=where),
    )


def _at(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def _text(data: dict[str, Any], key: str, *, required: bool = False, where: str = "") -> str:
    value = data.get(key, "")
    if not isinstance(value, str):
        raise PayloadError(f"{_at(where, key)} must be a string, not {type(value).__name__}")
    if required and not value:
        raise PayloadError(f"{_at(where, key)} is missing")
    return value


def _status(data: dict[str, Any], key: str, where: str = "") -> str:
    value = data.get(key)
    if value not in STATUSES:
        raise PayloadError(f"{_at(where, key)} must be firing or resolved, not {value!r}")
    return str(value)


def _list(data: dict[str, Any], key: str) -> list[Any]:
    value = data.get(key)
    if not isinstance(value, list):
        raise PayloadError(f"{key} must be a list, not {type(value).__name__}")
    return value


def _count(data: dict[str, Any], key: str) -> int:
    value = data.get(key, 0)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise PayloadError(f"{key} must be a count, not {value!r}")
    return value


def _labels(data: dict[str, Any], key: str, where: str = "") -> dict[str, str]:
    value = data.get(key, {})
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise PayloadError(f"{_at(where, key)} must map names to strings")
    return dict(value)


def _time(data: dict[str, Any], key: str, where: str) -> datetime | None:
    value = data.get(key, "")
    if not isinstance(value, str):
        raise PayloadError(f"{_at(where, key)} must be a time string, not {type(value).__name__}")
    if not value or value == _ZERO_TIME:
        return None
    parsed = schema.parse_time(value)
    if parsed is None:
        raise PayloadError(f"{_at(where, key)} is not an RFC 3339 time: {value[:40]!r}")
    return parsed
