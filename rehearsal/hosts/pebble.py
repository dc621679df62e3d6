"""Pebble, Let's Encrypt's test ACME CA, for one rehearsal run; and the DNS it asks.

Debian's `pebble` package (2.4.0) in a container on the host's network namespace, so nothing
it serves or asks leaves this machine:

- its ACME directory listens on the docker0 bridge's address (a host-only address that the
  stack's containers reach, as every container reaches its host's addresses; the rehearsal's
  smoke check proves the frontend network can): `https://<docker0>:<port>/dir`, with a TLS
  certificate made for the run (its CA is the stack's acmeCaCertificate);
- its management API (the issuing roots) listens on 127.0.0.1 only;
- it validates HTTP-01 at `http://<name>:<nginx's published port>/.well-known/...`, asking a
  DNS responder of this process on 127.0.0.1 (`-dnsserver`): the names the run serves resolve
  to 127.0.0.1, where nginx's port is published; any other name is NXDOMAIN (the refusal the
  rehearsal provokes).

Pebble's own randomness is switched off for a reproducible run (PEBBLE_VA_NOSLEEP: no sleep
before validating; PEBBLE_WFE_NONCEREJECT=0: no nonce rejected at random; PEBBLE_AUTHZREUSE=0:
every order validates again, a renewal too). Pebble README, "Testing at full speed".
"""

from __future__ import annotations

import io
import json
import socket
import socketserver
import ssl
import struct
import tarfile
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from typing import Callable, Optional

import docker
import docker.errors

from rehearsal.errors import RehearsalError
from rehearsal.hosts import tls_material
from rehearsal.images.standins import ensure_images

PEBBLE_IMAGE = "letsencrypt/pebble:v2.4.0"
LOOPBACK = "127.0.0.1"
CONFIG_DIR = "/etc/pebble"


# --------------------------------------------------------------------------- DNS


def dns_answer(query: bytes, resolve: Callable[[str], Optional[str]]) -> bytes:
    """A DNS response to `query` (RFC 1035 4.1): an A record for a name `resolve` knows, no
    answer (NOERROR) for its other types, NXDOMAIN for a name it does not know."""
    (ident, _flags, qdcount) = struct.unpack("!HHH", query[:6])
    offset, labels = 12, []
    while query[offset]:
        length = query[offset]
        labels.append(query[offset + 1 : offset + 1 + length].decode("ascii", "replace"))
        offset += 1 + length
    qtype, _qclass = struct.unpack("!HH", query[offset + 1 : offset + 5])
    question = query[12 : offset + 5]
    name = ".".join(labels).lower().rstrip(".")
    address = resolve(name)
    if address is None:
        return struct.pack("!HHHHHH", ident, 0x8183, 1, 0, 0, 0) + question  # NXDOMAIN
    if qtype != 1:
        return struct.pack("!HHHHHH", ident, 0x8180, 1, 0, 0, 0) + question  # no such record
    answer = b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, 5, 4) + socket.inet_aton(address)
    return struct.pack("!HHHHHH", ident, 0x8180, 1, 1, 0, 0) + question + answer


