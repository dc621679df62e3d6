"""Small pieces every container component shares (pulumi-docker argument shapes, options)."""

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
APP_TMPFS = {"/tmp": "rw,noexec,nosuid,size=64m"}
DROP_ALL = ["ALL"]
# Swap is not limited apart from memory (-1). Any positive value would come back from the
# provider as -1 on hosts without swap accounting, a change on every `pulumi up` (moby
# daemon_unix.go sets MemorySwap to -1 there; the provider reads it back,
# terraform-provider-docker v4.5.0 resource_docker_container_funcs.go:939-944). Leaving it
# unset is worse: Docker stores 2 x memory, the provider reads that back as a change, and a
# limit raised past it is refused (W4 in shared/research/pulumi-docker-semantics.md).
MEMORY_SWAP_UNLIMITED = -1
# Every container waits for its healthcheck, and is replaced on *any* change. Why "*":
# - the provider re-checks health only when it creates a container: a container that failed
#   its wait is kept with an initialization error, and the next `pulumi up` would "update"
#   it in place and succeed; with "*" the engine replaces it instead, so an unhealthy release
#   fails every `pulumi up`, not only the first (pulumi/pulumi pkg/resource/deploy/
#   step_generator.go applyReplaceOnChanges, `#initerror`; documented on the option);
# - the provider's in-place update applies only restart and resource limits, and silently
#   records the rest (healthcheck, init, tmpfs: resource_docker_container_funcs.go:1016-1019),
#   so a replacement is the only way such a change reaches the container.
REPLACE_ON_ANY_CHANGE = ["*"]


def container_options(
    parent: pulumi.Resource,
    opts: pulumi.ResourceOptions | None = None,
    *,
    delete_before_replace: bool,
) -> pulumi.ResourceOptions:
    """Options of every docker.Container the program creates: the replacement order, on purpose.

    pulumi-docker marks Container delete-before-replace (provider/resources.go:112-114), and
    the engine follows the provider unless the program says otherwise (step_generator.go
    :2043-2046), deleting every dependent that would be replaced first. So each caller states
    it, with its reason. `depends_on` of the component is passed down: a component's
    depends_on orders its own registration, not its children's (checked with the SDK's mocks).
    """
    return pulumi.ResourceOptions(
        parent=parent,
        depends_on=opts.depends_on if opts else None,
        delete_before_replace=delete_before_replace,
        replace_on_changes=REPLACE_ON_ANY_CHANGE,
    )


def label_args(labels: Mapping[str, pulumi.Input[str]]) -> list[docker.ContainerLabelArgs]:
    return [docker.ContainerLabelArgs(label=key, value=value) for key, value in sorted(labels.items())]


def healthcheck_args(test: Sequence[str], health: Healthcheck) -> docker.ContainerHealthcheckArgs:
    return docker.ContainerHealthcheckArgs(
        tests=list(test),
        interval=health.interval,
        timeout=health.timeout,
        retries=health.retries,
        start_period=health.start_period,
    )


def wait_kwargs(health: Healthcheck) -> dict:
    """`pulumi up` waits until the container is healthy, for as long as its healthcheck needs."""
    return dict(wait=True, wait_timeout=health.wait_seconds)


def memory_kwargs(memory_mb: int) -> dict:
    return dict(memory=memory_mb, memory_swap=MEMORY_SWAP_UNLIMITED)


def accessory_kwargs(service: str, stack: str, memory_mb: int, health: Healthcheck) -> dict:
    """What postgres, redis and nginx share: labels, limits, health, no-new-privileges, rotated logs.

    Their official entrypoints start as root and drop privileges themselves, so no `user` here.
    """
    return dict(
        labels=label_args(render.labels(service=service, role="accessory", stack=stack)),
        security_opts=NO_NEW_PRIVILEGES,
        log_driver=LOG_DRIVER,
        log_opts=LOG_OPTS,
        **memory_kwargs(memory_mb),
        **wait_kwargs(health),
    )


def hardened_app_kwargs() -> dict:
    """What every container of the app image gets: non-root, read-only root, no capabilities."""
    return dict(
        user=APP_USER,
        read_only=True,
        tmpfs=APP_TMPFS,
        capabilities=docker.ContainerCapabilitiesArgs(drops=DROP_ALL),
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
    docker_host: str
    """The Docker host the provider uses (`docker:host`), for the release jobs."""
    url: str
    """Where people reach the site; a label, so that `make status` can say it from the host alone."""

    def label_map(self, service: str, **extra: pulumi.Input[str]) -> dict[str, pulumi.Input[str]]:
        return {
            **render.labels(service=service, role="app", stack=self.stack),
            f"{render.LABEL_PREFIX}.git-sha": self.git_sha,
            f"{render.LABEL_PREFIX}.url": self.url,
            **{f"{render.LABEL_PREFIX}.{key}": value for key, value in extra.items()},
        }

    def health(self, role: str) -> docker.ContainerHealthcheckArgs:
        return healthcheck_args(render.app_healthcheck(role), self.healthcheck)

    def media_mount(self) -> docker.ContainerVolumeArgs:
        return docker.ContainerVolumeArgs(volume_name=self.media_volume, container_path=render.MEDIA_ROOT)

    def long_running_kwargs(
        self,
        service: str,
        command: Sequence[str],
        *,
        health_role: str,
        grace_seconds: int,
        memory_mb: int,
        networks: Sequence[docker.ContainerNetworksAdvancedArgs] = (),
        labels: Optional[Mapping[str, pulumi.Input[str]]] = None,
    ) -> dict:
        """Arguments of a long-running container of the app image: the digest, env, backend,
        hardening, healthcheck and the wait for it, restart policy and stop grace."""
        return dict(
            image=self.image,
            command=list(command),
            envs=self.env,
            networks_advanced=[*networks, docker.ContainerNetworksAdvancedArgs(name=self.backend_network)],
            volumes=[self.media_mount()],
            labels=label_args(self.label_map(service, **(labels or {}))),
            healthcheck=self.health(health_role),
            restart=self.restart,
            stop_timeout=grace_seconds,
            destroy_grace_seconds=grace_seconds,
            **memory_kwargs(memory_mb),
            **wait_kwargs(self.healthcheck),
            **hardened_app_kwargs(),
        )
