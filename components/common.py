"""Small pieces every container component shares (pulumi-docker argument shapes, options)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Callable, Mapping, Optional, Sequence

import pulumi
import pulumi_docker as docker

from components import render
from components.render import APP_USER
from components.settings import AppSettings, Deployment, Healthcheck, StackSettings
from components.settings.app import parse_dotenv

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


def child_options(
    parent: pulumi.Resource,
    opts: pulumi.ResourceOptions | None = None,
    **options,
) -> pulumi.ResourceOptions:
    """Options of every child a component creates: parented to it, with the component's
    `depends_on` passed down (a component's depends_on orders its own registration, not its
    children's: checked with the SDK's mocks), and whatever the caller states on purpose."""
    options.setdefault("depends_on", opts.depends_on if opts else None)
    return pulumi.ResourceOptions(parent=parent, **options)


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
    it, with its reason.
    """
    return child_options(
        parent, opts, delete_before_replace=delete_before_replace, replace_on_changes=REPLACE_ON_ANY_CHANGE
    )


def label_args(labels: Mapping[str, pulumi.Input[str]], arg_type: type = docker.ContainerLabelArgs) -> list:
    """The labels of any resource (containers, jobs, networks, volumes) in the provider's shape.

    Sorted by key, except for a mapping that keeps the order it was first created with: a
    network's or volume's labels are the order they were created in, and every argument of
    those resources replaces them (terraform-provider-docker v4.5.0 resource_docker_volume.go:48-52,
    resource_docker_network.go: ForceNew), so no reordering is worth a diff.
    """
    items = labels.items() if isinstance(labels, CreationOrder) else sorted(labels.items())
    return [arg_type(label=key, value=value) for key, value in items]


class CreationOrder(dict):
    """Labels kept in the order they were first created with (see label_args)."""


def resource_labels(*, what: str, kind: str, stack: str) -> CreationOrder:
    """A network's or volume's labels: which one it is, and the stack's name (ops finds it by them)."""
    return CreationOrder({f"{render.LABEL_PREFIX}.{what}": kind, f"{render.LABEL_PREFIX}.stack": stack})