class _DnsHandler(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        data, sock = self.request
        try:
            sock.sendto(dns_answer(data, self.server.resolve), self.client_address)  # type: ignore[attr-defined]
        except (IndexError, struct.error):
            pass  # not a query: no answer


# --------------------------------------------------------------------------- certificates


def _tls_for(addresses: list[str]) -> tuple[str, str, str]:
    """(CA PEM, certificate PEM, key PEM): a CA made for the run and a server certificate it
    issues for these IP addresses (Pebble's own test certificate names only localhost)."""
    ca, ca_key = tls_material.new_ca("rehearsal ACME directory CA")
    issued = tls_material.issue(ca, ca_key, "pebble", server=True, names=addresses)
    return ca.public_bytes(tls_material.PEM).decode(), issued.cert_pem, issued.key_pem


def _free_port(address: str) -> int:
    with socket.socket() as s:
        s.bind((address, 0))
        return s.getsockname()[1]


# --------------------------------------------------------------------------- the CA


@dataclass
class Pebble:
    client: docker.DockerClient
    labels: dict[str, str]
    """The run's labels: teardown finds the container by them."""
    http_port: int
    """Where Pebble validates HTTP-01 (nginx's port 80, published on 127.0.0.1)."""
    say: Callable[[str], None]
    names: set[str] = field(default_factory=set)
    """The names the DNS responder resolves to 127.0.0.1 (any other: NXDOMAIN)."""
    address: str = ""
    """docker0's address, where the directory listens."""
    port: int = 0
    directory_ca_pem: str = ""
    """The CA of the directory's HTTPS certificate (the stack's acmeCaCertificate)."""
    container_id: str = ""
    _dns: Optional[socketserver.ThreadingUDPServer] = None

    @property
    def directory(self) -> str:
        return f"https://{self.address}:{self.port}/dir"

    def start(self) -> str:
        ensure_images(self.client, [PEBBLE_IMAGE], self.say)
        bridge = self.client.api.inspect_network("bridge")
        self.address = bridge["IPAM"]["Config"][0]["Gateway"]
        self.port = _free_port(self.address)
        management = _free_port(LOOPBACK)
        self._dns = socketserver.ThreadingUDPServer((LOOPBACK, 0), _DnsHandler)
        self._dns.resolve = lambda name: LOOPBACK if name in self.names else None  # type: ignore[attr-defined]
        threading.Thread(target=self._dns.serve_forever, name="rehearsal-dns", daemon=True).start()
        dns_port = self._dns.server_address[1]
        self.directory_ca_pem, cert_pem, key_pem = _tls_for([self.address, LOOPBACK])
        config = {
            "pebble": {
                "listenAddress": f"{self.address}:{self.port}",
                "managementListenAddress": f"{LOOPBACK}:{management}",
                "certificate": f"{CONFIG_DIR}/cert.pem",
                "privateKey": f"{CONFIG_DIR}/key.pem",
                "httpPort": self.http_port,
                "tlsPort": 5001,
                "ocspResponderURL": "",
                "externalAccountBindingRequired": False,
            }
        }
        api = self.client.api
        self.container_id = api.create_container(
            PEBBLE_IMAGE,
            command=["-config", f"{CONFIG_DIR}/config.json", "-dnsserver", f"{LOOPBACK}:{dns_port}"],
            environment={"PEBBLE_VA_NOSLEEP": "1", "PEBBLE_WFE_NONCEREJECT": "0", "PEBBLE_AUTHZREUSE": "0"},
            labels=self.labels,
            host_config=api.create_host_config(network_mode="host"),
        )["Id"]
        api.put_archive(
            self.container_id,
            "/",
            _tar(
                {
                    f"{CONFIG_DIR}/config.json": json.dumps(config),
                    f"{CONFIG_DIR}/cert.pem": cert_pem,
                    f"{CONFIG_DIR}/key.pem": key_pem,
                }
            ),
        )
        api.start(self.container_id)
        self._management = f"https://{LOOPBACK}:{management}"
        self._wait(self.directory)
        return (
            f"Pebble ({PEBBLE_IMAGE}, Debian's pebble 2.4.0) directory {self.directory} (docker0), management on "
            f"{LOOPBACK}:{management}, validating on {LOOPBACK}:{self.http_port}, DNS on {LOOPBACK}:{dns_port}"
        )

    def _context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(cadata=self.directory_ca_pem)
        context.check_hostname = False  # an IP address: the chain is what is checked here
        return context

    def _get(self, url: str) -> bytes:
        with urllib.request.urlopen(url, context=self._context(), timeout=5) as response:  # noqa: S310 (local)
            return response.read()

    def _wait(self, url: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                self._get(url)
                return
            except OSError as error:
                if time.monotonic() > deadline:
                    logs = self.client.api.logs(self.container_id, tail=10).decode(errors="replace")
                    raise RehearsalError(f"Pebble did not answer at {url}: {error}; its log: {logs}") from None
                time.sleep(0.2)

    def issuing_roots(self) -> str:
        """The PEM of the root Pebble issues under (new at each start: its management API)."""
        return self._get(f"{self._management}/roots/0").decode()

    def stop(self) -> None:
        if self._dns is not None:
            self._dns.shutdown()
            self._dns.server_close()
        if self.container_id:
            try:
                self.client.api.remove_container(self.container_id, force=True)
            except docker.errors.NotFound:
                pass


def _tar(files: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for path, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(path.lstrip("/"))
            info.size, info.mode, info.mtime = len(data), 0o644, int(time.time())
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()
