"""Networks: `frontend` (nginx <-> web) and an internal `backend` (app <-> postgres, redis); with
off-host backups, `egress`, the backup accessory's alone.

The backend is `internal` and its bridge has no address on the host: no route out of it, not
even to the Docker host's own ports, so a compromised app container reaches only postgres,
redis and its peers. The backup accessory must reach its S3 storage: it alone is also on
`egress`, an ordinary bridge (no other container joins it, no port is published on it).
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_docker as docker

from components import render
from components.common import NetworkRef, child_options, label_args, resource_labels
from components.settings import Deployment


@dataclass(frozen=True, kw_only=True)
class NetworksArgs:
    deployment: Deployment
    """The stack's name (labels), frontend subnet, whether data is protected."""
    egress: bool = False
    """The backup accessory's way out to its off-host storage (backupS3Endpoint)."""


class Networks(pulumi.ComponentResource):
    frontend: NetworkRef
    """nginx <-> web."""
    backend: NetworkRef
    """The internal one: the app <-> postgres, redis."""
    egress: NetworkRef | None
    """The backup accessory's way out (None: no off-host backups)."""

    def __init__(self, name: str, args: NetworksArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("django-docker:components:Networks", name, None, opts)

        def labels(kind: str) -> list[docker.NetworkLabelArgs]:
            return label_args(
                resource_labels(what="network", kind=kind, stack=args.deployment.stack), docker.NetworkLabelArgs
            )

        swarm = args.deployment.swarm
        # On swarm: overlays spanning the nodes, attachable so that the release jobs (plain
        # containers on the manager) join the backend. The host-side address trick below is
        # the bridge driver's; an overlay has no address on the host.
        driver = "overlay" if swarm else "bridge"
        subnet, backend_subnet = args.deployment.frontend_subnet, args.deployment.backend_subnet
        frontend = docker.Network(
            f"{name}-frontend",
            driver=driver,
            attachable=True if swarm else None,
            # The gateway Docker gives the subnet (its first address), stated: an overlay always
            # reports it, a bridge after the engine restarted (moby#49520; both measured on
            # 20.10.24 by the rehearsals), the provider reads it into ipam_config
            # (resource_docker_network_structures.go:21-23) and ipam_config is ForceNew
            # (kreuzwerker/terraform-provider-docker#54): unstated, a refresh would replace the
            # network, and with it every container on it.
            ipam_configs=[docker.NetworkIpamConfigArgs(subnet=subnet, gateway=render.first_address(subnet))],
            labels=labels("frontend"),
            # Delete-before-replace: a new network beside the old one would overlap its fixed
            # subnet, which Docker refuses (the provider leaves networks create-before-delete).
            opts=child_options(self, opts, delete_before_replace=True),
        )
        backend = docker.Network(
            f"{name}-backend",
            driver=driver,
            attachable=True if swarm else None,
            internal=True,
            # `internal` only drops forwarded traffic: the bridge still has an address on the
            # Docker host, so every host port would be reachable from postgres, redis and the
            # app. No IPv4 address on the host side closes that (found by the rehearsal).
            options=None if swarm else {"com.docker.network.bridge.inhibit_ipv4": "true"},
            # backendSubnet, when set; its gateway stated as the frontend's is (above).
            ipam_configs=[
                docker.NetworkIpamConfigArgs(subnet=backend_subnet, gateway=render.first_address(backend_subnet))
            ]
            if backend_subnet
            else None,
            labels=labels("backend"),
            # Docker picks the backend's subnet from its default pools, which include
            # 172.30.0.0/16; created after the frontend it cannot take a range that overlaps the
            # frontend's fixed subnet (created in parallel, it sometimes did: "Pool overlaps",
            # found by the rehearsal). Create-before-delete (the provider's default) on purpose:
            # a new backendSubnet gets a new network beside the old one, the services and
            # containers on it are replaced onto it (postgres and redis delete-before-replace,
            # on the same volumes), and the old network goes at the end. A new range that
            # overlaps the old is refused by Docker at the create, before anything changed.
            opts=child_options(self, delete_before_replace=False, depends_on=[frontend]),
        )
        self.frontend = NetworkRef(frontend.name, frontend.id)
        self.backend = NetworkRef(backend.name, backend.id)
        self.egress = None
        if args.egress:
            egress = docker.Network(
                f"{name}-egress",
                driver="bridge",
                labels=labels("egress"),
                # After the backend, for the same reason: Docker picks its subnet from its pools.
                opts=child_options(self, delete_before_replace=False, depends_on=[backend]),
            )
            self.egress = NetworkRef(egress.name, egress.id)
        self.register_outputs({"frontend": frontend.name, "backend": backend.name})
