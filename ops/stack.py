"""Find a stack's containers on its Docker host, by the labels the program gives them.

The program labels everything it creates (`components.render.labels`, `AppRuntime.label_map`):
`django-docker.stack`, `.service`, `.role`, and on the app's containers `.git-sha`, `.release`,
`.url` and (web) `.replica`. So the host alone answers "what runs in prod": no Pulumi CLI, no
state file, no secret. The host is the stack's own, reached as the provider reaches it
(components.dockerhost): `docker:host`, `docker:sshOpts`, `docker:certPath` and the
`docker:*Material` keys in Pulumi.<stack>.yaml, else DOCKER_HOST and the other environment
variables, else the local socket.

`Box` is a container as ops shows it, built from the engine's inspect data by a pure function.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

import docker
import docker.errors
import yaml

from components import dockerhost
from components.render import LABEL_PREFIX

PROJECT_ROOT = Path(__file__).resolve().parent.parent
STACK = f"{LABEL_PREFIX}.stack"
SERVICE = f"{LABEL_PREFIX}.service"
ROLE = f"{LABEL_PREFIX}.role"
REPLICA = f"{LABEL_PREFIX}.replica"
GIT_SHA = f"{LABEL_PREFIX}.git-sha"
RELEASE = f"{LABEL_PREFIX}.release"
URL = f"{LABEL_PREFIX}.url"
NETWORK = f"{LABEL_PREFIX}.network"
# One-off containers that `ops manage` starts carry this role: listed, never counted as the stack.
ONE_OFF = "one-off"
# The order people read a stack in: the door, the app, then what it stands on.
SERVICE_ORDER = ("nginx", "web", "celery-worker", "celery-beat", "postgres", "redis", "backup-agent")


class OpsError(Exception):
    """A one-line refusal: unknown stack or service, no engine, nothing running."""


@dataclass(frozen=True)
class Box:
    """One container of a stack, as `ops` shows it."""

    id: str
    name: str
    service: str
    role: str
    replica: Optional[str]
    state: str
    """Docker's State.Status: created, running, restarting, exited, dead, paused, removing."""
    health: Optional[str]
    """healthy, unhealthy, starting, or None when the container has no healthcheck."""
    exit_code: int
    restarts: int
    created: datetime
    started: Optional[datetime]
    image_ref: str
    """The image as the container was created with it (repo@sha256:… for the app)."""
    image_id: str
    git_sha: Optional[str]
    release: Optional[str]
    url: Optional[str]
    ports: tuple[str, ...]
    """Published ports, `ip:host->container/proto`."""

    @property
    def label(self) -> str:
        """How people call it: the service, and the replica number for web."""
        return f"{self.service}-{self.replica}" if self.replica else self.service

    @property
    def ok(self) -> bool:
        return self.state == "running" and self.health in (None, "healthy")

    @property
    def condition(self) -> str:
        """One word or two: `healthy`, `unhealthy`, `starting`, `running`, `exited 1`, `restarting`."""
        if self.state == "running":
            return self.health or "running"
        if self.state == "exited":
            return f"exited {self.exit_code}"
        return self.state


def _time(text: Optional[str]) -> Optional[datetime]:
    """Docker's RFC 3339 times (nanoseconds, `Z`); the zero time means never."""
    if not text or text.startswith("0001-01-01"):
        return None
    head, _, rest = text.rstrip("Z").partition(".")
    fraction = rest[:6]
    parsed = datetime.fromisoformat(head + (f".{fraction}" if fraction else ""))
    return parsed.replace(tzinfo=timezone.utc)


def _ports(attrs: Mapping[str, Any]) -> tuple[str, ...]:
    published = []
    for inside, bindings in sorted(((attrs.get("NetworkSettings") or {}).get("Ports") or {}).items()):
        for binding in bindings or []:
            published.append(f"{binding.get('HostIp') or '0.0.0.0'}:{binding.get('HostPort')}->{inside}")
    return tuple(published)


