"""components.dockerhost: the provider's rules for reaching the Docker host (pure), the ssh
command it runs, and real TLS against an HTTPS server that verifies clients as dockerd does
(an in-process stand-in answering /version; the engine itself over ssh and TLS is rehearsed by
`make rehearse-remote`)."""

from __future__ import annotations

import datetime
import json
import shutil
import socket
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from components import dockerhost
from components.dockerhost import DockerHost, HostError
from rehearsal.hosts import tls_material

NOW = datetime.datetime.now(datetime.timezone.utc)


def one_line(message: str) -> str:
    assert "\n" not in message and message.strip() == message
    return message


# --------------------------------------------------------------------------- resolve


def test_the_stack_setting_wins_over_the_environment_and_the_default_is_the_local_socket():
    env = {"DOCKER_HOST": "tcp://10.0.0.1:2376", "DOCKER_CERT_PATH": "/certs"}
    h = dockerhost.resolve({"host": "ssh://deploy@app"}, env)
    assert (h.host, h.name("host")) == ("ssh://deploy@app", "docker:host")
    assert (h.cert_path, h.name("certPath")) == ("/certs", "DOCKER_CERT_PATH")
    fallback = dockerhost.resolve({}, env)
    assert (fallback.host, fallback.name("host")) == ("tcp://10.0.0.1:2376", "DOCKER_HOST")
    assert dockerhost.resolve({}, {}).host == "unix:///var/run/docker.sock"


def test_ssh_opts_from_a_list_a_json_string_or_docker_ssh_opts_split_on_spaces():
    assert dockerhost.resolve({"sshOpts": ["-i", "k"]}, {}).ssh_opts == ("-i", "k")
    assert dockerhost.resolve({"sshOpts": '["-o", "Port=2"]'}, {}).ssh_opts == ("-o", "Port=2")
    # tf provider.go: strings.Fields(DOCKER_SSH_OPTS)
    assert dockerhost.resolve({}, {"DOCKER_SSH_OPTS": " -i  key -o A=b "}).ssh_opts == ("-i", "key", "-o", "A=b")
    with pytest.raises(HostError, match=r"^docker:sshOpts: not a list"):
        dockerhost.resolve({"sshOpts": "-i key"}, {})
    with pytest.raises(HostError, match=r"^docker:sshOpts: expected a list of strings"):
        dockerhost.resolve({"sshOpts": [1, 2]}, {})


@pytest.mark.parametrize(
    "config, env, named",
    [({"context": "remote"}, {}, "docker:context"), ({}, {"DOCKER_CONTEXT": "x"}, "DOCKER_CONTEXT")],
)
def test_a_docker_context_is_refused_because_the_image_builder_ignores_it(config, env, named):
    with pytest.raises(HostError) as error:
        dockerhost.resolve(config, env)
    assert one_line(str(error.value)).startswith(f"{named}: Docker contexts are not supported")


def test_the_pem_texts_never_print():
    h = DockerHost(host="tcp://h:2376", ca_material="CA-TEXT", cert_material="CERT-TEXT", key_material="KEY-TEXT")
    assert "TEXT" not in repr(h) and "TEXT" not in h.describe()


# --------------------------------------------------------------------------- the address


@pytest.mark.parametrize(
    "host",
    [
        "unix:///var/run/docker.sock",
        "tcp://127.0.0.1:2376",
        "tcp://docker.example.com:2376",
        "tcp://[::1]:2376",
        "ssh://deploy@host",
        "ssh://deploy@host:2222",
        "ssh://host",
        "ssh://deploy@host/run/user/1000/docker.sock",
    ],
)
def test_the_addresses_the_provider_can_use_pass(host):
    dockerhost.check_url(host)


