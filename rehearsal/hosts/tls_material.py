"""Certificates made for one run: the one home of the rehearsal's CAs (a Docker engine's TLS, the
TLS and S3 servers' (rehearsal.hosts.certificates), Pebble's directory).

For a Docker engine that listens on TCP with TLS verification:

What `dockerd --tlsverify` wants (Docker's "Protect the Docker daemon socket"): a CA, a server
certificate for the names clients dial (here 127.0.0.1 and localhost, as IP and DNS
subjectAltNames, extendedKeyUsage serverAuth) and a client certificate with extendedKeyUsage
clientAuth, both issued by that CA (the daemon verifies clients against --tlscacert). Keys are
EC P-256, unencrypted PKCS#8 (the Docker client takes no passphrase).
"""

from __future__ import annotations

import datetime
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Optional

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

PEM = serialization.Encoding.PEM


@dataclass(frozen=True)
class Issued:
    cert_pem: str
    key_pem: str


@dataclass(frozen=True)
class DockerTls:
    """The CA (certificate and key), the engine's certificate, and a client's."""

    ca_pem: str
    ca_key_pem: str
    server: Issued
    client: Issued

    def write_server(self, directory: Path) -> tuple[Path, Path, Path]:
        """ca.pem, server-cert.pem, server-key.pem (0600) for dockerd's --tlscacert/--tlscert/--tlskey."""
        return (
            _write(directory / "ca.pem", self.ca_pem),
            _write(directory / "server-cert.pem", self.server.cert_pem),
            _write(directory / "server-key.pem", self.server.key_pem, 0o600),
        )

    def write_client(self, directory: Path) -> Path:
        """ca.pem, cert.pem, key.pem: a `docker:certPath` / DOCKER_CERT_PATH directory."""
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        _write(directory / "ca.pem", self.ca_pem)
        _write(directory / "cert.pem", self.client.cert_pem)
        _write(directory / "key.pem", self.client.key_pem, 0o600)
        return directory


def _write(path: Path, text: str, mode: int = 0o644) -> Path:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.chmod(path, mode)
    return path


def new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def key_pem(key) -> str:
    return key.private_bytes(PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def new_ca(
    common: str = "django-docker rehearsal Docker CA", *, days: int = 2
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    now = datetime.datetime.now(datetime.timezone.utc)
    key = new_key()
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(common))
        .issuer_name(_name(common))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=days))
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
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return cert, key


def issue(
    ca: x509.Certificate,
    ca_key: ec.EllipticCurvePrivateKey,
    common: str,
    *,
    server: bool,
    names: Iterable[str] = (),
    valid_from: Optional[datetime.datetime] = None,
    valid_until: Optional[datetime.datetime] = None,
) -> Issued:
    """A certificate the CA issues: a server's for `names` (IP addresses or DNS names), or a client's."""
    now = datetime.datetime.now(datetime.timezone.utc)
    key = new_key()
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(valid_from or now - datetime.timedelta(hours=1))
        .not_valid_after(valid_until or now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=True,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH]),
            critical=False,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
    )
    alt: list[x509.GeneralName] = []
    for name in names:
        try:
            alt.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            alt.append(x509.DNSName(name))
    if alt:
        builder = builder.add_extension(x509.SubjectAlternativeName(alt), critical=False)
    cert = builder.sign(ca_key, hashes.SHA256())
    return Issued(cert.public_bytes(PEM).decode(), key_pem(key))


def docker_tls(names: Iterable[str] = ("127.0.0.1", "localhost")) -> DockerTls:
    """A CA, the engine's certificate for `names`, and a client certificate, for one run."""
    ca, ca_key = new_ca()
    return DockerTls(
        ca.public_bytes(PEM).decode(),
        key_pem(ca_key),
        issue(ca, ca_key, "docker engine", server=True, names=list(names)),
        issue(ca, ca_key, "django-docker rehearsal client", server=False),
    )


def stranger(names: Iterable[str] = ("127.0.0.1", "localhost")) -> DockerTls:
    """Another CA with its own certificates: what the engine's CA never issued."""
    return docker_tls(names)
