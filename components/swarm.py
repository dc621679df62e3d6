"""What every swarm service shares (`target: swarm`): the pulumi-docker Service argument shapes.

Not a component: web.py, celery.py, postgres.py, redis.py and nginx.py each build their service
from these, beside their containers, so a service is defined where its container is.

What the provider does with a Service (terraform-provider-docker v4.5.0, the one pulumi-docker
5.x bridges; shared/research/swarm-on-pulumi-docker.md has the lines):
- every change but a few (name, networks and their aliases, hosts, sysctl, mode) is an
  in-place ServiceUpdate (resource_docker_service_funcs.go:169-225): swarm then rolls the
  tasks as `update_config` says;
- only with `converge_config` does `pulumi up` wait: a create until every slot's task runs (and
  swarm says running only once the healthcheck passed), an update until UpdateStatus is
  `completed`; `rollback_completed` or `paused` is an error (funcs.go:52-76, 405-477). So a
  release whose tasks never turn healthy fails `pulumi up`, and swarm has put the old spec back;
- after such a failure the state may hold the new spec while swarm runs the old one: run
  `pulumi up --refresh` (docs/swarm.md);
- what it reads back is what the next diff compares with (resourceDockerServiceRead,
  funcs.go:118-160): every duration in its short form (`60s` is read as `1m`:
  service_structures.go:1341-1350 shortDur), a tmpfs mode without its sticky bit
  (:270-276, Mode.Perm()). So the program writes them that way (`duration`, no tmpfs mode),
  and the rehearsal replays that read after every `pulumi up` (rehearsal/emulation/readback.py).
"""

from __future__ import annotations

import base64
from typing import Mapping, Optional, Sequence

import pulumi
import pulumi_docker as docker

from components import render
from components.common import (
    LOG_DRIVER,
    LOG_OPTS,
    Accessory,
    AppRuntime,
    DataStore,
    child_options,
    healthcheck_args,
    label_args,
)
from components.settings import Deployment, Healthcheck, go_duration
from components.settings.values import valid_ns

MIB = 1024 * 1024
# Poll every 2s (the provider's default is 7s: funcs.go:210), so `pulumi up` learns quickly.
CONVERGE_POLL = "2s"
# Deleting a service, the provider waits for each of its task containers to be *removed*, for at
# most stop_grace_period (terraform-provider-docker v4.5.0 resource_docker_service_funcs.go:292-318,
# deleteService: ContainerWait WaitConditionRemoved under a context of that length); swarm removes
# a container only after it stopped. An app that uses its whole shutdown time (gunicorn's graceful
# timeout and drain) is removed a moment after the deadline and the delete fails: the real
# engine's backend-network release failed so, the old web service's delete ending at exactly 35 s.
# So the period outlasts the app's own shutdown by this much more.
REMOVAL_SECONDS = 15
# Swarm's restart policy per the stack's restartPolicy (swarm has no unless-stopped: a
# stopped task is a removed task).
RESTART_CONDITIONS = {"always": "any", "unless-stopped": "any", "on-failure": "on-failure"}


# The Docker client the provider uses fills placement.platforms from the registry on create
# (moby client/service_create.go:88-101, QueryRegistry: resource_docker_service_funcs.go:45),
# and the provider reads it back (service_structures.go:491-492) though the program sets none:
# without this every later `pulumi up` would update every service. Where no registry answers
# (this project's rehearsal), nothing is filled in.
IGNORED = ["taskSpec.placement.platforms"]


def service_options(
    parent: pulumi.Resource, opts: pulumi.ResourceOptions | None = None, *, singleton: bool = False
) -> pulumi.ResourceOptions:
    """A service is changed in place by a rolling update, never replaced for a release. The few
    changes that do replace it (networks, aliases) are create-before-delete with auto-names
    (the bridge's rule: pulumi-terraform-bridge pkg/tfbridge/provider.go:1275-1276), except for
    a `singleton` (postgres, redis, beat, nginx): its old service goes first, so two postgres
    never share one data directory, and a second nginx never waits for the host port."""
    return child_options(parent, opts, delete_before_replace=singleton, ignore_changes=IGNORED)


