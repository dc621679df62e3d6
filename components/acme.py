"""Acme: certificates for the front door from an ACME CA (tlsMode acme), obtained and renewed.

The client is lego (a pinned official image, goacme/lego), in two parts that run one script
(render.ACME_SCRIPT):

- `certificate`, a Job (components/job.py) that `pulumi up` runs once nginx is up on port 80:
  it orders a certificate for serverName and acmeExtraNames with the HTTP-01 challenge (the
  challenge files go to a webroot nginx serves on port 80), installs it where nginx reads it
  and reloads nginx. It is bounded (ACME_TIMEOUT_SECONDS) and fails `pulumi up` in one line
  naming the domain and what the CA said; nginx keeps serving what it served. It runs again
  only when its inputs change (new names, another CA, a new nginx): with a certificate for the
  same names already in the volume it orders nothing, it only renews one that is due.
- `acme`, a long-lived accessory that runs the same round every 12 hours: lego renews a
  certificate with fewer than 30 days left, installs it and reloads nginx (its health: the last
  round succeeded; `make status` shows the certificate's days left).

Reloading nginx from here: both containers share nginx's PID namespace (`pid_mode
container:<nginx id>`, terraform-provider-docker v4.5.0 resource_docker_container_funcs.go:404-405)
and send its master SIGHUP, a graceful reload (no request is dropped). They run as root with
every capability dropped: a signal to a process of the same uid needs none, and reading nginx's
memory would (ptrace needs the caller's capabilities to cover the target's). A new nginx
container is a new namespace, so both are replaced with it (pidMode is ForceNew:
resource_docker_container.go:974-979).

The account key and the certificates' keys never leave the `acme` volume (protected with
protectData) and the site volume nginx reads: no environment, layer or output holds them.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_docker as docker

from components import render
from components.common import (
    DROP_ALL,
    LOG_DRIVER,
    LOG_OPTS,
    NO_NEW_PRIVILEGES,
    Accessory,
    NetworkRef,
    accessory_container,
    child_options,
    label_args,
    memory_kwargs,
)
from components.job import Job, JobArgs
from components.settings import Deployment, Healthcheck
from components.settings.acme import AcmeSettings

ACME_TIMEOUT_SECONDS = 300
"""How long the first `pulumi up` waits for the CA (an order, its challenges, the certificate)."""
MEMORY_MB = 64
HEALTH = Healthcheck(interval="10s", timeout="5s", retries=3, start_period="1m0s")  # Go spelling: what is read back
TMPFS = {"/tmp": "rw,noexec,nosuid,size=16m"}


@dataclass(frozen=True, kw_only=True)
class AcmeArgs:
    settings: AcmeSettings
    deployment: Deployment
    frontend_network: NetworkRef
    """Where the CA is reached from (it must reach out) and nginx is."""
    data_volume: pulumi.Input[str]
    """lego's: the account key, orders, certificates (protected)."""
    webroot_volume: pulumi.Input[str]
    """The HTTP-01 challenge files (nginx serves them read-only)."""
    site_volume: pulumi.Input[str]
    """nginx's site volume: the certificate is installed there (render.NGINX_ACME_DIR)."""
    nginx_id: pulumi.Input[str]
    """The nginx container whose PID namespace both share, to reload it."""


class Acme(pulumi.ComponentResource):
    certificate: Job
    renewer: docker.Container

    def __init__(self, name: str, args: AcmeArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("django-docker:components:Acme", name, None, opts)
        acme, stack = args.settings, args.deployment.stack
        env = render.acme_env(
            email=acme.email,
            directory=acme.directory,
            names=acme.names,
            ca_certificate=acme.ca_certificate,
            renew_days=acme.renew_days,
        )
        volumes = [
            docker.ContainerVolumeArgs(volume_name=args.data_volume, container_path=render.ACME_DATA),
            docker.ContainerVolumeArgs(volume_name=args.webroot_volume, container_path=render.ACME_WEBROOT),
            docker.ContainerVolumeArgs(volume_name=args.site_volume, container_path=render.NGINX_SITE_DIR),
        ]
        pid_mode = pulumi.Output.concat("container:", args.nginx_id)
        # Root (the owner of the fresh volumes) with no capability at all, read-only but /tmp.
        capabilities = docker.ContainerCapabilitiesArgs(drops=DROP_ALL)
        self.certificate = Job(
            f"{name}-certificate",
            JobArgs(
                name_prefix=f"{name}-certificate",
                image=acme.image.text,
                entrypoints=render.ACME_ENTRYPOINT,
                command=render.acme_command("obtain"),
                envs=env,
                networks_advanced=[docker.ContainerNetworksAdvancedArgs(name=args.frontend_network.name)],
                volumes=volumes,
                labels=label_args(render.labels(service="acme", role="accessory", stack=stack)),
                pid_mode=pid_mode,
                timeout_seconds=ACME_TIMEOUT_SECONDS,
                **args.deployment.docker.job_kwargs(),
                user="0:0",
                read_only=True,
                tmpfs=TMPFS,
                capabilities=capabilities,
                security_opts=NO_NEW_PRIVILEGES,
                log_driver=LOG_DRIVER,
                log_opts=LOG_OPTS,
                **memory_kwargs(MEMORY_MB),
            ),
            child_options(self, opts, delete_before_replace=False),
        )
        accessory = Accessory(
            service="acme",
            image=acme.image.text,
            deployment=args.deployment,
            memory_mb=MEMORY_MB,
            health=HEALTH,
            test=render.acme_healthcheck(),
            grace_seconds=10,
        )
        self.renewer = accessory_container(
            self,
            name,
            accessory,
            networks=[docker.ContainerNetworksAdvancedArgs(name=args.frontend_network.name)],
            volumes=volumes,
            opts=pulumi.ResourceOptions(depends_on=[self.certificate]),
            entrypoints=render.ACME_ENTRYPOINT,
            command=render.acme_command("loop"),
            envs=env,
            pid_mode=pid_mode,
            user="0:0",
            read_only=True,
            tmpfs=TMPFS,
            capabilities=capabilities,
        )
        self.register_outputs({"renewer": self.renewer.name})