def box(attrs: Mapping[str, Any]) -> Box:
    """A Box from `docker inspect` data (the SDK's Container.attrs)."""
    labels = (attrs.get("Config") or {}).get("Labels") or {}
    state = attrs.get("State") or {}
    return Box(
        id=attrs["Id"],
        name=attrs["Name"].lstrip("/"),
        service=labels.get(SERVICE, "?"),
        role=labels.get(ROLE, "?"),
        replica=labels.get(REPLICA),
        state=state.get("Status", "?"),
        health=(state.get("Health") or {}).get("Status"),
        exit_code=int(state.get("ExitCode") or 0),
        restarts=int(attrs.get("RestartCount") or 0),
        created=_time(attrs.get("Created")) or datetime.fromtimestamp(0, timezone.utc),
        started=_time(state.get("StartedAt")) if state.get("Status") == "running" else None,
        image_ref=(attrs.get("Config") or {}).get("Image", ""),
        image_id=attrs.get("Image", ""),
        git_sha=labels.get(GIT_SHA),
        release=labels.get(RELEASE),
        url=labels.get(URL),
        ports=_ports(attrs),
    )


SWARM_SERVICE_ID = "com.docker.swarm.service.id"


def with_service_labels(client, attrs: dict) -> dict:
    """A swarm task's container with its service's labels under its own: on swarm the release's
    labels (the commit, the release gate) are the service's, since a task's labels cannot change
    without replacing the service (components/swarm.py task_labels)."""
    labels = (attrs.get("Config") or {}).get("Labels") or {}
    service_id = labels.get(SWARM_SERVICE_ID)
    if not service_id or GIT_SHA in labels:
        return attrs
    try:
        own = (client.api.inspect_service(service_id).get("Spec") or {}).get("Labels") or {}
    except docker.errors.APIError:  # the service went meanwhile
        return attrs
    return {**attrs, "Config": {**attrs["Config"], "Labels": {**own, **labels}}}


def ordered(boxes: Sequence[Box]) -> list[Box]:
    def key(b: Box):
        rank = SERVICE_ORDER.index(b.service) if b.service in SERVICE_ORDER else len(SERVICE_ORDER)
        return (b.role == ONE_OFF, rank, b.service, int(b.replica) if b.replica and b.replica.isdigit() else 0, b.name)

    return sorted(boxes, key=key)


def known_stacks(root: Optional[Path] = None) -> list[str]:
    """The stacks this project has a config for (Pulumi.<stack>.yaml)."""
    root = root or PROJECT_ROOT
    return sorted(p.name[len("Pulumi.") : -len(".yaml")] for p in root.glob("Pulumi.*.yaml"))


def stack_docker_host(
    stack: str, root: Optional[Path] = None, env: Optional[Mapping[str, str]] = None
) -> dockerhost.DockerHost:
    """The stack's Docker host as the provider reaches it: the `docker:` settings of
    Pulumi.<stack>.yaml (Pulumi.yaml declares none), then their environment variables.

    ops decrypts nothing: an encrypted setting (`pulumi config set --secret`, e.g. the TLS key)
    must come from its environment variable (DOCKER_KEY_MATERIAL, ...), or from docker:certPath.
    """
    env = os.environ if env is None else env
    stack_file = (root or PROJECT_ROOT) / f"Pulumi.{stack}.yaml"
    try:
        config = (yaml.safe_load(stack_file.read_text()) or {}).get("config") or {}
    except (OSError, yaml.YAMLError) as error:
        raise OpsError(
            f"{stack_file.name}: cannot read it ({error.__class__.__name__}: {str(error).splitlines()[0]})"
        ) from None
    settings: dict[str, Any] = {}
    for key, variable in dockerhost.ENVIRONMENT.items():
        value = config.get(f"docker:{key}")
        if isinstance(value, dict) and "secure" in value:
            if not env.get(variable):
                raise OpsError(
                    f"{stack_file.name}: docker:{key} is encrypted and ops decrypts nothing; "
                    f'export {variable} for ops (e.g. {variable}="$(pulumi config get docker:{key})")'
                )
            continue  # the variable stands in for it
        settings[key] = value
    try:
        found = dockerhost.resolve(settings, env)
        dockerhost.check(found)
    except dockerhost.HostError as error:
        raise OpsError(f"{stack_file.name}: {error}") from None
    return found


