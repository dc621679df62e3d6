"""Redis: the Celery broker and Django cache; append-only persistence on its volume."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_docker as docker

from components import render
from components.common import accessory_kwargs, container_options, healthcheck_args
from components.settings import Healthcheck

HEALTH = Healthcheck(interval="5s", timeout="3s", retries=10, start_period="10s")


@dataclass(frozen=True, kw_only=True)
class RedisArgs:
    image: str
    """Pinned redis image reference."""
    memory_mb: int
    """Memory limit; Redis's maxmemory is set below it."""
    restart: str
    """Restart policy."""
    network: pulumi.Input[str]
    """The internal backend network."""
    data_volume: pulumi.Input[str]
    """Volume for /data (the append-only file)."""
    stack: str
    """Stack name, for labels."""


class Redis(pulumi.ComponentResource):
    url: str
    """redis:// URL on the backend network."""
    container_id: pulumi.Output[str]

    def __init__(self, name: str, args: RedisArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("django-docker:components:Redis", name, None, opts)
        container = docker.Container(
            name,
            image=args.image,
            command=render.redis_command(args.memory_mb),
            networks_advanced=[docker.ContainerNetworksAdvancedArgs(name=args.network, aliases=[render.REDIS_HOST])],
            volumes=[docker.ContainerVolumeArgs(volume_name=args.data_volume, container_path=render.REDIS_DATA)],
            healthcheck=healthcheck_args(render.redis_healthcheck(), HEALTH),
            restart=args.restart,
            destroy_grace_seconds=30,
            **accessory_kwargs("redis", args.stack, args.memory_mb, HEALTH),
            # Delete-before-replace: one writer per append-only file, never old and new side by side.
            opts=container_options(self, delete_before_replace=True),
        )
        self.url = render.redis_url()
        self.container_id = container.id
        self.register_outputs({"url": self.url, "container_id": self.container_id})