def pinned_image(parent: pulumi.Resource, name: str, image: str) -> pulumi.Input[str]:
    """An accessory's image as the service must name it for the provider to read back what the
    program wrote: pinned to its registry digest (repository:tag@sha256:...).

    On create the provider asks the Docker client to query the registry (QueryRegistry:
    terraform-provider-docker v4.5.0 resource_docker_service_funcs.go:45), and the client pins
    a tag to the digest the registry answers with (github.com/docker/docker v28.5.2, the
    client its go.mod pins: client/service_create.go:45-60, 88-102, 154-166,
    imageWithDigestString), which the provider's Read stores (resource_docker_service_
    structures.go:123-124). A tag alone would be sent again by every later `pulumi up`: an
    update, and postgres, redis or nginx restarted for nothing. So the program pins it
    itself, with the digest of the image a RemoteImage pulled from that registry onto the
    manager (the data node, where these tasks run): its repo digest
    (resource_docker_image_funcs.go:126-130, data_source_docker_image.go:66-76). Pulled once
    and kept in the state, as a promoted app image is (components/image.py): a tag moved
    upstream changes nothing until the config names another (or a `pulumi refresh` reads a
    newer pull on the manager). A reference with a digest is used as it is; an image no
    registry gave (built on the host) keeps its tag, which no client can pin either.
    Familiar names: the client writes Docker Hub's without its domain and `library/`.
    """
    familiar = render.familiar_image(image)
    if "@" in familiar:
        return familiar
    pulled = docker.RemoteImage(f"{name}-image", name=familiar, keep_locally=True, opts=child_options(parent))
    return pulled.repo_digest.apply(lambda digest: render.with_digest(familiar, digest or ""))


def duration(value: str | int) -> str:
    """A service's duration as the provider reads it back (shortDur, service_structures.go:
    1341-1350): Go's Duration.String() without a trailing 0s after minutes or 0m after hours.
    `value`: a Go duration, or whole seconds."""
    text = go_duration(value * 10**9 if isinstance(value, int) else valid_ns(value))
    if text.endswith("m0s"):
        text = text[:-2]
    if text.endswith("h0m"):
        text = text[:-2]
    return text


def converge_seconds(health: Healthcheck, replicas: int) -> int:
    """How long `pulumi up` waits for a service: each task (one at a time) to start and turn
    healthy, plus a margin."""
    return replicas * health.wait_seconds + 30


def converge(health: Healthcheck, replicas: int) -> docker.ServiceConvergeConfigArgs:
    return docker.ServiceConvergeConfigArgs(delay=CONVERGE_POLL, timeout=f"{converge_seconds(health, replicas)}s")


def rolling(*, start_first: bool, health: Healthcheck) -> dict:
    """update_config and rollback_config.

    start-first (web, worker): a new task runs beside the old one until it is healthy, then the
    old one stops; a task that never turns healthy makes swarm roll back, and the old tasks
    never stopped. stop-first (beat, postgres, redis, nginx): never two at once (a schedule sent
    twice, two servers on one data directory, one host port).
    """
    order = "start-first" if start_first else "stop-first"
    monitor = duration(health.monitor)  # watch each new task for as long as its healthcheck can take to fail it
    return dict(
        update_config=docker.ServiceUpdateConfigArgs(
            parallelism=1, delay="0s", order=order, failure_action="rollback", monitor=monitor, max_failure_ratio="0"
        ),
        rollback_config=docker.ServiceRollbackConfigArgs(
            parallelism=0, delay="0s", order=order, failure_action="pause", monitor=monitor, max_failure_ratio="0"
        ),
    )


def healthcheck(test: Sequence[str], health: Healthcheck) -> docker.ServiceTaskSpecContainerSpecHealthcheckArgs:
    """The task's healthcheck (common.healthcheck_args), its durations as a service reads them back."""
    short = Healthcheck(
        interval=duration(health.interval),
        timeout=duration(health.timeout),
        retries=health.retries,
        start_period=duration(health.start_period),
    )
    return healthcheck_args(test, short, docker.ServiceTaskSpecContainerSpecHealthcheckArgs)


def task_spec(
    *,
    container: docker.ServiceTaskSpecContainerSpecArgs,
    deployment: Deployment,
    memory_mb: int,
    networks: Sequence[docker.ServiceTaskSpecNetworksAdvancedArgs],
    on_data_node: bool,
) -> docker.ServiceTaskSpecArgs:
    """The task: its container, memory limit, restart policy, rotated logs, networks, and where
    it may run (the data node: see docs/swarm.md)."""
    return docker.ServiceTaskSpecArgs(
        container_spec=container,
        resources=docker.ServiceTaskSpecResourcesArgs(
            limits=docker.ServiceTaskSpecResourcesLimitsArgs(memory_bytes=memory_mb * MIB)
        ),
        restart_policy=docker.ServiceTaskSpecRestartPolicyArgs(
            condition=RESTART_CONDITIONS[deployment.restart_policy], delay="5s", max_attempts=0, window="0s"
        ),
        log_driver=docker.ServiceTaskSpecLogDriverArgs(name=LOG_DRIVER, options=LOG_OPTS),
        networks_advanceds=list(networks),
        placement=docker.ServiceTaskSpecPlacementArgs(
            constraints=[data_node_constraint(deployment)] if on_data_node else []
        ),
    )


