"""Django on Docker: the stack's topology, top to bottom. Its settings: components/settings/."""

import pulumi
import pulumi_random as random

from components import settings
from components.acme import Acme, AcmeArgs
from components.backups import Backups, BackupsArgs
from components.celery import Celery, CeleryArgs
from components.common import AppRuntime
from components.image import AppImage, AppImageArgs
from components.network import Networks, NetworksArgs
from components.nginx import Nginx, NginxArgs, site_args_of
from components.postgres import Postgres, PostgresArgs
from components.redis import Redis, RedisArgs
from components.release import Release, ReleaseArgs
from components.volumes import Volumes, VolumesArgs
from components.web import Web, WebArgs

s = settings.load_or_fail()  # every key read and checked once; a mistake stops here, nothing created
app, deployment = s.project, s.deployment

# --- the app image (built from the app's project, another stack's digest, or a pin), the
# networks, the volumes
image = AppImage(f"{app}-image", AppImageArgs(image=s.image, app=s.app))
net = Networks(f"{app}-net", NetworksArgs(deployment=deployment, egress=s.backups.offsite is not None))
vol = Volumes(
    f"{app}-vol",
    VolumesArgs(
        deployment=deployment,
        static=s.app.static,
        media=s.app.media,
        nginx_site=not deployment.swarm,
        acme=s.nginx.acme is not None,
        wal_spool=s.backups.pitr,
    ),
)

# --- the accessories the app stands on: on the internal backend network only, data on volumes
db = Postgres(
    f"{app}-postgres",
    PostgresArgs(
        settings=s.postgres,
        deployment=deployment,
        network=net.backend,
        data_volume=vol.postgres_data,
        run_volume=vol.postgres_run,
        archive_timeout=s.backups.archive_timeout,
    ),
)
cache = Redis(
    f"{app}-redis",
    RedisArgs(
        settings=s.redis,
        deployment=deployment,
        network=net.backend,
        data_volume=vol.redis_data,
    ),
)

# --- backups: scheduled, copied off-host and verified, the WAL archived (an accessory of its own)
backups = (
    Backups(
        f"{app}-backup",
        BackupsArgs(
            settings=s.backups,
            deployment=deployment,
            postgres_image=s.postgres.image.text,
            backend_network=net.backend,
            egress_network=net.egress,
            backups_volume=vol.backups,
            data_volume=vol.postgres_data,
            run_volume=vol.postgres_run,
            database_env=db.client_env,
        ),
        pulumi.ResourceOptions(depends_on=[db]),
    )
    if s.backups.accessory
    else None
)

# --- what every container of the app image shares: the digest, its environment (secret), the backend
runtime = AppRuntime.of(
    s,
    image=image.ref,
    git_sha=image.git_sha,
    secret_key=s.django.secret_key or random.RandomPassword(f"{app}-secret-key", length=64, special=False).result,
    database_password=db.password,
    redis_url=cache.url,
    backend_network=net.backend,
    media_volume=vol.media,
)

# --- the front door's settings: nginx is created last, but a release in maintenance mode
# switches its configuration to the maintenance page before migrate
nginx_args = NginxArgs(
    settings=s.nginx,
    deployment=deployment,
    app=s.app,
    frontend_network=net.frontend,
    static_volume=vol.static,
    media_volume=vol.media,
    site_volume=vol.nginx_site,
    acme_webroot_volume=vol.acme_webroot,
    release_image=image.ref,
)
maintenance = s.app.migration_mode == "maintenance" and not deployment.swarm

# --- each release: the migration gate, backup (prod), migrate and collectstatic first; web and
# Celery wait for them
release = Release(
    f"{app}-release",
    ReleaseArgs(
        runtime=runtime,
        web=s.web,
        postgres=s.postgres,
        backups=s.backups,
        backup_image=backups.image if backups else None,
        database_env=db.client_env,
        static_volume=vol.static,
        backups_volume=vol.backups,
        maintenance_site=site_args_of(nginx_args, maintenance=True) if maintenance else None,
    ),
    pulumi.ResourceOptions(depends_on=[db, cache]),
)
web = Web(
    f"{app}-web",
    WebArgs(
        settings=s.web,
        runtime=runtime,
        frontend_network=net.frontend,
        release_gate=release.gate,
    ),
)
Celery(
    f"{app}-celery",
    CeleryArgs(
        settings=s.celery,
        runtime=runtime,
        release_gate=release.gate,
    ),
)

# --- the front door: nginx, the only container with a published port
nginx = Nginx(f"{app}-nginx", nginx_args, pulumi.ResourceOptions(depends_on=[web]))
# --- tlsMode acme: its certificate obtained from the CA once nginx answers the challenge, then renewed
if s.nginx.acme is not None:
    Acme(
        f"{app}-acme",
        AcmeArgs(
            settings=s.nginx.acme,
            deployment=deployment,
            frontend_network=net.frontend,
            data_volume=vol.acme,
            webroot_volume=vol.acme_webroot,
            site_volume=vol.nginx_site,
            nginx_id=nginx.container_id,
        ),
    )

# --- what other stacks and people read: the URL, and the image a promotion takes
pulumi.export("url", nginx.url)
pulumi.export("imageRef", image.ref)
pulumi.export("imagePushed", image.pushed)
pulumi.export("gitSha", image.git_sha)
pulumi.export("webContainers", web.names)
