"""StackSettings and load(): every key of Pulumi.yaml read once and validated, by section."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Optional

import pulumi

import components.settings.keys as keys
from components.settings.acme import read_acme
from components.settings.app import AppSettings, project_path, read_app
from components.settings.backups import BackupSettings, read_backups
from components.settings.images import ImageSettings, accessory_image, read_image
from components.settings.provider import DockerAccess, probe_docker_host, read_docker_host
from components.settings.reader import Reader, ip, subnet
from components.settings.registry import check_registry_auth
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
from components.settings.values import (
    HOST_RE,
    NGINX_SIZE_RE,
    PG_NAME_RE,
    Healthcheck,
    SettingsError,
    host_name_problem,
    nginx_size_bytes,
)

PROJECT = "django-docker"
RESTART_POLICIES = ("always", "unless-stopped", "on-failure")
TARGETS = ("containers", "swarm")
TLS_MODES = ("manual", "acme")
NODE_LABEL_RE = re.compile(r"^[a-z0-9]([a-z0-9._-]*[a-z0-9])?$")
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
    backups: BackupSettings
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
    """Read and validate every stack setting once, section by section; every problem found is
    raised at the end in one SettingsError (one line each), before anything is created."""
    known = keys.project()
    read = Reader(config or pulumi.Config(PROJECT), known.keys)

    # --- keys no one reads: a typo, or a key of a misspelled namespace (keys.py)
    for problem in keys.unknown_key_problems(keys.current_keys(), known, keys.docker_provider_keys()):
        read.refuse(problem)

    # --- the Docker provider: where the engine is and how it is reached (ssh, TLS; checked
    # without connecting), and what its image pulls authenticate with
    docker_access = read.attempt(lambda: read_docker_host()[1], "docker:host")
    for problem in check_registry_auth(pulumi.Config("docker")):
        read.refuse(problem, "docker:registryAuth")

    # --- the app image: built here, promoted from another stack, or pinned (images.py)
    image = read_image(read, git_sha, project_path(read, "appContext"))
    # --- the app: which Django project, how it serves, its release commands (app.py)
    celery_beat = read.boolean("celeryBeat")
    app = read_app(read, builds=image.source == "build", celery_beat=celery_beat)

    # --- the front door (nginx): the names it answers to, its ports, TLS (tls.py)
    server_name = read.string("serverName", pattern=HOST_RE, expected="a host name, e.g. example.com", required=True)
    host_name(read, "serverName", server_name)
    extra_hosts = tuple(h.strip() for h in read.string("djangoAllowedHosts").split(",") if h.strip())
    for extra in extra_hosts:
        host_name(read, "djangoAllowedHosts", extra)
    tls_certificate, tls_key = read.secret("tlsCertificate"), read.secret("tlsKey")
    if read.ok("tlsCertificate", "tlsKey") and (tls_certificate is None) != (tls_key is None):
        read.refuse("tlsCertificate, tlsKey: set both (secrets) to serve HTTPS, or neither", "tlsCertificate")
        tls_certificate = tls_key = None
    if tls_certificate is None or tls_key is None:
        tls_certificate = tls_key = None
    elif read.ok("serverName"):
        certificate_pem, key_pem = read.secret_text("tlsCertificate"), read.secret_text("tlsKey")
        if certificate_pem is not None and key_pem is not None:  # None: not decrypted (make check)
            read.attempt(lambda: check_tls(certificate_pem, key_pem, server_name), "tlsCertificate", "tlsKey")
    # --- the target: one Docker host, or a swarm (docs/swarm.md)
    target = read.string("target", allowed=TARGETS)
    # --- or certificates from an ACME CA (acme.py)
    tls_mode = read.string("tlsMode", allowed=TLS_MODES)
    acme = read_acme(
        read,
        tls_mode=tls_mode,
        server_name=server_name,
        allowed_hosts=(server_name, *extra_hosts),
        image=accessory_image(read, "acmeImage", "lego", "4", 3),
        target=target,
        manual_certificate=tls_certificate is not None,
    )
    if acme is not None:
        tls_certificate = tls_key = None
    tls = tls_certificate is not None or acme is not None
    swarm_data_label = read.string(
        "swarmDataLabel", pattern=NODE_LABEL_RE, expected="a node label like django-docker.data", required=True
    )
    swarm_shared_storage = read.attempt(lambda: nfs_export(read.string("swarmSharedStorage")), "swarmSharedStorage")
    if read.ok("target") and target != "swarm":
        for key in ("swarmDataLabel", "swarmSharedStorage"):
            if not read.is_default(key) and read.ok(key):
                read.refuse(f"{key}: set, but target is {target}; it means something only with target: swarm", key)
    if read.ok("target") and target == "swarm" and image.source == "build" and not image.registry:
        # Every node pulls the image its tasks run; a build that stays on the manager reaches
        # no other node (a one-node swarm would work, until a second node joins).
        read.refuse(
            "imageRegistry: target swarm runs the app on every node, which pull it: set imageRegistry "
            "(the build is pushed, the services run its digest), or promote a pushed digest (imageSource stack or pin)",
            "imageRegistry",
        )
    if target == "swarm" and read.ok("target", "migrationMode") and app.migration_mode == "maintenance":
        # The maintenance page is a reload of the site volume's nginx (components/nginx_site.py);
        # on swarm nginx's configuration is a swarm config, and a change rolls the service.
        read.refuse(
            "migrationMode: maintenance needs nginx as a container (target containers); on swarm use gate "
            "and expand/contract",
            "migrationMode",
        )
    if read.ok("migrationMode") and app.migration_mode == "maintenance" and not app.migrate_command:
        read.refuse(
            "migrationMode: maintenance, but migrateCommand is empty (no migration to wait for)", "migrationMode"
        )
    bind_address = ip(read, "bindAddress")
    if target == "swarm" and read.ok("target", "bindAddress") and bind_address != "0.0.0.0":
        # A swarm port is published on every address of the node that runs the task.
        read.refuse(
            f"bindAddress: {bind_address} cannot be kept on swarm, which publishes on every address; set 0.0.0.0",
            "bindAddress",
        )
    http_port = read.integer("httpPort", low=1, high=65535)
    https_port = read.integer("httpsPort", low=1, high=65535)
    if read.ok("httpPort", "httpsPort") and tls and https_port == http_port:
        read.refuse(f"httpsPort: {https_port} is also httpPort; expected another port", "httpsPort")
    if read.ok("httpsPort", "tlsCertificate") and not tls and not read.is_default("httpsPort"):
        read.refuse(
            "httpsPort: set, but HTTPS is off (no tlsCertificate and tlsKey, tlsMode manual); set both secrets or "
            "tlsMode: acme, or remove httpsPort",
            "httpsPort",
        )
    hsts_seconds = read.integer("djangoHstsSeconds", low=0, high=63072000)
    if read.ok("djangoHstsSeconds", "tlsCertificate") and not tls and hsts_seconds:
        read.refuse(
            "djangoHstsSeconds: set, but HTTPS is off, so no Strict-Transport-Security is sent; "
            "set tlsCertificate and tlsKey, or set it to 0",
            "djangoHstsSeconds",
        )
    client_max_body_size = read.string(
        "clientMaxBodySize",
        pattern=NGINX_SIZE_RE,
        expected="an nginx size like 10m, 512k or 1g (0: no limit)",
        required=True,
    )
    if read.ok("clientMaxBodySize") and nginx_size_bytes(client_max_body_size) is None:
        read.refuse(
            f"clientMaxBodySize: '{client_max_body_size}' is past the largest size nginx holds (8E)",
            "clientMaxBodySize",
        )

    nginx = NginxSettings(
        image=accessory_image(read, "nginxImage", "nginx", "", 3),
        memory_mb=read.memory_mb("nginxMemory"),
        server_name=server_name,
        bind_address=bind_address,
        http_port=http_port,
        https_port=https_port,
        client_max_body_size=client_max_body_size,
        tls_certificate=tls_certificate,
        tls_key=tls_key,
        hsts_seconds=hsts_seconds,
        acme=acme,
    )
    # --- every resource of the stack
    frontend_subnet = subnet(read, "frontendSubnet")
    web_replicas = read.integer("webReplicas", low=1, high=MAX_REPLICAS)
    if read.ok("frontendSubnet", "webReplicas"):
        # During a release every replica runs twice (create-before-delete), beside nginx; Docker
        # keeps the network's own address, its broadcast and its gateway.
        needed, room = 2 * web_replicas + 1, ipaddress.ip_network(frontend_subnet).num_addresses - 3
        if room < needed:
            read.refuse(
                f"frontendSubnet: '{frontend_subnet}' has room for {room} containers; {web_replicas} web "
                f"replicas need {needed} during a release (a larger subnet, e.g. /24)",
                "frontendSubnet",
            )
    backend_subnet = subnet(read, "backendSubnet", optional=True)
    if backend_subnet and read.ok("frontendSubnet", "backendSubnet"):
        if ipaddress.ip_network(backend_subnet).overlaps(ipaddress.ip_network(frontend_subnet)):
            read.refuse(
                f"backendSubnet: '{backend_subnet}' overlaps frontendSubnet '{frontend_subnet}'; "
                "Docker refuses two networks on one range",
                "backendSubnet",
            )
    healthcheck = Healthcheck(
        interval=read.duration("healthcheckInterval"),
        timeout=read.duration("healthcheckTimeout"),
        retries=read.integer("healthcheckRetries", low=1, high=100),
        start_period=read.duration("healthcheckStartPeriod", zero=True),
    )
    deployment = Deployment(
        project=PROJECT,
        stack=pulumi.get_stack(),
        docker=docker_access or DockerAccess(host=""),
        restart_policy=read.string("restartPolicy", allowed=RESTART_POLICIES),
        healthcheck=healthcheck,
        protect_data=read.boolean("protectData"),
        frontend_subnet=frontend_subnet,
        backend_subnet=backend_subnet,
        url=nginx.url,
        target=target,
        swarm_data_label=swarm_data_label,
        swarm_shared_storage=swarm_shared_storage or "",
    )
    # --- web (gunicorn replicas)
    web = WebSettings(
        replicas=web_replicas,
        memory_mb=read.memory_mb("webMemory"),
        concurrency=read.integer("webConcurrency", low=1, high=64),
        threads=read.integer("webThreads", low=1, high=256),
        timeout=read.integer("webTimeout", low=1, high=3600),
        max_requests=read.integer("webMaxRequests", low=0, high=2**31 - 1),
        max_requests_jitter=read.integer("webMaxRequestsJitter", low=0, high=2**31 - 1),
    )
    # --- Celery (worker, beat): none without a Celery app
    celery = CelerySettings(
        app=app.celery_app,
        concurrency=read.integer("celeryConcurrency", low=1, high=64),
        memory_mb=read.memory_mb("celeryMemory"),
        beat=celery_beat,
        pool=read.string("celeryPool", allowed=CELERY_POOLS),
        max_tasks_per_child=read.integer("celeryMaxTasksPerChild", low=0, high=2**31 - 1),
        queues=queue_names(read),
    )
    # --- PostgreSQL, and its backups (backups.py)
    postgres = PostgresSettings(
        image=accessory_image(read, "postgresImage", "postgres", "15", 2),
        db=postgres_name(read, "postgresDb", "a database name (lowercase letters, digits, _)", RESERVED_DATABASES),
        user=postgres_name(read, "postgresUser", "a role name (lowercase letters, digits, _)", RESERVED_ROLES),
        password=read.secret("postgresPassword", token=True),
        memory_mb=read.memory_mb("postgresMemory"),
    )
    backups = read_backups(read, stack=pulumi.get_stack(), swarm=target == "swarm")
    # --- Redis
    redis = RedisSettings(
        image=accessory_image(read, "redisImage", "redis", "7", 3),
        memory_mb=read.memory_mb("redisMemory"),
    )
    # --- Django
    django = DjangoSettings(
        secret_key=read.secret("djangoSecretKey", token=True),
        allowed_hosts=(server_name, *[h for h in extra_hosts if h != server_name]),
        hsts_seconds=nginx.hsts_seconds,
        log_level=read.string("djangoLogLevel", allowed=LOG_LEVELS),
    )
    read.finish()  # every problem found above, one line each; nothing is created
    return StackSettings(
        deployment=deployment,
        image=image,
        app=app,
        web=web,
        celery=celery,
        postgres=postgres,
        backups=backups,
        redis=redis,
        # --- nginx (above: the front door's names and ports are read first, TLS checks them)
        nginx=nginx,
        django=django,
    )


def queue_names(read: Reader) -> tuple[str, ...]:
    names = tuple(q.strip() for q in read.string("celeryQueues").split(",") if q.strip())
    for name in names:
        if not QUEUE_RE.match(name):
            read.refuse(f"celeryQueues: '{name}' is not a queue name (letters, digits, . _ : -)", "celeryQueues")
    return names


def host_name(read: Reader, key: str, name: str) -> None:
    """A host name people type: DNS's limits too (a label of 63, a name of 253 characters)."""
    why = host_name_problem(name) if name and read.ok(key) else None
    if why:
        read.refuse(f"{key}: '{name}' {why}", key)