@pytest.mark.parametrize(
    "host, says",
    [
        ("docker.example.com", "is not a Docker host address"),
        ("ftp://host:21", "is not a Docker host address"),
        ("http://host:2375", "write tcp://HOST:PORT"),
        ("https://host:2376", "write tcp://HOST:PORT"),
        ("npipe:////./pipe/docker_engine", "a Windows named pipe"),
        ("tcp://host", "needs a port"),
        ("tcp://host:99999", "the port is not a number"),
        ("tcp://:2376", "no host name"),
        ("tcp://host:2376/prefix", "no path in a tcp:// address"),
        ("tcp://user@host:2376", "no user in a tcp:// address"),
        ("ssh://deploy:hunter2@host", "no password in the URL"),
        ("ssh://deploy@host?x=1", "no query or fragment"),
        ("unix://relative.sock", "expected unix:///absolute/path"),
        ("unix://", "expected unix:///absolute/path"),
    ],
)
def test_other_addresses_are_refused_in_one_line_naming_docker_host(host, says):
    with pytest.raises(HostError) as error:
        dockerhost.check_url(host)
    message = one_line(str(error.value))
    assert message.startswith("docker:host: ") and says in message
    assert "hunter2" not in message


def test_an_ssh_host_needs_the_ssh_client(monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(HostError, match=r"the `ssh` client is not on PATH"):
        dockerhost.check_url("ssh://deploy@host")


# --------------------------------------------------------------------------- the combinations


@pytest.fixture(scope="module")
def tls():
    return tls_material.docker_tls()


def with_material(tls_, host="tcp://127.0.0.1:2376", **overrides) -> DockerHost:
    fields = dict(
        host=host, ca_material=tls_.ca_pem, cert_material=tls_.client.cert_pem, key_material=tls_.client.key_pem
    )
    fields.update(overrides)
    return DockerHost(**fields)


def refusal(h: DockerHost) -> str:
    with pytest.raises(HostError) as error:
        dockerhost.check(h)
    return one_line(str(error.value))


def test_complete_material_and_a_cert_path_pass(tls, tmp_path):
    dockerhost.check(with_material(tls))
    dockerhost.check(DockerHost(host="tcp://127.0.0.1:2376", cert_path=str(tls.write_client(tmp_path / "c"))))


@pytest.mark.parametrize("missing", ["ca_material", "cert_material", "key_material"])
def test_all_three_pem_texts_or_none(tls, missing):
    message = refusal(with_material(tls, **{missing: ""}))
    key = {"ca_material": "caMaterial", "cert_material": "certMaterial", "key_material": "keyMaterial"}[missing]
    assert message.startswith(f"docker:{key}: not set, while ")


def test_material_and_cert_path_together_are_refused(tls):
    assert refusal(with_material(tls, cert_path="/certs")).startswith("docker:certPath: set together with")


def test_tls_with_an_ssh_or_unix_host_is_refused(tls, tmp_path):
    assert "TLS goes with tcp://HOST:PORT only" in refusal(with_material(tls, host="ssh://deploy@host"))
    path = str(tls.write_client(tmp_path / "c"))
    message = refusal(
        DockerHost(host="unix:///var/run/docker.sock", cert_path=path, sources={"certPath": "DOCKER_CERT_PATH"})
    )
    assert message.startswith("DOCKER_CERT_PATH: TLS settings with docker:host unix://")


def test_ssh_opts_without_an_ssh_host_are_refused():
    assert refusal(DockerHost(host="tcp://h:2376", ssh_opts=("-i", "k"))).startswith("docker:sshOpts: set, but")


def test_a_key_that_is_not_the_certificates(tls):
    other = tls_material.docker_tls()
    assert refusal(with_material(tls, key_material=other.client.key_pem)) == (
        "docker:keyMaterial: is not the key of docker:certMaterial"
    )


def test_a_client_certificate_of_another_ca(tls):
    other = tls_material.docker_tls()
    message = refusal(with_material(tls, cert_material=other.client.cert_pem, key_material=other.client.key_pem))
    assert message == "docker:certMaterial: not issued by docker:caMaterial (the engine would refuse it)"


def test_an_expired_client_certificate(tls):
    ca, ca_key = tls_material.new_ca()
    old = tls_material.issue(
        ca,
        ca_key,
        "old",
        server=False,
        valid_from=NOW - datetime.timedelta(days=3),
        valid_until=NOW - datetime.timedelta(days=1),
    )
    from cryptography.hazmat.primitives import serialization

    ca_pem = ca.public_bytes(serialization.Encoding.PEM).decode()
    message = refusal(with_material(tls, ca_material=ca_pem, cert_material=old.cert_pem, key_material=old.key_pem))
    assert message.startswith("docker:certMaterial: expired on ")


def test_garbage_and_an_encrypted_key_name_their_setting_without_quoting_it(tls):
    assert refusal(with_material(tls, ca_material="not pem")) == (
        "docker:caMaterial: not a PEM certificate (-----BEGIN CERTIFICATE-----)"
    )
    from cryptography.hazmat.primitives import serialization

    key = serialization.load_pem_private_key(tls.client.key_pem.encode(), password=None)
    locked = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.BestAvailableEncryption(b"pw")
    ).decode()
    message = refusal(with_material(tls, key_material=locked))
    assert message == "docker:keyMaterial: encrypted; the Docker client needs the key without a passphrase"


