"""Postgres: a pinned postgres:15.x accessory on the backend network, data on its volume.

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

from components import render
from components.common import accessory_kwargs, container_options, healthcheck_args
from components.settings import Healthcheck

# initdb on a first start takes a while; pg_isready is cheap.
HEALTH = Healthcheck(interval="5s", timeout="5s", retries=10, start_period="30s")


@dataclass(frozen=True, kw_only=True)
class PostgresArgs:
    image: str
    """Pinned postgres image reference."""
    db: str
    """Database name."""
    user: str
    """Database role."""
    password: Optional[pulumi.Input[str]]
    """Secret password; None generates one (kept only as a secret in the stack state)."""
    memory_mb: int
    """Memory limit."""
    restart: str
    """Restart policy."""
    network: pulumi.Input[str]
    """The internal backend network."""
    data_volume: pulumi.Input[str]
    """Volume for /var/lib/postgresql/data."""
    stack: str
    """Stack name, for labels."""


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
        child = pulumi.ResourceOptions(parent=self)
        given: pulumi.Input[str] = (
            random.RandomPassword(f"{name}-password", length=32, special=False, opts=child).result
            if args.password is None
            else args.password
        )
        password = pulumi.Output.secret(given)  # secret once, here; every use below inherits it

        container = docker.Container(
            name,
            image=args.image,
            envs=password.apply(lambda p: render.postgres_env(user=args.user, password=p, db=args.db)),
            networks_advanced=[docker.ContainerNetworksAdvancedArgs(name=args.network, aliases=[render.POSTGRES_HOST])],
            volumes=[docker.ContainerVolumeArgs(volume_name=args.data_volume, container_path=render.POSTGRES_DATA)],
            healthcheck=healthcheck_args(render.postgres_healthcheck(args.user, args.db), HEALTH),
            shm_size=128,
            restart=args.restart,
            destroy_grace_seconds=60,  # a clean shutdown checkpoints; SIGKILL means crash recovery
            **accessory_kwargs("postgres", args.stack, args.memory_mb, HEALTH),
            # Delete-before-replace: never two servers on one data directory.
            opts=container_options(self, delete_before_replace=True),
        )
        self.host = render.POSTGRES_HOST
        self.port = 5432
        self.password = password
        self.client_env = password.apply(lambda p: render.postgres_client_env(user=args.user, password=p, db=args.db))
        self.container_id = container.id
        self.register_outputs({"host": self.host, "container_id": self.container_id})
