"""Apply a plan to a Docker engine the way `pulumi up` would, with the Docker SDK.

Resources are created in dependency order (the recorded `dependencies` plus any
input that names another resource), independent ones in parallel as the Pulumi
engine does. Auto-named resources get a Pulumi-like name (`<logical>-<7 hex>`);
every planned (mock) name and id is mapped to the real one before a dependent
resource is translated. Everything created carries the run's labels, which is
how teardown finds it.
"""

from __future__ import annotations

import io
import secrets
import tarfile
import threading
import time
from collections import defaultdict
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any, Callable

import docker
import docker.errors
from docker.types import IPAMConfig, IPAMPool, Mount

from rehearsal.errors import RehearsalError
from rehearsal.plan import CONTAINER, IMAGE, NETWORK, RANDOM_PASSWORD, REMOTE_IMAGE, STACK_REFERENCE, VOLUME
from rehearsal.plan import Plan, PlannedResource
from rehearsal.translate import (
    ContainerSpec,
    container_spec,
    image_build_kwargs,
    network_kwargs,
    remote_image_name,
    substitute,
    volume_kwargs,
)

STACK_LABEL = "rehearsal.stack"
RUN_LABEL = "rehearsal.run"
LOG_TAIL = 25
ATTACH_TIMEOUT = 900  # one-shots: the provider waits as long as it takes; we bound it
MUST_RUN_SETTLE = 2.0  # seconds a must_run container has to stay up after start

# Types whose planned values are used as they are (nothing to create on the engine).
VALUE_ONLY = {RANDOM_PASSWORD: "value from the plan", STACK_REFERENCE: "outputs given to the plan"}


def planned_id(r: PlannedResource) -> str | None:
    """The id the mock gave the resource (what other resources' inputs carry)."""
    return r.id or None


def planned_name(r: PlannedResource) -> str | None:
    return r.inputs.get("name") or r.outputs.get("name")


def pulumi_like_name(logical: str) -> str:
    return f"{logical}-{secrets.token_hex(4)[:7]}"


# --------------------------------------------------------------------------- the plan as steps


@dataclass
class Step:
    resource: PlannedResource
    kind: str  # network | volume | container | image | remote-image | value
    deps: list[str] = field(default_factory=list)  # urns of custom resources


def _strings(value: Any):
    if isinstance(value, str):
        yield value
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)
    elif isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)


def order(plan: Plan) -> list[Step]:
    """Custom resources in dependency order (registration order breaks ties)."""
    custom = [r for r in plan.resources if r.custom]
    by_urn = {r.urn: r for r in custom}
    children: dict[str, list[str]] = defaultdict(list)
    for r in plan.resources:
        if r.options.get("parent"):
            children[r.options["parent"]].append(r.urn)

    def expand(urn: str, seen: set) -> set[str]:
        if urn in by_urn:
            return {urn}
        if urn in seen:
            return set()
        seen.add(urn)
        return set().union(*[expand(c, seen) for c in children.get(urn, [])], set())

    owners: dict[str, str] = {}
    for r in custom:
        for value in (planned_name(r), planned_id(r)):
            if value:
                owners[value] = r.urn
    steps = {}
    for r in custom:
        deps = set()
        for urn in r.options.get("dependencies") or []:
            deps |= expand(urn, set())
        deps |= {owners[s] for s in _strings(r.inputs) if s in owners}
        deps.discard(r.urn)
        steps[r.urn] = Step(r, kind_of(r), sorted(deps, key=[c.urn for c in custom].index))
    ordered, done = [], set()
    while len(ordered) < len(custom):
        ready = [s for urn, s in steps.items() if urn not in done and all(d in done for d in s.deps)]
        if not ready:
            cycle = [s.resource.name for urn, s in steps.items() if urn not in done]
            raise RehearsalError(f"dependency cycle among: {', '.join(cycle)}")
        ordered.append(ready[0])
        done.add(ready[0].resource.urn)
    return ordered