def data_node_constraint(deployment: Deployment) -> str:
    return f"node.labels.{deployment.swarm_data_label}==true"


def network(network_id: pulumi.Input[str], *aliases: str) -> docker.ServiceTaskSpecNetworksAdvancedArgs:
    # By id: a name "will lead to constant replacements" (resource_docker_service.go:714-719).
    return docker.ServiceTaskSpecNetworksAdvancedArgs(id=network_id, aliases=list(aliases) or None)


def volume_mount(
    source: pulumi.Input[str], target: str, *, read_only: bool = False, driver_options: Optional[Mapping] = None
) -> docker.ServiceTaskSpecContainerSpecMountArgs:
    return docker.ServiceTaskSpecContainerSpecMountArgs(
        type="volume",
        source=source,
        target=target,
        read_only=read_only,
        volume_options=docker.ServiceTaskSpecContainerSpecMountVolumeOptionsArgs(
            driver_name="local", driver_options=dict(driver_options)
        )
        if driver_options
        else None,
    )


def tmpfs_mount(target: str, size_mb: int) -> docker.ServiceTaskSpecContainerSpecMountArgs:
    # No mode: tmpfs's own is 1777, and a 0o1777 given here is read back as 0o777 (Mode.Perm()).
    return docker.ServiceTaskSpecContainerSpecMountArgs(
        type="tmpfs",
        target=target,
        tmpfs_options=docker.ServiceTaskSpecContainerSpecMountTmpfsOptionsArgs(size_bytes=size_mb * MIB),
    )


# The labels of an app service's tasks (the rest, per release, are the service's own: app_service).
TASK_LABELS = ("service", "role", "stack", "url")


def task_labels(labels: Mapping[str, pulumi.Input[str]]) -> dict[str, pulumi.Input[str]]:
    return {k: v for k, v in labels.items() if k.removeprefix(f"{render.LABEL_PREFIX}.") in TASK_LABELS}


def service_labels(labels: Mapping[str, pulumi.Input[str]]) -> list:
    return label_args(labels, docker.ServiceLabelArgs)


def secret(parent: pulumi.Resource, name: str, value: pulumi.Input[str], *, stack: str, what: str) -> docker.Secret:
    """A swarm secret: auto-named, so a new value is a new secret, created before the service
    that mounts it is updated and the old one deleted after (a secret in use cannot be
    deleted: moby#35803). Its data is base64 (resource_docker_secret.go:30-37)."""
    data = pulumi.Output.secret(value).apply(lambda v: base64.b64encode(v.encode()).decode())  # stays secret
    return docker.Secret(
        name,
        data=data,
        labels=label_args(render.labels(service=what, role="secret", stack=stack), docker.SecretLabelArgs),
        opts=child_options(parent, delete_before_replace=False),
    )


def secret_file(
    secret: docker.Secret, file_name: str, *, uid: str = "0", mode: int = 0o400
) -> docker.ServiceTaskSpecContainerSpecSecretArgs:
    return docker.ServiceTaskSpecContainerSpecSecretArgs(
        secret_id=secret.id, secret_name=secret.name, file_name=file_name, file_uid=uid, file_gid="0", file_mode=mode
    )


