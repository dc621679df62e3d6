"""The stack's Docker host, reached exactly as the Docker provider reaches it.

One place for the release jobs (components.job), the day-2 commands (ops/), the settings'
check before anything is created (components.settings.provider) and the rehearsal. It imports
no Pulumi, so `make status` starts fast.

What the provider does, read from its code (terraform-provider-docker v4.5.0, which
pulumi-docker v5.1.0 bridges, and pulumi-docker's own image builder):

- Which host: `docker:host`, else DOCKER_HOST, else unix:///var/run/docker.sock (tf
  internal/provider/provider.go:44-57; pulumi-docker provider/provider.go setConfiguration).
- Which connection (tf internal/provider/config.go:122-185, MakeClient), in this order:
  1. `docker:certMaterial` + `docker:keyMaterial` (+ `docker:caMaterial`): TLS from PEM text,
     and `docker:certPath` must then be empty. tf alone would take cert + key without a CA and
     then skip verification (buildHTTPClientFromBytes: InsecureSkipVerify); pulumi-docker's
     Configure, which runs first on every preview and update, refuses that: "certMaterial,
     keyMaterial, and caMaterial must all be specified" (provider/image.go:1014-1020,
     buildHTTPClientFromBytes: "certificate authority must be specified"). So all three.
  2. `docker:certPath` (DOCKER_CERT_PATH): ca.pem, cert.pem, key.pem from that directory,
     verified (docker/docker client.WithTLSClientConfig: tlsconfig.Client with
     ExclusiveRootPools, no InsecureSkipVerify). DOCKER_TLS_VERIFY changes nothing here: tf does
     not read it, and pulumi-docker's FromEnv sets it before WithTLSClientConfig replaces it.
  3. ssh://: the `ssh` binary runs `docker system dial-stdio` on the host (docker/cli v28.5.2
     cli/connhelper/connhelper.go:39-66 and ssh/ssh.go): `ssh [-l user] [-p port] <sshOpts>
     -o ConnectTimeout=30 -T -- host 'docker system dial-stdio'`, and with a path in the URL
     `docker --host=unix://<path> system dial-stdio`. `docker:sshOpts` (DOCKER_SSH_OPTS,
     split on spaces) come before `--`. No password in the URL, no query, no fragment.
  4. anything else: the URL as the Docker client's host: unix:///path or tcp://host:port.
- Environment fallbacks: DOCKER_CA_MATERIAL, DOCKER_CERT_MATERIAL, DOCKER_KEY_MATERIAL,
  DOCKER_CERT_PATH, DOCKER_SSH_OPTS (tf provider.go:58-100 EnvDefaultFunc).

The Docker SDK for Python (docker 7.2.0) reaches ssh:// through paramiko or, with
use_ssh_client, a shelled-out `ssh` without the provider's options, without the remote socket
path (docker/utils/utils.py parse_host refuses a path) and with ssh's stderr on our terminal;
and it reads DOCKER_CERT_PATH alone as TLS *without* verification (utils.kwargs_from_env). So
this module mounts its own transports on the SDK's client: ssh through the argv above (its
stderr kept for the one-line error), TLS verified against the given CA only, with the host
name checked, as Go's client does. docker-py's ssh module imports paramiko unconditionally
(docker/transport/__init__.py:9-12, sshconn.py:9), so it is pinned although nothing here uses it.
"""

from __future__ import annotations

import ipaddress
import json
import os
import shlex
import shutil
import socket
import ssl
import subprocess
import tempfile
import threading
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Mapping, Optional, Sequence
from urllib.parse import urlsplit

import docker
import docker.errors
import requests
import requests.adapters
import urllib3
import urllib3.connection
import urllib3.connectionpool
from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from docker.transport.basehttpadapter import BaseHTTPAdapter
from docker.transport.sshconn import SSHSocket

