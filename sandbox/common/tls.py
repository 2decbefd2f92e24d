"""A throwaway certificate authority and a server certificate for 127.0.0.1.

simple-salesforce always speaks https, so the Salesforce emulator must serve TLS. Clients
trust the generated CA file (``ca_cert_path``) instead of disabling verification.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


@dataclass(frozen=True)
class CertificateAuthority:
    """Paths of the generated PEM files."""

    ca_cert_path: Path
    server_cert_path: Path
    server_key_path: Path


def ensure_certificate_authority(directory: Path) -> CertificateAuthority:
    """The CA and server certificate in ``directory``, created if missing or expiring."""
    directory.mkdir(parents=True, exist_ok=True)
    authority = CertificateAuthority(
        ca_cert_path=directory / "sandbox-ca.pem",
        server_cert_path=directory / "sandbox-server.pem",
        server_key_path=directory / "sandbox-server-key.pem",
    )
    if _still_valid(authority):
        return authority
    _generate(authority)
    return authority


def _still_valid(authority: CertificateAuthority) -> bool:
    paths = (authority.ca_cert_path, authority.server_cert_path, authority.server_key_path)
    if not all(path.exists() for path in paths):
        return False
    cert = x509.load_pem_x509_certificate(authority.server_cert_path.read_bytes())
    return cert.not_valid_after_utc > dt.datetime.now(dt.UTC) + dt.timedelta(days=7)


def _generate(authority: CertificateAuthority) -> None:
    now = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "stagelink sandbox CA")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    server_key = ec.generate_private_key(ec.SECP256R1())
    server_cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(server_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=825))
        .add_extension(
            x509.SubjectAlternativeName(
                [
                    x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                    x509.DNSName("localhost"),
                ]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    authority.ca_cert_path.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    authority.server_cert_path.write_bytes(server_cert.public_bytes(serialization.Encoding.PEM))
    authority.server_key_path.write_bytes(
        server_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    authority.server_key_path.chmod(0o600)