def kind_of(r: PlannedResource) -> str:
    kinds = {NETWORK: "network", VOLUME: "volume", CONTAINER: "container", IMAGE: "image",
             REMOTE_IMAGE: "remote-image"}
    if r.type in kinds:
        return kinds[r.type]
    if r.type in VALUE_ONLY:
        return "value"
    raise RehearsalError(f"resource {r.name}: type {r.type} not understood by the rehearsal")


def translate_plan(plan: Plan, *, run_labels: dict[str, str], names: Callable[[str], str],
                   project_root=None) -> list[Step]:
    """Translate every resource once without an engine: an input the rehearsal does not
    understand fails here, before anything is created."""
    from rehearsal.plan import PROJECT_ROOT

    mapping = {}
    for r in plan.resources:
        if r.custom and r.type in (NETWORK, VOLUME, CONTAINER) and planned_name(r) and not r.inputs.get("name"):
            mapping[planned_name(r)] = names(r.name)
    steps = order(plan)
    for step in steps:
        r = step.resource
        inputs = substitute(r.inputs, mapping)
        if step.kind == "network":
            network_kwargs(r.name, inputs, mapping.get(planned_name(r), planned_name(r)), run_labels)
        elif step.kind == "volume":
            volume_kwargs(r.name, inputs, mapping.get(planned_name(r), planned_name(r)), run_labels)
        elif step.kind == "container":
            container_spec(r.name, inputs, real_name=names(r.name), extra_labels=run_labels)
        elif step.kind == "image":
            image_build_kwargs(r.name, inputs, project_root or PROJECT_ROOT)
        elif step.kind == "remote-image":
            remote_image_name(r.name, inputs)
    return steps


# --------------------------------------------------------------------------- on the engine


@dataclass
class Created:
    """What one run created, for the smoke checks and the summary."""

    networks: dict[str, str] = field(default_factory=dict)  # logical name -> real name
    volumes: dict[str, str] = field(default_factory=dict)
    containers: dict[str, str] = field(default_factory=dict)  # logical name -> container id
    exit_codes: dict[str, int] = field(default_factory=dict)  # one-shots
    specs: dict[str, ContainerSpec] = field(default_factory=dict)


class ApplyError(RehearsalError):
    pass


