"""Django on Docker: load the stack's settings, wire the components, export what others need."""

import pulumi
import pulumi_random as random

from components import render
from components import settings as stack_settings
from components.celery import Celery, CeleryArgs
from components.common import AppRuntime
from components.image import AppImage, AppImageArgs
from components.network import Networks, NetworksArgs
from components.nginx import Nginx, NginxArgs
from components.postgres import Postgres, PostgresArgs
from components.redis import Redis, RedisArgs
from components.release import Release, ReleaseArgs
from components.volumes import Volumes, VolumesArgs
from components.web import Web, WebArgs

try:
    s = stack_settings.load()
except stack_settings.SettingsError as error:
    raise pulumi.RunError(str(error)) from None  # one line, no traceback, nothing created

# --- the app image (built here, or another stack's digest), the networks and the volumes
app, app_dir = s.project, stack_settings.PROJECT_ROOT / "django_app"
image = AppImage(f"{app}-image", AppImageArgs(image=s.image, context=app_dir, dockerfile=app_dir / "Dockerfile"))
net = Networks(f"{app}-net", NetworksArgs(stack=s.stack, frontend_subnet=s.frontend_subnet))
vol = Volumes(f"{app}-vol", VolumesArgs(stack=s.stack, protect_data=s.protect_data))

# --- the accessories the app stands on: PostgreSQL and Redis, on the internal backend network
db = Postgres(
    f"{app}-postgres",
    PostgresArgs(
        image=s.postgres_image.text,
        db=s.postgres_db,
        user=s.postgres_user,
        password=s.postgres_password,
        memory_mb=s.postgres_memory_mb,
        restart=s.restart_policy,
        network=net.backend,
        data_volume=vol.postgres_data,
        stack=s.stack,
    ),
)
cache = Redis(
    f"{app}-redis",
    RedisArgs(
        image=s.redis_image.text,
        memory_mb=s.redis_memory_mb,
        restart=s.restart_policy,
        network=net.backend,
        data_volume=vol.redis_data,
        stack=s.stack,
    ),
)

# --- what every container of the app image shares: the image, its environment (secret), the backend
secret_key = s.django_secret_key or random.RandomPassword(f"{app}-secret-key", length=64, special=False).result
env = pulumi.Output.secret(
    pulumi.Output.all(secret_key, db.password).apply(
        lambda secrets: render.app_env(
            secret_key=secrets[0],
            database_url=render.database_url(user=s.postgres_user, password=secrets[1], db=s.postgres_db),
            redis_url=cache.url,
            allowed_hosts=s.allowed_hosts,
            csrf_trusted_origins=render.csrf_origins(hosts=s.allowed_hosts, tls=s.tls, port=s.public_port),
            tls=s.tls,
            hsts_seconds=s.django_hsts_seconds,
            log_level=s.django_log_level,
            web_concurrency=s.web_concurrency,
            web_timeout=s.web_timeout,
            forwarded_allow_ips=s.frontend_subnet,
        )
    )
)
runtime = AppRuntime(
    image=image.ref,
    env=env,
    git_sha=image.git_sha,
    stack=s.stack,
    backend_network=net.backend,
    media_volume=vol.media,
    healthcheck=s.healthcheck,
    restart=s.restart_policy,
    docker_host=s.docker_host,
    url=s.url,
)

# --- each release: backup (prod), migrate and collectstatic run first; web and Celery wait for them
release = Release(
    f"{app}-release",
    ReleaseArgs(
        runtime=runtime,
        static_volume=vol.static,
        memory_mb=s.web_memory_mb,
        backup=s.backup_before_migrate,
        backup_retention=s.backup_retention,
        postgres_image=s.postgres_image.text,
        database_env=db.client_env,
        backups_volume=vol.backups,
    ),
    pulumi.ResourceOptions(depends_on=[db, cache]),
)
web = Web(
    f"{app}-web",
    WebArgs(
        runtime=runtime,
        replicas=s.web_replicas,
        memory_mb=s.web_memory_mb,
        timeout=s.web_timeout,
        frontend_network=net.frontend,
        release_gate=release.gate,
    ),
)
Celery(
    f"{app}-celery",
    CeleryArgs(
        runtime=runtime,
        concurrency=s.celery_concurrency,
        memory_mb=s.celery_memory_mb,
        beat=s.celery_beat,
        release_gate=release.gate,
    ),
)
# --- the front door: nginx, the only container with a published port
nginx = Nginx(
    f"{app}-nginx",
    NginxArgs(
        image=s.nginx_image.text,
        server_name=s.server_name,
        client_max_body_size=s.client_max_body_size,
        bind_address=s.bind_address,
        http_port=s.http_port,
        https_port=s.https_port,
        tls_certificate=s.tls_certificate,
        tls_key=s.tls_key,
        hsts_seconds=s.django_hsts_seconds,
        memory_mb=s.nginx_memory_mb,
        restart=s.restart_policy,
        frontend_network=net.frontend,
        static_volume=vol.static,
        media_volume=vol.media,
        stack=s.stack,
    ),
    pulumi.ResourceOptions(depends_on=[web]),
)

# --- what other stacks and people read: the URL, and the image a promotion takes
pulumi.export("url", nginx.url)
pulumi.export("imageRef", image.ref)
pulumi.export("imagePushed", image.pushed)
pulumi.export("gitSha", image.git_sha)
pulumi.export("webContainers", web.names)
