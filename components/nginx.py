"""Nginx: the only container with host ports; proxies to the web replicas, serves files.

Its config is rendered (render.nginx_conf) and put into the container with `uploads`, so it
works on a remote Docker host (no host bind mount). The config names the replicas' shared
alias, which nginx re-resolves: nothing about a release or the replica count is an input of
nginx, so `pulumi up` replaces nginx only when its own config, image or limits change.
Its host ports are fixed, so the old container must go first (delete-before-replace): such a
change costs about a second of refused connections. A healthcheck on nginx's own loopback
door and the wait for it make a broken config fail `pulumi up` (the provider no longer fails
a container that exits after start: terraform-provider-docker #841).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import pulumi
import pulumi_docker as docker

from components import render
from components.common import accessory_kwargs, container_options, healthcheck_args
from components.settings import Healthcheck

# nginx starts in well under a second; probe often so `pulumi up` learns it quickly.
HEALTH = Healthcheck(interval="3s", timeout="3s", retries=3, start_period="5s")
# Graceful stop (the image's STOPSIGNAL is SIGQUIT): requests in flight finish first.
STOP_GRACE_SECONDS = 15


@dataclass(frozen=True, kw_only=True)
class NginxArgs:
    image: str
    """Pinned nginx image reference."""
    server_name: str
    client_max_body_size: str
    bind_address: str
    """Host address the ports are published on."""
    http_port: int
    https_port: int
    tls_certificate: Optional[pulumi.Input[str]]
    """PEM chain (secret); with tls_key, nginx serves HTTPS and redirects HTTP."""
    tls_key: Optional[pulumi.Input[str]]
    hsts_seconds: int
    memory_mb: int
    restart: str
    frontend_network: pulumi.Input[str]
    static_volume: pulumi.Input[str]
    media_volume: pulumi.Input[str]
    stack: str

    def __post_init__(self):
        if (self.tls_certificate is None) != (self.tls_key is None):
            raise ValueError("NginxArgs: tls_certificate and tls_key go together")


class Nginx(pulumi.ComponentResource):
    url: str
    """The public URL."""
    container_name: pulumi.Output[str]

    def __init__(self, name: str, args: NginxArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("django-docker:components:Nginx", name, None, opts)
        tls = args.tls_certificate is not None
        conf = render.nginx_conf(
            server_name=args.server_name,
            client_max_body_size=args.client_max_body_size,
            tls=tls,
            public_https_port=args.https_port,
            hsts_seconds=args.hsts_seconds,
        )
        uploads = [docker.ContainerUploadArgs(file=render.NGINX_CONF, content=conf)]
        ports = [docker.ContainerPortArgs(internal=80, external=args.http_port, ip=args.bind_address, protocol="tcp")]
        if tls:
            uploads += [
                docker.ContainerUploadArgs(file=render.NGINX_TLS_CERT, content=args.tls_certificate),
                docker.ContainerUploadArgs(file=render.NGINX_TLS_KEY, content=args.tls_key, permissions="0600"),
            ]
            ports.append(
                docker.ContainerPortArgs(internal=443, external=args.https_port, ip=args.bind_address, protocol="tcp")
            )

        container = docker.Container(
            name,
            image=args.image,
            uploads=uploads,
            ports=ports,
            networks_advanced=[docker.ContainerNetworksAdvancedArgs(name=args.frontend_network)],
            volumes=[
                docker.ContainerVolumeArgs(
                    volume_name=args.static_volume, container_path=render.NGINX_STATIC, read_only=True
                ),
                docker.ContainerVolumeArgs(
                    volume_name=args.media_volume, container_path=render.NGINX_MEDIA, read_only=True
                ),
            ],
            healthcheck=healthcheck_args(render.nginx_healthcheck(), HEALTH),
            restart=args.restart,
            destroy_grace_seconds=STOP_GRACE_SECONDS,
            **accessory_kwargs("nginx", args.stack, args.memory_mb, HEALTH),
            # Delete-before-replace: the new container needs the same host ports.
            opts=container_options(self, opts, delete_before_replace=True),
        )
        self.url = render.public_url(
            server_name=args.server_name, tls=tls, port=args.https_port if tls else args.http_port
        )
        self.container_name = container.name
        self.register_outputs({"url": self.url, "container_name": self.container_name})
