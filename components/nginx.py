"""Nginx: the only container with host ports; proxies to the web replicas, serves files.

Its config is rendered (render.nginx_conf). As a container, it reads it from the stack's
nginx-site volume, which an NginxSite (components/nginx_site.py) writes: a change of the
config or of the manual TLS certificate is checked with `nginx -t` and reloaded gracefully,
and the container is not replaced (an `upload` would be ForceNew, and the replacement of a
container with fixed host ports is delete-before-replace: refused requests). The config names
the replicas' shared alias, which nginx re-resolves: nothing about a release or the replica
count is an input of nginx. The container is replaced only when its image, ports or limits
change (then it goes first: its host ports are fixed). A healthcheck on nginx's own loopback
door and the wait for it make a broken start fail `pulumi up` (the provider no longer fails
a container that exits after start: terraform-provider-docker #841).

Every generation holds both configurations, the site's and the maintenance page's
(render.nginx_conf with maintenance_retry_after), `nginx.conf` a copy of one of them:
`site_args_of(maintenance=True)` is the release's switch to the page (components/release.py,
migrationMode maintenance), and `make maintenance` swaps them by hand (nginx_site.switch_maintenance).

On swarm the config is a swarm config and a change rolls the service (docs/swarm.md).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Optional

import pulumi
import pulumi_docker as docker

from components import render, swarm
from components.common import Accessory, NetworkRef, accessory_container, child_options, label_args
from components.nginx_site import NginxSite, NginxSiteArgs
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
    site_volume: Optional[pulumi.Input[str]] = None
    """Containers: the volume nginx reads its configuration from (written by an NginxSite)."""
    acme_webroot_volume: Optional[pulumi.Input[str]] = None
    """tlsMode acme: the HTTP-01 challenge files, served on port 80 (components/acme.py)."""
    release_image: Optional[pulumi.Input[str]] = None
    """The app image of the release (migrationMode maintenance: a new one re-applies the site's
    own configuration after the web replicas, closing the maintenance window)."""


class Nginx(pulumi.ComponentResource):
    url: str
    """The public URL."""
    container_name: pulumi.Output[str]
    container_id: pulumi.Output[str]

    def __init__(self, name: str, args: NginxArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("django-docker:components:Nginx", name, None, opts)
        ng = args.settings
        # On swarm the key is a secret's file; in a container, a file of the site's generation.
        key_path = render.secret_path(render.SECRETS_DIR, "NGINX_TLS_KEY") if args.deployment.swarm else None
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
            self._service(
                name, args, accessory, render.nginx_conf(**conf_kwargs(args), tls_key_path=key_path), key_path, opts
            )
            if key_path
            else self._container(name, args, accessory, opts)
        )
        self.url = ng.url
        self.container_name = running.name
        self.container_id = running.id
        self.register_outputs({"url": self.url, "container_name": self.container_name})

    def _container(
        self, name: str, args: NginxArgs, accessory: Accessory, opts: pulumi.ResourceOptions | None
    ) -> docker.Container:
        """nginx as a container: its config and TLS material on the site volume (an NginxSite
        writes them, and reloads nginx when they change; works on a remote Docker host, unlike
        a bind mount), its ports published on bindAddress."""
        ng = args.settings
        if args.site_volume is None:
            raise ValueError("NginxArgs.site_volume is required for a container")
        ports = [docker.ContainerPortArgs(internal=80, external=ng.http_port, ip=ng.bind_address, protocol="tcp")]
        if ng.tls_certificate is not None and ng.tls_key is not None:
            ports.append(
                docker.ContainerPortArgs(internal=443, external=ng.https_port, ip=ng.bind_address, protocol="tcp")
            )
        served = _served(args)
        if ng.acme is not None:
            if args.acme_webroot_volume is None:
                raise ValueError("NginxArgs.acme_webroot_volume is required with tlsMode acme")
            ports.append(
                docker.ContainerPortArgs(internal=443, external=ng.https_port, ip=ng.bind_address, protocol="tcp")
            )
            served.append((args.acme_webroot_volume, render.ACME_WEBROOT))
        site_args = site_args_of(args, maintenance=False)
        if args.release_image is not None and args.app.migration_mode == "maintenance":
            # migrationMode maintenance: each new image writes the site's own configuration
            # again once the new web replicas are healthy (this waits for them: depends_on),
            # which ends the maintenance window the release's switch opened (components/release.py).
            site_args = dataclasses.replace(
                site_args,
                labels=[
                    *site_args.labels,
                    docker.ContainerLabelArgs(label=render.RELEASE_IMAGE_LABEL, value=args.release_image),
                ],
            )
        site = NginxSite(f"{name}-site", site_args, opts=child_options(self, opts))
        # Its host ports are fixed: the old container must go first (accessory_container). It
        # starts on the site's current configuration: it waits for the NginxSite (depends_on,
        # not an input: a new configuration reloads nginx, it does not replace it).
        inherited = opts.depends_on if opts is not None else None
        depends = [*(inherited if isinstance(inherited, list) else [inherited] if inherited else []), site]
        return accessory_container(
            self,
            name,
            accessory,
            networks=[docker.ContainerNetworksAdvancedArgs(name=args.frontend_network.name)],
            volumes=[
                docker.ContainerVolumeArgs(
                    volume_name=args.site_volume, container_path=render.NGINX_SITE_DIR, read_only=True
                ),
                *(
                    docker.ContainerVolumeArgs(volume_name=volume, container_path=path, read_only=True)
                    for volume, path in served
                ),
            ],
            opts=pulumi.ResourceOptions(depends_on=depends),
            command=render.nginx_command(),
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


def conf_kwargs(args: NginxArgs) -> dict:
    """What nginx.conf is rendered from, but the paths of its files (render.nginx_conf)."""
    ng = args.settings
    return dict(
        server_name=ng.server_name,
        client_max_body_size=ng.client_max_body_size,
        tls=ng.tls,
        public_https_port=ng.https_port,
        hsts_seconds=ng.hsts_seconds,
        app_port=args.app.port,
        static_url=args.app.static_url if args.static_volume is not None else None,
        media_url=args.app.media_url if args.media_volume is not None else None,
        health_path=args.app.health_path,
    )


def site_paths(ng: NginxSettings) -> dict:
    """Where a configuration on the site volume finds its certificate, key and generation."""
    paths: dict = {
        "tls_cert_path": render.NGINX_SITE_TLS_CERT,
        "tls_key_path": render.NGINX_SITE_TLS_KEY,
        "generation_file": render.NGINX_GENERATION_FILE,
    }
    if ng.acme is not None:
        # The ACME client installs the certificate beside the generations (a placeholder until then).
        paths.update(
            tls_cert_path=render.NGINX_ACME_CERT,
            tls_key_path=render.NGINX_ACME_KEY,
            acme_webroot=render.ACME_WEBROOT,
        )
    return paths


def site_files(conf: str, maintenance_conf: str, *, maintenance: bool) -> dict[str, str]:
    """A generation's configuration files: both configurations, and `nginx.conf` (the one nginx
    runs) a copy of the site's or of the maintenance one."""
    return {
        "nginx.conf": maintenance_conf if maintenance else conf,
        render.SITE_CONF_FILE: conf,
        render.MAINTENANCE_CONF_FILE: maintenance_conf,
    }


