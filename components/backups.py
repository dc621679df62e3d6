"""Backups: the backup accessory, and the image it and the before-migrate job run.

Scheduled backups are an accessory, not a Celery beat task, for four reasons: a team's project
may have no Celery at all (celeryApp empty) and beat is optional where it has one; pg_dump must
be the server's own version, which the postgres image has and an app image does not; the
bucket's credentials and a way out to it belong to one container, not to every app container
(which stay on the internal backend network); and backups must go on when a release of the app
is broken. The accessory (`backup-agent`) runs the agent (backup/django_docker_backup) in an
image the program builds on the stack's Docker host FROM the stack's postgresImage, adding
pgBackRest, age, Python with boto3 and psycopg2 (backup/Dockerfile; never pushed, like the
runtime's image). It takes the scheduled backups into the backups volume, copies every backup
(scheduled, before-migrate, `make backup`) off-host and reads it back, applies retention in
both places, and with backupPitr ships the WAL segments PostgreSQL spools (postgres.py).

It is a singleton that owns the schedule and the WAL shipping, so a replacement is
delete-before-replace: two would take every scheduled backup twice and push the same segments.
It starts as root with only CHOWN, SETUID and SETGID, gives the backups volume (an older
release's job wrote it as root) to the postgres user and drops to it (backup/entrypoint.sh).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional, Sequence

import pulumi
import pulumi_docker as docker

from components import render
from components.common import (
    APP_TMPFS,
    DROP_ALL,
    LOG_DRIVER,
    LOG_OPTS,
    NO_NEW_PRIVILEGES,
    NetworkRef,
    child_options,
    container_options,
    healthcheck_args,
    label_args,
    memory_kwargs,
    wait_kwargs,
)
from components.settings import BackupSettings, Deployment, Healthcheck
from components.settings.backups import BACKUP_BUILD_ARG, BACKUP_DIR, backup_image_tag

HEALTH = Healthcheck(interval="10s", timeout="10s", retries=3, start_period="30s")
# A scheduled backup or a WAL push in progress is finished or abandoned cleanly on SIGTERM.
STOP_GRACE_SECONDS = 60
# What the entrypoint needs to give the volume to the postgres user and become it. Spelled as
# Docker (20.10 on) reads them back, with CAP_: the provider stores HostConfig.CapAdd as inspect
# reports it, and the set is ForceNew with no diff suppression (terraform-provider-docker v4.5.0
# resource_docker_container_funcs.go:870-878, resource_docker_container.go:262-290), so `CHOWN`
# would replace the container on every `pulumi up` (measured: --cap-add CHOWN reads back CAP_CHOWN).
AGENT_CAPABILITIES = ["CAP_CHOWN", "CAP_SETGID", "CAP_SETUID"]


def hardened_kwargs() -> dict:
    """The accessory's and the backup job's: read-only root, /tmp tmpfs, only the capabilities
    the entrypoint uses, no-new-privileges, init, rotated logs."""
    return dict(
        read_only=True,
        tmpfs=APP_TMPFS,
        capabilities=docker.ContainerCapabilitiesArgs(adds=AGENT_CAPABILITIES, drops=DROP_ALL),
        security_opts=NO_NEW_PRIVILEGES,
        init=True,
        log_driver=LOG_DRIVER,
        log_opts=LOG_OPTS,
    )


def agent_env(settings: BackupSettings, stack: str) -> list[str]:
    """The accessory's plain environment (render.backup_env), from the settings."""
    off = settings.offsite
    schedule = settings.schedule
    return render.backup_env(
        stack=stack,
        schedule=(schedule.interval, schedule.offset, schedule.text) if schedule else None,
        retention=settings.retention,
        retention_days=settings.retention_days,
        drill_days=settings.drill_days,
        offsite={
            "endpoint": off.endpoint,
            "bucket": off.bucket,
            "prefix": off.prefix,
            "region": off.region,
            "ca": off.ca_certificate,
            "recipient": settings.recipient,
        }
        if off
        else None,
        pitr=settings.pitr,
        archive_timeout_seconds=settings.archive_timeout,
    )


