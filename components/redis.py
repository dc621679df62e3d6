"""Redis: the Celery broker and Django cache; append-only persistence on its volume."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from components import render, swarm
from components.common import DataStore, NetworkRef, data_store
from components.settings import Deployment, Healthcheck, RedisSettings

HEALTH = Healthcheck(interval="5s", timeout="3s", retries=10, start_period="10s")


@dataclass(frozen=True, kw_only=True)
class RedisArgs:
    settings: RedisSettings
    """Image and memory (Redis's maxmemory is set below the limit)."""
    deployment: Deployment
    """The stack's name and restart policy."""
    network: NetworkRef
    """The internal backend network."""
    data_volume: pulumi.Input[str]
    """Volume for /data (the append-only file)."""


class Redis(pulumi.ComponentResource):
    url: str
    """redis:// URL on the backend network."""
    container_id: pulumi.Output[str]

    def __init__(self, name: str, args: RedisArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("django-docker:components:Redis", name, None, opts)
        store = DataStore(
            service="redis",
            image=args.settings.image.text,
            deployment=args.deployment,
            memory_mb=args.settings.memory_mb,
            health=HEALTH,
            test=render.redis_healthcheck(),
            alias=render.REDIS_HOST,
            data_volume=args.data_volume,
            data_path=render.REDIS_DATA,
            grace_seconds=30,
        )
        running: pulumi.CustomResource = (
            swarm.data_service(
                self, name, store, network_id=args.network.id, args=render.redis_command(args.settings.memory_mb)
            )
            if args.deployment.swarm
            else data_store(
                self, name, store, network=args.network.name, command=render.redis_command(args.settings.memory_mb)
            )
        )
        self.url = render.redis_url()
        self.container_id = running.id
        self.register_outputs({"url": self.url, "container_id": self.container_id})
