"""The plan: what `pulumi up` would create, from the program run under the SDK's mock monitor.

The Pulumi engine cannot run here, so the program runs against `pulumi.runtime.set_mocks` with
the stack's config as the CLI would give it (Pulumi.yaml defaults, then Pulumi.<stack>.yaml,
then overrides). Every registered resource is recorded with its inputs (wire names, secrets
unwrapped but remembered), the outputs the mock computed, and its resource options. The unit
tests, the rehearsal, the benchmark and the tools share this one mechanism; nothing else sets
the mocks (a test of one component passes it as `program`).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import runpy
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Optional, cast

import pulumi
from google.protobuf import json_format
from pulumi.runtime import rpc
from pulumi.runtime import settings as runtime_settings
from pulumi.runtime.mocks import MockMonitor
from pulumi.runtime.stack import Stack, run_pulumi_func

from components.settings.provider import SKIP_PROBE_ENV
from planning.stackfile import StackConfig, StackFileError, read_stack

PROJECT_ROOT = Path(__file__).resolve().parent.parent
PROGRAM = PROJECT_ROOT / "__main__.py"

CONTAINER = "docker:index/container:Container"
IMAGE = "docker:index/image:Image"
REMOTE_IMAGE = "docker:index/remoteImage:RemoteImage"
NETWORK = "docker:index/network:Network"
VOLUME = "docker:index/volume:Volume"
# Swarm: a service, and the config and secret objects it mounts.
SERVICE = "docker:index/service:Service"
SERVICE_CONFIG = "docker:index/serviceConfig:ServiceConfig"
SECRET = "docker:index/secret:Secret"
RANDOM_PASSWORD = "random:index/randomPassword:RandomPassword"
STACK_REFERENCE = "pulumi:pulumi:StackReference"
# components/job.py: a dynamic resource (pulumi-python:dynamic/<module>:<name>).
JOB = "pulumi-python:dynamic/django-docker:Job"
# components/nginx_site.py: nginx's configuration on its volume, reloaded in place.
NGINX_SITE = "pulumi-python:dynamic/django-docker:NginxSite"
# What runs a container: docker.Container and the release jobs (same input names).
RUNS_A_CONTAINER = (CONTAINER, JOB)


class PlanError(Exception):
    """The program refused the stack's config (its one-line message), or could not run."""


def label_in(inputs: Mapping[str, Any], key: str) -> Optional[str]:
    """Value of a Docker label (`labels: [{label, value}]`) in a resource's inputs."""
    for item in inputs.get("labels", []) or []:
        if item.get("label") == key:
            return item.get("value")
    return None


@dataclass(frozen=True)
class PlannedResource:
    type: str
    name: str
    urn: str
    inputs: dict
    outputs: dict
    options: dict
    secret_paths: tuple[str, ...] = ()
    custom: bool = True
    id: str = ""
    """The id the mock gave it (what other resources' inputs carry when they reference it)."""

    def label(self, key: str) -> Optional[str]:
        return label_in(self.inputs, key)


@dataclass
class Plan:
    stack: str
    config: dict[str, str]
    resources: list[PlannedResource] = field(default_factory=list)
    outputs: dict[str, Any] = field(default_factory=dict)

    def of_type(self, type_: str) -> list[PlannedResource]:
        return [r for r in self.resources if r.type == type_]

    def by_name(self, name: str, type_: Optional[str] = None) -> PlannedResource:
        """The one resource with this logical name (and type: a component and its container may share a name)."""
        matches = [r for r in self.resources if r.name == name and (type_ is None or r.type == type_)]
        if len(matches) != 1:
            raise KeyError(f"{len(matches)} resources named {name!r}")
        return matches[0]

    def by_urn(self, urn: str) -> PlannedResource:
        return next(r for r in self.resources if r.urn == urn)

    def container(self, name: str) -> PlannedResource:
        """A docker.Container or a release Job by logical name (they share input names)."""
        matches = [r for r in self.resources if r.name == name and r.type in RUNS_A_CONTAINER]
        if len(matches) != 1:
            raise KeyError(f"{len(matches)} containers or jobs named {name!r}")
        return matches[0]

    def nginx_files(self) -> dict[str, str]:
        """The files nginx serves from (its NginxSite's `files`: nginx.conf, and the manual TLS
        certificate and key), relative path -> content."""
        # The site's own (migrationMode maintenance adds the release's maintenance switch).
        (site,) = [r for r in self.of_type(NGINX_SITE) if r.name.endswith("-nginx-site")]
        return dict(site.inputs["files"])

    def nginx_conf(self) -> str:
        return self.nginx_files()["nginx.conf"]

    def containers(self, service: Optional[str] = None) -> list[PlannedResource]:
        """Everything that runs a container (docker.Container and Job), optionally of one service."""
        return [
            r
            for r in self.resources
            if r.type in RUNS_A_CONTAINER and (service is None or r.label("django-docker.service") == service)
        ]