@dataclass(frozen=True, kw_only=True)
class BackupsArgs:
    settings: BackupSettings
    deployment: Deployment
    postgres_image: str
    """The stack's pinned postgresImage: the backup image is built FROM it."""
    backend_network: NetworkRef
    """Where the database is (pg_dump connects to it there)."""
    egress_network: Optional[NetworkRef]
    """The way out to the bucket (None: no off-host copies)."""
    backups_volume: pulumi.Input[str]
    data_volume: pulumi.Input[str]
    """PostgreSQL's data (read-only: pgBackRest's base backups read it)."""
    run_volume: Optional[pulumi.Input[str]]
    """backupPitr: PostgreSQL's socket directory and WAL spool."""
    database_env: pulumi.Input[Sequence[str]]
    """PG* variables that reach the database (secret: the password)."""


class Backups(pulumi.ComponentResource):
    image: pulumi.Output[str]
    """The backup image by id: what the accessory and the before-migrate job run."""
    container_name: pulumi.Output[str]

    def __init__(self, name: str, args: BackupsArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("django-docker:components:Backups", name, None, opts)
        s, deployment = args.settings, args.deployment
        built = docker.Image(
            f"{name}-image",
            image_name=backup_image_tag(args.postgres_image),
            build=docker.DockerBuildArgs(
                context=str(BACKUP_DIR),
                dockerfile=str(BACKUP_DIR / "Dockerfile"),
                args={BACKUP_BUILD_ARG: args.postgres_image},
                platform="linux/amd64",
            ),
            # Built on the stack's own Docker host, which runs it: never pushed.
            skip_push=True,
            opts=child_options(self),
        )
        self.image = built.repo_digest

        secrets: list[pulumi.Input[str]] = []
        off = s.offsite
        if off is not None:
            secrets += [
                pulumi.Output.concat("AWS_ACCESS_KEY_ID=", off.access_key_id),
                pulumi.Output.concat("AWS_SECRET_ACCESS_KEY=", off.secret_access_key),
            ]
        if s.archive_passphrase is not None and s.pitr:
            secrets.append(pulumi.Output.concat("BACKUP_ARCHIVE_PASSPHRASE=", s.archive_passphrase))
        plain = agent_env(s, deployment.stack)

        def together(values: list[Any]) -> list[str]:
            return [*plain, *values[0], *values[1:]]

        merged: Any = pulumi.Output.all(args.database_env, *secrets).apply(together)
        envs: pulumi.Output[list[str]] = pulumi.Output.secret(merged)
        networks = [docker.ContainerNetworksAdvancedArgs(name=args.backend_network.name)]
        if args.egress_network is not None:
            networks.append(docker.ContainerNetworksAdvancedArgs(name=args.egress_network.name))
        volumes = [docker.ContainerVolumeArgs(volume_name=args.backups_volume, container_path=render.BACKUP_DIR)]
        if s.pitr and args.run_volume is not None:
            volumes += [
                docker.ContainerVolumeArgs(
                    volume_name=args.data_volume, container_path=render.POSTGRES_DATA, read_only=True
                ),
                docker.ContainerVolumeArgs(volume_name=args.run_volume, container_path=render.POSTGRES_RUN),
            ]
        hosts = [docker.ContainerHostArgs(host=off.host, ip=off.address)] if off is not None and off.address else []
        agent = docker.Container(
            f"{name}-agent",
            image=built.repo_digest,
            envs=envs,
            networks_advanced=networks,
            volumes=volumes,
            hosts=hosts or None,
            labels=label_args(render.labels(service="backup-agent", role="accessory", stack=deployment.stack)),
            healthcheck=healthcheck_args(render.backup_healthcheck(), HEALTH),
            restart=deployment.restart_policy,
            stop_timeout=STOP_GRACE_SECONDS,
            destroy_grace_seconds=STOP_GRACE_SECONDS,
            **memory_kwargs(s.memory_mb),
            **wait_kwargs(HEALTH),
            **hardened_kwargs(),
            opts=container_options(self, opts, delete_before_replace=True),
        )
        self.container_name = agent.name
        self.register_outputs({"image": self.image, "container_name": self.container_name})