DEFAULT_HOST = "unix:///var/run/docker.sock"
SCHEMES = ("unix", "tcp", "ssh")
# The provider's settings (`docker:<key>`) and the environment variable each falls back to.
ENVIRONMENT = {
    "host": "DOCKER_HOST",
    "sshOpts": "DOCKER_SSH_OPTS",
    "certPath": "DOCKER_CERT_PATH",
    "caMaterial": "DOCKER_CA_MATERIAL",
    "certMaterial": "DOCKER_CERT_MATERIAL",
    "keyMaterial": "DOCKER_KEY_MATERIAL",
    "context": "DOCKER_CONTEXT",
}
MATERIALS = ("caMaterial", "certMaterial", "keyMaterial")
CERT_FILES = {"caMaterial": "ca.pem", "certMaterial": "cert.pem", "keyMaterial": "key.pem"}
SSH_CONNECT_TIMEOUT = "-o ConnectTimeout=30"  # connhelper.addSSHTimeout, one argv element as there
MIN_API_VERSION = "1.24"  # only until the server's own is read (docker.constants.MINIMUM_DOCKER_API_VERSION)


class HostError(Exception):
    """The Docker host setting is wrong, or the host cannot be reached with it. One line that
    names the setting (`docker:host`, `docker:caMaterial`, ... or the environment variable)."""


@dataclass(frozen=True)
class DockerHost:
    """How the provider reaches the stack's Docker engine. The PEM texts never print (repr)."""

    host: str = DEFAULT_HOST
    ssh_opts: tuple[str, ...] = ()
    cert_path: str = ""
    ca_material: str = field(default="", repr=False)
    cert_material: str = field(default="", repr=False)
    key_material: str = field(default="", repr=False)
    sources: Mapping[str, str] = field(default_factory=dict, compare=False, repr=False)
    """Setting -> where it was read (`docker:host` or `DOCKER_HOST`), for messages."""

    def name(self, key: str) -> str:
        return self.sources.get(key) or f"docker:{key}"

    @property
    def scheme(self) -> str:
        return urlsplit(self.host).scheme

    @property
    def tls(self) -> bool:
        return bool(self.cert_path or self.cert_material or self.key_material or self.ca_material)

    def describe(self) -> str:
        """The host as people write it, and how it is secured (no secret)."""
        if self.cert_material:
            return f"{self.host} (TLS, verified: {self.name('caMaterial')})"
        if self.cert_path:
            return f"{self.host} (TLS, verified: {self.cert_path})"
        return self.host


# --------------------------------------------------------------------------- reading


def _text(value: Any) -> str:
    return "" if value is None else str(value).strip()


def ssh_opts_of(value: Any, where: str) -> tuple[str, ...]:
    """`docker:sshOpts`: a list of strings (YAML/JSON), or a JSON list in a string (as the
    CLI stores `pulumi config set docker:sshOpts '["-i", "key"]'`)."""
    if value is None or value == "":
        return ()
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise HostError(f'{where}: not a list; set it as JSON, e.g. \'["-i", "~/.ssh/deploy"]\'') from None
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise HostError(f'{where}: expected a list of strings, e.g. ["-i", "~/.ssh/deploy"]')
    return tuple(value)


