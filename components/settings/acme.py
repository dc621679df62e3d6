"""tlsMode acme: the ACME keys, checked before anything is created (one line each, naming the key).

What an ACME CA can issue for with HTTP-01 (RFC 8555 section 8.3): a domain name it can resolve
and reach on port 80; never an IP address here (HTTP-01 validates names), a single label
(`localhost`, a bare TLD), or a wildcard (only DNS-01 validates those: RFC 8555 section 7.1.3).
Let's Encrypt also refuses names under reserved top-level domains and the example domains
(RFC 2606, RFC 6761, RFC 6762 `.local`, RFC 8375 `home.arpa`, RFC 9476 `.alt`): those are
refused only when the directory is Let's Encrypt's (a private CA, such as step-ca, may issue
for internal names).
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Optional
from urllib.parse import urlsplit

from cryptography import x509

from components.settings.reader import Reader
from components.settings.values import ImageRef, host_name_problem

LETS_ENCRYPT = "https://acme-v02.api.letsencrypt.org/directory"
LETS_ENCRYPT_STAGING = "https://acme-staging-v02.api.letsencrypt.org/directory"
LETS_ENCRYPT_HOSTS = {"acme-v02.api.letsencrypt.org", "acme-staging-v02.api.letsencrypt.org"}
RENEW_DAYS = 30
"""lego renews a certificate with fewer days left than this (Let's Encrypt's certificates last 90)."""
RESERVED_SUFFIXES = ("test", "example", "invalid", "localhost", "local", "internal", "home.arpa", "alt", "onion")
EXAMPLE_DOMAINS = ("example.com", "example.net", "example.org")
ACME_KEYS = ("acmeEmail", "acmeDirectory", "acmeStaging", "acmeExtraNames", "acmeCaCertificate", "acmeImage")
# The local part as RFC 5322's dot-atom (no quoted strings: no CA's account form takes them).
EMAIL_LOCAL_RE = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*$")


@dataclass(frozen=True, kw_only=True)
class AcmeSettings:
    image: ImageRef
    """The ACME client (lego)."""
    email: str
    directory: str
    """The directory URL (the staging switch already applied)."""
    names: tuple[str, ...]
    """serverName, then acmeExtraNames: the certificate's names, its file named after the first."""
    ca_certificate: str
    """PEM the directory's HTTPS chains to, for a private CA; empty: the system's roots."""
    renew_days: int = RENEW_DAYS

    @property
    def lets_encrypt(self) -> bool:
        return urlsplit(self.directory).hostname in LETS_ENCRYPT_HOSTS


def email_problem(value: str) -> Optional[str]:
    """Why `value` is not an e-mail address a CA takes (None: it is one)."""
    local, at, domain = value.rpartition("@")
    if not at or not local or not domain:
        return "has no @ between a name and a domain"
    if len(value) > 254 or len(local) > 64 or not EMAIL_LOCAL_RE.match(local):
        return "has a name part that is not an address's"
    if "." not in domain.strip("."):
        return f"has a domain ({domain}) with no dot"
    why = host_name_problem(domain)
    return f"has a domain that {why}" if why else None


def name_problem(name: str, *, lets_encrypt: bool) -> Optional[str]:
    """Why an ACME CA cannot issue for `name` over HTTP-01 (None: it can)."""
    host = name.rstrip(".").lower()
    try:
        ipaddress.ip_address(host.strip("[]"))
        return "is an IP address; HTTP-01 validates domain names (use tlsMode manual for an IP)"
    except ValueError:
        pass
    if host.startswith(".") or host.startswith("*"):
        return "is a wildcard; only the DNS-01 challenge validates wildcards (use tlsMode manual with a wildcard certificate)"
    if "." not in host:
        return "is a single label (like localhost or a bare top-level domain), which no ACME CA issues for"
    if lets_encrypt:
        if any(host == suffix or host.endswith("." + suffix) for suffix in RESERVED_SUFFIXES):
            return "is under a reserved top-level domain, which Let's Encrypt does not issue for"
        if any(host == domain or host.endswith("." + domain) for domain in EXAMPLE_DOMAINS):
            return "is an example domain (RFC 2606), which Let's Encrypt does not issue for"
    return None