# --- config ------------------------------------------------------------------------------


def _config_string(value: Any) -> str:
    """Config values reach the program as strings; the CLI JSON-encodes non-strings."""
    if isinstance(value, str):
        return value
    return json.dumps(value)


def stack_config(stack: str, root: Path = PROJECT_ROOT) -> tuple[dict[str, str], str]:
    """The config `pulumi up` would pass (project defaults, then the stack file), and the project's
    namespace: the stack file read as the CLI reads it (stackfile.py)."""
    try:
        loaded = read_stack(stack, root)
    except StackFileError as error:
        raise PlanError(str(error)) from None
    if loaded.opaque:
        raise PlanError(f"Pulumi.{stack}.yaml: {loaded.opaque[0]} is encrypted; pass it to plan_stack(secrets=...)")
    if loaded.problems:
        raise PlanError("\n".join(f"Pulumi.{stack}.yaml: {problem}" for problem in loaded.problems))
    return loaded.config, loaded.namespace


# --- mocks -------------------------------------------------------------------------------


def _fake_hex(*parts: str, length: int = 64) -> str:
    seed = "\0".join(parts).encode()
    blocks = (
        hashlib.sha256(seed + bytes([n])).hexdigest() if n else hashlib.sha256(seed).hexdigest()
        for n in range(length // 64 + 1)
    )
    return "".join(blocks)[:length]


class _Mocks(pulumi.runtime.Mocks):
    """Computes what the providers would: ids, auto-names, digests, job runs."""

    def __init__(
        self, stack_references: Mapping[str, Mapping[str, Any]], registry_digests: Optional[Mapping[str, str]] = None
    ):
        self.stack_references = stack_references
        self.registry_digests = dict(registry_digests or {})

    def new_resource(self, args: pulumi.runtime.MockResourceArgs):
        state = dict(args.inputs)
        name = args.name
        if args.typ == STACK_REFERENCE:
            stack_name = state.get("name", name)
            return f"{stack_name}", {
                "name": stack_name,
                "outputs": dict(self.stack_references.get(stack_name, {})),
                "secretOutputNames": [],
            }
        if args.typ == IMAGE:
            image_name = state["imageName"]
            digest = _fake_hex("image", image_name, json.dumps(state.get("build", {}), sort_keys=True, default=str))
            repository = image_name.rsplit(":", 1)[0] if ":" in image_name.rsplit("/", 1)[-1] else image_name
            # A pushed image's repoDigest is repo@sha256:...; a local build's is its image id.
            state["repoDigest"] = f"sha256:{digest}" if state.get("skipPush") else f"{repository}@sha256:{digest}"
            state["baseImageName"] = image_name
        elif args.typ == REMOTE_IMAGE:
            # As the provider reads it (the local image's RepoDigests): what a registry gave for
            # the name when the caller knows it (a rehearsal's own registry), else the name (a
            # digest reference; a tag then stands for an image no registry gave).
            state["repoDigest"] = self.registry_digests.get(state["name"], state["name"])
            state["imageId"] = "sha256:" + _fake_hex("remote", state["name"])
        elif args.typ in (CONTAINER, NETWORK, VOLUME, SERVICE, SERVICE_CONFIG, SECRET) and not state.get("name"):
            # Pulumi's auto-naming: logical name plus a random suffix.
            state["name"] = f"{name}-{_fake_hex(name, length=7)}"
        elif args.typ == RANDOM_PASSWORD:
            # As long as asked for (Django's `check --deploy` rejects a SECRET_KEY under 50 characters).
            state["result"] = _fake_hex("password", name, length=int(state.get("length") or 32))
        if args.typ == JOB:
            # The provider's id is the run's id; the job ran to exit 0 (a failure records nothing).
            state.update(
                runId=f"{name}-id",
                exitCode=0,
                logTail=f"{name}: mock logs",
                startedAt="1970-01-01T00:00:00Z",
                finishedAt="1970-01-01T00:00:00Z",
            )
        if args.typ == NGINX_SITE:
            # The provider's output: the generation id, a hash of the files (nginx_site.generation_of).
            from components.nginx_site import generation_of

            files = state.get("files") or {}
            state["generation"] = generation_of(files, state.get("modes") or {}) if isinstance(files, dict) else ""
        return f"{name}-id", state

    def call(self, args: pulumi.runtime.MockCallArgs):
        return {}


class _RecordingMonitor(MockMonitor):
    """The SDK's mock monitor, also keeping each registration's inputs and options."""

    def __init__(self, mocks: _Mocks):
        super().__init__(mocks)
        self.requests: list[dict] = []

    def RegisterResource(self, request):
        response = super().RegisterResource(request)
        if request.type != "pulumi:pulumi:Stack":
            self.requests.append(
                {
                    "type": request.type,
                    "name": request.name,
                    "urn": response.urn,
                    "custom": request.custom,
                    "object": rpc.deserialize_properties(request.object, keep_unknowns=True),
                    "options": {
                        "parent": request.parent,
                        "dependencies": list(request.dependencies),
                        # Which resources each input's value came from: what the engine uses to
                        # decide which dependents a delete-before-replace takes down with it.
                        "property_dependencies": {
                            key: list(deps.urns) for key, deps in request.propertyDependencies.items()
                        },
                        "protect": request.protect,
                        "retain_on_delete": request.retainOnDelete,
                        # None: the program left it to the provider (the engine then follows the provider).
                        "delete_before_replace": request.deleteBeforeReplace
                        if request.deleteBeforeReplaceDefined
                        else None,
                        "replace_on_changes": list(request.replaceOnChanges),
                        "replacement_trigger": json_format.MessageToDict(request.replacement_trigger)
                        if request.HasField("replacement_trigger")
                        else None,
                        # Input paths whose changes the engine ignores (it keeps the old value).
                        "ignore_changes": list(request.ignoreChanges),
                    },
                }
            )
        return response

    def ReadResource(self, request):
        # StackReference and other `get`s are reads: recorded too, with no options to speak of.
        response = super().ReadResource(request)
        self.requests.append(
            {
                "type": request.type,
                "name": request.name,
                "urn": response.urn,
                "custom": True,
                "object": rpc.deserialize_properties(request.properties, keep_unknowns=True),
                "options": {
                    "parent": request.parent,
                    "dependencies": list(request.dependencies),
                    "property_dependencies": {},
                    "protect": False,
                    "retain_on_delete": False,
                    "delete_before_replace": None,
                    "replace_on_changes": [],
                    "replacement_trigger": None,
                    "ignore_changes": [],
                    "read": True,
                },
            }
        )
        return response


def _unwrap_secrets(value: Any, path: str, found: list[str]) -> Any:
    if rpc.is_rpc_secret(value):
        found.append(path or "<root>")
        return _unwrap_secrets(rpc.unwrap_rpc_secret(value), path, found)
    if isinstance(value, dict):
        return {k: _unwrap_secrets(v, f"{path}.{k}" if path else k, found) for k, v in value.items()}
    if isinstance(value, list):
        return [_unwrap_secrets(v, f"{path}[{i}]", found) for i, v in enumerate(value)]
    return value


def _quiet_about_run_errors(loop: asyncio.AbstractEventLoop, context: dict) -> None:
    """A refused config fails every Output that depends on it; plan_stack reports it once."""
    if isinstance(context.get("exception"), pulumi.RunError):
        return
    loop.default_exception_handler(context)


def _close_this_threads_loop() -> None:
    try:
        loop = asyncio.get_event_loop_policy().get_event_loop()
    except RuntimeError:  # the monitor was never called (a refused config): no loop to close
        return
    loop.close()
    asyncio.set_event_loop(None)


@contextlib.contextmanager
def _host_probe(wanted: bool):
    """The program's probe of its Docker host (components.settings.provider), for the plan only."""
    name = SKIP_PROBE_ENV
    before = os.environ.get(name)
    os.environ[name] = "0" if wanted else "1"
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = before


@contextlib.contextmanager
def _working_directory(path: Path):
    previous = Path.cwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(previous)


def plan_stack(
    stack: str,
    *,
    overrides: Optional[Mapping[str, Any]] = None,
    secrets: Optional[Mapping[str, Any]] = None,
    stack_references: Optional[Mapping[str, Mapping[str, Any]]] = None,
    preview: bool = False,
    root: Path = PROJECT_ROOT,
    program: Optional[Callable[[], object]] = None,
    loaded: Optional[StackConfig] = None,
    probe_host: bool = False,
    registry_digests: Optional[Mapping[str, str]] = None,
) -> Plan:
    """Run the program for `stack` under mocks and return every resource it registers.

    overrides/secrets: extra config (keys without namespace are the project's), as if set with
    `pulumi config set` / `--secret`. stack_references: outputs of other stacks by name.
    program: run this instead of __main__.py (a test of one component under the same mocks).
    loaded: the stack's config already read (stackfile.read_stack: `make check`), secrets included.
    probe_host: let the program connect to its Docker host before registering anything, as a
    real `pulumi up` does (off by default: a plan needs no engine; the remote rehearsal turns it on).
    registry_digests: image name -> repository@sha256 digest a registry gave for it, the repo
    digest a RemoteImage of that name reads (the swarm rehearsal pushes its accessories).
    Raises PlanError with the program's one-line message when the config is refused.
    """
    if loaded is not None:
        config, namespace, secret_keys = dict(loaded.config), loaded.namespace, set(loaded.secret_keys)
    else:
        config, namespace = stack_config(stack, root)
        secret_keys = set()

    def full(key: str) -> str:
        return key if ":" in key else f"{namespace}:{key}"

    for key, value in (overrides or {}).items():
        config[full(key)] = _config_string(value)
    for key, value in (secrets or {}).items():
        config[full(key)] = _config_string(value)
        secret_keys.add(full(key))

    mocks = _Mocks(stack_references or {}, registry_digests)
    monitor = _RecordingMonitor(mocks)
    # The root stack and every Output bind to the current loop: make it ours before set_mocks.
    loop = asyncio.new_event_loop()
    loop.set_exception_handler(_quiet_about_run_errors)
    # One thread for the mock monitor's calls (the SDK runs each on the loop's default
    # executor), so the event loop the SDK gives that thread can be closed afterwards.
    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mock-monitor")
    loop.set_default_executor(executor)
    asyncio.set_event_loop(loop)
    runtime_settings.reset_options(project=namespace, stack=stack, preview=preview)
    pulumi.runtime.set_mocks(mocks, project=namespace, stack=stack, preview=preview, monitor=monitor)
    pulumi.runtime.set_all_config(config, sorted(secret_keys))
    root_stack = runtime_settings.get_root_resource()

    async def main() -> None:
        if program is not None:
            program()
        else:
            runpy.run_path(str(root / "__main__.py"), run_name="__main__")
        await asyncio.sleep(0)

    async def run() -> dict:
        await run_pulumi_func(main)
        outputs = {}
        # set_mocks made a Stack the root resource; the SDK types the root as Optional[Resource].
        for key, value in cast(Stack, root_stack).outputs.items():
            outputs[key] = await pulumi.Output.from_input(value).future(with_unknowns=True)
        return outputs

    try:
        with _working_directory(root), _host_probe(probe_host):
            outputs = loop.run_until_complete(run())
    except pulumi.RunError as error:
        raise PlanError(str(error)) from None
    finally:
        # A refused config leaves the program's other Outputs waiting: end them quietly.
        pending = asyncio.all_tasks(loop)
        for task in pending:
            task.cancel()
        if pending:
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        # pulumi/runtime/mocks.py gives the monitor's thread an event loop of its own
        # (_ensure_event_loop) and never closes it; left to the garbage collector, it printed
        # "Exception ignored in: BaseEventLoop.__del__ ... Invalid file descriptor: -1" at exit.
        executor.submit(_close_this_threads_loop).result()
        executor.shutdown(wait=True)
        loop.close()
        asyncio.set_event_loop(None)
        runtime_settings.reset_options()

    plan = Plan(stack=stack, config=config, outputs=outputs)
    states = monitor.get_registered_resources()
    for request in monitor.requests:
        found: list[str] = []
        inputs = _unwrap_secrets(request["object"], "", found)
        registration = states.get(request["urn"])
        plan.resources.append(
            PlannedResource(
                type=request["type"],
                name=request["name"],
                urn=request["urn"],
                inputs=inputs,
                outputs=_unwrap_secrets(dict(registration.state), "", []) if registration else {},
                options=request["options"],
                secret_paths=tuple(found),
                custom=request["custom"],
                id=registration.id if registration else "",
            )
        )
    return plan