def resolve(
    config: Mapping[str, Any], env: Optional[Mapping[str, str]] = None, *, prefix: str = "docker:"
) -> DockerHost:
    """The provider's view from its settings (`config`: short keys host, sshOpts, certPath,
    caMaterial, certMaterial, keyMaterial, context) and the environment's fallbacks.

    Reads only; check() says whether the result can work."""
    env = os.environ if env is None else env
    sources: dict[str, str] = {}

    def pick(key: str) -> Any:
        value = config.get(key)
        if value not in (None, "", []):
            sources[key] = f"{prefix}{key}"
            return value
        fallback = env.get(ENVIRONMENT[key], "")
        if fallback:
            sources[key] = ENVIRONMENT[key]
            return fallback
        return None

    context = pick("context")
    if context:
        raise HostError(
            f"{sources['context']}: Docker contexts are not supported by this program: pulumi-docker builds "
            "the image on docker:host (its builder reads no context: provider/image.go configureDockerClient) "
            "while the containers would go to the context's host; set docker:host to the context's endpoint"
        )
    host = _text(pick("host")) or DEFAULT_HOST
    raw_opts = pick("sshOpts")
    if sources.get("sshOpts") == ENVIRONMENT["sshOpts"]:
        ssh_opts = tuple(str(raw_opts).split())  # tf provider.go:67-71 strings.Fields
    else:
        ssh_opts = ssh_opts_of(raw_opts, sources.get("sshOpts", f"{prefix}sshOpts"))
    return DockerHost(
        host=host,
        ssh_opts=ssh_opts,
        cert_path=os.path.expanduser(_text(pick("certPath"))),
        ca_material=_text(pick("caMaterial")),
        cert_material=_text(pick("certMaterial")),
        key_material=_text(pick("keyMaterial")),
        sources=sources,
    )


# --------------------------------------------------------------------------- static checks


def check_url(host: str, where: str = "docker:host") -> None:
    """The schemes the provider can use here: unix:///path, tcp://host:port, ssh://[user@]host[:port][/socket].

    The Go client would take any `proto://addr` and dial it as TCP (docker/docker client
    ParseHostURL, go-connections sockets.ConfigureTransport); only these three mean what they say.
    """
    accepted = "expected unix:///var/run/docker.sock, tcp://HOST:PORT or ssh://USER@HOST"
    parts = urlsplit(host)
    scheme = parts.scheme
    if "://" not in host or scheme not in SCHEMES:
        if scheme == "npipe":
            raise HostError(
                f"{where}: {host}: a Windows named pipe, which the release jobs and the day-2 commands "
                "(the Docker SDK for Python) cannot use here; reach the engine with tcp:// and TLS, or ssh://"
            )
        if scheme in ("http", "https"):
            raise HostError(
                f"{where}: {host}: write tcp://HOST:PORT (TLS comes from docker:certPath or the *Material keys)"
            )
        raise HostError(f"{where}: '{host}' is not a Docker host address; {accepted}")
    if parts.query or parts.fragment:
        raise HostError(f"{where}: {host}: no query or fragment allowed; {accepted}")
    if scheme == "unix":
        if parts.netloc or not parts.path.startswith("/"):
            raise HostError(f"{where}: {host}: expected unix:///absolute/path/to/docker.sock")
        return
    try:
        port = parts.port
    except ValueError:
        raise HostError(f"{where}: {host}: the port is not a number from 1 to 65535") from None
    if not parts.hostname:
        raise HostError(f"{where}: {host}: no host name; {accepted}")
    if parts.password is not None:
        raise HostError(f"{where}: {host.replace(parts.password, '***')}: no password in the URL (ssh keys, or TLS)")
    if scheme == "tcp":
        if parts.username is not None:
            raise HostError(f"{where}: {host}: no user in a tcp:// address")
        if port is None:
            raise HostError(
                f"{where}: {host}: needs a port (the Docker client adds none), e.g. tcp://{parts.hostname}:2376"
            )
        if parts.path not in ("", "/"):
            raise HostError(f"{where}: {host}: no path in a tcp:// address; expected tcp://HOST:PORT")
    if scheme == "ssh" and shutil.which("ssh") is None:
        raise HostError(f"{where}: {host}: the `ssh` client is not on PATH (the provider runs it too)")


def _pem_certificates(text: str, where: str) -> list[x509.Certificate]:
    try:
        return x509.load_pem_x509_certificates(text.encode())
    except ValueError:
        raise HostError(f"{where}: not a PEM certificate (-----BEGIN CERTIFICATE-----)") from None


