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

from components import render, swarm
from components.common import Accessory, NetworkRef, accessory_container, child_options, label_args
from components.settings import AppSettings, Deployment, Healthcheck, NginxSettings

# nginx starts in well under a second; probe often so `pulumi up` learns it quickly.
HEALTH = Healthcheck(interval="3s", timeout="3s", retries=3, start_period="5s")
# Graceful stop (the image's STOPSIGNAL is SIGQUIT): requests in flight finish first.
STOP_GRACE_SECONDS = 15


@dataclass(frozen=True, kw_only=True)
class NginxArgs:
    settings: NginxSettings
    """Image, memory, names, ports, body size, TLS."""
    deployment: Deployment
    """The stack's name and restart policy."""
    frontend_network: NetworkRef
    """The network it reaches the web replicas on."""
    app: AppSettings
    """The app's port, and the paths its static files and uploads are served at."""
    static_volume: Optional[pulumi.Input[str]]
    """Served at the app's staticUrl (collectstatic fills it); None: the app has none."""
    media_volume: Optional[pulumi.Input[str]]
    """Served at the app's mediaUrl (uploads); None: the app has none."""


class Nginx(pulumi.ComponentResource):
    url: str
    """The public URL."""
    container_name: pulumi.Output[str]

    def __init__(self, name: str, args: NginxArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("django-docker:components:Nginx", name, None, opts)
        ng = args.settings
        # On swarm the key is a secret's file; in a container, the file uploaded to it.
        key_path = render.secret_path(render.SECRETS_DIR, "NGINX_TLS_KEY") if args.deployment.swarm else None
        conf = render.nginx_conf(
            server_name=ng.server_name,
            client_max_body_size=ng.client_max_body_size,
            tls=ng.tls,
            public_https_port=ng.https_port,
            hsts_seconds=ng.hsts_seconds,
            app_port=args.app.port,
            static_url=args.app.static_url if args.static_volume is not None else None,
            media_url=args.app.media_url if args.media_volume is not None else None,
            health_path=args.app.health_path,
            **({"tls_key_path": key_path} if key_path else {}),
        )
        accessory = Accessory(
            service="nginx",
            image=ng.image.text,
            deployment=args.deployment,
            memory_mb=ng.memory_mb,
            health=HEALTH,
            test=render.nginx_healthcheck(),
            grace_seconds=STOP_GRACE_SECONDS,
        )
        running = (
            self._service(name, args, accessory, conf, key_path, opts)
            if key_path
            else self._container(name, args, accessory, conf, opts)
        )
        self.url = ng.url
        self.container_name = running.name
        self.register_outputs({"url": self.url, "container_name": self.container_name})

    def _container(
        self, name: str, args: NginxArgs, accessory: Accessory, conf: str, opts: pulumi.ResourceOptions | None
    ) -> docker.Container:
        """nginx as a container: its config and TLS material uploaded into it (works on a remote
        Docker host, unlike a bind mount), its ports published on bindAddress."""
        ng = args.settings
        uploads = [docker.ContainerUploadArgs(file=render.NGINX_CONF, content=conf)]
        ports = [docker.ContainerPortArgs(internal=80, external=ng.http_port, ip=ng.bind_address, protocol="tcp")]
        if ng.tls_certificate is not None and ng.tls_key is not None:
            uploads += [
                docker.ContainerUploadArgs(file=render.NGINX_TLS_CERT, content=ng.tls_certificate),
                docker.ContainerUploadArgs(file=render.NGINX_TLS_KEY, content=ng.tls_key, permissions="0600"),
            ]
            ports.append(
                docker.ContainerPortArgs(internal=443, external=ng.https_port, ip=ng.bind_address, protocol="tcp")
            )
        # Its host ports are fixed: the old container must go first (accessory_container).
        return accessory_container(
            self,
            name,
            accessory,
            networks=[docker.ContainerNetworksAdvancedArgs(name=args.frontend_network.name)],
            volumes=[
                docker.ContainerVolumeArgs(volume_name=volume, container_path=path, read_only=True)
                for volume, path in _served(args)
            ],
            opts=opts,
            uploads=uploads,
            ports=ports,
        )

    def _service(
        self,
        name: str,
        args: NginxArgs,
        accessory: Accessory,
        conf: str,
        key_path: str,
        opts: pulumi.ResourceOptions | None,
    ) -> docker.Service:
        """nginx as a swarm service: its config and certificate as swarm configs, its key as a
        secret (auto-named: a change is a new one, and the service rolls to it: a mounted
        config cannot change in place, moby#35803), its ports published on the data node's
        own addresses (host mode: no routing mesh, so no IPVS needed, and the client's
        address is kept)."""
        ng, stack = args.settings, args.deployment.stack

        def config(suffix: str, content: pulumi.Input[str], path: str) -> docker.ServiceTaskSpecContainerSpecConfigArgs:
            made = docker.ServiceConfig(
                f"{name}-{suffix}",
                data_raw=content,
                labels=label_args(
                    render.labels(service="nginx", role="config", stack=stack), docker.ServiceConfigLabelArgs
                ),
                opts=child_options(self, delete_before_replace=False),
            )
            return docker.ServiceTaskSpecContainerSpecConfigArgs(
                config_id=made.id, config_name=made.name, file_name=path, file_uid="0", file_gid="0", file_mode=0o444
            )

        configs = [config("conf", conf, render.NGINX_CONF)]
        secrets = []
        ports = [docker.ServiceEndpointSpecPortArgs(target_port=80, published_port=ng.http_port, publish_mode="host")]
        if ng.tls_certificate is not None and ng.tls_key is not None:
            configs.append(config("tls-cert", ng.tls_certificate, render.NGINX_TLS_CERT))
            key = swarm.secret(self, f"{name}-tls-key", ng.tls_key, stack=stack, what="nginx")
            secrets.append(swarm.secret_file(key, key_path.rsplit("/", 1)[1]))
            ports.append(
                docker.ServiceEndpointSpecPortArgs(target_port=443, published_port=ng.https_port, publish_mode="host")
            )
        shared = args.deployment.shared_volume_options()
        return swarm.accessory_service(
            self,
            name,
            accessory,
            networks=[swarm.network(args.frontend_network.id)],
            mounts=[
                swarm.volume_mount(volume, path, read_only=True, driver_options=shared)
                for volume, path in _served(args)
            ],
            opts=opts,
            # Ports need the virtual-IP endpoint mode (resource_docker_service.go:921-923); no
            # one connects to nginx's virtual IP, so it works without IPVS too.
            endpoint=docker.ServiceEndpointSpecArgs(mode="vip", ports=ports),
            configs=configs,
            secrets=secrets,
        )


def _served(args: NginxArgs) -> list[tuple[pulumi.Input[str], str]]:
    """(volume, where nginx has it) for the static and media volumes the stack has."""
    return [
        (volume, path)
        for volume, path in ((args.static_volume, render.NGINX_STATIC), (args.media_volume, render.NGINX_MEDIA))
        if volume is not None
    ]
