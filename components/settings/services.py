"""The typed views load() returns: what the whole stack shares, and one section per service.

Each component's Args takes its own section (and `Deployment`), so a setting travels from
Pulumi.yaml to the resource that uses it under one name, and a new setting of a service is
added in three places: Pulumi.yaml, its section here, and load().
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import pulumi

from components import render
from components.settings.acme import AcmeSettings
from components.settings.provider import DockerAccess
from components.settings.values import Healthcheck, ImageRef


@dataclass(frozen=True, kw_only=True)
class Deployment:
    """What every resource of the stack shares: where it runs, its labels, how it restarts."""

    project: str
    stack: str
    """Stack name: every resource's labels, and the name the day-2 commands find it by."""
    docker: DockerAccess
    """How the provider reaches the Docker host (docker:host, sshOpts, TLS), for the release jobs."""
    restart_policy: str
    """Restart policy of every long-running container."""
    healthcheck: Healthcheck
    """Healthcheck timing of the app's containers."""
    protect_data: bool
    """Volumes that hold data are protected (and retained on delete)."""
    frontend_subnet: str
    """Subnet of the frontend network; gunicorn trusts X-Forwarded-* from it only."""
    backend_subnet: str = ""
    """Subnet of the backend network; empty: Docker picks one."""
    url: str
    """Where people reach the site (a label of the app's containers, for `make status`)."""
    target: str = "containers"
    """containers (one Docker host) or swarm (services on a Docker Swarm)."""
    swarm_data_label: str = ""
    """Swarm: the node label that places the stateful services and nginx (docs/swarm.md)."""
    swarm_shared_storage: str = ""
    """Swarm: host:/path of an NFS export for static and media; empty: the app runs on the data node."""

    @property
    def swarm(self) -> bool:
        return self.target == "swarm"

    def shared_volume_options(self) -> Optional[dict[str, str]]:
        """The local driver's NFS options for static and media on swarm (None: a plain local volume)."""
        if not self.swarm_shared_storage:
            return None
        host, path = self.swarm_shared_storage.split(":", 1)
        return {"type": "nfs", "o": f"addr={host},rw,nfsvers=4", "device": f":{path}"}


@dataclass(frozen=True, kw_only=True)
class WebSettings:
    replicas: int
    """gunicorn containers."""
    memory_mb: int
    """Memory limit of each replica (and of each release job)."""
    concurrency: int
    """gunicorn workers per replica."""
    timeout: int
    """gunicorn's request and graceful timeout, in seconds."""
    threads: int
    """gunicorn threads per worker (more than 1: the gthread worker)."""
    max_requests: int
    """Requests after which gunicorn replaces a worker (0: never)."""
    max_requests_jitter: int

    def __post_init__(self):
        if self.replicas < 1:
            raise ValueError("WebSettings.replicas must be at least 1")


@dataclass(frozen=True, kw_only=True)
class CelerySettings:
    concurrency: int
    """Worker processes."""
    memory_mb: int
    """Memory limit of the worker and of beat."""
    beat: bool
    """Run the one beat scheduler of the stack."""
    app: str
    """The Celery app (`celery --app`); empty: no worker and no beat."""
    pool: str
    max_tasks_per_child: int
    """0: never replace a child."""
    queues: tuple[str, ...]
    """Empty: Celery's default queue."""

    @property
    def enabled(self) -> bool:
        return bool(self.app)


@dataclass(frozen=True, kw_only=True)
class PostgresSettings:
    image: ImageRef
    db: str
    user: str
    password: Optional[pulumi.Output[str]]
    """None: one is generated and kept, secret, in the stack's state."""
    memory_mb: int


@dataclass(frozen=True, kw_only=True)
class RedisSettings:
    image: ImageRef
    memory_mb: int


@dataclass(frozen=True, kw_only=True)
class NginxSettings:
    """The front door: the names it answers to, its ports, TLS."""

    image: ImageRef
    memory_mb: int
    server_name: str
    bind_address: str
    """Host address the ports are published on."""
    http_port: int
    https_port: int
    client_max_body_size: str
    tls_certificate: Optional[pulumi.Output[str]]
    """PEM chain (secret); with tls_key, nginx serves HTTPS and redirects HTTP."""
    tls_key: Optional[pulumi.Output[str]]
    hsts_seconds: int
    """Strict-Transport-Security max-age (with TLS)."""
    acme: Optional[AcmeSettings] = None
    """tlsMode acme: certificates from an ACME CA (then no tls_certificate)."""

    def __post_init__(self):
        if (self.tls_certificate is None) != (self.tls_key is None):
            raise ValueError("NginxSettings: tls_certificate and tls_key go together")
        if self.acme is not None and self.tls_certificate is not None:
            raise ValueError("NginxSettings: a manual certificate or ACME, not both")

    @property
    def tls(self) -> bool:
        return self.tls_certificate is not None or self.acme is not None

    @property
    def public_port(self) -> int:
        """The host port people's browsers use."""
        return self.https_port if self.tls else self.http_port

    @property
    def url(self) -> str:
        """Where people reach the site (nginx's own output says the same)."""
        return render.public_url(server_name=self.server_name, tls=self.tls, port=self.public_port)


@dataclass(frozen=True, kw_only=True)
class DjangoSettings:
    """What the app's environment says beyond where its services are."""

    secret_key: Optional[pulumi.Output[str]]
    """None: one is generated and kept, secret, in the stack's state."""
    allowed_hosts: tuple[str, ...]
    """serverName first, then djangoAllowedHosts."""
    hsts_seconds: int
    log_level: str