def _pem_key(text: str, where: str):
    try:
        return serialization.load_pem_private_key(text.encode(), password=None)
    except TypeError:
        raise HostError(f"{where}: encrypted; the Docker client needs the key without a passphrase") from None
    except (ValueError, UnsupportedAlgorithm):
        raise HostError(f"{where}: not a PEM private key (-----BEGIN PRIVATE KEY-----, unencrypted)") from None


def _valid_now(cert: x509.Certificate, where: str, now: datetime) -> None:
    if now >= cert.not_valid_after_utc:
        raise HostError(f"{where}: expired on {cert.not_valid_after_utc:%Y-%m-%d %H:%M:%S} UTC")
    if now < cert.not_valid_before_utc:
        raise HostError(f"{where}: not valid before {cert.not_valid_before_utc:%Y-%m-%d %H:%M:%S} UTC")


def check_pems(ca: str, cert: str, key: str, names: Mapping[str, str], *, now: Optional[datetime] = None) -> None:
    """The CA, the client certificate and its key: PEM, the key the certificate's, both valid now.
    `names`: caMaterial/certMaterial/keyMaterial -> how to name each in a message."""
    now = now or datetime.now(timezone.utc)
    authorities = _pem_certificates(ca, names["caMaterial"])
    for authority in authorities:
        _valid_now(authority, names["caMaterial"], now)
    leaf = _pem_certificates(cert, names["certMaterial"])[0]
    _valid_now(leaf, names["certMaterial"], now)
    private = _pem_key(key, names["keyMaterial"])
    der = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    if private.public_key().public_bytes(*der) != leaf.public_key().public_bytes(*der):
        raise HostError(f"{names['keyMaterial']}: is not the key of {names['certMaterial']}")
    if not any(_issued_by(leaf, authority) for authority in authorities):
        # Not fatal to the provider (it sends the certificate anyway), but the engine, which
        # trusts the same CA for its clients, refuses it: say so before anything is created.
        raise HostError(f"{names['certMaterial']}: not issued by {names['caMaterial']} (the engine would refuse it)")


