"""Planned pulumi-docker inputs -> Docker SDK arguments. Pure: no engine, no I/O.

Each pulumi-docker input field (wire name) is translated one to one, the way the
provider (terraform-provider-docker) passes it to the Docker API. A field this
module does not know is an error that names it: the rehearsal never silently
drops part of what `pulumi up` would create.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Optional

from components import settings
from rehearsal.errors import RehearsalError

MIB = 1024 * 1024


class UnsupportedInput(RehearsalError):
    """A planned input the rehearsal cannot reproduce on the engine."""


# --------------------------------------------------------------------------- helpers


def substitute(value: Any, mapping: Mapping[str, str]) -> Any:
    """Replace every string equal to a planned (mock) id or name with the real one (also after
    `container:`, as pidMode, networkMode and ipcMode name another container)."""
    if isinstance(value, str):
        if value.startswith("container:") and value[len("container:") :] in mapping:
            return "container:" + mapping[value[len("container:") :]]
        return mapping.get(value, value)
    if isinstance(value, list):
        return [substitute(v, mapping) for v in value]
    if isinstance(value, dict):
        return {k: substitute(v, mapping) for k, v in value.items()}
    return value


def duration_ns(text: str, where: str) -> int:
    """A Go duration ("1m30s", "500ms", "0s") in nanoseconds, as the provider parses it."""
    ns = settings.duration_ns(str(text)) if str(text).strip() else 0
    if ns is None:
        raise UnsupportedInput(f"{where}: {text!r} is not a Go duration (e.g. 30s, 1m30s)")
    return ns


def _int(value: Any) -> int:
    # Numbers arrive from the plan as floats (protobuf Struct).
    return int(value)


def _mib(value: Any) -> int:
    return _int(value) * MIB


def _check_known(kind: str, name: str, inputs: Mapping[str, Any], known: set[str], path: str = "") -> None:
    unknown = sorted(k for k, v in inputs.items() if k not in known and v not in (None, [], {}))
    if unknown:
        where = f"{path}." if path else ""
        raise UnsupportedInput(
            f"{kind} {name}: input field{'s' if len(unknown) > 1 else ''} "
            f"{', '.join(where + k for k in unknown)} not understood by the rehearsal; "
            "teach rehearsal/emulation/translate.py to apply it rather than dropping it"
        )


# --------------------------------------------------------------------------- networks and volumes


NETWORK_FIELDS = {
    "name",
    "driver",
    "internal",
    "ipamConfigs",
    "ipamDriver",
    "ipamOptions",
    "attachable",
    "ipv6",
    "labels",
    "options",
    "checkDuplicate",
}
IPAM_FIELDS = {"subnet", "gateway", "ipRange", "auxAddress"}


def network_kwargs(
    name: str, inputs: Mapping[str, Any], real_name: Optional[str], extra_labels: Mapping[str, str]
) -> dict:
    """Arguments of client.networks.create for a planned docker.Network."""
    _check_known("network", name, inputs, NETWORK_FIELDS)
    pools = []
    for i, pool in enumerate(inputs.get("ipamConfigs") or []):
        _check_known("network", name, pool, IPAM_FIELDS, f"ipamConfigs[{i}]")
        pools.append(
            {
                "subnet": pool.get("subnet"),
                "gateway": pool.get("gateway"),
                "iprange": pool.get("ipRange"),
                "aux_addresses": pool.get("auxAddress"),
            }
        )
    kwargs = {
        "name": real_name,
        "driver": inputs.get("driver") or "bridge",
        "internal": bool(inputs.get("internal", False)),
        "attachable": bool(inputs.get("attachable", False)),
        "enable_ipv6": bool(inputs.get("ipv6", False)),
        "options": dict(inputs.get("options") or {}) or None,
        "labels": {**labels_dict(inputs.get("labels")), **extra_labels},
    }
    if pools or inputs.get("ipamDriver") or inputs.get("ipamOptions"):
        kwargs["ipam"] = {
            "driver": inputs.get("ipamDriver") or "default",
            "pool_configs": pools,
            "options": dict(inputs.get("ipamOptions") or {}) or None,
        }
    return kwargs


VOLUME_FIELDS = {"name", "driver", "driverOpts", "labels"}


def volume_kwargs(
    name: str, inputs: Mapping[str, Any], real_name: Optional[str], extra_labels: Mapping[str, str]
) -> dict:
    """Arguments of client.volumes.create for a planned docker.Volume."""
    _check_known("volume", name, inputs, VOLUME_FIELDS)
    return {
        "name": real_name,
        "driver": inputs.get("driver") or "local",
        "driver_opts": dict(inputs.get("driverOpts") or {}) or None,
        "labels": {**labels_dict(inputs.get("labels")), **extra_labels},
    }


def labels_dict(labels: Any) -> dict[str, str]:
    """pulumi-docker's labels=[{label, value}] as a dict."""
    result = {}
    for item in labels or []:
        unknown = set(item) - {"label", "value"}
        if unknown:
            raise UnsupportedInput(f"labels: field {sorted(unknown)[0]} not understood by the rehearsal")
        result[item["label"]] = item["value"]
    return result


