"""Certificates made for a run: a CA and a server certificate it issues (the TLS rehearsal's
for serverName, the S3 server's for its name). Nothing leaves the run."""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Iterable, Optional, cast

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


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


def new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def key_pem(key) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


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
    now = datetime.datetime.now(datetime.timezone.utc)
    valid_from = valid_from or now - datetime.timedelta(hours=1)
    valid_until = valid_until or now + datetime.timedelta(days=1)
    ca_key, server_key = new_key(), new_key()
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "django-docker rehearsal CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
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
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    dns = list(names) if names is not None else [server_name.lstrip(".")]
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, dns[0] if dns else server_name)]))
        .issuer_name(ca_name)
        .public_key(server_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(valid_from)
        .not_valid_after(valid_until)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(server_key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
    )
    if dns:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in dns]), critical=False)
    server = builder.sign(ca_key, hashes.SHA256())
    pem = serialization.Encoding.PEM
    return RunCertificates(ca.public_bytes(pem).decode(), server.public_bytes(pem).decode(), key_pem(server_key))
