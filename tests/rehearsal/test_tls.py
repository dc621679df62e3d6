"""The TLS rehearsal's own parts, without Docker: certificates, the HTTPS client, the leak scan."""

from __future__ import annotations

import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import certifi
import pytest
import requests
from cryptography.hazmat.primitives import serialization

from planning.harness import plan_stack
from rehearsal.checks.smoke import CheckFailed, front_door, http_session
from rehearsal.checks.tls import _scan, _without, certificates_for, key_needles
from tests.program_fixtures import dev_outputs


class _Hello(BaseHTTPRequestHandler):
    def do_GET(self):
        body = self.headers.get("Host", "").encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def https_server(tmp_path):
    """A loopback HTTPS server presenting a certificate for example.com; yields (base, CA file)."""
    certs = certificates_for("example.com")
    (tmp_path / "cert.pem").write_text(certs.cert_pem)
    (tmp_path / "key.pem").write_text(certs.key_pem)
    (tmp_path / "ca.pem").write_text(certs.ca_pem)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Hello)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"https://127.0.0.1:{server.server_address[1]}", str(tmp_path / "ca.pem")
    finally:
        server.shutdown()
        server.server_close()


def test_https_to_loopback_is_verified_for_the_server_name(https_server, monkeypatch):
    base, ca = https_server
    # The environment's bundle must not replace the session's CA (psf/requests#3829).
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", certifi.where())
    with http_session(base, "example.com", ca) as session:
        response = session.get(base + "/")
    assert (response.status_code, response.text) == (200, "example.com")


def test_another_name_or_another_ca_is_refused(https_server):
    base, ca = https_server
    with pytest.raises(requests.exceptions.SSLError, match="Hostname mismatch"):
        http_session(base, "other.example.net", ca).get(base + "/")
    with pytest.raises(requests.exceptions.SSLError, match="unable to get local issuer certificate"):
        http_session(base, "example.com", certifi.where()).get(base + "/")


def test_https_needs_a_ca():
    with pytest.raises(CheckFailed):
        http_session("https://127.0.0.1:443", "example.com", None)


def test_the_front_door_is_https_when_tls_is_on():
    certs = certificates_for("example.com")
    plan = plan_stack(
        "prod", secrets={"tlsCertificate": certs.cert_pem, "tlsKey": certs.key_pem}, stack_references=dev_outputs()
    )
    assert front_door(plan)[:2] == ("https://127.0.0.1:443", "example.com")


def test_the_scan_finds_a_needle_across_chunks():
    certs = certificates_for("example.com")
    needles = key_needles(certs)
    der = certs.key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    blob = b"x" * 1000 + certs.key_pem.encode() + b"y" * 1000 + der + b"z" * 10
    chunks = [blob[i : i + 7] for i in range(0, len(blob), 7)]
    assert _scan(chunks, needles) == ["PEM", "PEM body line", "private scalar"]
    assert _scan([b"nothing here"] * 3, needles) == []


def test_secret_paths_are_left_out():
    inputs = {"uploads": [{"content": "KEY"}], "env": ["A=1"], "nested": {"password": "p", "name": "n"}}
    assert _without(inputs, ("uploads", "nested.password")) == {
        "uploads": "[secret]",
        "env": ["A=1"],
        "nested": {"password": "[secret]", "name": "n"},
    }
