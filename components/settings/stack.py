"""StackSettings and load(): every key of Pulumi.yaml read once and validated, by section."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Optional

import pulumi

from components.settings.app import AppSettings, project_path, read_app
from components.settings.images import ImageSettings, accessory_image, read_image
from components.settings.provider import check_registry_auth, probe_docker_host, read_docker_host
from components.settings.reader import Reader, ip, subnet
from components.settings.services import (
    CelerySettings,
    Deployment,
    DjangoSettings,
    NginxSettings,
    PostgresSettings,
    RedisSettings,
    WebSettings,
)
from components.settings.tls import check_tls
from components.settings.values import HOST_RE, NGINX_SIZE_RE, PG_NAME_RE, Healthcheck, SettingsError

PROJECT = "django-docker"
RESTART_POLICIES = ("always", "unless-stopped", "on-failure")
TARGETS = ("containers", "swarm")
NODE_LABEL_RE = re.compile(r"^[a-z0-9]([a-z0-9._-]*[a-z0-9])?$")
NFS_EXPORT_RE = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?:/\S*$")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
# Pools that need nothing beyond Celery itself (gevent and eventlet need their own packages
# and a monkey-patched app: not something a stack key can switch on safely).
CELERY_POOLS = ("prefork", "threads", "solo")
QUEUE_RE = re.compile(r"^[A-Za-z0-9_.:-]+$")
MAX_REPLICAS = 50


@dataclass(frozen=True, kw_only=True)
class StackSettings:
    """Everything a stack can set, validated: what the stack shares, then one section per service."""

    deployment: Deployment
    image: ImageSettings
    app: AppSettings
    web: WebSettings
    celery: CelerySettings
    postgres: PostgresSettings
    redis: RedisSettings
    nginx: NginxSettings
    django: DjangoSettings

    @property
    def project(self) -> str:
        return self.deployment.project

    @property
    def url(self) -> str:
        return self.nginx.url


def load(config: Optional[pulumi.Config] = None, *, git_sha: Optional[str] = None) -> StackSettings:
    """Read and validate every stack setting once, section by section."""
    read = Reader(config or pulumi.Config(PROJECT))

    # --- the Docker provider: where the engine is and how it is reached (ssh, TLS; checked
    # without connecting), and what its image pulls authenticate with
    _, docker_access = read_docker_host()
    check_registry_auth(pulumi.Config("docker"))

    # --- the app image: built here, promoted from another stack, or pinned (images.py)
    image = read_image(read, git_sha, project_path(read, "appContext"))
    # --- the app: which Django project, how it serves, its release commands (app.py)
    celery_beat = read.boolean("celeryBeat")
    app = read_app(read, builds=image.source == "build", celery_beat=celery_beat)

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
    # --- the target: one Docker host, or a swarm (docs/swarm.md)
    target = read.string("target", allowed=TARGETS)
    swarm_data_label = read.string(
        "swarmDataLabel", pattern=NODE_LABEL_RE, expected="a node label like django-docker.data", required=True
    )
    swarm_shared_storage = read.string(
        "swarmSharedStorage", pattern=NFS_EXPORT_RE, expected="an NFS export as host:/path"
    )
    if target == "swarm" and image.source == "build" and not image.registry:
        # Every node pulls the image its tasks run; a build that stays on the manager reaches
        # no other node (a one-node swarm would work, until a second node joins).
        raise SettingsError(
            "imageRegistry: target swarm runs the app on every node, which pull it: set imageRegistry "
            "(the build is pushed, the services run its digest), or promote a pushed digest (imageSource stack or pin)"
        )
    bind_address = ip(read, "bindAddress")
    if target == "swarm" and bind_address != "0.0.0.0":
        # A swarm port is published on every address of the node that runs the task.
        raise SettingsError(
            f"bindAddress: {bind_address} cannot be kept on swarm, which publishes on every address; set 0.0.0.0"
        )
    http_port = read.integer("httpPort", low=1, high=65535)
    https_port = read.integer("httpsPort", low=1, high=65535)
    if tls_certificate is not None and https_port == http_port:
        raise SettingsError(f"httpsPort: {https_port} is also httpPort; expected another port")

    nginx = NginxSettings(
        image=accessory_image(read, "nginxImage", "nginx", "", 3),
        memory_mb=read.memory_mb("nginxMemory"),
        server_name=server_name,
        bind_address=bind_address,
        http_port=http_port,
        https_port=https_port,
        client_max_body_size=read.string(
            "clientMaxBodySize", pattern=NGINX_SIZE_RE, expected="an nginx size like 10m", required=True
        ),
        tls_certificate=tls_certificate,
        tls_key=tls_key,
        hsts_seconds=read.integer("djangoHstsSeconds", low=0, high=63072000),
    )
    return StackSettings(
        # --- every resource of the stack
        deployment=Deployment(
            project=PROJECT,
            stack=pulumi.get_stack(),
            docker=docker_access,
            restart_policy=read.string("restartPolicy", allowed=RESTART_POLICIES),
            healthcheck=Healthcheck(
                interval=read.duration("healthcheckInterval"),
                timeout=read.duration("healthcheckTimeout"),
                retries=read.integer("healthcheckRetries", low=1, high=100),
                start_period=read.duration("healthcheckStartPeriod"),
            ),
            protect_data=read.boolean("protectData"),
            frontend_subnet=subnet(read, "frontendSubnet"),
            url=nginx.url,
            target=target,
            swarm_data_label=swarm_data_label,
            swarm_shared_storage=swarm_shared_storage,
        ),
        image=image,
        app=app,
        # --- web (gunicorn replicas)
        web=WebSettings(
            replicas=read.integer("webReplicas", low=1, high=MAX_REPLICAS),
            memory_mb=read.memory_mb("webMemory"),
            concurrency=read.integer("webConcurrency", low=1, high=64),
            threads=read.integer("webThreads", low=1, high=256),
            timeout=read.integer("webTimeout", low=1, high=3600),
            max_requests=read.integer("webMaxRequests", low=0, high=2**31 - 1),
            max_requests_jitter=read.integer("webMaxRequestsJitter", low=0, high=2**31 - 1),
        ),
        # --- Celery (worker, beat): none without a Celery app
        celery=CelerySettings(
            app=app.celery_app,
            concurrency=read.integer("celeryConcurrency", low=1, high=64),
            memory_mb=read.memory_mb("celeryMemory"),
            beat=celery_beat,
            pool=read.string("celeryPool", allowed=CELERY_POOLS),
            max_tasks_per_child=read.integer("celeryMaxTasksPerChild", low=0, high=2**31 - 1),
            queues=queue_names(read),
        ),
        # --- PostgreSQL and its backups
        postgres=PostgresSettings(
            image=accessory_image(read, "postgresImage", "postgres", "15", 2),
            db=read.string(
                "postgresDb",
                pattern=PG_NAME_RE,
                expected="a database name (lowercase letters, digits, _)",
                required=True,
            ),
            user=read.string(
                "postgresUser", pattern=PG_NAME_RE, expected="a role name (lowercase letters, digits, _)", required=True
            ),
            password=read.secret("postgresPassword"),
            memory_mb=read.memory_mb("postgresMemory"),
            backup_before_migrate=read.boolean("backupBeforeMigrate"),
            backup_retention=read.integer("backupRetention", low=1, high=1000),
        ),
        # --- Redis
        redis=RedisSettings(
            image=accessory_image(read, "redisImage", "redis", "7", 3),
            memory_mb=read.memory_mb("redisMemory"),
        ),
        # --- nginx (above: the front door's names and ports are read first, TLS checks them)
        nginx=nginx,
        # --- Django
        django=DjangoSettings(
            secret_key=read.secret("djangoSecretKey"),
            allowed_hosts=(server_name, *[h for h in extra_hosts if h != server_name]),
            hsts_seconds=nginx.hsts_seconds,
            log_level=read.string("djangoLogLevel", allowed=LOG_LEVELS),
        ),
    )


def queue_names(read: Reader) -> tuple[str, ...]:
    names = tuple(q.strip() for q in read.string("celeryQueues").split(",") if q.strip())
    for name in names:
        if not QUEUE_RE.match(name):
            raise SettingsError(f"celeryQueues: '{name}' is not a queue name (letters, digits, . _ : -)")
    return names


def load_or_fail() -> StackSettings:
    """load() for the program: a user's mistake ends `pulumi up` with its one line and no
    traceback, before any resource exists. Then the Docker host is reached once as the provider
    will reach it (settings.provider.probe_docker_host), on previews too: a wrong key or an
    unreachable host is known before anything is created, not after the networks and the
    database were."""
    try:
        settings = load()
        reached = probe_docker_host(read_docker_host()[0])
        if reached:
            pulumi.log.info(f"docker:host: {reached}")
        return settings
    except SettingsError as error:
        raise pulumi.RunError(str(error)) from None
