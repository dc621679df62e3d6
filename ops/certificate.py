"""The certificate nginx serves: its names and days left, for `make status`.

Read as a client gets it, not from a file: curl inside the nginx container makes a TLS
handshake with nginx's own port 443 for the stack's server name and prints the chain it was
given (`--write-out %{certs}`, curl 7.88+: the official nginx image's Debian bookworm has
7.88.1). So after a renewal that nginx has not loaded yet, the old certificate is what shows.
Works on a remote Docker host too (an exec through the Docker API).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Optional

from cryptography import x509

WARN_DAYS = 14
PEM_RE = re.compile(r"-----BEGIN CERTIFICATE-----[A-Za-z0-9+/=\s]+?-----END CERTIFICATE-----")


@dataclass(frozen=True)
class Served:
    names: tuple[str, ...]
    not_after: datetime
    issuer: str

    def days_left(self, now: datetime) -> int:
        return (self.not_after - now).days


def parse_served(text: str) -> Optional[Served]:
    """The leaf of the first PEM chain in curl's %{certs} output (None: no certificate in it)."""
    found = PEM_RE.search(text)
    if not found:
        return None
    leaf = x509.load_pem_x509_certificate(found.group(0).encode())
    try:
        names = tuple(
            leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName)
        )
    except x509.ExtensionNotFound:
        names = ()
    issuer = ", ".join(str(a.value) for a in leaf.issuer if a.oid == x509.oid.NameOID.COMMON_NAME)
    issuer = issuer or leaf.issuer.rfc4514_string()
    return Served(names=names, not_after=leaf.not_valid_after_utc, issuer=str(issuer))


def certificate_lines(served: Optional[Served], now: datetime, *, error: str = "") -> list[str]:
    """What `make status` prints about the certificate: names, expiry, days left; a warning
    below WARN_DAYS (renewal starts at 30: one still this close is one that keeps failing)."""
    if served is None:
        return [f"certificate: none read from nginx's port 443 ({error or 'no certificate in the answer'})"]
    days = served.days_left(now)
    lines = [
        f"certificate: {', '.join(served.names) or '(no DNS names)'}, expires {served.not_after:%Y-%m-%d %H:%M} UTC "
        f"({days} days left), issued by {served.issuer}"
    ]
    if days < WARN_DAYS:
        lines.append(
            f"WARNING: the certificate expires in {days} days (renewal starts 30 days before): see "
            '`make logs STACK=<stack> SERVICE=acme`, and docs/operations.md "When a renewal fails"'
        )
    return lines


def served_chain(api, nginx_id: str, server_name: str) -> str:
    """curl's %{certs} for nginx's own 443 as `server_name` (no verification: it reports)."""
    command = [
        "curl",
        "--silent",
        "--insecure",
        "--max-time",
        "5",
        "--resolve",
        f"{server_name}:443:127.0.0.1",
        "--output",
        "/dev/null",
        "--write-out",
        "%{certs}",
        f"https://{server_name}/",
    ]
    exec_id = api.exec_create(nginx_id, command, stdout=True, stderr=True)["Id"]
    return api.exec_start(exec_id).decode("utf-8", errors="replace")


def renew_now(api, acme_id: str) -> tuple[int, str]:
    """The ACME client's script in `renew` mode, run in its container (its environment, volumes
    and nginx's PID namespace): (exit code, its output)."""
    config = api.inspect_container(acme_id)["Config"]
    entrypoint, command = list(config.get("Entrypoint") or []), list(config.get("Cmd") or [])
    if len(command) < 4 or command[0] != "-c":
        raise ValueError(f"the ACME container runs {command[:1]}, not the program's script")
    exec_id = api.exec_create(acme_id, [*entrypoint, *command[:3], "renew"], stdout=True, stderr=True)["Id"]
    output = api.exec_start(exec_id).decode("utf-8", errors="replace")
    return int(api.exec_inspect(exec_id)["ExitCode"] or 0), output