# --------------------------------------------------------------------------- containers


@dataclass
class Upload:
    path: str
    content: bytes
    mode: int
    uid: int = 0
    gid: int = 0


@dataclass
class NetworkAttachment:
    name: str
    aliases: list[str] = field(default_factory=list)
    ipv4_address: str | None = None
    ipv6_address: str | None = None


@dataclass
class Lifecycle:
    """What `pulumi up` does around create: start, wait for health, wait for the exit."""

    start: bool = True
    must_run: bool = True
    attach: bool = False
    logs: bool = False
    wait: bool = False
    wait_timeout: int = 60
    destroy_grace_seconds: int = 0
    remove_volumes: bool = True


@dataclass
class ContainerSpec:
    name: str  # the real container name
    create: dict  # client.api.create_container(**create, host_config=..., networking_config=...)
    host_config: dict  # client.api.create_host_config(**host_config)
    networks: list[NetworkAttachment]
    uploads: list[Upload]
    lifecycle: Lifecycle


# Fields translated below; every other non-empty input field is an error.
CONTAINER_FIELDS = {
    # create
    "image",
    "name",
    "command",
    "entrypoints",
    "envs",
    "user",
    "hostname",
    "domainname",
    "workingDir",
    "labels",
    "healthcheck",
    "stopSignal",
    "stopTimeout",
    "tty",
    "stdinOpen",
    "ports",
    # host config
    "volumes",
    "mounts",
    "tmpfs",
    "memory",
    "memoryReservation",
    "memorySwap",
    "shmSize",
    "restart",
    "maxRetryCount",
    "readOnly",
    "capabilities",
    "securityOpts",
    "init",
    "logDriver",
    "logOpts",
    "networkMode",
    "privileged",
    "publishAllPorts",
    "pidMode",
    "ipcMode",
    "usernsMode",
    "groupAdds",
    "sysctls",
    "dns",
    "dnsOpts",
    "dnsSearches",
    "hosts",
    "ulimits",
    "cpuShares",
    "cpuSet",
    "cpus",
    "cpuPeriod",
    "cpuQuota",
    "runtime",
    "rm",
    # networks, files, lifecycle
    "networksAdvanced",
    "uploads",
    "start",
    "mustRun",
    "attach",
    "logs",
    "wait",
    "waitTimeout",
    "destroyGraceSeconds",
    "removeVolumes",
    "containerReadRefreshTimeoutMilliseconds",
}
NETWORK_ATTACH_FIELDS = {"name", "aliases", "ipv4Address", "ipv6Address"}
VOLUME_MOUNT_FIELDS = {"volumeName", "containerPath", "readOnly", "hostPath", "fromContainer", "selinuxRelabel"}
MOUNT_FIELDS = {"target", "type", "source", "readOnly"}
HEALTHCHECK_FIELDS = {"tests", "interval", "timeout", "startPeriod", "retries"}
PORT_FIELDS = {"internal", "external", "ip", "protocol"}
UPLOAD_FIELDS = {
    "file",
    "content",
    "contentBase64",
    "source",
    "sourceHash",
    "executable",
    "permissions",
    "owner",
    "group",
}
CAPABILITY_FIELDS = {"adds", "drops"}
ULIMIT_FIELDS = {"name", "soft", "hard"}
HOST_FIELDS = {"host", "ip"}


