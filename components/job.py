"""Job: a one-shot container run to completion by `pulumi up`, recorded only when it exited 0.

Why not `docker.Container(attach=True, must_run=False)`: the provider behind pulumi-docker does
not fail a container's create when its command exits non-zero; it records `exit_code` and the
create succeeds (kreuzwerker/terraform-provider-docker internal/provider/
resource_docker_container_funcs.go:631-673, :813-816). A gate on that exit code fails the first
`pulumi up`, but the next one sees no diff, never runs the command again, and fails forever.

A dynamic provider whose `create` raises records nothing: the SDK aborts the gRPC call with the
traceback and no id (pulumi/dynamic/__main__.py `_abort_with_traceback`), which carries no
partial-state detail (pulumi/pulumi sdk/go/common/resource/plugin/provider_plugin.go parseError),
so the engine keeps no new state for it (pkg/resource/deploy/step.go:439) and fails the update.
So a failed migration fails `pulumi up` and the next `pulumi up` runs it again (rehearsed:
`make rehearse-release`, scenario failed-migration); a successful one is recorded and runs again only when its inputs
change (`diff` replaces on any change: a job is never updated in place).

Inputs use pulumi-docker's `docker.Container` wire names and shapes where they overlap (image,
command, envs, user, readOnly, ...), so policy rules and the rehearsal read both alike. The
provider is pickled by reference (module-level class, no state, nothing captured): the dynamic
provider process imports this module from the project directory.
"""

from __future__ import annotations

import re
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Mapping, Optional, Sequence

import docker as docker_sdk
import pulumi
import pulumi.dynamic
import pulumi_docker as docker
import requests
from pulumi.output import Unknown
from pulumi.runtime import rpc

from components import dockerhost

PROVIDER_KEY = "__provider"
RUN_LABEL = "django-docker.job-run"
"""Label on the container: the run id, so `delete` can find a leftover container."""
LOG_TAIL_LINES = 40

# Every input property and the Python type it arrives as (numbers come off the wire as float).
INPUT_TYPES: dict[str, Any] = {
    "image": str,
    "entrypoints": list,
    "command": list,
    "envs": list,
    "user": str,
    "readOnly": bool,
    "tmpfs": dict,
    "capabilities": dict,
    "securityOpts": list,
    "init": bool,
    "pidMode": str,
    "memory": (int, float),
    "memorySwap": (int, float),
    "networksAdvanced": list,
    "volumes": list,
    "labels": list,
    "logDriver": str,
    "logOpts": dict,
    "namePrefix": str,
    "timeoutSeconds": (int, float),
    # How the Docker host is reached, as the provider reaches it (components.dockerhost).
    "dockerHost": str,
    "sshOpts": list,
    "certPath": str,
    "caMaterial": str,
    "certMaterial": str,
    "keyMaterial": str,
}
REQUIRED = ("image", "command", "namePrefix", "timeoutSeconds")
# The keys each item of a structured property may have (a subset of pulumi-docker's).
NESTED_KEYS = {
    "capabilities": {"adds", "drops"},
    "networksAdvanced": {"name"},
    "volumes": {"volumeName", "containerPath", "readOnly"},
    "labels": {"label", "value"},
}
OUTPUT_KEYS = ("runId", "exitCode", "logTail", "startedAt", "finishedAt")
# How the Docker host is reached does not change the job: not compared. Recorded (the PEM
# texts secret: the engine marks an output secret when its input was) so `delete` reaches it.
CONNECTION_KEYS = ("dockerHost", "sshOpts", "certPath", "caMaterial", "certMaterial", "keyMaterial")
NOT_COMPARED = {PROVIDER_KEY, *CONNECTION_KEYS, *OUTPUT_KEYS}
NAME_PREFIX = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]{0,99}")
MB = 1024 * 1024


class JobError(Exception):
    """The job could not be run as asked (its properties, or the Docker host). One line."""


