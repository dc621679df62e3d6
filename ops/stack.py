"""Find a stack's containers on its Docker host, by the labels the program gives them.

The program labels everything it creates (`components.render.labels`, `AppRuntime.label_map`):
`django-docker.stack`, `.service`, `.role`, and on the app's containers `.git-sha`, `.release`,
`.url` and (web) `.replica`. So the host alone answers "what runs in prod": no Pulumi CLI, no
state file, no secret. The host is the stack's own (`docker:host` in Pulumi.<stack>.yaml, as
the provider reads it), else DOCKER_HOST, else the local socket.

`Box` is a container as ops shows it, built from the engine's inspect data by a pure function.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

import docker
import docker.errors
import yaml

from components.dockerhost import connect
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
SERVICE_ORDER = ("nginx", "web", "celery-worker", "celery-beat", "postgres", "redis")


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


def ordered(boxes: Sequence[Box]) -> list[Box]:
    def key(b: Box):
        rank = SERVICE_ORDER.index(b.service) if b.service in SERVICE_ORDER else len(SERVICE_ORDER)
        return (b.role == ONE_OFF, rank, b.service, int(b.replica) if b.replica and b.replica.isdigit() else 0, b.name)

    return sorted(boxes, key=key)


def known_stacks(root: Optional[Path] = None) -> list[str]:
    """The stacks this project has a config for (Pulumi.<stack>.yaml)."""
    root = root or PROJECT_ROOT
    return sorted(p.name[len("Pulumi.") : -len(".yaml")] for p in root.glob("Pulumi.*.yaml"))


def stack_docker_host(stack: str, root: Optional[Path] = None) -> str:
    """`docker:host` of the stack as the provider would read it ('' = DOCKER_HOST or the local socket).

    Pulumi.yaml declares no default for it, so the stack file is the only place it can be set.
    """
    stack_file = (root or PROJECT_ROOT) / f"Pulumi.{stack}.yaml"
    try:
        config = (yaml.safe_load(stack_file.read_text()) or {}).get("config") or {}
    except (OSError, yaml.YAMLError) as error:
        raise OpsError(
            f"{stack_file.name}: cannot read it ({error.__class__.__name__}: {str(error).splitlines()[0]})"
        ) from None
    host = config.get("docker:host") or ""
    if isinstance(host, dict):  # `pulumi config set --secret docker:host` (an address with credentials)
        raise OpsError(f"{stack_file.name}: docker:host is encrypted; export DOCKER_HOST for ops instead")
    return str(host).strip()


LOCAL_SOCKET = "unix:///var/run/docker.sock"


def engine_client(stack: str, docker_host: str, timeout: int = 30) -> docker.DockerClient:
    """A client of the stack's Docker engine that answered a ping; else OpsError saying what to do."""
    where = docker_host or os.environ.get("DOCKER_HOST") or LOCAL_SOCKET
    try:
        client = connect(docker_host, timeout=timeout)
        client.ping()
    except docker.errors.DockerException as error:
        raise OpsError(engine_problem(error, where, stack)) from None
    return client


def engine_problem(error: BaseException, where: str, stack: str) -> str:
    """One line: why no engine answers at `where`, in words (no exception repr), and what to do."""
    causes: list[BaseException] = []
    current: Optional[BaseException] = error
    while current is not None and len(causes) < 10:
        causes.append(current)
        current = current.__cause__ or current.__context__
    text = " ".join(str(c) for c in causes)
    kinds = tuple(type(c) for c in causes)
    if any(issubclass(k, FileNotFoundError) for k in kinds) or "No such file or directory" in text:
        why = "there is no socket there"
    elif any(issubclass(k, PermissionError) for k in kinds) or "Permission denied" in text:
        why = "permission denied on the socket (run as root, or as a member of the docker group)"
    elif any(issubclass(k, ConnectionRefusedError) for k in kinds) or "Connection refused" in text:
        why = "the connection was refused"
    elif "timed out" in text or "Read timed out" in text:
        why = "it did not answer in time"
    elif "Name or service not known" in text or "nodename nor servname" in text or "Temporary failure in name" in text:
        why = "its host name does not resolve"
    else:
        last = str(causes[-1]).splitlines()[0] if str(causes[-1]) else type(causes[-1]).__name__
        why = re.sub(r"\(.*", "", last).strip()[:160] or type(causes[-1]).__name__
    if where == LOCAL_SOCKET or where.startswith("unix://"):
        todo = (
            "start one here (`make docker`, as root), or point the stack at its host with docker:host in "
            f"Pulumi.{stack}.yaml or DOCKER_HOST"
        )
    else:
        todo = f"check that the host is up and that `docker -H {where} info` works from here"
    return f"no Docker engine answers at {where} for stack {stack}: {why}; {todo}"


def describe_host(client: docker.DockerClient, docker_host: str) -> str:
    return (
        docker_host
        or os.environ.get("DOCKER_HOST")
        or client.api.base_url.replace("http+docker://localhost", "unix:///var/run/docker.sock")
    )


class StackOnHost:
    """A stack's containers on its Docker host (one list call; `refresh` for another)."""

    def __init__(self, stack: str, *, client: Optional[docker.DockerClient] = None, root: Optional[Path] = None):
        stacks = known_stacks(root)
        if stack not in stacks:
            raise OpsError(f"unknown stack '{stack}'; stacks: {', '.join(stacks) or 'none'} (from Pulumi.<stack>.yaml)")
        self.stack = stack
        docker_host = stack_docker_host(stack, root)
        if client is None:
            client = engine_client(stack, docker_host)
        self.client = client
        self.where = describe_host(client, docker_host)
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
        return ordered([box(a) for a in attrs])

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
        """The stack's `frontend` or `backend` network, by label."""
        found = self.client.networks.list(filters={"label": [f"{STACK}={self.stack}", f"{NETWORK}={kind}"]})
        if len(found) != 1:
            raise OpsError(
                f"stack {self.stack}: expected one {kind} network labelled {NETWORK}={kind}, found {len(found)}"
            )
        return found[0].name