def nfs_export(value: str) -> str:
    """`host:/path`, as the local volume driver's NFS options take it (empty: none)."""
    if not value:
        return ""
    expected = "expected an NFS export as host:/path, e.g. nfs.internal:/exports/django"
    if "://" in value:
        raise SettingsError(f"swarmSharedStorage: '{value}' is a URL; {expected}")
    host, sep, path = value.partition(":")
    if host.startswith("["):  # [IPv6]:/path
        host, sep, path = value[1:].partition("]:")
        valid_host = _is_ip(host, 6)
    else:
        valid_host = _is_ip(host, 4) or host_name_problem(host) is None
    if not sep or not valid_host or not path.startswith("/") or path.startswith("//") or any(c.isspace() for c in path):
        raise SettingsError(f"swarmSharedStorage: '{value}' is not valid; {expected}")
    return value


def _is_ip(text: str, version: int) -> bool:
    try:
        return ipaddress.ip_address(text).version == version
    except ValueError:
        return False


def postgres_name(read: Reader, key: str, expected: str, reserved: dict[str, str]) -> str:
    """A database or role name PostgreSQL takes as it is: lowercase (unquoted identifiers fold to
    lowercase), at most 63 bytes (NAMEDATALEN - 1: longer names are cut), none it reserves."""
    name = read.string(key, pattern=PG_NAME_RE, expected=f"{expected}, at most 63", required=True)
    why = reserved.get(name) or (reserved.get("pg_*") if name.startswith("pg_") else None)
    if why and read.ok(key):
        read.refuse(f"{key}: '{name}' {why}", key)
    return name


# Measured with PostgreSQL 15's initdb (the postgres image runs it with POSTGRES_USER as the superuser):
# `superuser name "pg_app" is disallowed; role names cannot begin with "pg_"`; `role name "none" is
# reserved`; with `public` the bootstrap fails (`role "public" does not exist`: it names every role).
RESERVED_ROLES = {
    "pg_*": 'is reserved: PostgreSQL role names cannot begin with "pg_"',
    "public": "is reserved: PUBLIC means every role in PostgreSQL",
    "none": "is reserved by PostgreSQL",
}
# The image's entrypoint creates POSTGRES_DB only when no database has that name: template1 would
# hold the app's tables (and pass them to every database created later); template0 takes no connection.
RESERVED_DATABASES = {
    "template0": "is PostgreSQL's pristine template, which takes no connection",
    "template1": "is PostgreSQL's template database: the app's tables would go into every new database",
}


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