def site_args_of(args: NginxArgs, *, maintenance: bool) -> NginxSiteArgs:
    """The NginxSite of a container nginx: its configuration (the site's own, or the maintenance
    page) and manual TLS certificate on the site volume."""
    ng = args.settings
    if args.site_volume is None:
        raise ValueError("NginxArgs.site_volume is required for a container")
    paths = site_paths(ng)
    conf = render.nginx_conf(**conf_kwargs(args), **paths)
    paused = render.nginx_conf(**conf_kwargs(args), **paths, maintenance_retry_after=args.app.maintenance_retry_after)
    files: pulumi.Input[dict] = site_files(conf, paused, maintenance=maintenance)
    modes: dict[str, str] = {}
    if ng.tls_certificate is not None and ng.tls_key is not None:
        plain = site_files(conf, paused, maintenance=maintenance)
        files = pulumi.Output.all(ng.tls_certificate, ng.tls_key).apply(
            lambda pair: {**plain, render.NGINX_SITE_TLS_CERT: pair[0], render.NGINX_SITE_TLS_KEY: pair[1]}
        )
        # Only nginx's master (root) reads the key, at each (re)load; its workers cannot.
        modes = {render.NGINX_SITE_TLS_KEY: "0600"}
    stack = args.deployment.stack
    return NginxSiteArgs(
        files=files,
        modes=modes,
        volume=args.site_volume,
        image=ng.image.text,
        stack=stack,
        labels=label_args(
            {
                f"{render.LABEL_PREFIX}.stack": stack,
                f"{render.LABEL_PREFIX}.role": "config",
                **({f"{render.LABEL_PREFIX}.maintenance": "on"} if maintenance else {}),
            }
        ),
        docker=args.deployment.docker,
        acme_names=list(ng.acme.names) if ng.acme is not None else None,
    )


def _served(args: NginxArgs) -> list[tuple[pulumi.Input[str], str]]:
    """(volume, where nginx has it) for the static and media volumes the stack has."""
    return [
        (volume, path)
        for volume, path in ((args.static_volume, render.NGINX_STATIC), (args.media_volume, render.NGINX_MEDIA))
        if volume is not None
    ]
