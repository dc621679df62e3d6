"""Small pieces every container component shares (pulumi-docker argument shapes)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Optional, Sequence

import pulumi
import pulumi_docker as docker

from components import render
from components.render import APP_USER
from components.settings import Healthcheck

# json-file logs with rotation: a chatty container cannot fill the host's disk.
LOG_DRIVER = "json-file"
LOG_OPTS = {"max-size": "10m", "max-file": "3"}
NO_NEW_PRIVILEGES = ["no-new-privileges:true"]
# How long `pulumi up` waits for an app container to turn healthy before failing the update.
WAIT_TIMEOUT_SECONDS = 300


def child_options(parent: pulumi.Resource, opts: pulumi.ResourceOptions | None, **extra) -> pulumi.ResourceOptions:
    """Options for a component's child: parented, and waiting on what the component waits on.

    A component's depends_on orders the component's own registration, not the children its
    constructor creates (checked with the SDK's mock monitor), so pass it down.
    """
    return pulumi.ResourceOptions(parent=parent, depends_on=opts.depends_on if opts else None, **extra)


def label_args(labels: Mapping[str, pulumi.Input[str]]) -> list[docker.ContainerLabelArgs]:
    return [docker.ContainerLabelArgs(label=key, value=value) for key, value in sorted(labels.items())]


def healthcheck_args(test: Sequence[str], *, interval: str, timeout: str, retries: int, start_period: str) -> docker.ContainerHealthcheckArgs:
    return docker.ContainerHealthcheckArgs(
        tests=list(test), interval=interval, timeout=timeout, retries=retries, start_period=start_period
    )


def accessory_kwargs(service: str, stack: str) -> dict:
    """What postgres, redis and nginx share: labels, no-new-privileges, rotated logs.

    Their official entrypoints start as root and drop privileges themselves, so no `user` here.
    """
    return dict(
        labels=label_args(render.labels(service=service, role="accessory", stack=stack)),
        security_opts=NO_NEW_PRIVILEGES,
        log_driver=LOG_DRIVER,
        log_opts=LOG_OPTS,
    )


def hardened_app_kwargs() -> dict:
    """What every container of the app image gets: non-root, read-only root, no capabilities."""
    return dict(
        user=APP_USER,
        read_only=True,
        tmpfs={"/tmp": "rw,noexec,nosuid,size=64m"},
        capabilities=docker.ContainerCapabilitiesArgs(drops=["ALL"]),
        security_opts=NO_NEW_PRIVILEGES,
        init=True,  # tini as PID 1 reaps Celery's and gunicorn's children and forwards signals
        log_driver=LOG_DRIVER,
        log_opts=LOG_OPTS,
    )


@dataclass(frozen=True, kw_only=True)
class AppRuntime:
    """What every container of the app image shares: image, environment, network, timings."""

    image: pulumi.Input[str]
    """The image by digest (AppImage.ref), never by tag."""
    env: pulumi.Input[Sequence[str]]
    """KEY=value list (secret: it holds the database password and SECRET_KEY)."""
    git_sha: pulumi.Input[str]
    """Commit of the image, for labels."""
    stack: str
    """Stack name, for labels."""
    backend_network: pulumi.Input[str]
    """The internal backend network (postgres, redis)."""
    media_volume: pulumi.Input[str]
    """Volume mounted at MEDIA_ROOT."""
    healthcheck: Healthcheck
    """Healthcheck timings from the stack."""
    restart: str
    """Restart policy of long-running containers."""

    def labels(self, service: str, **extra: pulumi.Input[str]) -> list[docker.ContainerLabelArgs]:
        return label_args({
            **render.labels(service=service, role="app", stack=self.stack),
            f"{render.LABEL_PREFIX}.git-sha": self.git_sha,
            **{f"{render.LABEL_PREFIX}.{key}": value for key, value in extra.items()},
        })

    def health(self, role: str) -> docker.ContainerHealthcheckArgs:
        h = self.healthcheck
        return healthcheck_args(render.app_healthcheck(role), interval=h.interval, timeout=h.timeout, retries=h.retries, start_period=h.start_period)

    def media_mount(self) -> docker.ContainerVolumeArgs:
        return docker.ContainerVolumeArgs(volume_name=self.media_volume, container_path=render.MEDIA_ROOT)

    def container_kwargs(
        self,
        service: str,
        command: Sequence[str],
        *,
        memory_mb: int,
        networks: Sequence[docker.ContainerNetworksAdvancedArgs] = (),
        volumes: Sequence[docker.ContainerVolumeArgs] = (),
        labels: Optional[Mapping[str, pulumi.Input[str]]] = None,
    ) -> dict:
        """Arguments every container of the app image takes: the digest, env, backend, hardening."""
        return dict(
            image=self.image,
            command=list(command),
            envs=self.env,
            networks_advanced=[*networks, docker.ContainerNetworksAdvancedArgs(name=self.backend_network)],
            volumes=list(volumes),
            memory=memory_mb,
            labels=self.labels(service, **(labels or {})),
            **hardened_app_kwargs(),
        )

    def long_running_kwargs(self, health_role: str, grace_seconds: int) -> dict:
        """What a long-running app container adds: healthcheck, wait for health, restart, stop grace."""
        return dict(
            healthcheck=self.health(health_role),
            wait=True,
            wait_timeout=WAIT_TIMEOUT_SECONDS,
            restart=self.restart,
            stop_timeout=grace_seconds,
            destroy_grace_seconds=grace_seconds,
        )
