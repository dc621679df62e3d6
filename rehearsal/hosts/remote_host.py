"""A Docker host reached the two ways a remote one is: over ssh and over TCP with TLS.

One private engine (rehearsal.hosts.private_engine), named after this checkout so that two
worktrees never share one, listening on its unix socket and on 127.0.0.1:<port> with
`--tlsverify` and certificates made for the run (rehearsal.hosts.tls_material); and a real sshd
on another loopback port (rehearsal.hosts.ssh_host) whose sessions reach that engine's socket
through the docker CLI (`docker --host=unix://<socket> system dial-stdio`, the path of the ssh
URL). Both transports share the engine and the images copied into it.

`settings(transport)` are the `docker:` settings a user sets for such a host (with the TLS PEMs
as secrets), `environment(transport)` what the day-2 commands get (DOCKER_HOST and DOCKER_SSH_OPTS,
or DOCKER_HOST and DOCKER_CERT_PATH), and `refusals(transport)` the wrong settings that must
each be refused in one line: a key the host does not accept, a host that does not answer, a
certificate (or host key) that does not verify.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from planning.harness import PROJECT_ROOT
from rehearsal.hosts import tls_material
from rehearsal.hosts.private_engine import Layout, PrivateEngine, free_port, start_engine
from rehearsal.hosts.ssh_host import SshHost, start_ssh_host

TRANSPORTS = ("ssh", "tls")
Say = Callable[[str], None]


def layout_for(root: Path = PROJECT_ROOT, *, tcp: str = "", tls_dir: Path | None = None) -> Layout:
    """The private engine's names for this checkout: `django-docker-remote-<4 hex of its path>`,
    devices `ddr<4 hex>-*`, addresses 10.<216..247>.0.0/16 (the swarm engines' are 10.150-213)."""
    tag = hashlib.sha256(str(root.resolve()).encode()).hexdigest()[:4]
    return Layout(
        f"django-docker-remote-{tag}",
        f"ddr{tag}",
        216 + int(tag, 16) % 32,
        tcp=tcp or None,
        tls_dir=tls_dir,
        forward=True,  # its bridge networks (frontend, backend) carry traffic between containers
    )


@dataclass
class Refusal:
    """Wrong settings, what they stand for, and the setting the one-line error must name."""

    what: str
    settings: dict[str, Any]
    secrets: dict[str, Any]
    names: str


@dataclass
class RemoteHost:
    engine: PrivateEngine
    ssh: SshHost
    tls: tls_material.DockerTls
    tcp: str
    """127.0.0.1:PORT of the TLS listener."""
    private: Path
    """A 0700 directory of the run: the client's certPath, other certificates for the refusals."""

    @property
    def layout(self) -> Layout:
        return self.engine.layout

    @property
    def socket(self) -> str:
        return str(self.layout.socket)

    def settings(self, transport: str) -> tuple[dict[str, Any], dict[str, Any]]:
        """(config, secret config) of a stack deployed to this host over `transport`."""
        if transport == "ssh":
            return {"docker:host": self.ssh.url(self.socket), "docker:sshOpts": self.ssh.opts()}, {}
        return {"docker:host": f"tcp://{self.tcp}"}, {
            "docker:caMaterial": self.tls.ca_pem,
            "docker:certMaterial": self.tls.client.cert_pem,
            "docker:keyMaterial": self.tls.client.key_pem,
        }

    def environment(self, transport: str) -> dict[str, str]:
        """The day-2 commands' environment for `transport`: ours without any DOCKER_* of this
        machine, plus what a user exports for that host."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKER_")}
        if transport == "ssh":
            return {**env, "DOCKER_HOST": self.ssh.url(self.socket), "DOCKER_SSH_OPTS": " ".join(self.ssh.opts())}
        return {
            **env,
            "DOCKER_HOST": f"tcp://{self.tcp}",
            "DOCKER_CERT_PATH": str(self.tls.write_client(self.private / "client")),
            "DOCKER_TLS_VERIFY": "1",
        }

    def refusals(self, transport: str) -> list[Refusal]:
        closed = f"127.0.0.1:{free_port()}"
        if transport == "ssh":
            return [
                Refusal(
                    "a key the host does not accept",
                    {
                        "docker:host": self.ssh.url(self.socket),
                        "docker:sshOpts": self.ssh.opts(key=self.ssh.stranger_key()),
                    },
                    {},
                    "docker:host",
                ),
                Refusal(
                    "a host that does not answer",
                    {"docker:host": f"ssh://root@{closed}{self.socket}", "docker:sshOpts": self.ssh.opts()},
                    {},
                    "docker:host",
                ),
                Refusal(
                    "a host key that does not verify",
                    {
                        "docker:host": self.ssh.url(self.socket),
                        "docker:sshOpts": self.ssh.opts(known_hosts=self.ssh.wrong_known_hosts()),
                    },
                    {},
                    "docker:host",
                ),
            ]
        stranger = tls_material.docker_tls()  # another CA and its certificates
        _, ours = self.settings("tls")
        host = {"docker:host": f"tcp://{self.tcp}"}
        return [
            Refusal(
                "a client certificate another CA issued",
                host,
                {
                    **ours,
                    "docker:certMaterial": stranger.client.cert_pem,
                    "docker:keyMaterial": stranger.client.key_pem,
                },
                "docker:certMaterial",
            ),
            Refusal(
                # Issued by the engine's CA, so it passes the checks made without connecting,
                # but for server authentication only: the engine itself refuses it.
                "a certificate the engine refuses (ours, but not for clients)",
                host,
                {
                    **ours,
                    "docker:certMaterial": self.tls.server.cert_pem,
                    "docker:keyMaterial": self.tls.server.key_pem,
                },
                "docker:certMaterial",
            ),
            Refusal("a host that does not answer", {"docker:host": f"tcp://{closed}"}, ours, "docker:host"),
            Refusal(
                "an engine certificate that does not verify (the CA of another engine)",
                host,
                {
                    "docker:caMaterial": stranger.ca_pem,
                    "docker:certMaterial": stranger.client.cert_pem,
                    "docker:keyMaterial": stranger.client.key_pem,
                },
                "docker:caMaterial",
            ),
        ]

    def close(self) -> None:
        try:
            self.ssh.close()
        finally:
            try:
                self.engine.close()
            finally:
                shutil.rmtree(self.private, ignore_errors=True)


def start_remote_host(say: Say) -> RemoteHost:
    """The private engine (unix socket + TLS on loopback) and the sshd in front of it."""
    private = Path(tempfile.mkdtemp(prefix="django-docker-remote-"))
    tls = tls_material.docker_tls(("127.0.0.1", "localhost"))
    server_dir = private / "server"
    server_dir.mkdir(mode=0o700)
    tls.write_server(server_dir)
    tcp = f"127.0.0.1:{free_port()}"
    engine = None
    try:
        engine = start_engine(layout_for(tcp=tcp, tls_dir=server_dir), say)
        say(
            f"remote host: private dockerd (pid {engine.pid}) answered in {engine.started_seconds:.1f}s on "
            f"{engine.docker_host} and tcp://{tcp} (--tlsverify, certificates made for the run)"
        )
        ssh = start_ssh_host(say, name=engine.layout.name)
    except BaseException:
        if engine is not None:
            engine.close()
        shutil.rmtree(private, ignore_errors=True)
        raise
    return RemoteHost(engine, ssh, tls, tcp, private)
