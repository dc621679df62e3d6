"""Web: N gunicorn replicas of the app image, on the frontend (nginx) and backend networks.

A release replaces every replica create-before-delete: the new replicas start beside the old
ones (auto-named, `<name>-<i>-<random>`, no host port), `pulumi up` waits until each is
healthy, and only then, at the end of the update, does the engine delete the old ones. All
replicas share the alias `web` on the frontend network; nginx re-resolves it and follows them
(render.nginx_conf), so neither a release nor a new replica count touches nginx.

On swarm (`target: swarm`) web is one service of N tasks under the same alias, which swarm
rolls start-first and rolls back when a new task never turns healthy (components/swarm.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_docker as docker

from components import render, swarm
from components.common import AppRuntime, NetworkRef, container_options
from components.settings import WebSettings

STOP_MARGIN_SECONDS = 5


@dataclass(frozen=True, kw_only=True)
class WebArgs:
    settings: WebSettings
    """Replicas, memory, gunicorn's timeout (Docker waits a little longer before SIGKILL)."""
    runtime: AppRuntime
    """The app image and its environment."""
    frontend_network: NetworkRef
    """The network nginx reaches the replicas on."""
    release_gate: pulumi.Input[str]
    """Release.gate: replicas change only after migrate and collectstatic succeeded."""


def web_command(settings: WebSettings, rt: AppRuntime) -> list[str]:
    return render.web_command(
        server=rt.app.server,
        workers=settings.concurrency,
        threads=settings.threads,
        timeout=settings.timeout,
        max_requests=settings.max_requests,
        max_requests_jitter=settings.max_requests_jitter,
    )


class Web(pulumi.ComponentResource):
    names: pulumi.Output[list[str]]
    """Container names (swarm: the service's name)."""

    def __init__(self, name: str, args: WebArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("django-docker:components:Web", name, None, opts)
        rt = args.runtime
        grace = args.settings.timeout + STOP_MARGIN_SECONDS
        if rt.deployment.swarm:
            # One service: swarm rolls its tasks start-first, and rolls back a release whose
            # tasks never turn healthy (swarm.rolling).
            service = swarm.app_service(
                self,
                name,
                rt,
                service="web",
                command=web_command(args.settings, rt),
                health_role="web",
                grace_seconds=grace,
                memory_mb=args.settings.memory_mb,
                replicas=args.settings.replicas,
                start_first=True,
                networks=[swarm.network(args.frontend_network.id, render.WEB_HOST)],
                labels={"release": args.release_gate},
            )
            self.names = service.name.apply(lambda service_name: [service_name])
            self.register_outputs({"names": self.names})
            return
        containers = [
            docker.Container(
                f"{name}-{index}",
                **rt.long_running_kwargs(
                    "web",
                    web_command(args.settings, rt),
                    health_role="web",
                    grace_seconds=grace,
                    memory_mb=args.settings.memory_mb,
                    networks=[
                        docker.ContainerNetworksAdvancedArgs(name=args.frontend_network.name, aliases=[render.WEB_HOST])
                    ],
                    labels={"replica": str(index), "release": args.release_gate},
                ),
                # Create-before-delete: the old replica serves until the new one is healthy. In
                # migrationMode maintenance the old one goes first: its code does not survive the
                # migration, and the window closes (nginx serves the site again) before the end of
                # the update, where the old ones of a create-before-delete would still be deleted.
                opts=container_options(self, delete_before_replace=rt.app.migration_mode == "maintenance"),
            )
            for index in range(1, args.settings.replicas + 1)
        ]
        self.names = pulumi.Output.all(*[c.name for c in containers])
        self.register_outputs({"names": self.names})
