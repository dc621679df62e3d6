"""Certificates made for a run: a CA and a server certificate it issues (the TLS rehearsal's
for serverName, the S3 server's for its name), made by rehearsal.hosts.tls_material. Nothing
leaves the run."""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Iterable, Optional, cast

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from rehearsal.hosts import tls_material
from rehearsal.hosts.tls_material import key_pem, new_key

__all__ = ["RunCertificates", "certificates_for", "key_pem", "new_key"]


@dataclass(frozen=True)
class RunCertificates:
    """A CA and a server certificate (with its key) it issued, as PEM text."""

    ca_pem: str
    cert_pem: str
    key_pem: str

    @property
    def key(self) -> ec.EllipticCurvePrivateKey:
        # certificates_for() made it with new_key(): an EC key, whatever else PEM can hold.
        return cast(
            ec.EllipticCurvePrivateKey, serialization.load_pem_private_key(self.key_pem.encode(), password=None)
        )

    def cert_der(self) -> bytes:
        return x509.load_pem_x509_certificate(self.cert_pem.encode()).public_bytes(serialization.Encoding.DER)


def certificates_for(
    server_name: str,
    *,
    names: Optional[Iterable[str]] = None,
    valid_from: Optional[datetime.datetime] = None,
    valid_until: Optional[datetime.datetime] = None,
) -> RunCertificates:
    """A fresh CA and a certificate it issues for `names` (default: serverName), valid from an
    hour ago for a day unless told otherwise. Both carry the extensions a strict verifier wants
    (basic constraints, key usage, subject and authority key identifiers)."""
    ca, ca_key = tls_material.new_ca("django-docker rehearsal CA")
    dns = list(names) if names is not None else [server_name.lstrip(".")]
    server = tls_material.issue(
        ca,
        ca_key,
        dns[0] if dns else server_name,
        server=True,
        names=dns,
        valid_from=valid_from,
        valid_until=valid_until,
    )
    return RunCertificates(ca.public_bytes(tls_material.PEM).decode(), server.cert_pem, server.key_pem)