def _allowed(name: str, allowed_hosts: tuple[str, ...]) -> bool:
    """Django's matching (django.http.request.validate_host): exact, or `.domain` for it and below."""
    for pattern in allowed_hosts:
        if (
            pattern == "*"
            or pattern == name
            or (pattern.startswith(".") and (name.endswith(pattern) or name == pattern[1:]))
        ):
            return True
    return False


def read_acme(
    read: Reader,
    *,
    tls_mode: str,
    server_name: str,
    allowed_hosts: tuple[str, ...],
    image: ImageRef,
    target: str,
    manual_certificate: bool,
) -> Optional[AcmeSettings]:
    """The ACME settings when tlsMode is acme (None otherwise); every problem noted on `read`."""
    email = read.string("acmeEmail")
    directory = read.string("acmeDirectory")
    staging = read.boolean("acmeStaging")
    extra = tuple(dict.fromkeys(n.strip().lower() for n in read.string("acmeExtraNames").split(",") if n.strip()))
    ca_pem = read.string("acmeCaCertificate")
    if tls_mode != "acme":
        for key in ACME_KEYS:
            if read.ok(key, "tlsMode") and not read.is_default(key):
                read.refuse(f"{key}: set, but tlsMode is {tls_mode}; it means something only with tlsMode: acme", key)
        return None
    if manual_certificate and read.ok("tlsMode", "tlsCertificate", "tlsKey"):
        read.refuse(
            "tlsMode: acme, but tlsCertificate/tlsKey are set too; the ACME CA issues the certificate: remove them "
            "(`pulumi config rm tlsCertificate`, `pulumi config rm tlsKey`) or set tlsMode: manual",
            "tlsMode",
        )
    if target != "containers" and read.ok("tlsMode", "target"):
        read.refuse(
            f"tlsMode: acme needs target containers (on {target} the renewer cannot reload nginx in place; "
            "docs/swarm.md); use tlsMode manual there",
            "tlsMode",
        )
    if not email:
        read.refuse(
            "acmeEmail: empty; tlsMode acme needs the account's e-mail address, e.g. ops@yourdomain.com", "acmeEmail"
        )
    elif read.ok("acmeEmail"):
        why = email_problem(email)
        if why:
            read.refuse(f"acmeEmail: '{email}' is not an e-mail address; it {why}", "acmeEmail")
    parts = urlsplit(directory)
    if parts.scheme != "https" or not parts.hostname:
        read.refuse(
            f"acmeDirectory: '{directory}' is not an https URL; ACME is spoken over HTTPS only (RFC 8555 section 6.1), "
            f"e.g. {LETS_ENCRYPT}",
            "acmeDirectory",
        )
    if staging and read.ok("acmeStaging", "acmeDirectory"):
        if directory != LETS_ENCRYPT:
            read.refuse(
                f"acmeStaging: true, but acmeDirectory is {directory}; staging is Let's Encrypt's: set one of them",
                "acmeStaging",
            )
        directory = LETS_ENCRYPT_STAGING
    if ca_pem:
        try:
            x509.load_pem_x509_certificates(ca_pem.encode())
        except ValueError:
            read.refuse(
                "acmeCaCertificate: not a PEM certificate; expected the private CA's root, between "
                "-----BEGIN CERTIFICATE----- lines",
                "acmeCaCertificate",
            )
    lets_encrypt = urlsplit(directory).hostname in LETS_ENCRYPT_HOSTS
    if read.ok("serverName"):
        why = name_problem(server_name, lets_encrypt=lets_encrypt)
        if why:
            read.refuse(f"serverName: '{server_name}' {why}", "serverName")
    for name in extra:
        why = host_name_problem(name) or name_problem(name, lets_encrypt=lets_encrypt)
        if why:
            read.refuse(f"acmeExtraNames: '{name}' {why}", "acmeExtraNames")
        elif read.ok("djangoAllowedHosts") and not _allowed(name, allowed_hosts):
            read.refuse(
                f"acmeExtraNames: '{name}' is not one of Django's allowed hosts (serverName, djangoAllowedHosts): "
                "Django would answer 400 for it; add it to djangoAllowedHosts",
                "acmeExtraNames",
            )
    names = (server_name.lower(), *(n for n in extra if n != server_name.lower()))
    return AcmeSettings(image=image, email=email, directory=directory, names=names, ca_certificate=ca_pem)
