"""tlsCertificate and tlsKey, checked before anything is created."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Optional

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization

from components.settings.values import SettingsError


def check_tls(certificate_pem: str, key_pem: str, server_name: str, *, now: Optional[datetime] = None) -> None:
    """Refuse a certificate and key nginx could not serve, or no client would accept.

    Checked: both parse as PEM (the key unencrypted: nginx has no passphrase), the key is the
    certificate's (the first certificate in the chain, the one nginx presents), the certificate
    is valid now, and it covers serverName. The last is an error, not a warning: nginx would
    start and serve it, but every verifying client (browsers, curl, requests) would refuse the
    site; a stack that must serve another name sets serverName to it. Messages name the key and
    never quote the PEM text.
    """
    try:
        chain = x509.load_pem_x509_certificates(certificate_pem.encode())
    except ValueError:
        raise SettingsError(
            "tlsCertificate: not a PEM certificate; expected the server's certificate, then any "
            "intermediates, each between -----BEGIN CERTIFICATE----- lines"
        ) from None
    try:
        key = serialization.load_pem_private_key(key_pem.encode(), password=None)
    except TypeError:  # the key needs a password
        raise SettingsError("tlsKey: encrypted; nginx needs the private key without a passphrase") from None
    except (ValueError, UnsupportedAlgorithm):
        raise SettingsError(
            "tlsKey: not a PEM private key; expected -----BEGIN PRIVATE KEY----- (or RSA/EC PRIVATE KEY), unencrypted"
        ) from None
    leaf = chain[0]
    public = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    if key.public_key().public_bytes(*public) != leaf.public_key().public_bytes(*public):
        raise SettingsError("tlsKey: does not match tlsCertificate (the key's public key is not the certificate's)")
    now = now or datetime.now(timezone.utc)
    if now >= leaf.not_valid_after_utc:
        raise SettingsError(f"tlsCertificate: expired on {leaf.not_valid_after_utc:%Y-%m-%d %H:%M:%S} UTC")
    if now < leaf.not_valid_before_utc:
        raise SettingsError(f"tlsCertificate: not valid before {leaf.not_valid_before_utc:%Y-%m-%d %H:%M:%S} UTC")
    try:
        names = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(
            x509.DNSName
        )
    except x509.ExtensionNotFound:
        names = []  # clients ignore the subject's CN (RFC 6125 section 6.4.4; Chrome 58, Python 3.7)
    host = server_name.lstrip(".")  # nginx's `.example.com` is example.com and its subdomains
    if not any(_name_covers(name, host) for name in names):
        raise SettingsError(
            f"tlsCertificate: does not cover serverName '{host}'; it names "
            + (", ".join(names) if names else "no host (no subjectAltName DNS entry)")
        )


def _name_covers(pattern: str, host: str) -> bool:
    """RFC 6125 matching: exact, or a `*` as the whole leftmost label standing for one label."""
    pattern, host = pattern.lower().rstrip("."), host.lower().rstrip(".")
    if pattern.startswith("*."):
        first, _, rest = host.partition(".")
        return bool(first) and rest == pattern[2:]
    return pattern == host
