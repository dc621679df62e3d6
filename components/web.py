"""Web: N gunicorn replicas of the app image, on the frontend (nginx) and backend networks.

Containers are auto-named by Pulumi (`<name>-<i>-<random>`), so the default create-before-
delete replacement can start a new replica beside the old one (pulumi/pulumi-docker#1356);
nginx finds each replica by its stable alias `web-<i>` on the frontend network. `wait=True`
makes an unhealthy release fail `pulumi up`.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_docker as docker

from components import render
from components.common import AppRuntime

STOP_MARGIN_SECONDS = 5


@dataclass(frozen=True, kw_only=True)
class WebArgs:
    runtime: AppRuntime
    """The app image and its environment."""
    replicas: int
    """Number of gunicorn containers."""
    memory_mb: int
    """Memory limit of each replica."""
    timeout: int
    """gunicorn's graceful timeout; Docker waits a little longer before SIGKILL."""
    frontend_network: pulumi.Input[str]
    """The network nginx reaches the replicas on."""
    release_gate: pulumi.Input[str]
    """Release.gate: replicas change only after migrate and collectstatic succeeded."""

    def __post_init__(self):
        if self.replicas < 1:
            raise ValueError("WebArgs.replicas must be at least 1")


class Web(pulumi.ComponentResource):
    aliases: list[str]
    """Stable DNS names of the replicas on the frontend network, for nginx's upstream."""
    names: pulumi.Output[list[str]]
    """Container names."""
    ids: pulumi.Output[list[str]]
    """Container ids: they change whenever any replica is replaced."""

    def __init__(self, name: str, args: WebArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("django-docker:components:Web", name, None, opts)
        rt = args.runtime
        grace = args.timeout + STOP_MARGIN_SECONDS
        containers = []
        self.aliases = [render.replica_alias(i) for i in range(1, args.replicas + 1)]
        for index, alias in enumerate(self.aliases, start=1):
            containers.append(docker.Container(
                f"{name}-{index}",
                **rt.container_kwargs(
                    "web",
                    render.web_command(),
                    memory_mb=args.memory_mb,
                    networks=[docker.ContainerNetworksAdvancedArgs(name=args.frontend_network, aliases=[alias])],
                    volumes=[rt.media_mount()],
                    labels={"replica": str(index), "release": args.release_gate},
                ),
                **rt.long_running_kwargs("web", grace),
                opts=pulumi.ResourceOptions(parent=self),
            ))
        self.names = pulumi.Output.all(*[c.name for c in containers])
        self.ids = pulumi.Output.all(*[c.id for c in containers])
        self.register_outputs({"names": self.names, "ids": self.ids})