def app_service(
    parent: pulumi.Resource,
    name: str,
    rt: AppRuntime,
    *,
    service: str,
    command: Sequence[str],
    health_role: str,
    grace_seconds: int,
    memory_mb: int,
    replicas: int,
    start_first: bool,
    networks: Sequence[docker.ServiceTaskSpecNetworksAdvancedArgs] = (),
    labels: Optional[Mapping[str, pulumi.Input[str]]] = None,
) -> docker.Service:
    """A service of the app image: what AppRuntime.long_running_kwargs is for a container, with
    the secrets as files (`<name>-<variable>` swarm secrets) instead of in the environment."""
    deployment = rt.deployment
    health = deployment.healthcheck
    secret_files = [
        secret_file(
            secret(parent, f"{name}-{key.lower().replace('_', '-')}", value, stack=deployment.stack, what=service),
            render.secret_path(render.SECRETS_DIR, key).rsplit("/", 1)[1],
            uid=render.APP_USER.split(":")[0],
        )
        for key, value in sorted(rt.secrets.items())
    ]
    # Static and media are shared by every node only on shared storage; otherwise the app
    # stays on the data node with them (docs/swarm.md).
    shared = deployment.shared_volume_options()
    container = docker.ServiceTaskSpecContainerSpecArgs(
        image=rt.image,
        # Docker's Cmd (a service's `commands` would replace the entrypoint), behind the runtime's
        # `run`, which turns the secret files into the variables the app's settings read.
        args=render.with_secret_files(command),
        env=rt.service_env,
        user=render.APP_USER,
        read_only=True,
        mounts=[
            *(
                [volume_mount(rt.media_volume, rt.app.media_root, driver_options=shared)]
                if rt.media_volume is not None
                else []
            ),
            tmpfs_mount("/tmp", 64),
        ],
        cap_drops=["ALL"],
        init=True,  # tini as PID 1, as for the containers
        healthcheck=healthcheck(render.app_healthcheck(health_role), health),
        secrets=secret_files,
        stop_grace_period=duration(grace_seconds + REMOVAL_SECONDS),
        # Only what never changes: a task's labels are ForceNew (the element schema of
        # container_spec.labels: terraform-provider-docker v4.5.0 resource_docker_service.go:86-91,
        # helpers.go:57-76 labelSchema), so a label that changes with each release (the commit,
        # the release gate) here would replace the whole service on every release instead of
        # rolling it (seen under the real engine: tests/calibration). Those go on the service.
        labels=label_args(task_labels(rt.label_map(service)), docker.ServiceTaskSpecContainerSpecLabelArgs),
    )
    return docker.Service(
        name,
        task_spec=task_spec(
            container=container,
            deployment=deployment,
            memory_mb=memory_mb,
            networks=[*networks, network(rt.backend_network.id)],
            on_data_node=shared is None,
        ),
        mode=docker.ServiceModeArgs(replicated=docker.ServiceModeReplicatedArgs(replicas=replicas)),
        # dnsrr: the service's name and aliases answer with the tasks' addresses, which nginx
        # re-resolves (as for containers); no virtual IP, so no IPVS needed on the nodes.
        endpoint_spec=docker.ServiceEndpointSpecArgs(mode="dnsrr"),
        converge_config=converge(health, replicas),
        labels=service_labels(rt.label_map(service, **(labels or {}))),
        **rolling(start_first=start_first, health=health),
        opts=service_options(parent, singleton=not start_first),
    )


def accessory_service(
    parent: pulumi.Resource,
    name: str,
    accessory: Accessory,
    *,
    networks: Sequence[docker.ServiceTaskSpecNetworksAdvancedArgs],
    mounts: Sequence[docker.ServiceTaskSpecContainerSpecMountArgs],
    opts: pulumi.ResourceOptions | None = None,
    endpoint: Optional[docker.ServiceEndpointSpecArgs] = None,
    **container,
) -> docker.Service:
    """An accessory's service: what common.accessory_container is for a container. One task,
    stop-first (never two on one data directory or host port), on the data node with its
    volumes."""
    deployment = accessory.deployment
    return docker.Service(
        name,
        task_spec=task_spec(
            container=docker.ServiceTaskSpecContainerSpecArgs(
                image=pinned_image(parent, name, accessory.image),
                mounts=list(mounts),
                healthcheck=healthcheck(accessory.test, accessory.health),
                stop_grace_period=duration(accessory.grace_seconds),
                labels=label_args(accessory.labels(), docker.ServiceTaskSpecContainerSpecLabelArgs),
                **container,
            ),
            deployment=deployment,
            memory_mb=accessory.memory_mb,
            networks=networks,
            on_data_node=True,
        ),
        mode=docker.ServiceModeArgs(replicated=docker.ServiceModeReplicatedArgs(replicas=1)),
        endpoint_spec=endpoint or docker.ServiceEndpointSpecArgs(mode="dnsrr"),
        converge_config=converge(accessory.health, 1),
        labels=service_labels(accessory.labels()),
        **rolling(start_first=False, health=accessory.health),
        opts=service_options(parent, opts, singleton=True),
    )


def data_service(
    parent: pulumi.Resource, name: str, store: DataStore, *, network_id: pulumi.Input[str], **container
) -> docker.Service:
    """A data store's service, on the backend overlay by its alias, its volume mounted."""
    return accessory_service(
        parent,
        name,
        store,
        networks=[network(network_id, store.alias)],
        mounts=[volume_mount(store.data_volume, store.data_path)],
        **container,
    )