class Applier:
    def __init__(self, client: docker.DockerClient, plan: Plan, *, run_labels: dict[str, str],
                 mapping: dict[str, str], say: Callable[[str], None], parallelism: int = 6):
        self.client = client
        self.api = client.api
        self.plan = plan
        self.run_labels = run_labels
        self.mapping = dict(mapping)  # planned value -> real value (image refs, names, ids)
        self.say = say
        self.parallelism = parallelism
        self.lock = threading.Lock()
        self.created = Created()
        self.cancelled = threading.Event()
        self.pool: ThreadPoolExecutor | None = None

    # -- scheduling

    def apply(self, steps: list[Step]) -> Created:
        """Create every step once its dependencies exist; stop at the first failure."""
        pending = {s.resource.urn: s for s in steps}
        done: set[str] = set()
        running: dict[Future, Step] = {}
        self.pool = ThreadPoolExecutor(max_workers=self.parallelism, thread_name_prefix="apply")
        try:
            while pending or running:
                for urn, step in list(pending.items()):
                    if all(d in done for d in step.deps):
                        running[self.pool.submit(self.create, step)] = step
                        del pending[urn]
                if not running:
                    raise ApplyError("nothing can proceed: " + ", ".join(s.resource.name for s in pending.values()))
                finished, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in finished:
                    step = running.pop(future)
                    if future.exception() is not None:
                        raise future.exception()
                    done.add(step.resource.urn)
        finally:
            # On failure or Ctrl-C, do not wait here for workers still waiting on health:
            # teardown removes their containers, which ends their waits; join() follows.
            self.pool.shutdown(wait=False, cancel_futures=True)
        return self.created

    def cancel(self) -> None:
        self.cancelled.set()

    def join(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)

    def create(self, step: Step) -> None:
        if self.cancelled.is_set():
            raise ApplyError("cancelled")
        r = step.resource
        with self.lock:
            inputs = substitute(r.inputs, self.mapping)
        handler = getattr(self, "create_" + step.kind.replace("-", "_"))
        handler(r, inputs)

    def _remember(self, planned: str | None, real: str) -> None:
        if planned:
            with self.lock:
                self.mapping[planned] = real

    # -- resources

    def create_value(self, r: PlannedResource, inputs: dict) -> None:
        pass

    def create_image(self, r: PlannedResource, inputs: dict) -> None:
        # Built in the build phase; its planned digest and id already map to the real id.
        pass

    def create_remote_image(self, r: PlannedResource, inputs: dict) -> None:
        name = remote_image_name(r.name, inputs)
        try:
            image = self.client.images.get(name)
        except docker.errors.ImageNotFound:
            raise ApplyError(f"remote image {r.name}: {name} is not on the engine (the images phase should have pulled it)") from None
        for planned in (r.outputs.get("repoDigest"), r.outputs.get("imageId"), planned_id(r)):
            self._remember(planned, image.id)

    def create_network(self, r: PlannedResource, inputs: dict) -> None:
        real = r.inputs.get("name") or pulumi_like_name(r.name)
        kwargs = network_kwargs(r.name, inputs, real, self.run_labels)
        ipam = kwargs.pop("ipam", None)
        if ipam:
            kwargs["ipam"] = IPAMConfig(driver=ipam["driver"], options=ipam["options"],
                                        pool_configs=[IPAMPool(**pool) for pool in ipam["pool_configs"]])
        try:
            network = self.client.networks.create(check_duplicate=True, **kwargs)
        except docker.errors.APIError as error:
            raise ApplyError(f"network {r.name}: {error.explanation or error}") from None
        self.created.networks[r.name] = real
        self._remember(planned_name(r), real)
        self._remember(planned_id(r), network.id)

    def create_volume(self, r: PlannedResource, inputs: dict) -> None:
        real = r.inputs.get("name") or pulumi_like_name(r.name)
        volume = self.client.volumes.create(**volume_kwargs(r.name, inputs, real, self.run_labels))
        self.created.volumes[r.name] = real
        self._remember(planned_name(r), volume.name)
        self._remember(planned_id(r), volume.name)

    def create_container(self, r: PlannedResource, inputs: dict) -> None:
        spec = container_spec(r.name, inputs, real_name=pulumi_like_name(r.name), extra_labels=self.run_labels)
        started = time.monotonic()
        host = dict(spec.host_config)
        if "mounts" in host:
            host["mounts"] = [Mount(**m) for m in host["mounts"]]
        host_config = self.api.create_host_config(**host)
        networking = None
        first = spec.networks[0] if spec.networks else None
        if first and host.get("network_mode") == first.name:
            networking = self.api.create_networking_config({
                first.name: self.api.create_endpoint_config(
                    aliases=first.aliases or None, ipv4_address=first.ipv4_address, ipv6_address=first.ipv6_address)
            })
        try:
            cid = self.api.create_container(host_config=host_config, networking_config=networking, **spec.create)["Id"]
        except docker.errors.APIError as error:
            raise ApplyError(f"container {r.name}: create failed: {error.explanation or error}") from None
        with self.lock:
            self.created.containers[r.name] = cid
            self.created.specs[r.name] = spec
        try:
            for net in spec.networks[1:] if networking else spec.networks:
                self.api.connect_container_to_network(
                    cid, net.name, aliases=net.aliases or None,
                    ipv4_address=net.ipv4_address, ipv6_address=net.ipv6_address)
            if spec.uploads:
                self.api.put_archive(cid, "/", _tar(spec.uploads))
            if spec.lifecycle.start:
                self.api.start(cid)
        except docker.errors.APIError as error:
            raise ApplyError(f"container {r.name}: {error.explanation or error}{self._tail(cid)}") from None
        self._remember(planned_name(r), spec.name)
        self._remember(planned_id(r), cid)
        what = self._settle(r.name, cid, spec)
        self.say(f"  {r.name:<34} {spec.name:<44} {what} ({time.monotonic() - started:.1f}s)")

    def _settle(self, name: str, cid: str, spec: ContainerSpec) -> str:
        life = spec.lifecycle
        if not life.start:
            return "created"
        if life.attach:
            try:
                code = self.api.wait(cid, timeout=ATTACH_TIMEOUT)["StatusCode"]
            except Exception as error:  # requests' ReadTimeout and friends
                raise ApplyError(f"container {name}: did not exit within {ATTACH_TIMEOUT}s ({error}){self._tail(cid)}") from None
            self.created.exit_codes[name] = code
            if code != 0:
                raise ApplyError(f"container {name}: exited {code}{self._tail(cid)}")
            return "exited 0"
        if life.wait:
            return self._wait_healthy(name, cid, life.wait_timeout)
        time.sleep(MUST_RUN_SETTLE)
        state = self.api.inspect_container(cid)["State"]
        if not state["Running"] and life.must_run:
            raise ApplyError(f"container {name}: exited {state['ExitCode']} right after start (must_run){self._tail(cid)}")
        return "running"

    def _wait_healthy(self, name: str, cid: str, timeout: int) -> str:
        deadline = time.monotonic() + timeout
        while True:
            if self.cancelled.is_set():
                raise ApplyError(f"container {name}: cancelled")
            state = self.api.inspect_container(cid)["State"]
            health = (state.get("Health") or {}).get("Status")
            if health is None:
                raise ApplyError(f"container {name}: wait=true but it has no healthcheck")
            if health == "healthy":
                return "healthy"
            if health == "unhealthy":
                probe = (state.get("Health") or {}).get("Log") or [{}]
                output = (probe[-1].get("Output") or "").strip().splitlines()[-3:]
                raise ApplyError(f"container {name}: unhealthy (last probe: {' | '.join(output) or 'no output'}){self._tail(cid)}")
            if not state["Running"] and state["Status"] != "restarting":
                raise ApplyError(f"container {name}: exited {state['ExitCode']} before it became healthy{self._tail(cid)}")
            if time.monotonic() > deadline:
                raise ApplyError(f"container {name}: not healthy within waitTimeout={timeout}s (health: {health}){self._tail(cid)}")
            time.sleep(0.5)

    def _tail(self, cid: str) -> str:
        return container_tail(self.api, cid)