def container_spec(
    name: str,
    inputs: Mapping[str, Any],
    *,
    real_name: str,
    extra_labels: Mapping[str, str],
    read_source: Callable[[str], bytes] = lambda path: Path(path).read_bytes(),
) -> ContainerSpec:
    """Translate a planned docker.Container (inputs already substituted to real names)."""
    _check_known("container", name, inputs, CONTAINER_FIELDS)
    i = inputs
    where = f"container {name}"

    create: dict[str, Any] = {"image": i["image"], "name": i.get("name") or real_name}
    if i.get("command"):
        if any(arg == "" for arg in i["command"]):
            raise UnsupportedInput(f"{where}: values for command may not be empty")  # as the provider says
        create["command"] = list(i["command"])
    for wire, kwarg in (("entrypoints", "entrypoint"), ("envs", "environment")):
        if i.get(wire):
            create[kwarg] = list(i[wire])
    for wire, kwarg in (
        ("user", "user"),
        ("hostname", "hostname"),
        ("domainname", "domainname"),
        ("workingDir", "working_dir"),
        ("stopSignal", "stop_signal"),
    ):
        if i.get(wire):
            create[kwarg] = i[wire]
    if i.get("stopTimeout") is not None:
        create["stop_timeout"] = _int(i["stopTimeout"])
    for wire, kwarg in (("tty", "tty"), ("stdinOpen", "stdin_open")):
        if i.get(wire):
            create[kwarg] = True
    create["labels"] = {**labels_dict(i.get("labels")), **extra_labels}
    if i.get("healthcheck"):
        create["healthcheck"] = healthcheck(i["healthcheck"], where)

    host: dict[str, Any] = {}
    ports, bindings = port_bindings(i.get("ports") or [], where)
    if ports:
        create["ports"] = ports
        host["port_bindings"] = bindings

    binds, volumes_from, paths = [], [], []
    for n, vol in enumerate(i.get("volumes") or []):
        _check_known(where, "", vol, VOLUME_MOUNT_FIELDS, f"volumes[{n}]")
        if vol.get("fromContainer"):
            volumes_from.append(vol["fromContainer"])
            continue
        source = vol.get("volumeName") or vol.get("hostPath")
        target = vol["containerPath"]
        paths.append(target)
        if not source:  # an anonymous volume, like VOLUME in a Dockerfile
            continue
        mode = "ro" if vol.get("readOnly") else "rw"
        if vol.get("selinuxRelabel"):
            mode += "," + vol["selinuxRelabel"]
        binds.append(f"{source}:{target}:{mode}")
    if paths:
        create["volumes"] = paths
    if binds:
        host["binds"] = binds
    if volumes_from:
        host["volumes_from"] = volumes_from
    mounts = []
    for n, mount in enumerate(i.get("mounts") or []):
        _check_known(where, "", mount, MOUNT_FIELDS, f"mounts[{n}]")
        mounts.append(
            {
                "target": mount["target"],
                "source": mount.get("source") or "",
                "type": mount["type"],
                "read_only": bool(mount.get("readOnly", False)),
            }
        )
    if mounts:
        host["mounts"] = mounts
    if i.get("tmpfs"):
        host["tmpfs"] = dict(i["tmpfs"])

    if i.get("memory"):
        host["mem_limit"] = _mib(i["memory"])
    if i.get("memoryReservation"):
        host["mem_reservation"] = _mib(i["memoryReservation"])
    if i.get("memorySwap"):
        swap = _int(i["memorySwap"])
        host["memswap_limit"] = swap * MIB if swap > 0 else swap
    if i.get("shmSize"):
        host["shm_size"] = _mib(i["shmSize"])
    host["restart_policy"] = {"Name": i.get("restart") or "no", "MaximumRetryCount": _int(i.get("maxRetryCount") or 0)}
    if i.get("readOnly"):
        host["read_only"] = True
    if i.get("capabilities"):
        caps = i["capabilities"]
        _check_known(where, "", caps, CAPABILITY_FIELDS, "capabilities")
        if caps.get("adds"):
            host["cap_add"] = list(caps["adds"])
        if caps.get("drops"):
            host["cap_drop"] = list(caps["drops"])
    if i.get("securityOpts"):
        host["security_opt"] = list(i["securityOpts"])
    host["init"] = bool(i.get("init", False))
    if i.get("logDriver") or i.get("logOpts"):
        host["log_config"] = {"type": i.get("logDriver") or "json-file", "config": dict(i.get("logOpts") or {})}
    for wire, kwarg in (("privileged", "privileged"), ("publishAllPorts", "publish_all_ports"), ("rm", "auto_remove")):
        if i.get(wire):
            host[kwarg] = True
    for wire, kwarg in (
        ("pidMode", "pid_mode"),
        ("ipcMode", "ipc_mode"),
        ("usernsMode", "userns_mode"),
        ("cpuSet", "cpuset_cpus"),
        ("runtime", "runtime"),
    ):
        if i.get(wire):
            host[kwarg] = i[wire]
    for wire, kwarg in (
        ("groupAdds", "group_add"),
        ("dns", "dns"),
        ("dnsOpts", "dns_opt"),
        ("dnsSearches", "dns_search"),
    ):
        if i.get(wire):
            host[kwarg] = list(i[wire])
    if i.get("sysctls"):
        host["sysctls"] = dict(i["sysctls"])
    if i.get("hosts"):
        for n, entry in enumerate(i["hosts"]):
            _check_known(where, "", entry, HOST_FIELDS, f"hosts[{n}]")
        host["extra_hosts"] = {entry["host"]: entry["ip"] for entry in i["hosts"]}
    if i.get("ulimits"):
        for n, limit in enumerate(i["ulimits"]):
            _check_known(where, "", limit, ULIMIT_FIELDS, f"ulimits[{n}]")
        host["ulimits"] = [{"name": u["name"], "soft": _int(u["soft"]), "hard": _int(u["hard"])} for u in i["ulimits"]]
    if i.get("cpuShares"):
        host["cpu_shares"] = _int(i["cpuShares"])
    if i.get("cpus"):
        host["nano_cpus"] = int(float(i["cpus"]) * 1e9)
    if i.get("cpuPeriod"):
        host["cpu_period"] = _int(i["cpuPeriod"])
    if i.get("cpuQuota"):
        host["cpu_quota"] = _int(i["cpuQuota"])

    networks = []
    for n, net in enumerate(i.get("networksAdvanced") or []):
        _check_known(where, "", net, NETWORK_ATTACH_FIELDS, f"networksAdvanced[{n}]")
        networks.append(
            NetworkAttachment(
                net["name"],
                list(net.get("aliases") or []),
                net.get("ipv4Address") or None,
                net.get("ipv6Address") or None,
            )
        )
    if i.get("networkMode"):
        host["network_mode"] = i["networkMode"]
    elif networks:
        # The provider disconnects the default bridge and connects each planned
        # network; creating on the first one directly is the same end state.
        host["network_mode"] = networks[0].name

    uploads = [upload(u, where, n, read_source) for n, u in enumerate(i.get("uploads") or [])]

    attach = bool(i.get("attach", False))
    lifecycle = Lifecycle(
        start=bool(i.get("start", True)),
        must_run=bool(i.get("mustRun", True)),
        attach=attach,
        logs=bool(i.get("logs", False)),
        wait=bool(i.get("wait", False)),
        wait_timeout=_int(i.get("waitTimeout") or 60),
        destroy_grace_seconds=_int(i.get("destroyGraceSeconds") or 0),
        remove_volumes=bool(i.get("removeVolumes", True)),
    )
    return ContainerSpec(create["name"], create, host, networks, uploads, lifecycle)


