"""Pieces both emulators share: TLS material, a background HTTP server, fault plans, call logs."""

from sandbox.common.calls import CallLog
from sandbox.common.faults import Fault, FaultKind, FaultPlan
from sandbox.common.server import BackgroundServer
from sandbox.common.tls import CertificateAuthority, ensure_certificate_authority

__all__ = [
    "BackgroundServer",
    "CallLog",
    "CertificateAuthority",
    "Fault",
    "FaultKind",
    "FaultPlan",
    "ensure_certificate_authority",
]