def container_tail(api, cid: str, lines: int = LOG_TAIL) -> str:
    try:
        text = api.logs(cid, tail=lines).decode(errors="replace").rstrip()
    except docker.errors.APIError:
        return ""
    body = "\n".join("    | " + line for line in text.splitlines()) or "    | (no output)"
    return f"\n  last {lines} log lines:\n{body}"


def _tar(uploads) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for u in uploads:
            info = tarfile.TarInfo(u.path.lstrip("/"))
            info.size, info.mode, info.uid, info.gid = len(u.content), u.mode, u.uid, u.gid
            info.mtime = int(time.time())
            tar.addfile(info, io.BytesIO(u.content))
    return buffer.getvalue()


# --------------------------------------------------------------------------- the app image


def build_app_image(client, r: PlannedResource, project_root, say) -> str:
    from rehearsal.standins import stream_build

    kwargs = image_build_kwargs(r.name, r.inputs, project_root)
    tag = kwargs.pop("tag")
    say(f"  building {tag} from {kwargs['path']} ({kwargs['dockerfile']}, args {kwargs['buildargs']})")
    return stream_build(client, tag, **kwargs)


# --------------------------------------------------------------------------- teardown


def teardown(client: docker.DockerClient, stack: str, run: str | None = None) -> tuple[int, int, int]:
    """Remove every container, network and volume labelled as this stack's rehearsal
    (or only one run's). Nothing without the label is touched."""
    selector = [f"{STACK_LABEL}={stack}"] + ([f"{RUN_LABEL}={run}"] if run else [])
    filters = {"label": selector}
    containers = client.api.containers(all=True, filters=filters)
    for c in containers:
        try:
            client.api.remove_container(c["Id"], force=True, v=True)
        except docker.errors.NotFound:
            pass
    networks = client.api.networks(filters=filters)
    for n in networks:
        try:
            client.api.remove_network(n["Id"])
        except docker.errors.NotFound:
            pass
    volumes = client.api.volumes(filters=filters).get("Volumes") or []
    for v in volumes:
        try:
            client.api.remove_volume(v["Name"], force=True)
        except docker.errors.NotFound:
            pass
    return len(containers), len(networks), len(volumes)