def test_a_cert_path_names_the_file(tls, tmp_path):
    directory = tls.write_client(tmp_path / "c")
    (directory / "key.pem").write_text(tls_material.docker_tls().client.key_pem)
    message = refusal(DockerHost(host="tcp://h:2376", cert_path=str(directory)))
    assert message == f"docker:certPath ({'key.pem'}): is not the key of docker:certPath (cert.pem)"
    (directory / "ca.pem").unlink()
    assert refusal(DockerHost(host="tcp://h:2376", cert_path=str(directory))).startswith(
        f"docker:certPath: cannot read {directory}/ca.pem"
    )
    assert "is not a directory" in refusal(DockerHost(host="tcp://h:2376", cert_path=str(tmp_path / "none")))


# --------------------------------------------------------------------------- ssh


def test_the_ssh_command_is_the_providers():
    # docker/cli v28.5.2 connhelper.go + ssh.go: -l, -p, the flags, ConnectTimeout, -T, --, host, command
    assert dockerhost.ssh_argv("ssh://deploy@app.example.com:2222", ["-i", "/k"]) == [
        "ssh", "-l", "deploy", "-p", "2222", "-i", "/k", "-o ConnectTimeout=30", "-T", "--", "app.example.com",
        "docker system dial-stdio",
    ]  # fmt: skip
    assert dockerhost.ssh_argv("ssh://app", ["-o", "ConnectTimeout=5", "-T"]) == [
        "ssh", "-o", "ConnectTimeout=5", "-T", "--", "app", "docker system dial-stdio",
    ]  # fmt: skip
    assert dockerhost.ssh_argv("ssh://root@h/run/user 1/docker.sock")[-1] == (
        "docker '--host=unix:///run/user 1/docker.sock' system dial-stdio"
    )


def test_an_ssh_host_that_refuses_is_one_line_with_what_ssh_said():
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    h = DockerHost(host=f"ssh://nobody@127.0.0.1:{port}", ssh_opts=("-F", "/dev/null", "-o", "BatchMode=yes"))
    with pytest.raises(HostError) as error:
        dockerhost.probe(h)
    message = one_line(str(error.value))
    assert message.startswith(f"docker:host: ssh://nobody@127.0.0.1:{port}: ssh failed: ")
    assert "Connection refused" in message


# --------------------------------------------------------------------------- TLS, for real