def healthcheck(h: Mapping[str, Any], where: str) -> dict:
    _check_known(where, "", h, HEALTHCHECK_FIELDS, "healthcheck")
    result: dict[str, Any] = {"test": list(h["tests"])}
    for wire, key in (("interval", "interval"), ("timeout", "timeout"), ("startPeriod", "start_period")):
        if h.get(wire) is not None:
            result[key] = duration_ns(h[wire], f"{where}: healthcheck.{wire}")
    if h.get("retries") is not None:
        result["retries"] = _int(h["retries"])
    return result


def port_bindings(ports: list, where: str) -> tuple[list, dict]:
    """(ports for create_container, port_bindings for the host config)."""
    exposed: list = []
    bindings: dict[str, list] = {}
    for n, port in enumerate(ports):
        _check_known(where, "", port, PORT_FIELDS, f"ports[{n}]")
        internal = _int(port["internal"])
        protocol = port.get("protocol") or "tcp"
        key = f"{internal}/{protocol}"
        exposed.append((internal, protocol) if protocol != "tcp" else internal)
        external = _int(port["external"]) if port.get("external") else None
        bindings.setdefault(key, []).append((port.get("ip") or "0.0.0.0", external))
    return exposed, bindings


def upload(u: Mapping[str, Any], where: str, n: int, read_source: Callable[[str], bytes]) -> Upload:
    _check_known(where, "", u, UPLOAD_FIELDS, f"uploads[{n}]")
    given = [k for k in ("content", "contentBase64", "source") if u.get(k)]
    if len(given) != 1:
        raise UnsupportedInput(
            f"{where}: uploads[{n}] needs exactly one of content, contentBase64, source (has {given or 'none'})"
        )
    if u.get("content"):
        data = u["content"].encode()
    elif u.get("contentBase64"):
        data = base64.b64decode(u["contentBase64"])
    else:
        data = read_source(u["source"])
    if u.get("permissions"):
        mode = int(str(u["permissions"]), 8)
    else:
        mode = 0o744 if u.get("executable") else 0o644
    return Upload(u["file"], data, mode, _int(u.get("owner") or 0), _int(u.get("group") or 0))


