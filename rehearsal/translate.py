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
    """Replace every string equal to a planned (mock) id or name with the real one."""
    if isinstance(value, str):
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
            "teach rehearsal/translate.py to apply it rather than dropping it"
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