def _issued_by(cert: x509.Certificate, authority: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(authority)
        return True
    except (ValueError, TypeError, InvalidSignature):
        return False


def cert_path_pems(cert_path: str, where: str) -> tuple[str, str, str]:
    """ca.pem, cert.pem, key.pem of `docker:certPath`, as text."""
    if not os.path.isdir(cert_path):
        raise HostError(f"{where}: {cert_path} is not a directory (it holds ca.pem, cert.pem, key.pem)")
    texts = []
    for key in MATERIALS:
        path = os.path.join(cert_path, CERT_FILES[key])
        try:
            with open(path, encoding="utf-8") as handle:
                texts.append(handle.read())
        except (OSError, UnicodeDecodeError) as error:
            raise HostError(f"{where}: cannot read {path} ({error.__class__.__name__})") from None
    return texts[0], texts[1], texts[2]


def check(h: DockerHost, *, now: Optional[datetime] = None) -> None:
    """Refuse what the provider would refuse, or use in a way that cannot work, without
    connecting. One HostError line naming the setting."""
    check_url(h.host, h.name("host"))
    materials = {key: getattr(h, _attr(key)) for key in MATERIALS}
    given = [key for key, value in materials.items() if value]
    if given:
        missing = [h.name(key) for key in MATERIALS if not materials[key]]
        if missing:
            raise HostError(
                f"{', '.join(missing)}: not set, while {', '.join(h.name(k) for k in given)} is; the provider "
                "needs all three PEM texts (pulumi-docker provider/image.go:1014-1016)"
            )
        if h.cert_path:
            raise HostError(
                f"{h.name('certPath')}: set together with the *Material keys; the provider refuses both "
                "(tf internal/provider/config.go:127-129): keep one"
            )
    if h.tls and h.scheme != "tcp":
        which = h.name("certPath") if h.cert_path else ", ".join(h.name(k) for k in given)
        raise HostError(
            f"{which}: TLS settings with {h.name('host')} {h.host}; the provider would use them instead of "
            f"{h.scheme} (tf internal/provider/config.go:122-160): TLS goes with tcp://HOST:PORT only"
        )
    if h.ssh_opts and h.scheme != "ssh":
        raise HostError(
            f"{h.name('sshOpts')}: set, but {h.name('host')} is {h.host}, not ssh://; the provider ignores it"
        )
    if given:
        check_pems(
            materials["caMaterial"],
            materials["certMaterial"],
            materials["keyMaterial"],
            {k: h.name(k) for k in MATERIALS},
            now=now,
        )
    elif h.cert_path:
        where = h.name("certPath")
        ca, cert, key = cert_path_pems(h.cert_path, where)
        check_pems(ca, cert, key, {k: f"{where} ({CERT_FILES[k]})" for k in MATERIALS}, now=now)


def _attr(key: str) -> str:
    return {"caMaterial": "ca_material", "certMaterial": "cert_material", "keyMaterial": "key_material"}[key]


# --------------------------------------------------------------------------- ssh


def ssh_argv(host: str, ssh_opts: Sequence[str] = ()) -> list[str]:
    """The command the provider runs for an ssh:// host (docker/cli v28.5.2 connhelper.go:39-66,
    ssh/ssh.go Spec.args and Command): user and port from the URL, the options, a connect
    timeout unless one is given, no tty, and dial-stdio on the remote (on the URL's socket path)."""
    parts = urlsplit(host)
    argv = ["ssh"]
    if parts.username:
        argv += ["-l", parts.username]
    if parts.port:
        argv += ["-p", str(parts.port)]
    flags = list(ssh_opts)
    if "ConnectTimeout" not in "".join(flags):
        flags.append(SSH_CONNECT_TIMEOUT)
    if "-T" not in flags:
        flags.append("-T")
    remote = ["docker", "system", "dial-stdio"]
    if parts.path.strip("/"):
        remote = ["docker", f"--host=unix://{parts.path}", "system", "dial-stdio"]
    return argv + flags + ["--", parts.hostname or "", shlex.join(remote)]


class _SSHProcess(SSHSocket):
    """One connection = one `ssh ... docker system dial-stdio` process (as the provider's
    commandconn). docker-py's SSHSocket gives recv/send/makefile; this one runs the provider's
    argv, keeps ssh's stderr for the error message, half-closes by closing ssh's stdin (which
    dial-stdio passes on as CloseWrite), and always ends the process on close."""

    def __init__(self, argv: list[str], errors: "_Stderr"):
        socket.socket.__init__(self, socket.AF_INET, socket.SOCK_STREAM)  # unconnected: only its API
        self.argv = argv
        self.errors = errors
        self.proc = None
        self.stderr = None

    def connect(self, **kwargs):
        env = dict(os.environ)
        env.pop("LD_LIBRARY_PATH", None)  # as docker-py: the ssh binary is the system's
        self.stderr = self.errors.file()
        self.proc = subprocess.Popen(
            self.argv,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.stderr,
            start_new_session=True,  # no terminal: ssh cannot prompt (commandconn createSession)
        )

    def fileno(self):
        # What urllib3 polls to decide whether a pooled connection was dropped
        # (util/wait.py): ssh's stdout, readable only on data or end of file. The unconnected
        # socket underneath always polls as hung up, so docker-py's own ssh socket is never
        # reused: one ssh login per request (about 0.5 s each here).
        if self.proc is not None and self.proc.stdout is not None and not self.proc.stdout.closed:
            return self.proc.stdout.fileno()
        return socket.socket.fileno(self)

    def makefile(self, mode="rb", *args, **kwargs):
        # For one HTTP response: http.client closes it when the body is read, which must leave
        # ssh's stdout open for the next request (docker-py hands out stdout itself).
        if self.proc is None:
            self.connect()
        return _ResponseStream(self.proc.stdout, self)

    def shutdown(self, how):
        if how in (socket.SHUT_WR, socket.SHUT_RDWR) and self.proc and not self.proc.stdin.closed:
            self.proc.stdin.close()

    def close(self):
        proc, self.proc = self.proc, None
        if proc is not None:
            for stream in (proc.stdin, proc.stdout):
                try:
                    stream.close()
                except OSError:
                    pass
            if proc.poll() is None:
                proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if self.stderr is not None:
            self.errors.done(self.stderr)
            self.stderr = None
        socket.socket.close(self)


class _ResponseStream:
    """ssh's stdout as one response reads it: `close` only marks it closed (as a socket's
    makefile), `channel` is the connection (docker-py's _get_raw_response_socket for ssh)."""

    def __init__(self, stream, channel: _SSHProcess):
        self._stream = stream
        self.channel = channel
        self.closed = False

    def close(self) -> None:
        self.closed = True

    def __getattr__(self, name: str):
        return getattr(self._stream, name)


class _Stderr:
    """What the ssh processes of one client say on stderr: each process writes to its own
    temporary file (its socket closes it); the last words of the latest one are kept for the
    error message."""

    def __init__(self):
        self._lock = threading.Lock()
        self._latest: Any = None
        self._said = ""

    def file(self):
        handle = tempfile.TemporaryFile()
        with self._lock:
            self._latest = handle
        return handle

    def done(self, handle) -> None:
        """The process of `handle` ended: keep what it said, close the file."""
        text = _read(handle)
        with self._lock:
            if text:
                self._said = text
            if self._latest is handle:
                self._latest = None
        handle.close()

    def last(self) -> str:
        with self._lock:
            text = _read(self._latest) if self._latest is not None else ""
            text = text or self._said
        lines = [
            line.strip()
            for line in text.splitlines()
            if line.strip() and not line.startswith(("Warning: Permanently added", "@@@"))
        ]
        return " ".join(lines[-2:])

    def close(self):
        pass


def _read(handle) -> str:
    try:
        handle.seek(0)
        return handle.read().decode(errors="replace")
    except (OSError, ValueError):  # closed meanwhile
        return ""


class _SSHConnection(urllib3.connection.HTTPConnection):
    def __init__(self, argv: list[str], errors: _Stderr, timeout: float):
        super().__init__("localhost", timeout=timeout)
        self.argv = argv
        self.errors = errors

    def connect(self):
        sock = _SSHProcess(self.argv, self.errors)
        sock.connect()
        self.sock = sock


class _SSHPool(urllib3.connectionpool.HTTPConnectionPool):
    scheme = "ssh"

    def __init__(self, argv: list[str], errors: _Stderr, timeout: float, maxsize: int):
        super().__init__("localhost", timeout=timeout, maxsize=maxsize)
        self.argv = argv
        self.errors = errors

    def _new_conn(self):
        return _SSHConnection(self.argv, self.errors, self.timeout.connect_timeout or 60)


class SSHAdapter(BaseHTTPAdapter):
    """requests adapter: every connection through the provider's ssh command."""

    def __init__(self, argv: list[str], timeout: float, max_pool_size: int = 10):
        self.argv = argv
        self.errors = _Stderr()
        self.pool = _SSHPool(argv, self.errors, timeout, max_pool_size)
        super().__init__()

    def get_connection(self, url, proxies=None):
        return self.pool

    def close(self):
        self.pool.close()
        super().close()
        self.errors.close()


# --------------------------------------------------------------------------- TLS


def tls_context(ca_pem: str, cert_pem: str, key_pem: str) -> ssl.SSLContext:
    """Verify the engine against this CA only (Go: RootCAs / ExclusiveRootPools), check its
    host name, present the client certificate; TLS 1.2 at least (pulumi-docker image.go:1093).
    The key touches the disk only inside a private temporary directory, for the one load."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.check_hostname = True
    context.verify_mode = ssl.CERT_REQUIRED
    context.load_verify_locations(cadata=ca_pem)
    with tempfile.TemporaryDirectory(prefix="dockerhost-") as private:
        cert_file, key_file = os.path.join(private, "cert.pem"), os.path.join(private, "key.pem")
        for path, text in ((cert_file, cert_pem), (key_file, key_pem)):
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as handle:
                handle.write(text)
        context.load_cert_chain(cert_file, key_file)
    return context


class TLSAdapter(requests.adapters.HTTPAdapter):
    """requests adapter with one SSLContext for every connection; requests' own CA bundle and
    client-certificate handling are bypassed (they would add the public CAs to it)."""

    def __init__(self, context: ssl.SSLContext, **kwargs):
        self.context = context
        super().__init__(**kwargs)

    def init_poolmanager(self, *args, **kwargs):
        kwargs["ssl_context"] = self.context
        super().init_poolmanager(*args, **kwargs)

    def build_connection_pool_key_attributes(self, request, verify, cert=None):
        host_params, _ = super().build_connection_pool_key_attributes(request, False, None)
        return host_params, {"ssl_context": self.context}

    def cert_verify(self, conn, url, verify, cert):
        pass  # the context decides, nothing else


# --------------------------------------------------------------------------- the client


CONNECTION_ERRORS = (
    docker.errors.DockerException,
    requests.exceptions.RequestException,
    OSError,
    urllib3.exceptions.HTTPError,
)


def connect(h: DockerHost, timeout: int = 60) -> docker.DockerClient:
    """A Docker SDK client that reaches the engine the way the provider does. Connects once, to
    read the engine's API version (as the provider negotiates it); a failure is one HostError
    line naming the setting (with what ssh said, for ssh://)."""
    scheme = h.scheme
    if scheme == "ssh":
        api = docker.APIClient(base_url="unix:///dev/null", version=MIN_API_VERSION, timeout=timeout)
        api._custom_adapter = SSHAdapter(ssh_argv(h.host, h.ssh_opts), timeout)
        api.mount("http+docker://ssh", api._custom_adapter)
        api.base_url = "http+docker://ssh"
    elif h.tls:
        if h.cert_material:
            ca, cert, key = h.ca_material, h.cert_material, h.key_material
        else:
            ca, cert, key = cert_path_pems(h.cert_path, h.name("certPath"))
        try:
            context = tls_context(ca, cert, key)
        except (ssl.SSLError, ValueError) as error:
            raise HostError(
                f"{h.name('certMaterial')}: the TLS files cannot be loaded ({_short(str(error))})"
            ) from None
        api = docker.APIClient(base_url=h.host, tls=True, version=MIN_API_VERSION, timeout=timeout)
        api._custom_adapter = TLSAdapter(context)
        api.mount("https://", api._custom_adapter)
    else:
        api = docker.APIClient(base_url=h.host, version=MIN_API_VERSION, timeout=timeout)
    client = docker.DockerClient.__new__(docker.DockerClient)
    client.api = api
    try:
        api._version = api._retrieve_server_version()
    except CONNECTION_ERRORS as error:
        stderr = ssh_error(client)
        client.close()
        raise HostError(explain(h, error, stderr)) from None
    return client


def ssh_error(client: docker.DockerClient) -> str:
    """What the last ssh process of this client said on stderr ('' for other transports)."""
    adapter = getattr(client.api, "_custom_adapter", None)
    return adapter.errors.last() if isinstance(adapter, SSHAdapter) else ""


def _chain(error: BaseException) -> list[BaseException]:
    """The error and every error it wraps (requests -> urllib3 -> ssl / socket)."""
    seen: list[BaseException] = []
    todo: list[Any] = [error]
    while todo:
        item = todo.pop()
        if not isinstance(item, BaseException) or any(item is s for s in seen):
            continue
        seen.append(item)
        todo += [item.__cause__, item.__context__, getattr(item, "reason", None)]
        todo += [arg for arg in getattr(item, "args", ()) if isinstance(arg, BaseException)]
    return seen


def explain(h: DockerHost, error: BaseException, stderr: str = "") -> str:
    """One line for a failed connection, naming the setting the user must look at."""
    where = f"{h.name('host')}: {h.host}"
    chain = _chain(error)
    verify = next((e for e in chain if isinstance(e, ssl.SSLCertVerificationError)), None)
    if verify is not None:
        ca_name = h.name("caMaterial") if h.cert_material else f"{h.name('certPath')} (ca.pem)"
        message = (verify.verify_message or str(verify)).strip()
        if "hostname" in message.lower() or "ip address mismatch" in message.lower():
            return f"{where}: the engine's certificate does not name {urlsplit(h.host).hostname} ({message})"
        return f"{ca_name}: the engine's certificate at {h.host} is not trusted by it ({message})"
    tls_error = next((e for e in chain if isinstance(e, ssl.SSLError)), None)
    if tls_error is not None:
        text = str(tls_error)
        cert_name = h.name("certMaterial") if h.cert_material else f"{h.name('certPath')} (cert.pem)"
        if any(
            word in text.lower()
            for word in ("unknown ca", "bad certificate", "certificate required", "certificate unknown")
        ):
            return f"{cert_name}: the engine at {h.host} refused the client certificate ({_short(text)})"
        if isinstance(tls_error, ssl.SSLEOFError):
            # TLS 1.3: the engine checks the client's certificate after the client thinks the
            # handshake is done, and its alert is often lost to the reset that follows.
            return (
                f"{cert_name}: the engine at {h.host} closed the connection right after the handshake: "
                f"it does not accept the client certificate ({_short(text)})"
            )
        return f"{where}: TLS failed ({_short(text)})"
    if h.scheme == "ssh":
        said = stderr or "ssh said nothing"
        if "command not found" in said or "docker: not found" in said:
            return f"{where}: logged in, but the host has no `docker` CLI for `docker system dial-stdio` ({said})"
        return f"{where}: ssh failed: {said}"
    if (
        h.scheme == "tcp"
        and h.tls is False
        and any("Connection aborted" in str(e) or "RemoteDisconnected" in str(e) for e in chain)
    ):
        return f"{where}: the engine closed the connection (a TLS port reached without TLS? set docker:certPath or the *Material keys)"
    refused = next((e for e in chain if isinstance(e, ConnectionRefusedError)), None)
    if refused is not None:
        return f"{where}: connection refused"
    missing = next((e for e in chain if isinstance(e, FileNotFoundError)), None)
    if missing is not None:
        return f"{where}: no socket there"
    denied = next((e for e in chain if isinstance(e, PermissionError)), None)
    if denied is not None:
        return f"{where}: permission denied on the socket (root, or the docker group)"
    if any(isinstance(e, (socket.timeout, TimeoutError, urllib3.exceptions.ConnectTimeoutError)) for e in chain):
        return f"{where}: timed out"
    return f"{where}: {_short(str(error))}"


def _short(text: str) -> str:
    return " ".join(text.split())[:240]


def probe(h: DockerHost, timeout: int = 30) -> str:
    """Check the settings (check()), connect and ask the engine who it is: one line
    ('Docker 20.10.24 (API 1.41) at ...'), or HostError naming the setting."""
    check(h)
    client = connect(h, timeout=timeout)
    try:
        version = client.version()
    except CONNECTION_ERRORS as error:
        raise HostError(explain(h, error, ssh_error(client))) from None
    finally:
        client.close()
    return f"Docker {version.get('Version')} (API {version.get('ApiVersion')}) at {h.describe()}"


def is_loopback(host: str) -> bool:
    name = urlsplit(host).hostname or ""
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False