# --------------------------------------------------------------------------- images


IMAGE_FIELDS = {"imageName", "build", "skipPush", "registry", "buildOnPreview"}
BUILD_FIELDS = {
    "context",
    "dockerfile",
    "args",
    "platform",
    "builderVersion",
    "target",
    "cacheFrom",
    "network",
    "addHosts",
}


def image_build_kwargs(name: str, inputs: Mapping[str, Any], project_root: Path) -> dict:
    """Arguments of client.api.build (classic builder) for a planned docker.Image."""
    _check_known("image", name, inputs, IMAGE_FIELDS)
    build = inputs.get("build") or {}
    _check_known("image", name, build, BUILD_FIELDS, "build")
    context = Path(build.get("context") or ".")
    if not context.is_absolute():
        context = project_root / context
    dockerfile = Path(build.get("dockerfile") or context / "Dockerfile")
    if not dockerfile.is_absolute():
        dockerfile = project_root / dockerfile
    try:
        relative = dockerfile.relative_to(context)
    except ValueError:
        raise UnsupportedInput(
            f"image {name}: build.dockerfile {dockerfile} lies outside build.context {context}"
        ) from None
    kwargs: dict[str, Any] = {
        "path": str(context),
        "dockerfile": str(relative),
        "tag": inputs["imageName"],
        "buildargs": {k: str(v) for k, v in (build.get("args") or {}).items()},
    }
    if build.get("platform"):
        kwargs["platform"] = build["platform"]
    if build.get("target"):
        kwargs["target"] = build["target"]
    if build.get("network"):
        kwargs["network_mode"] = build["network"]
    if build.get("cacheFrom"):
        kwargs["cache_from"] = list((build["cacheFrom"] or {}).get("images") or [])
    if build.get("addHosts"):
        kwargs["extra_hosts"] = dict(h.split(":", 1) for h in build["addHosts"])
    return kwargs


REMOTE_IMAGE_FIELDS = {"name", "keepLocally", "forceRemove", "platform", "pullTriggers", "triggers"}


def remote_image_name(name: str, inputs: Mapping[str, Any]) -> str:
    """The reference a planned docker.RemoteImage pulls."""
    _check_known("remote image", name, inputs, REMOTE_IMAGE_FIELDS)
    return inputs["name"]


# --------------------------------------------------------------------------- swarm services
#
# docker.Service inputs (wire names, as the Python SDK sends them) -> the arguments of the
# Docker SDK's APIClient.create_service / update_service, the way createServiceSpec builds the
# swarm.ServiceSpec (terraform-provider-docker v4.5.0 resource_docker_service_structures.go:589ff).

