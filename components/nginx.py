"""Nginx: the only container with host ports; proxies to every web replica, serves files.

Its config is rendered (render.nginx_conf) from the replicas' aliases and put into the
container with `uploads`, so it works on a remote Docker host (no host bind mount). nginx
resolves upstream names once at start, so it is replaced whenever any web replica is
(`replacement_trigger` on the replicas' ids) and whenever its config changes. Its host port
is fixed, so the old container must go first (delete_before_replace, pulumi/pulumi-docker#1356).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import pulumi
import pulumi_docker as docker

from components import render
from components.common import accessory_kwargs, child_options


@dataclass(frozen=True, kw_only=True)
class NginxArgs:
    image: str
    """Pinned nginx image reference."""
    upstreams: Sequence[str]
    """Web replica aliases on the frontend network."""
    replica_ids: pulumi.Input[Sequence[str]]
    """Web container ids: a change replaces nginx so it resolves the new replicas."""
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
            upstreams=args.upstreams,
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
            ports.append(docker.ContainerPortArgs(internal=443, external=args.https_port, ip=args.bind_address, protocol="tcp"))

        container = docker.Container(
            name,
            image=args.image,
            uploads=uploads,
            ports=ports,
            networks_advanced=[docker.ContainerNetworksAdvancedArgs(name=args.frontend_network)],
            volumes=[
                docker.ContainerVolumeArgs(volume_name=args.static_volume, container_path=render.NGINX_STATIC, read_only=True),
                docker.ContainerVolumeArgs(volume_name=args.media_volume, container_path=render.NGINX_MEDIA, read_only=True),
            ],
            memory=args.memory_mb,
            restart=args.restart,
            destroy_grace_seconds=15,
            **accessory_kwargs("nginx", args.stack),
            opts=child_options(
                self,
                opts,
                delete_before_replace=True,
                replacement_trigger=pulumi.Output.from_input(args.replica_ids).apply(lambda ids: ",".join(sorted(ids))),
            ),
        )
        self.url = render.public_url(
            server_name=args.server_name, tls=tls, port=args.https_port if tls else args.http_port
        )
        self.container_name = container.name
        self.register_outputs({"url": self.url, "container_name": self.container_name})