def healthcheck_args(test: Sequence[str], health: Healthcheck, arg_type: type = docker.ContainerHealthcheckArgs):
    """A healthcheck in the provider's shape: a container's, or (arg_type) a swarm task's."""
    return arg_type(
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


@dataclass(frozen=True, kw_only=True)
class Accessory:
    """An accessory (postgres, redis, nginx) as either target builds it: a container
    (accessory_container) or a swarm service (swarm.accessory_service). Their official
    entrypoints start as root and drop privileges themselves, so no `user`."""

    service: str
    """Its name in the labels (django-docker.service)."""
    image: str
    """The pinned image."""
    deployment: Deployment
    memory_mb: int
    health: Healthcheck
    test: Sequence[str]
    """The healthcheck's command."""
    grace_seconds: int
    """How long a stop may take before SIGKILL."""

    def labels(self) -> dict[str, str]:
        return render.labels(service=self.service, role="accessory", stack=self.deployment.stack)


@dataclass(frozen=True, kw_only=True)
class DataStore(Accessory):
    """postgres and redis: reached only on the internal backend network by their alias (no
    host port, ever), their data on their own volume."""

    alias: str
    data_volume: pulumi.Input[str]
    data_path: str


def accessory_container(
    parent: pulumi.Resource,
    name: str,
    accessory: Accessory,
    *,
    networks: Sequence[docker.ContainerNetworksAdvancedArgs],
    volumes: Sequence[docker.ContainerVolumeArgs],
    opts: pulumi.ResourceOptions | None = None,
    **specific,
) -> docker.Container:
    """An accessory's container: its labels, limit, healthcheck and the wait for it,
    no-new-privileges, rotated logs, the stack's restart policy.

    Each is a singleton that owns a data directory or the host's ports, so a replacement is
    delete-before-replace: the old one goes first, never two side by side.
    """
    return docker.Container(
        name,
        image=accessory.image,
        networks_advanced=list(networks),
        volumes=list(volumes),
        labels=label_args(accessory.labels()),
        healthcheck=healthcheck_args(accessory.test, accessory.health),
        restart=accessory.deployment.restart_policy,
        destroy_grace_seconds=accessory.grace_seconds,
        security_opts=NO_NEW_PRIVILEGES,
        log_driver=LOG_DRIVER,
        log_opts=LOG_OPTS,
        **memory_kwargs(accessory.memory_mb),
        **wait_kwargs(accessory.health),
        **specific,
        opts=container_options(parent, opts, delete_before_replace=True),
    )


def data_store(
    parent: pulumi.Resource,
    name: str,
    store: DataStore,
    *,
    network: pulumi.Input[str],
    extra_volumes: Sequence[docker.ContainerVolumeArgs] = (),
    **specific,
) -> docker.Container:
    """A data store's container, on the backend network by its alias, its volume mounted."""
    return accessory_container(
        parent,
        name,
        store,
        networks=[docker.ContainerNetworksAdvancedArgs(name=network, aliases=[store.alias])],
        volumes=[
            docker.ContainerVolumeArgs(volume_name=store.data_volume, container_path=store.data_path),
            *extra_volumes,
        ],
        **specific,
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


@dataclass(frozen=True)
class NetworkRef:
    """A network as its users attach to it: containers by name, swarm services by id (a name
    "will lead to constant replacements": resource_docker_service.go:714-719)."""

    name: pulumi.Output[str]
    id: pulumi.Output[str]


@dataclass(frozen=True, kw_only=True)
class AppRuntime:
    """What every container of the app image shares: image, environment, network, timings."""

    image: pulumi.Input[str]
    """The image by digest (AppImage.ref), never by tag."""
    env: pulumi.Input[Sequence[str]]
    """KEY=value list (secret: it holds the database password and SECRET_KEY)."""
    git_sha: pulumi.Input[str]
    """Commit of the image, for labels."""
    backend_network: NetworkRef
    """The internal backend network (postgres, redis)."""
    media_volume: Optional[pulumi.Input[str]]
    """Volume mounted at the app's MEDIA_ROOT (None: the app has no media)."""
    app: AppSettings
    """The Django project: its media root, its server, its Celery app."""
    deployment: Deployment
    """The stack's name (labels), URL (a label, so `make status` can say it from the host alone),
    Docker host (the release jobs), restart policy and healthcheck timing."""
    service_env: Mapping[str, str] = dataclasses.field(default_factory=dict)
    """Swarm: the environment without its secrets, which it names as files instead (NAME_FILE)."""
    secrets: Mapping[str, pulumi.Input[str]] = dataclasses.field(default_factory=dict)
    """Swarm: the secret variables' values (secret), mounted as files under /run/secrets."""

    @classmethod
    def of(
        cls,
        s: StackSettings,
        *,
        image: pulumi.Input[str],
        git_sha: pulumi.Input[str],
        secret_key: pulumi.Input[str],
        database_password: pulumi.Input[str],
        redis_url: str,
        backend_network: NetworkRef,
        media_volume: Optional[pulumi.Input[str]],
    ) -> "AppRuntime":
        """The app's runtime for a stack: its environment (render.app_env) made secret once, here."""
        app = s.app

        def env(secret_key: str, password: str, secret_env: str) -> list[str]:
            return render.app_env(
                settings_module=app.settings_module,
                app_module=app.module,
                port=app.port,
                health_path=app.health_path,
                health_checks=app.health_checks,
                ready_checks=app.ready_checks,
                celery_app=app.celery_app,
                secret_key=secret_key,
                database={"user": s.postgres.user, "password": password, "db": s.postgres.db},
                redis_url=redis_url,
                allowed_hosts=s.django.allowed_hosts,
                csrf_trusted_origins=render.csrf_origins(
                    hosts=s.django.allowed_hosts, tls=s.nginx.tls, port=s.nginx.public_port
                ),
                tls=s.nginx.tls,
                hsts_seconds=s.django.hsts_seconds,
                log_level=s.django.log_level,
                forwarded_allow_ips=s.deployment.frontend_subnet,
                extra=app.env,
                secret_extra=parse_dotenv(secret_env) if secret_env else {},
            )

        secret_env = app.secret_env if app.secret_env is not None else pulumi.Output.from_input("")
        values = pulumi.Output.all(secret_key, database_password, secret_env)
        everything = values.apply(lambda v: env(v[0], v[1], v[2]))
        # On swarm every secret is a file: the program's, appSecretEnv's, and any appEnv item that
        # refers to one of them (its value holds the secret).
        secret_names = [
            *render.PROVIDED_SECRETS,
            *app.secret_env_names,
            *(name for name, value in app.env if set(render.references(value)) & set(render.PROVIDED_SECRETS)),
        ]
        placeholders = env("", "", "\n".join(f"{name}=" for name in app.secret_env_names))
        return cls(
            image=image,
            env=pulumi.Output.secret(everything),
            # Rendered without the secrets' values: on swarm they are files, never in the spec.
            service_env=render.secrets_as_files(placeholders, secret_names, render.SECRETS_DIR),
            secrets={name: pulumi.Output.secret(everything.apply(_value_of(name))) for name in secret_names},
            git_sha=git_sha,
            backend_network=backend_network,
            media_volume=media_volume,
            app=app,
            deployment=s.deployment,
        )

    def label_map(self, service: str, **extra: pulumi.Input[str]) -> dict[str, pulumi.Input[str]]:
        return {
            **render.labels(service=service, role="app", stack=self.deployment.stack),
            f"{render.LABEL_PREFIX}.git-sha": self.git_sha,
            f"{render.LABEL_PREFIX}.url": self.deployment.url,
            **{f"{render.LABEL_PREFIX}.{key}": value for key, value in extra.items()},
        }

    def health(self, role: str) -> docker.ContainerHealthcheckArgs:
        return healthcheck_args(render.app_healthcheck(role), self.deployment.healthcheck)

    def media_mounts(self) -> list[docker.ContainerVolumeArgs]:
        if self.media_volume is None:
            return []
        return [docker.ContainerVolumeArgs(volume_name=self.media_volume, container_path=self.app.media_root)]

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
            networks_advanced=[*networks, docker.ContainerNetworksAdvancedArgs(name=self.backend_network.name)],
            volumes=self.media_mounts(),
            labels=label_args(self.label_map(service, **(labels or {}))),
            healthcheck=self.health(health_role),
            restart=self.deployment.restart_policy,
            stop_timeout=grace_seconds,
            destroy_grace_seconds=grace_seconds,
            **memory_kwargs(memory_mb),
            **wait_kwargs(self.deployment.healthcheck),
            **hardened_app_kwargs(),
        )


def _value_of(name: str) -> Callable[[Sequence[str]], str]:
    """A function that finds the value of `name` in a KEY=value list."""

    def value(env: Sequence[str]) -> str:
        return next(item.partition("=")[2] for item in env if item.partition("=")[0] == name)

    return value