SERVICE_FIELDS = {
    "name",
    "labels",
    "taskSpec",
    "mode",
    "endpointSpec",
    "updateConfig",
    "rollbackConfig",
    "convergeConfig",
}
TASK_SPEC_FIELDS = {"containerSpec", "resources", "restartPolicy", "placement", "networksAdvanceds", "logDriver"}
SERVICE_CONTAINER_FIELDS = {
    "image",
    "commands",
    "args",
    "env",
    "user",
    "readOnly",
    "mounts",
    "healthcheck",
    "secrets",
    "configs",
    "stopGracePeriod",
    "stopSignal",
    "capDrops",
    "capAdds",
    "init",
    "hostname",
    "labels",
    "dir",
    "groups",
    "sysctl",
}
SERVICE_MOUNT_FIELDS = {"type", "target", "source", "readOnly", "tmpfsOptions"}
SERVICE_HEALTH_FIELDS = {"tests", "interval", "timeout", "startPeriod", "retries"}
SECRET_REF_FIELDS = {"secretId", "secretName", "fileName", "fileUid", "fileGid", "fileMode"}
CONFIG_REF_FIELDS = {"configId", "configName", "fileName", "fileUid", "fileGid", "fileMode"}
ROLLOUT_FIELDS = {"parallelism", "delay", "failureAction", "monitor", "maxFailureRatio", "order"}
SERVICE_PORT_FIELDS = {"targetPort", "publishedPort", "publishMode", "protocol", "name"}


@dataclass(frozen=True)
class ServiceSpec:
    """What the rehearsal sends for a docker.Service, and how it waits."""

    name: str
    create: dict
    """Keyword arguments of APIClient.create_service (and update_service)."""
    converge_delay_s: Optional[float]
    """converge_config.delay in seconds; None: no converge_config, nothing waits."""
    converge_timeout_s: float
    stop_grace_s: float
    """stop_grace_period: how long a delete waits for the tasks' containers (0: not at all)."""


def _seconds(text: Any, where: str) -> float:
    return duration_ns(text, where) / 1e9


def _file_reference(make, ref: Mapping[str, Any], kind: str, known: set[str], where: str, name: str):
    """A secret's or config's file in the task (docker.types.SecretReference / ConfigReference)."""
    _check_known("service", name, ref, known, where)
    return make(
        ref[f"{kind}Id"],
        ref.get(f"{kind}Name") or "",
        filename=ref["fileName"],
        uid=str(ref.get("fileUid") or "0"),
        gid=str(ref.get("fileGid") or "0"),
        mode=_int(ref.get("fileMode", 0o444)),
    )


