"""Postgres: a pinned postgres:15.x accessory on the backend network, data on its volume.

With backupPitr it archives its WAL (archive_mode on, render.postgres_command): each finished
segment goes to a spool on the `postgres-run` volume (its socket directory), which the backup
accessory shares and ships to the bucket with pgBackRest. The image stays the official one:
nothing is installed into the database's own container.

No host port, ever: only containers on the internal backend network reach it. Replacement is
delete-before-replace: two servers on one data directory would corrupt it. Like every
container, it is replaced on any change (common.REPLACE_ON_ANY_CHANGE): a new memory limit
restarts PostgreSQL (a few seconds; a clean shutdown first, then a checked start).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import pulumi
import pulumi_docker as docker
import pulumi_random as random

from components import render, swarm
from components.common import DataStore, NetworkRef, child_options, data_store
from components.settings import Deployment, Healthcheck, PostgresSettings

# initdb on a first start takes a while; pg_isready is cheap.
HEALTH = Healthcheck(interval="5s", timeout="5s", retries=10, start_period="30s")
PASSWORD_FILE = render.secret_path(render.SECRETS_DIR, "POSTGRES_PASSWORD")


@dataclass(frozen=True, kw_only=True)
class PostgresArgs:
    settings: PostgresSettings
    """Image, database, role, password (None: generated), memory."""
    deployment: Deployment
    """The stack's name and restart policy."""
    network: NetworkRef
    """The internal backend network."""
    data_volume: pulumi.Input[str]
    """Volume for /var/lib/postgresql/data."""
    run_volume: Optional[pulumi.Input[str]] = None
    """backupPitr: a volume for /var/run/postgresql (the socket, and the WAL spool its
    archive_command fills for the backup accessory); None: no WAL archiving."""
    archive_timeout: int = 60
    """backupPitr: PostgreSQL's archive_timeout, seconds."""


class Postgres(pulumi.ComponentResource):
    host: str
    """DNS name on the backend network."""
    port: int
    password: pulumi.Output[str]
    """The password (secret)."""
    client_env: pulumi.Output[list[str]]
    """PG* variables for pg_dump, pg_restore and psql on the backend network (secret)."""
    container_id: pulumi.Output[str]

    def __init__(self, name: str, args: PostgresArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("django-docker:components:Postgres", name, None, opts)
        pg = args.settings
        given: pulumi.Input[str] = (
            random.RandomPassword(f"{name}-password", length=32, special=False, opts=child_options(self)).result
            if pg.password is None
            else pg.password
        )
        password = pulumi.Output.secret(given)  # secret once, here; every use below inherits it

        store = DataStore(
            service="postgres",
            image=pg.image.text,
            deployment=args.deployment,
            memory_mb=pg.memory_mb,
            health=HEALTH,
            test=render.postgres_healthcheck(pg.user, pg.db),
            alias=render.POSTGRES_HOST,
            data_volume=args.data_volume,
            data_path=render.POSTGRES_DATA,
            grace_seconds=60,  # a clean shutdown checkpoints; SIGKILL means crash recovery
        )
        if args.deployment.swarm:
            # The password as a swarm secret file (POSTGRES_PASSWORD_FILE), never in the spec.
            # Readable by the postgres user: the entrypoint reads it again after dropping root.
            pw = swarm.secret(self, f"{name}-password", password, stack=args.deployment.stack, what="postgres")
            running: pulumi.CustomResource = swarm.data_service(
                self,
                name,
                store,
                network_id=args.network.id,
                env=render.postgres_file_env(user=pg.user, db=pg.db, password_file=PASSWORD_FILE),
                secrets=[swarm.secret_file(pw, PASSWORD_FILE.rsplit("/", 1)[1], mode=0o444)],
            )
        else:
            # With backupPitr: the official image, unchanged (its entrypoint passes the arguments to
            # the server), archiving into the spool on the shared socket directory.
            archiving = args.run_volume is not None
            running = data_store(
                self,
                name,
                store,
                network=args.network.name,
                envs=password.apply(lambda p: render.postgres_env(user=pg.user, password=p, db=pg.db)),
                shm_size=128,
                extra_volumes=[
                    docker.ContainerVolumeArgs(volume_name=args.run_volume, container_path=render.POSTGRES_RUN)
                ]
                if args.run_volume is not None
                else (),
                **(
                    {"command": render.postgres_command(archive_timeout_seconds=args.archive_timeout)}
                    if archiving
                    else {}
                ),
            )
        self.host = render.POSTGRES_HOST
        self.port = 5432
        self.password = password
        self.client_env = password.apply(lambda p: render.postgres_client_env(user=pg.user, password=p, db=pg.db))
        self.container_id = running.id
        self.register_outputs({"host": self.host, "container_id": self.container_id})