class JobFailed(JobError):
    """The job ran and exited non-zero, or did not finish in time. Nothing was recorded."""

    def __init__(self, message: str, *, run_id: str, container_name: str, exit_code: Optional[int]):
        super().__init__(message)
        self.run_id = run_id
        self.container_name = container_name
        self.exit_code = exit_code  # None when the job did not finish in time


# --- pure: property checks and the translation to the Docker API ------------------------------


def plain(value: Any) -> Any:
    """The value without rpc secret wrappers (the engine sends none to this provider, which
    does not accept secrets; direct callers and future engines might)."""
    if rpc.is_rpc_secret(value):
        value = rpc.unwrap_rpc_secret(value)
    if isinstance(value, dict):
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [plain(item) for item in value]
    return value


def has_unknown(value: Any) -> bool:
    """True when a preview value is not known yet, anywhere inside it."""
    if isinstance(value, Unknown) or (isinstance(value, str) and value == rpc.UNKNOWN):
        return True
    if isinstance(value, dict):
        return any(has_unknown(item) for item in value.values())
    if isinstance(value, list):
        return any(has_unknown(item) for item in value)
    return False


def property_problems(props: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(property, reason) for every key this provider does not know and every missing one.

    Keys only: it also runs on previews, where values may be unknown."""
    unknown = sorted(set(props) - set(INPUT_TYPES) - {PROVIDER_KEY})
    problems = [(key, "unknown property of a Job (it would be silently dropped)") for key in unknown]
    problems += [(key, "required") for key in REQUIRED if props.get(key) is None]
    return problems


def check_props(props: Mapping[str, Any]) -> None:
    problems = property_problems(props)
    if problems:
        raise JobError("Job properties refused: " + "; ".join(f"{key}: {reason}" for key, reason in problems))
    for key, value in props.items():
        if key != PROVIDER_KEY and value is not None and not isinstance(value, INPUT_TYPES[key]):
            raise JobError(f"Job property {key} has the wrong type ({type(value).__name__})")
    for key, allowed in NESTED_KEYS.items():
        value = props.get(key)
        items = [value] if isinstance(value, dict) else (value or [])
        for index, item in enumerate(items):
            where = key if isinstance(value, dict) else f"{key}[{index}]"
            if not isinstance(item, dict):
                raise JobError(f"Job property {where} must be an object")
            extra = sorted(set(item) - allowed)
            if extra:
                supported = ", ".join(sorted(allowed))
                raise JobError(f"Job property {where} has unknown keys: {', '.join(extra)} (supported: {supported})")
    for index, item in enumerate(props.get("envs") or []):
        # Name the position only: an env value is never echoed.
        if not isinstance(item, str) or "=" not in item:
            raise JobError(f"Job property envs[{index}] is not a KEY=value string")
    if not NAME_PREFIX.fullmatch(props["namePrefix"]):
        raise JobError(f"Job property namePrefix {props['namePrefix']!r} is not a valid container name prefix")
    if props["timeoutSeconds"] <= 0:
        raise JobError("Job property timeoutSeconds must be positive")
    if props.get("logOpts") and not props.get("logDriver"):
        raise JobError("Job property logOpts needs logDriver")


def docker_settings(props: Mapping[str, Any]) -> tuple[dict, list[str]]:
    """The checked props as `client.containers.create` arguments, and the networks to join after.

    Only the fields below; anything else was refused by the checks. Mirrors what the upstream
    provider does with the same fields (memory in MB, swap -1 = unlimited)."""
    props = plain(props)
    check_props(props)
    networks = [item["name"] for item in props.get("networksAdvanced") or []]
    caps = props.get("capabilities") or {}
    kwargs: dict[str, Any] = dict(
        image=props["image"],
        command=list(props["command"]),
        environment=list(props.get("envs") or []),
        labels={item["label"]: item["value"] for item in props.get("labels") or []},
        restart_policy={"Name": "no"},
        auto_remove=False,  # removed by create itself, after the exit code and logs are read
    )
    optional = {
        "user": props.get("user"),
        "read_only": props.get("readOnly"),
        "tmpfs": props.get("tmpfs"),
        "cap_add": caps.get("adds"),
        "cap_drop": caps.get("drops"),
        "security_opt": props.get("securityOpts"),
        "init": props.get("init"),
        "pid_mode": props.get("pidMode"),
        "entrypoint": props.get("entrypoints"),
        "network": networks[0] if networks else None,
    }
    kwargs.update({key: value for key, value in optional.items() if value not in (None, [], {})})
    if props.get("memory"):
        kwargs["mem_limit"] = int(props["memory"]) * MB
    swap = props.get("memorySwap")
    if swap:
        kwargs["memswap_limit"] = int(swap) * MB if swap > 0 else int(swap)
    if props.get("volumes"):
        kwargs["volumes"] = [
            f"{item['volumeName']}:{item['containerPath']}" + (":ro" if item.get("readOnly") else "")
            for item in props["volumes"]
        ]
    if props.get("logDriver"):
        kwargs["log_config"] = docker_sdk.types.LogConfig(
            type=props["logDriver"], config=dict(props.get("logOpts") or {})
        )
    return kwargs, networks[1:]


def host_of(props: Mapping[str, Any]) -> dockerhost.DockerHost:
    """The Docker host from the job's connection properties; no dockerHost (a job recorded
    before they existed): DOCKER_HOST and the other variables, as the provider falls back."""
    props = plain(props)
    if not props.get("dockerHost"):
        return dockerhost.resolve({}, None)
    return dockerhost.DockerHost(
        host=props["dockerHost"],
        ssh_opts=tuple(props.get("sshOpts") or ()),
        cert_path=props.get("certPath") or "",
        ca_material=props.get("caMaterial") or "",
        cert_material=props.get("certMaterial") or "",
        key_material=props.get("keyMaterial") or "",
    )


def job_diff(olds: Mapping[str, Any], news: Mapping[str, Any]) -> list[str]:
    """The input keys whose value changed (or is not known yet), sorted."""
    keys = sorted((set(olds) | set(news)) - NOT_COMPARED)
    return [key for key in keys if has_unknown(news.get(key)) or plain(olds.get(key)) != plain(news.get(key))]


def one_line(lines: Sequence[str]) -> str:
    return " | ".join(lines) or "no output"


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


# --- the one layer that acts -------------------------------------------------------------------


def _wait(client: docker_sdk.DockerClient, container_id: str, timeout: float) -> Optional[dict]:
    """The container's State once it stopped, or None after `timeout` seconds.

    Polls instead of the wait endpoint: that one's timeout is the HTTP read timeout, which the
    ssh transport ignores (docker/transport/sshconn.py reads the ssh process's stdout)."""
    deadline = time.monotonic() + timeout
    delay = 0.05
    while True:
        state = client.api.inspect_container(container_id)["State"]
        if state["Status"] in ("exited", "dead"):
            return state
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        time.sleep(min(delay, left))
        delay = min(delay * 2, 1.0)


def _log_tail(container) -> list[str]:
    try:
        raw = container.logs(stdout=True, stderr=True, tail=LOG_TAIL_LINES)
    except docker_sdk.errors.APIError:  # a log driver the API cannot read back (syslog, none)
        return ["(logs cannot be read back from this log driver)"]
    return [line for line in raw.decode("utf-8", errors="replace").splitlines() if line.strip()][-LOG_TAIL_LINES:]


def _remove(container) -> Optional[str]:
    """Remove (kill first, anonymous volumes too); the reason when it could not. Never raises."""
    try:
        container.remove(force=True, v=True)
        return None
    except docker_sdk.errors.NotFound:
        return None
    except Exception as exc:  # noqa: BLE001 - reported by the caller
        return f"{type(exc).__name__}: {exc}".splitlines()[0]


def run_job(props: Mapping[str, Any]) -> dict:
    """Run the job to completion; its outputs, or JobFailed / JobError. The container is removed
    in every case (success, failure, timeout, error)."""
    kwargs, extra_networks = docker_settings(props)
    props = plain(props)
    prefix, timeout = props["namePrefix"], float(props["timeoutSeconds"])
    run_id = uuid.uuid4().hex
    name = f"{prefix}-{run_id[:7]}"
    kwargs["labels"][RUN_LABEL] = run_id
    try:
        client = dockerhost.connect(host_of(props))
    except dockerhost.HostError as exc:
        raise JobError(f"{prefix}: cannot reach the Docker host: {exc}") from None
    container = None
    try:
        container = client.containers.create(name=name, **kwargs)
        for network in extra_networks:
            client.api.connect_container_to_network(container.id, network)
        started_at, started = _now(), time.monotonic()
        container.start()
        state = _wait(client, container.id, timeout)
        if state is None:
            try:
                container.kill()
            except docker_sdk.errors.APIError:  # it exited meanwhile; the removal below forces anyway
                pass
        elapsed = time.monotonic() - started
        finished_at = _now()
        tail = _log_tail(container)
    except (docker_sdk.errors.DockerException, requests.exceptions.RequestException) as exc:
        raise JobError(f"{prefix}: Docker refused or lost the job: {exc}".splitlines()[0]) from None
    finally:
        cleanup_problem = _remove(container) if container is not None else None
        client.close()

    if state is None:
        raise JobFailed(
            f"{prefix} did not finish within {timeout:g}s; nothing after it was changed, and the next "
            f"`pulumi up` runs it again. Last lines: {one_line(tail)}",
            run_id=run_id,
            container_name=name,
            exit_code=None,
        )
    code = int(state["ExitCode"])
    if code != 0:
        oom = " (out of memory)" if state.get("OOMKilled") else ""
        raise JobFailed(
            f"{prefix} exited {code}{oom} after {elapsed:.1f}s; nothing after it was changed, and the next "
            f"`pulumi up` runs it again. Last lines: {one_line(tail)}",
            run_id=run_id,
            container_name=name,
            exit_code=code,
        )
    if cleanup_problem:
        # Not recorded either: a leftover container is not hidden behind a success.
        raise JobError(
            f"{prefix} exited 0 but its container {name} could not be removed ({cleanup_problem}); "
            "the next `pulumi up` runs it again"
        )
    # The inputs as outputs: the dynamic provider's diff sees only old outputs. The connection
    # too (diff ignores it), so `delete` looks for leftovers on the host the job ran on.
    outs = {key: value for key, value in props.items() if key not in (PROVIDER_KEY, *OUTPUT_KEYS)}
    return {
        **outs,
        "runId": run_id,
        "exitCode": 0,
        "logTail": "\n".join(tail),
        "startedAt": started_at,
        "finishedAt": finished_at,
    }


class JobProvider(pulumi.dynamic.ResourceProvider):
    """Runs the job in `create`; replaces it on any input change; removes leftovers in `delete`.

    Stateless on purpose: the instance pickles to a reference to this class."""

    def check(self, _olds: dict[str, Any], news: dict[str, Any]) -> pulumi.dynamic.CheckResult:
        # Refused at preview already, not only when `pulumi up` gets to the job.
        failures = [pulumi.dynamic.CheckFailure(key, reason) for key, reason in property_problems(news)]
        return pulumi.dynamic.CheckResult(news, failures)

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> pulumi.dynamic.DiffResult:
        # `olds` are the outputs (the dynamic provider has no old inputs): create copies the inputs there.
        changed = job_diff(olds, news)
        if not changed:
            return pulumi.dynamic.DiffResult(changes=False)
        # The new run starts beside the recorded one, whose delete does nothing.
        return pulumi.dynamic.DiffResult(changes=True, replaces=changed, delete_before_replace=False)

    def create(self, props: dict[str, Any]) -> pulumi.dynamic.CreateResult:
        outs = run_job(props)
        return pulumi.dynamic.CreateResult(id_=outs["runId"], outs=outs)

    def read(self, id_: str, props: dict[str, Any]) -> pulumi.dynamic.ReadResult:
        # A finished run has nothing live to read: the state is the record.
        return pulumi.dynamic.ReadResult(id_, props)

    def update(self, _id: str, _olds: dict[str, Any], _news: dict[str, Any]) -> pulumi.dynamic.UpdateResult:
        raise JobError("a Job is never updated in place (diff replaces it on any change); this is a bug")

    def delete(self, id_: str, props: dict[str, Any]) -> None:
        # Best effort: create removes its container; one remains only if the provider process
        # died mid-run. Never fails a destroy or a replacement for it.
        try:
            client = dockerhost.connect(host_of(props), timeout=15)
            try:
                for container in client.containers.list(all=True, filters={"label": f"{RUN_LABEL}={id_}"}):
                    _remove(container)
            finally:
                client.close()
        except Exception:  # noqa: BLE001
            pass


# --- the resource --------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class JobArgs:
    """What a job runs and how it is confined. Python names and types as pulumi-docker's
    `docker.Container` args, so the shared hardening kwargs (common.hardened_app_kwargs,
    memory_kwargs, label_args) apply unchanged."""

    name_prefix: str
    """Container name prefix (the container is `<prefix>-<7 hex of the run id>`) and the name in messages."""
    image: pulumi.Input[str]
    """Image id (`sha256:...`), `repo@sha256:...` reference, or the pinned tag of an image a
    container of the stack already runs (the backup's postgres); never `latest`. Not pulled: it
    must be on the host."""
    command: pulumi.Input[Sequence[pulumi.Input[str]]]
    """The argv to run to completion."""
    entrypoints: Optional[Sequence[str]] = None
    """Replaces the image's entrypoint (lego's image starts /lego)."""
    timeout_seconds: int
    """Longest run; past it the container is killed and `pulumi up` fails."""
    envs: Optional[pulumi.Input[Sequence[pulumi.Input[str]]]] = None
    """KEY=value list; always made secret (it holds the database password and SECRET_KEY)."""
    user: Optional[str] = None
    """`uid:gid` to run as."""
    read_only: Optional[bool] = None
    """Read-only root filesystem."""
    tmpfs: Optional[Mapping[str, str]] = None
    """tmpfs mounts: path -> mount options."""
    capabilities: Optional[docker.ContainerCapabilitiesArgs] = None
    """Capabilities to add or drop (`drops=["ALL"]`)."""
    security_opts: Optional[Sequence[str]] = None
    """Security options (`no-new-privileges:true`)."""
    init: Optional[bool] = None
    """Run an init as PID 1 (reaps children, forwards signals)."""
    pid_mode: Optional[pulumi.Input[str]] = None
    """`container:<id>`: share that container's PID namespace (the ACME job signals nginx)."""
    memory: Optional[int] = None
    """Memory limit in MB."""
    memory_swap: Optional[int] = None
    """Memory + swap limit in MB; -1 = swap not limited apart from memory."""
    networks_advanced: Optional[Sequence[docker.ContainerNetworksAdvancedArgs]] = None
    """Networks to join (only `name`): the first at create, the others before start."""
    volumes: Optional[Sequence[docker.ContainerVolumeArgs]] = None
    """Named volumes (`volume_name`, `container_path`, optional `read_only`)."""
    labels: Optional[Sequence[docker.ContainerLabelArgs]] = None
    """Container labels; the provider adds `django-docker.job-run=<run id>`."""
    log_driver: Optional[str] = None
    """Log driver; json-file (or another the API can read back) keeps the log tail readable."""
    log_opts: Optional[Mapping[str, str]] = None
    """Log driver options (rotation)."""
    docker_host: str = ""
    """Where the Docker engine is, as the provider reaches it (settings.provider.DockerAccess):
    unix://, tcp:// or ssh://; "" = DOCKER_HOST or the local socket. This and the five below are
    not compared: moving how the host is reached re-runs nothing."""
    ssh_opts: Sequence[str] = ()
    """`docker:sshOpts`: the ssh options the provider passes (ssh:// only)."""
    cert_path: str = ""
    """`docker:certPath`: a directory with ca.pem, cert.pem, key.pem (tcp:// with TLS)."""
    ca_material: Optional[pulumi.Input[str]] = None
    """`docker:caMaterial`: PEM (secret), with cert_material and key_material."""
    cert_material: Optional[pulumi.Input[str]] = None
    """`docker:certMaterial`: PEM (secret)."""
    key_material: Optional[pulumi.Input[str]] = None
    """`docker:keyMaterial`: PEM (secret)."""

    def __post_init__(self) -> None:
        if not NAME_PREFIX.fullmatch(self.name_prefix):
            raise ValueError(f"JobArgs.name_prefix {self.name_prefix!r} is not a valid container name prefix")
        if self.timeout_seconds <= 0:
            raise ValueError("JobArgs.timeout_seconds must be positive")


def job_props(args: JobArgs) -> dict[str, Any]:
    """The resource's input properties, in pulumi-docker's wire names (unset ones left out)."""
    props = {
        "image": args.image,
        "entrypoints": args.entrypoints,
        "command": args.command,
        "envs": pulumi.Output.secret(args.envs) if args.envs is not None else None,
        "user": args.user,
        "readOnly": args.read_only,
        "tmpfs": args.tmpfs,
        "capabilities": args.capabilities,  # input types serialize to their wire names (drops, volumeName, ...)
        "securityOpts": args.security_opts,
        "init": args.init,
        "pidMode": args.pid_mode,
        "memory": args.memory,
        "memorySwap": args.memory_swap,
        "networksAdvanced": args.networks_advanced,
        "volumes": args.volumes,
        "labels": args.labels,
        "logDriver": args.log_driver,
        "logOpts": args.log_opts,
        "namePrefix": args.name_prefix,
        "timeoutSeconds": args.timeout_seconds,
        **connection_props(
            args.docker_host, args.ssh_opts, args.cert_path, args.ca_material, args.cert_material, args.key_material
        ),
    }
    return {key: value for key, value in props.items() if value is not None}


def connection_props(
    host: str,
    ssh_opts: Sequence[str],
    cert_path: str,
    ca_material: Optional[pulumi.Input[str]],
    cert_material: Optional[pulumi.Input[str]],
    key_material: Optional[pulumi.Input[str]],
) -> dict[str, Any]:
    """The Docker connection's properties in their wire names (a Job's, an NginxSite's); unset
    ones None. The PEMs secret whatever the caller passed: the private key above all."""
    return {
        "dockerHost": host,
        "sshOpts": list(ssh_opts) or None,
        "certPath": cert_path or None,
        "caMaterial": pulumi.Output.secret(ca_material) if ca_material is not None else None,
        "certMaterial": pulumi.Output.secret(cert_material) if cert_material is not None else None,
        "keyMaterial": pulumi.Output.secret(key_material) if key_material is not None else None,
    }


class Job(pulumi.dynamic.Resource, module="django-docker", name="Job"):
    """A one-shot container run by `pulumi up`: recorded only when it exited 0, run again when
    any input changes. Type token `pulumi-python:dynamic/django-docker:Job`."""

    run_id: pulumi.Output[str]
    """The run's id (also the resource id); resolves only after the job exited 0."""
    exit_code: pulumi.Output[int]
    """Always 0 (a failed run is not recorded)."""
    log_tail: pulumi.Output[str]
    """The last lines the job printed."""
    started_at: pulumi.Output[str]
    """ISO 8601 UTC."""
    finished_at: pulumi.Output[str]
    """ISO 8601 UTC."""

    def __init__(self, name: str, args: JobArgs, opts: Optional[pulumi.ResourceOptions] = None):
        # Output-only properties declared as None: the SDK sends none of them, and exposes each
        # as an attribute under its wire name once the engine answers.
        props = {**job_props(args), **{key: None for key in OUTPUT_KEYS}}
        super().__init__(JobProvider(), name, props, opts)
        self.run_id = self.runId  # type: ignore[attr-defined]
        # Numbers come back from the engine as float.
        self.exit_code = self.exitCode.apply(lambda code: None if code is None else int(code))  # type: ignore[attr-defined]
        self.log_tail = self.logTail  # type: ignore[attr-defined]
        self.started_at = self.startedAt  # type: ignore[attr-defined]
        self.finished_at = self.finishedAt  # type: ignore[attr-defined]
