"""Certificates for the practice HTTPS listener: one per served name, made with `cryptography`.

A small private CA signs them, as a real certificate authority would, so the kit's `tls.expiry`
meets a real chain; the drill for expiring certificates re-issues them with short or past dates.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

# The names the HTTPS listener serves: the site, and the API clients talk to (by SNI).
SITE = "himalytix.test"
API = "api.himalytix.test"
NAMES = (SITE, API)
# Let's Encrypt's lifetime: what the runbook's `certbot renew` keeps up.
NORMAL_LIFETIME = dt.timedelta(days=90)


@dataclass(frozen=True)
class CertFiles:
    cert: Path
    key: Path


def files(folder: Path, name: str) -> CertFiles:
    return CertFiles(folder / f"{name}.crt", folder / f"{name}.key")


def issue(folder: Path, name: str, *, not_before: dt.datetime, not_after: dt.datetime) -> CertFiles:
    """Write a certificate for `name` (and 127.0.0.1, localhost) valid between the two dates,
    signed by the folder's CA (made on first use)."""
    folder.mkdir(parents=True, exist_ok=True)
    ca_key, ca_cert = _ca(folder)
    key = ec.generate_private_key(ec.SECP256R1())
    san = x509.SubjectAlternativeName(
        [
            x509.DNSName(name),
            x509.DNSName("localhost"),
            x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
        ]
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(san, critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    out = files(folder, name)
    _write(out.key, _key_pem(key), private=True)
    # The chain, as a web server serves it: the leaf, then the CA.
    chain = [c.public_bytes(serialization.Encoding.PEM) for c in (cert, ca_cert)]
    _write(out.cert, b"".join(chain), private=False)
    return out


def issue_for(folder: Path, name: str, lifetime: dt.timedelta) -> CertFiles:
    """A certificate issued now that expires after `lifetime` (negative: expired that long ago)."""
    now = dt.datetime.now(dt.UTC)
    if lifetime < dt.timedelta(0):
        return issue(folder, name, not_before=now + lifetime * 10, not_after=now + lifetime)
    return issue(folder, name, not_before=now - dt.timedelta(hours=1), not_after=now + lifetime)


def ca_file(folder: Path) -> Path:
    return folder / "ca.crt"


def _ca(folder: Path) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key_path, cert_path = folder / "ca.key", ca_file(folder)
    if key_path.exists() and cert_path.exists():
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        return key, x509.load_pem_x509_certificate(cert_path.read_bytes())
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "irkit practice CA")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(key, hashes.SHA256())
    )
    _write(key_path, _key_pem(key), private=True)
    _write(cert_path, cert.public_bytes(serialization.Encoding.PEM), private=False)
    return key, cert


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _write(path: Path, data: bytes, private: bool) -> None:
    partial = path.with_suffix(path.suffix + ".partial")
    partial.write_bytes(data)
    partial.chmod(0o600 if private else 0o644)
    partial.replace(path)
