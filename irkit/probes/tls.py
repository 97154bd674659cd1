"""TLS probe: days until each served certificate expires.

What the runbook's `openssl s_client -connect host:443 -servername host | openssl x509 -noout
-dates` shows, for several names at once, graded like check_ssl_cert: a real handshake with SNI,
without verifying (an expired or untrusted certificate must still be read), then the dates.
"""

from __future__ import annotations

import datetime as dt
import socket
import ssl
from typing import Any

from cryptography import x509
from cryptography.x509.oid import NameOID

from irkit.probes.contract import Finding, check_thresholds, grade_low, probe
from irkit.result import Result, Status
from irkit.targets import TlsEndpoint, TlsTarget


def _tls_expiry(r: Result) -> str:
    return (
        "Runbook Common Incident 3, HTTPS certificate: renew it (`certbot renew "
        "--force-renewal`), reload the web server (`docker-compose restart web`), then verify "
        "with `curl -vI https://…` and re-run this check."
    )


def _has_endpoints(target: TlsTarget) -> bool:
    return bool(target.endpoints)


@probe(
    "tls.expiry",
    measures=(
        "days left on each served certificate (a real handshake with SNI, several names at once)"
    ),
    grades="≤ {tls_warn_days} / ≤ {tls_crit_days} or expired",
    target="tls",
    thresholds={"warn_days": "tls_warn_days", "crit_days": "tls_crit_days"},
    area="tls",
    recheck=True,
    recheck_when=_has_endpoints,
    advice=_tls_expiry,
)
def expiry(target: TlsTarget, *, warn_days: float, crit_days: float) -> Finding:
    """Days left on each endpoint's certificate: WARN at or below `warn_days`, CRIT at or below
    `crit_days` or once expired. An endpoint that refuses the handshake is CRIT."""
    check_thresholds(warn_days, crit_days, higher_is_worse=False)
    if not target.endpoints:
        return Finding(
            Status.UNKNOWN,
            'no HTTPS endpoint to check: set tls_endpoints (e.g. ["himalytix.com:443"]) or an '
            "https web_url",
            {"certificates": []},
        )
    now = dt.datetime.now(dt.UTC)
    rows = [_inspect(endpoint, target.timeout_s, now) for endpoint in target.endpoints]
    statuses = [
        Status.CRIT if "error" in row else grade_low(row["days_left"], warn_days, crit_days)
        for row in rows
    ]
    for row, status in zip(rows, statuses, strict=True):
        row["status"] = status.value
    worst = Status.worst(statuses)
    evidence: dict[str, Any] = {
        "certificates": rows,
        "warn_days": warn_days,
        "crit_days": crit_days,
    }
    if all("error" in row for row in rows):
        evidence["reachable"] = False
    return Finding(worst, _summary(rows, worst), evidence)


def _inspect(endpoint: TlsEndpoint, timeout_s: float, now: dt.datetime) -> dict[str, Any]:
    row: dict[str, Any] = {"endpoint": endpoint.display, "server_name": endpoint.server_name}
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    address = endpoint.address or endpoint.server_name
    try:
        with (
            socket.create_connection((address, endpoint.port), timeout=timeout_s) as raw,
            context.wrap_socket(raw, server_hostname=endpoint.server_name) as tls,
        ):
            der = tls.getpeercert(binary_form=True)
            row["protocol"] = tls.version()
    except TimeoutError:
        row["error"] = f"no TLS handshake within {timeout_s:g} s (the listener does not answer)"
        return row
    except ssl.SSLError as exc:
        row["error"] = f"TLS handshake failed: {exc.reason or exc}"
        return row
    except OSError as exc:
        row["error"] = f"cannot connect: {exc.strerror or exc}"
        return row
    if not der:
        row["error"] = "the server sent no certificate"
        return row
    cert = x509.load_der_x509_certificate(der)
    not_after = cert.not_valid_after_utc
    row.update(
        subject=_common_name(cert.subject),
        issuer=_common_name(cert.issuer),
        not_before=cert.not_valid_before_utc.isoformat(),
        not_after=not_after.isoformat(),
        days_left=round((not_after - now).total_seconds() / 86400, 1),
        names=_names(cert),
    )
    row["name_matches"] = _matches(endpoint.server_name, row["names"])
    return row


def _summary(rows: list[dict[str, Any]], worst: Status) -> str:
    failed = [r for r in rows if "error" in r]
    expired = [r for r in rows if r.get("days_left", 1) <= 0]
    dated = sorted((r for r in rows if "days_left" in r), key=lambda r: r["days_left"])
    parts = []
    if failed:
        parts.append("; ".join(f"{r['endpoint']}: {r['error']}" for r in failed))
    if expired:
        parts.append(
            "EXPIRED: "
            + ", ".join(
                f"{r['endpoint']} ({-r['days_left']:g} days ago, {r['not_after'][:10]})"
                for r in expired
            )
        )
    soonest = [r for r in dated if r["days_left"] > 0]
    if soonest:
        first = soonest[0]
        until = first["not_after"][:10]
        parts.append(f"{first['endpoint']} expires in {first['days_left']:g} days ({until})")
    if worst is Status.OK and len(rows) > 1:
        parts[-1] = f"{len(rows)} certificates; the first to expire: {parts[-1]}"
    return "; ".join(parts)


def _common_name(name: x509.Name) -> str:
    values = name.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(values[0].value) if values else name.rfc4514_string()


def _names(cert: x509.Certificate) -> list[str]:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return [_common_name(cert.subject)]
    return [str(n) for n in san.get_values_for_type(x509.DNSName)]


def _matches(server_name: str, names: list[str]) -> bool:
    for name in names:
        if name == server_name:
            return True
        if name.startswith("*.") and server_name.partition(".")[2] == name[2:]:
            return True
    return False
