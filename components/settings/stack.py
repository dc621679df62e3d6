"""StackSettings and load(): every key of Pulumi.yaml read once and validated, by section."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import pulumi

from components import render
from components.settings.images import ImageSettings, accessory_image, read_image
from components.settings.provider import check_registry_auth, docker_host
from components.settings.reader import Reader, ip, subnet
from components.settings.tls import check_tls
from components.settings.values import HOST_RE, NGINX_SIZE_RE, PG_NAME_RE, Healthcheck, ImageRef, SettingsError

PROJECT = "django-docker"
RESTART_POLICIES = ("always", "unless-stopped", "on-failure")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
MAX_REPLICAS = 50


@dataclass(frozen=True, kw_only=True)
class StackSettings:
    """Everything a stack can set, validated."""

    project: str
    stack: str
    docker_host: str
    """`docker:host` (the provider's Docker host); empty: DOCKER_HOST or the local socket."""
    image: ImageSettings
    restart_policy: str
    protect_data: bool
    frontend_subnet: str
    web_replicas: int
    web_memory_mb: int
    web_concurrency: int
    web_timeout: int
    healthcheck: Healthcheck
    celery_concurrency: int
    celery_memory_mb: int
    celery_beat: bool
    postgres_image: ImageRef
    postgres_db: str
    postgres_user: str
    postgres_password: Optional[pulumi.Output[str]]
    postgres_memory_mb: int
    backup_before_migrate: bool
    backup_retention: int
    redis_image: ImageRef
    redis_memory_mb: int
    nginx_image: ImageRef
    nginx_memory_mb: int
    http_port: int
    https_port: int
    bind_address: str
    server_name: str
    client_max_body_size: str
    tls_certificate: Optional[pulumi.Output[str]]
    tls_key: Optional[pulumi.Output[str]]
    django_secret_key: Optional[pulumi.Output[str]]
    allowed_hosts: tuple[str, ...]
    django_hsts_seconds: int
    django_log_level: str

    @property
    def tls(self) -> bool:
        return self.tls_certificate is not None

    @property
    def public_port(self) -> int:
        """The host port people's browsers use."""
        return self.https_port if self.tls else self.http_port

    @property
    def url(self) -> str:
        """Where people reach the site (nginx's own output says the same)."""
        return render.public_url(server_name=self.server_name, tls=self.tls, port=self.public_port)


def load(config: Optional[pulumi.Config] = None, *, git_sha: Optional[str] = None) -> StackSettings:
    """Read and validate every stack setting once, section by section."""
    read = Reader(config or pulumi.Config(PROJECT))

    # --- the Docker provider: where the engine is, and what its image pulls authenticate with
    host = docker_host()
    check_registry_auth(pulumi.Config("docker"))

    # --- the app image: built here, promoted from another stack, or pinned (images.py)
    image = read_image(read, git_sha)

    # --- the front door (nginx): the names it answers to, its ports, TLS (tls.py)
    server_name = read.string("serverName", pattern=HOST_RE, expected="a host name, e.g. example.com", required=True)
    extra_hosts = tuple(h.strip() for h in read.string("djangoAllowedHosts").split(",") if h.strip())
    for extra in extra_hosts:
        if not HOST_RE.match(extra):
            raise SettingsError(f"djangoAllowedHosts: '{extra}' is not a host name")
    tls_certificate, tls_key = read.secret("tlsCertificate"), read.secret("tlsKey")
    if (tls_certificate is None) != (tls_key is None):
        raise SettingsError("tlsCertificate, tlsKey: set both (secrets) to serve HTTPS, or neither")
    if tls_certificate is not None:
        check_tls(read.secret_text("tlsCertificate"), read.secret_text("tlsKey"), server_name)
    http_port = read.integer("httpPort", low=1, high=65535)
    https_port = read.integer("httpsPort", low=1, high=65535)
    if tls_certificate is not None and https_port == http_port:
        raise SettingsError(f"httpsPort: {https_port} is also httpPort; expected another port")

    return StackSettings(
        project=PROJECT,
        stack=pulumi.get_stack(),
        docker_host=host,
        image=image,
        # --- every container
        restart_policy=read.string("restartPolicy", allowed=RESTART_POLICIES),
        protect_data=read.boolean("protectData"),
        frontend_subnet=subnet(read, "frontendSubnet"),
        healthcheck=Healthcheck(
            interval=read.duration("healthcheckInterval"),
            timeout=read.duration("healthcheckTimeout"),
            retries=read.integer("healthcheckRetries", low=1, high=100),
            start_period=read.duration("healthcheckStartPeriod"),
        ),
        # --- web (gunicorn replicas)
        web_replicas=read.integer("webReplicas", low=1, high=MAX_REPLICAS),
        web_memory_mb=read.memory_mb("webMemory"),
        web_concurrency=read.integer("webConcurrency", low=1, high=64),
        web_timeout=read.integer("webTimeout", low=1, high=3600),
        # --- Celery (worker, beat)
        celery_concurrency=read.integer("celeryConcurrency", low=1, high=64),
        celery_memory_mb=read.memory_mb("celeryMemory"),
        celery_beat=read.boolean("celeryBeat"),
        # --- PostgreSQL and its backups
        postgres_image=accessory_image(read, "postgresImage", "postgres", "15", 2),
        postgres_db=read.string(
            "postgresDb", pattern=PG_NAME_RE, expected="a database name (lowercase letters, digits, _)", required=True
        ),
        postgres_user=read.string(
            "postgresUser", pattern=PG_NAME_RE, expected="a role name (lowercase letters, digits, _)", required=True
        ),
        postgres_password=read.secret("postgresPassword"),
        postgres_memory_mb=read.memory_mb("postgresMemory"),
        backup_before_migrate=read.boolean("backupBeforeMigrate"),
        backup_retention=read.integer("backupRetention", low=1, high=1000),
        # --- Redis
        redis_image=accessory_image(read, "redisImage", "redis", "7", 3),
        redis_memory_mb=read.memory_mb("redisMemory"),
        # --- nginx
        nginx_image=accessory_image(read, "nginxImage", "nginx", "", 3),
        nginx_memory_mb=read.memory_mb("nginxMemory"),
        http_port=http_port,
        https_port=https_port,
        bind_address=ip(read, "bindAddress"),
        server_name=server_name,
        client_max_body_size=read.string(
            "clientMaxBodySize", pattern=NGINX_SIZE_RE, expected="an nginx size like 10m", required=True
        ),
        tls_certificate=tls_certificate,
        tls_key=tls_key,
        # --- Django
        django_secret_key=read.secret("djangoSecretKey"),
        allowed_hosts=(server_name, *[h for h in extra_hosts if h != server_name]),
        django_hsts_seconds=read.integer("djangoHstsSeconds", low=0, high=63072000),
        django_log_level=read.string("djangoLogLevel", allowed=LOG_LEVELS),
    )