def engine_client(stack: str, host: dockerhost.DockerHost, timeout: int = 30) -> docker.DockerClient:
    """A client of the stack's Docker engine, reached as the provider reaches it, that answered;
    else OpsError: one line saying why, in words (no exception repr), and what to do."""
    try:
        return dockerhost.connect(host, timeout=timeout)
    except dockerhost.HostError as error:
        raise OpsError(f"no Docker engine answers for stack {stack}: {error}; {engine_todo(host, stack)}") from None


def engine_todo(host: dockerhost.DockerHost, stack: str) -> str:
    if host.scheme == "unix":
        return (
            "start one here (`make docker`, as root), or point the stack at its host with docker:host in "
            f"Pulumi.{stack}.yaml or DOCKER_HOST"
        )
    return f"check that the host is up and that `docker -H {host.host} info` works from here"


def describe_host(host: dockerhost.DockerHost) -> str:
    return host.describe()


class StackOnHost:
    """A stack's containers on its Docker host (one list call; `refresh` for another)."""

    def __init__(self, stack: str, *, client: Optional[docker.DockerClient] = None, root: Optional[Path] = None):
        stacks = known_stacks(root)
        if stack not in stacks:
            raise OpsError(f"unknown stack '{stack}'; stacks: {', '.join(stacks) or 'none'} (from Pulumi.<stack>.yaml)")
        self.stack = stack
        host = stack_docker_host(stack, root)
        if client is None:
            client = engine_client(stack, host)
        self.client = client
        self.host = host
        self.where = describe_host(host)
        self.boxes = self.refresh()
        if not self.boxes:
            summaries = client.api.containers(all=True, filters={"label": STACK})
            elsewhere = sorted({label for c in summaries if (label := (c.get("Labels") or {}).get(STACK))})
            there = f"stacks there: {', '.join(elsewhere)}" if elsewhere else "no stack of this project there"
            raise OpsError(
                f"stack {stack} is not running on {self.where}: no container is labelled {STACK}={stack} ({there})"
            )

    def refresh(self) -> list[Box]:
        containers = self.client.api.containers(all=True, filters={"label": f"{STACK}={self.stack}"})
        attrs = []
        for summary in containers:
            try:
                attrs.append(self.client.api.inspect_container(summary["Id"]))
            except docker.errors.NotFound:  # removed between the list and the inspect
                continue
        return ordered([box(with_service_labels(self.client, a)) for a in attrs])

    def services(self) -> list[str]:
        seen: list[str] = []
        for b in self.boxes:
            if b.role != ONE_OFF and b.service not in seen:
                seen.append(b.service)
        return seen

    def of_service(self, service: str) -> list[Box]:
        """The service's containers; one line naming the services when there is no such one."""
        found = [b for b in self.boxes if b.service == service and b.role != ONE_OFF]
        if not found:
            raise OpsError(f"stack {self.stack} has no service '{service}'; services: {', '.join(self.services())}")
        return found

    def network(self, kind: str) -> str:
        """The stack's `frontend`, `backend` or `egress` network, by label."""
        found = self.client.networks.list(filters={"label": [f"{STACK}={self.stack}", f"{NETWORK}={kind}"]})
        if len(found) != 1:
            raise OpsError(
                f"stack {self.stack}: expected one {kind} network labelled {NETWORK}={kind}, found {len(found)}"
            )
        return found[0].name