class _Engine(BaseHTTPRequestHandler):
    """What the client asks a Docker engine first: its version."""

    def do_GET(self):
        body = json.dumps({"Version": "tls-stand-in", "ApiVersion": "1.41"}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def engine(tls, tmp_path):
    """An HTTPS server that verifies clients against the CA, as `dockerd --tlsverify` does."""

    def start(server_names=("127.0.0.1", "localhost"), served=None):
        served = served or tls
        if server_names != ("127.0.0.1", "localhost"):
            ca = __import__("cryptography").x509.load_pem_x509_certificate(served.ca_pem.encode())
            from cryptography.hazmat.primitives import serialization

            ca_key = serialization.load_pem_private_key(served.ca_key_pem.encode(), password=None)
            server = tls_material.issue(ca, ca_key, "elsewhere", server=True, names=server_names)
        else:
            server = served.server
        directory = tmp_path / f"server-{len(list(tmp_path.iterdir()))}"
        directory.mkdir()
        (directory / "cert.pem").write_text(server.cert_pem)
        (directory / "key.pem").write_text(server.key_pem)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(directory / "cert.pem", directory / "key.pem")
        context.load_verify_locations(cadata=tls.ca_pem)
        context.verify_mode = ssl.CERT_REQUIRED
        httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Engine)
        httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
        httpd.handle_error = lambda *args: None  # refused handshakes are the point of some tests
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        started.append(httpd)
        return f"tcp://127.0.0.1:{httpd.server_address[1]}"

    started: list = []
    yield start
    for httpd in started:
        httpd.shutdown()
        httpd.server_close()


def test_tls_from_the_material_and_from_a_cert_path_verifies_and_connects(tls, engine, tmp_path):
    host = engine()
    client = dockerhost.connect(with_material(tls, host=host))
    try:
        assert client.version()["Version"] == "tls-stand-in"
        assert client.api.api_version == "1.41"  # negotiated, as the provider does
    finally:
        client.close()
    line = dockerhost.probe(DockerHost(host=host, cert_path=str(tls.write_client(tmp_path / "c"))))
    assert line == f"Docker tls-stand-in (API 1.41) at {host} (TLS, verified: {tmp_path / 'c'})"


def failure(h: DockerHost) -> str:
    with pytest.raises(HostError) as error:
        dockerhost.connect(h)
    return one_line(str(error.value))


def test_an_engine_certificate_of_another_ca_names_the_ca_setting(tls, engine):
    other = tls_material.docker_tls()
    host = engine(served=other)  # the engine shows a certificate our CA never issued
    message = failure(with_material(tls, host=host))
    assert message.startswith(f"docker:caMaterial: the engine's certificate at {host} is not trusted by it (")


def test_the_public_ca_bundle_is_never_added(tls, engine, tmp_path, monkeypatch):
    # requests would load its bundle (or REQUESTS_CA_BUNDLE) into the context: the engine's CA
    # in that bundle must not make a certificate our docker:caMaterial did not issue pass.
    other = tls_material.docker_tls()
    bundle = tmp_path / "bundle.pem"
    bundle.write_text(other.ca_pem)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(bundle))
    monkeypatch.setenv("SSL_CERT_FILE", str(bundle))
    host = engine(served=other)
    assert failure(with_material(tls, host=host)).startswith("docker:caMaterial: ")


def test_an_engine_certificate_for_another_name_names_docker_host(tls, engine):
    host = engine(server_names=("docker.example.com",))
    message = failure(with_material(tls, host=host))
    assert message.startswith(f"docker:host: {host}: the engine's certificate does not name 127.0.0.1 (")


def test_a_client_certificate_the_engine_does_not_trust_names_the_cert_setting(tls, engine):
    host = engine()
    other = tls_material.docker_tls()
    # Same CA text for our side (so the engine is verified), a client certificate it never issued
    h = with_material(tls, host=host, cert_material=other.client.cert_pem, key_material=other.client.key_pem)
    message = failure(h)
    assert message.startswith(f"docker:certMaterial: the engine at {host} ")
    assert "client certificate" in message


def test_plain_tcp_to_a_tls_port_is_one_line(engine):
    host = engine()
    message = failure(DockerHost(host=host))
    assert message.startswith(f"docker:host: {host}: ")


def test_a_closed_port_is_connection_refused():
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    assert (
        failure(DockerHost(host=f"tcp://127.0.0.1:{port}"))
        == f"docker:host: tcp://127.0.0.1:{port}: connection refused"
    )


def test_no_socket_is_one_line(tmp_path: Path):
    assert (
        failure(DockerHost(host=f"unix://{tmp_path}/docker.sock"))
        == f"docker:host: unix://{tmp_path}/docker.sock: no socket there"
    )