def service_spec(name: str, inputs: Mapping[str, Any], real_name: str, extra_labels: Mapping[str, str]) -> ServiceSpec:
    """Docker SDK arguments for a planned docker.Service (see the section comment)."""
    from docker import types

    _check_known("service", name, inputs, SERVICE_FIELDS)
    task = inputs.get("taskSpec") or {}
    _check_known("service", name, task, TASK_SPEC_FIELDS, "taskSpec")
    cs = task.get("containerSpec") or {}
    _check_known("service", name, cs, SERVICE_CONTAINER_FIELDS, "taskSpec.containerSpec")
    if not cs.get("image"):
        raise UnsupportedInput(f"service {name}: taskSpec.containerSpec.image is required")

    mounts = []
    for i, m in enumerate(cs.get("mounts") or []):
        where = f"taskSpec.containerSpec.mounts[{i}]"
        _check_known("service", name, m, SERVICE_MOUNT_FIELDS, where)
        tmpfs = m.get("tmpfsOptions") or {}
        _check_known("service", name, tmpfs, {"sizeBytes", "mode"}, f"{where}.tmpfsOptions")
        if m.get("type") not in ("volume", "tmpfs", "bind"):
            raise UnsupportedInput(f"service {name}: {where}.type {m.get('type')!r} is not volume, tmpfs or bind")
        mounts.append(
            types.Mount(
                target=m["target"],
                source=m.get("source") or "",
                type=m["type"],
                read_only=bool(m.get("readOnly", False)),
                tmpfs_size=_int(tmpfs["sizeBytes"]) if tmpfs.get("sizeBytes") else None,
                tmpfs_mode=_int(tmpfs["mode"]) if tmpfs.get("mode") else None,
            )
        )

    health = None
    if cs.get("healthcheck"):
        h = cs["healthcheck"]
        where = "taskSpec.containerSpec.healthcheck"
        _check_known("service", name, h, SERVICE_HEALTH_FIELDS, where)
        health = types.Healthcheck(
            test=list(h.get("tests") or []),
            interval=duration_ns(h.get("interval", "0s"), f"{where}.interval"),
            timeout=duration_ns(h.get("timeout", "0s"), f"{where}.timeout"),
            start_period=duration_ns(h.get("startPeriod", "0s"), f"{where}.startPeriod"),
            retries=_int(h.get("retries") or 0),
        )

    # secrets and configs: the same file reference (svc.go:445 and :488, mode default 0o444)
    secrets = [
        _file_reference(
            types.SecretReference, ref, "secret", SECRET_REF_FIELDS, f"taskSpec.containerSpec.secrets[{i}]", name
        )
        for i, ref in enumerate(cs.get("secrets") or [])
    ]
    configs = [
        _file_reference(
            types.ConfigReference, ref, "config", CONFIG_REF_FIELDS, f"taskSpec.containerSpec.configs[{i}]", name
        )
        for i, ref in enumerate(cs.get("configs") or [])
    ]

    container = types.ContainerSpec(
        image=cs["image"],
        command=list(cs["commands"]) if cs.get("commands") else None,
        args=list(cs["args"]) if cs.get("args") else None,
        hostname=cs.get("hostname"),
        env=dict(cs.get("env") or {}) or None,
        workdir=cs.get("dir"),
        user=cs.get("user"),
        labels=labels_dict(cs.get("labels")) or None,
        mounts=mounts or None,
        stop_grace_period=duration_ns(cs["stopGracePeriod"], "stopGracePeriod") if cs.get("stopGracePeriod") else None,
        secrets=secrets or None,
        configs=configs or None,
        groups=list(cs.get("groups") or []) or None,
        healthcheck=health,
        read_only=bool(cs.get("readOnly", False)) or None,
        stop_signal=cs.get("stopSignal"),
        init=cs.get("init"),
        cap_add=list(cs.get("capAdds") or []) or None,
        cap_drop=list(cs.get("capDrops") or []) or None,
        sysctls=dict(cs.get("sysctl") or {}) or None,
    )

    resources = None
    if task.get("resources"):
        r = task["resources"]
        _check_known("service", name, r, {"limits", "reservation"}, "taskSpec.resources")
        limits, reservation = r.get("limits") or {}, r.get("reservation") or {}
        _check_known("service", name, limits, {"memoryBytes", "nanoCpus"}, "taskSpec.resources.limits")
        _check_known("service", name, reservation, {"memoryBytes", "nanoCpus"}, "taskSpec.resources.reservation")
        resources = types.Resources(
            cpu_limit=_int(limits["nanoCpus"]) if limits.get("nanoCpus") else None,
            mem_limit=_int(limits["memoryBytes"]) if limits.get("memoryBytes") else None,
            cpu_reservation=_int(reservation["nanoCpus"]) if reservation.get("nanoCpus") else None,
            mem_reservation=_int(reservation["memoryBytes"]) if reservation.get("memoryBytes") else None,
        )
    restart = None
    if task.get("restartPolicy"):
        rp = task["restartPolicy"]
        _check_known("service", name, rp, {"condition", "delay", "maxAttempts", "window"}, "taskSpec.restartPolicy")
        restart = types.RestartPolicy(
            condition=rp.get("condition") or "any",
            delay=duration_ns(rp.get("delay", "0s"), "restartPolicy.delay"),
            max_attempts=_int(rp.get("maxAttempts") or 0),
            window=duration_ns(rp.get("window", "0s"), "restartPolicy.window"),
        )
    placement = None
    if task.get("placement"):
        p = task["placement"]
        _check_known("service", name, p, {"constraints", "prefs", "maxReplicas"}, "taskSpec.placement")
        prefs = []
        for pref in p.get("prefs") or []:
            strategy, _, descriptor = str(pref).partition("=")
            if strategy != "spread" or not descriptor:
                raise UnsupportedInput(f"service {name}: taskSpec.placement.prefs {pref!r} is not spread=<descriptor>")
            prefs.append(("spread", descriptor))
        placement = types.Placement(
            constraints=list(p.get("constraints") or []) or None,
            preferences=prefs or None,
            maxreplicas=_int(p["maxReplicas"]) if p.get("maxReplicas") else None,
        )
    networks = []
    for i, n in enumerate(task.get("networksAdvanceds") or []):
        _check_known("service", name, n, {"id", "name", "aliases"}, f"taskSpec.networksAdvanceds[{i}]")
        target = n.get("id") or n.get("name")  # `name` is the deprecated spelling (svc.go:706-716)
        networks.append({"Target": target, "Aliases": list(n.get("aliases") or [])})
    log_driver = None
    if task.get("logDriver"):
        ld = task["logDriver"]
        _check_known("service", name, ld, {"name", "options"}, "taskSpec.logDriver")
        log_driver = types.DriverConfig(ld["name"], dict(ld.get("options") or {}) or None)
    template = types.TaskTemplate(
        container_spec=container,
        resources=resources,
        restart_policy=restart,
        placement=placement,
        log_driver=log_driver,
        networks=networks or None,
    )

    mode_inputs = inputs.get("mode") or {}
    _check_known("service", name, mode_inputs, {"replicated", "global"}, "mode")
    if mode_inputs.get("global"):
        mode = types.ServiceMode("global")
    else:
        replicated = mode_inputs.get("replicated") or {}
        _check_known("service", name, replicated, {"replicas"}, "mode.replicated")
        mode = types.ServiceMode("replicated", replicas=_int(replicated.get("replicas", 1)))  # svc.go:783

    endpoint = inputs.get("endpointSpec") or {}
    _check_known("service", name, endpoint, {"mode", "ports"}, "endpointSpec")
    ports = []
    for i, port in enumerate(endpoint.get("ports") or []):
        _check_known("service", name, port, SERVICE_PORT_FIELDS, f"endpointSpec.ports[{i}]")
        entry = {
            "TargetPort": _int(port["targetPort"]),
            "Protocol": port.get("protocol") or "tcp",
            "PublishMode": port.get("publishMode") or "ingress",  # svc.go:953
        }
        if port.get("publishedPort"):
            entry["PublishedPort"] = _int(port["publishedPort"])
        if port.get("name"):
            entry["Name"] = port["name"]
        ports.append(entry)
    endpoint_spec = types.EndpointSpec(mode=endpoint.get("mode") or None, ports=ports or None)

    def rollout(key: str, cls):
        value = inputs.get(key)
        if not value:
            return None
        _check_known("service", name, value, ROLLOUT_FIELDS, key)
        return cls(
            parallelism=_int(value.get("parallelism", 1)),
            delay=duration_ns(value.get("delay", "0s"), f"{key}.delay"),
            failure_action=value.get("failureAction") or "pause",
            monitor=duration_ns(value.get("monitor", "5s"), f"{key}.monitor"),
            max_failure_ratio=float(value.get("maxFailureRatio") or 0.0),
            order=value.get("order") or "stop-first",
        )

    converge = inputs.get("convergeConfig")
    if converge:
        _check_known("service", name, converge, {"delay", "timeout"}, "convergeConfig")
    create = {
        "task_template": template,
        "name": real_name,
        "labels": {**labels_dict(inputs.get("labels")), **extra_labels},
        "mode": mode,
        "update_config": rollout("updateConfig", types.UpdateConfig),
        "rollback_config": rollout("rollbackConfig", types.RollbackConfig),
        "endpoint_spec": endpoint_spec,
    }
    return ServiceSpec(
        name=real_name,
        create=create,
        # svc.go:974 (7s) and :981 (3m) are the defaults.
        converge_delay_s=_seconds(converge.get("delay", "7s"), "convergeConfig.delay") if converge else None,
        converge_timeout_s=_seconds(converge.get("timeout", "3m"), "convergeConfig.timeout") if converge else 0.0,
        stop_grace_s=_seconds(cs["stopGracePeriod"], "stopGracePeriod") if cs.get("stopGracePeriod") else 0.0,
    )


def swarm_object_data(kind: str, name: str, inputs: Mapping[str, Any]) -> bytes:
    """The bytes of a docker.ServiceConfig or docker.Secret: `data` is base64, and the provider
    decodes it before sending (resource_docker_config.go:125-136, resource_docker_secret.go:96)."""
    _check_known(kind, name, inputs, {"name", "data", "dataRaw", "labels"})
    if kind in ("config", "ServiceConfig") and inputs.get("dataRaw") is not None:
        return str(inputs["dataRaw"]).encode()  # data_raw goes as it is (resource_docker_config.go:39-47)
    try:
        return base64.b64decode(str(inputs.get("data") or ""), validate=True)
    except ValueError:
        raise UnsupportedInput(f"{kind} {name}: data is not base64 (the provider requires it)") from None
