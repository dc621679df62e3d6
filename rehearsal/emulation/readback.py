"""Would the next `pulumi preview` show a change nobody made? The provider's read, replayed.

After a create, the provider reads the container back and stores what Docker reports
(terraform-provider-docker v4.5.0 resource_docker_container_funcs.go:750-988,
resourceDockerContainerRead); the next diff compares the program's inputs with *that*. Where
the two spell the same thing differently (a duration, a swap limit Docker chose), every
`pulumi up` shows a change, and with replace-on-any-change it replaces the container. This
module computes the provider's view of a container from `docker inspect` (pure) and lists
every input that would differ.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping, Optional

from components.settings import go_duration

MIB = 1024 * 1024


def provider_view(inspect: Mapping[str, Any], configured_image: str) -> dict[str, Any]:
    """What resourceDockerContainerRead stores, for the inputs the program sets (wire names)."""
    config, host = inspect["Config"], inspect["HostConfig"]
    view: dict[str, Any] = {
        # :838-845: an image given as an id is read back as the id, otherwise as configured.
        "image": inspect["Image"] if configured_image.startswith("sha256:") else config["Image"],
        "command": config.get("Cmd"),  # :849
        "user": config.get("User") or "",  # :851
        "securityOpts": host.get("SecurityOpt"),  # :854
        "restart": host["RestartPolicy"]["Name"],  # :857
        "maxRetryCount": host["RestartPolicy"].get("MaximumRetryCount", 0),  # :858
        "init": bool(host.get("Init")),  # :864-868
        "tmpfs": host.get("Tmpfs"),  # :883
        "readOnly": bool(host.get("ReadonlyRootfs")),  # :830
        "memory": host["Memory"] // MIB,  # :932
        # :940-944: a positive swap limit in MiB, anything else as Docker reports it (-1, 0).
        "memorySwap": host["MemorySwap"] // MIB if host.get("MemorySwap", 0) > 0 else host.get("MemorySwap", 0),
        "shmSize": host.get("ShmSize", 0) // MIB,  # :945
        "logDriver": host["LogConfig"]["Type"],  # :951
        "logOpts": host["LogConfig"].get("Config") or None,  # :952 (only when configured)
        # :978, a pointer: unset (Docker reports none) is stored as 0, SDKv2's zero value (seen in
        # the real provider's Read of postgres, redis and nginx; tests/calibration).
        "stopTimeout": config.get("StopTimeout") or 0,
    }
    if host.get("CapAdd") or host.get("CapDrop"):  # :868-876
        view["capabilities"] = {"adds": host.get("CapAdd") or [], "drops": host.get("CapDrop") or []}
    health = config.get("Healthcheck")
    if health:  # :959-969, durations as Go's Duration.String()
        view["healthcheck"] = {
            "tests": health.get("Test"),
            "interval": go_duration(health.get("Interval", 0)),
            "timeout": go_duration(health.get("Timeout", 0)),
            "startPeriod": go_duration(health.get("StartPeriod", 0)),
            "startInterval": go_duration(health.get("StartInterval", 0)),
            "retries": health.get("Retries", 0),
        }
    return view


# Healthcheck sub-fields default to "0s"/0 in the schema (resource_docker_container.go:1058-1093),
# so an unset one is compared as its default.
HEALTHCHECK_DEFAULTS = {"interval": "0s", "timeout": "0s", "startPeriod": "0s", "startInterval": "0s", "retries": 0}


def drift(inputs: Mapping[str, Any], inspect: Mapping[str, Any]) -> dict[str, tuple[Any, Any]]:
    """Inputs the provider would read back differently: {key: (input, read back)}.

    Only keys the program sets are compared (the provider's diff ignores a computed value
    the program leaves unset); `capabilities` compares the drops, the only part the program sets.
    """
    view = provider_view(inspect, str(inputs.get("image", "")))
    found: dict[str, tuple[Any, Any]] = {}
    for key, read in view.items():
        if key not in inputs or inputs[key] is None:
            continue
        wanted = inputs[key]
        if key == "healthcheck":
            wanted = {**HEALTHCHECK_DEFAULTS, **wanted}
        elif key == "capabilities":
            wanted = {"adds": wanted.get("adds") or [], "drops": wanted.get("drops") or []}
        if _normal(wanted) != _normal(read):
            found[key] = (wanted, read)
    return found


def _normal(value: Any) -> Any:
    # Numbers arrive from the plan as floats (protobuf Struct); lists compare as given.
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: _normal(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_normal(v) for v in value]
    return value


# The `docker inspect` fields provider_view reads: what a calibration record keeps of a container
# (nothing else: no environment, no labels, so nothing secret).
INSPECT_FIELDS = {
    "Config": ("Image", "Cmd", "User", "StopTimeout", "Healthcheck"),
    "HostConfig": (
        "SecurityOpt",
        "RestartPolicy",
        "Init",
        "Tmpfs",
        "ReadonlyRootfs",
        "Memory",
        "MemorySwap",
        "ShmSize",
        "LogConfig",
        "CapAdd",
        "CapDrop",
    ),
}


def inspect_subset(inspect: Mapping[str, Any]) -> dict[str, Any]:
    subset: dict[str, Any] = {"Image": inspect["Image"]}
    for part, keys in INSPECT_FIELDS.items():
        subset[part] = {k: inspect[part].get(k) for k in keys if k in inspect[part]}
    return subset


def readback_normal(value: Any, key: str) -> Any:
    """A value as the provider's state and provider_view both mean it: an unset healthcheck
    sub-field is its default, an empty list or map is none (SDKv2 stores zero values as null)."""
    value = _normal(value)
    if key == "healthcheck" and isinstance(value, dict):
        value = {**HEALTHCHECK_DEFAULTS, **{k: v for k, v in value.items() if v is not None}}
    if key == "capabilities" and isinstance(value, dict):
        value = {"adds": value.get("adds") or [], "drops": value.get("drops") or []}
    if value in ([], {}, "", None):
        return None
    return value


# --------------------------------------------------------------------------- swarm and networks
#
# The same question for the other resources the program makes. Each *_view is what the
# provider's Read stores (terraform-provider-docker v4.5.0), in the wire names of the plan's
# inputs; `configured_drift` compares it with the inputs the way the provider's diff does:
# a block compares the keys the program sets (an unset Optional+Computed one takes whatever is
# read), while an element of a set (mounts, secrets, networks, ipam configs, labels) must match
# whole, so a field the program leaves empty but the provider reads back (a gateway) differs.


def short_duration(ns: int) -> str:
    """resource_docker_service_structures.go:1341-1350 shortDur: Go's Duration.String() with a
    trailing "0s" after minutes and "0m" after hours dropped (60s is "1m", 3600s "1h")."""
    text = go_duration(int(ns))
    if text.endswith("m0s"):
        text = text[:-2]
    if text.endswith("h0m"):
        text = text[:-2]
    return text


def _labels(mapping: Optional[Mapping[str, str]]) -> list[dict]:
    return [{"label": k, "value": v} for k, v in sorted((mapping or {}).items())]


def service_view(inspect: Mapping[str, Any]) -> dict[str, Any]:
    """What resourceDockerServiceRead stores (resource_docker_service_funcs.go:118-160 and the
    flatteners of resource_docker_service_structures.go:23-580), for what the program sets."""
    spec = inspect["Spec"]
    task = spec.get("TaskTemplate") or {}
    ctr = task.get("ContainerSpec") or {}
    container: dict[str, Any] = {}  # flattenContainerSpec :122-196: only what is set
    if ctr.get("Image"):
        container["image"] = ctr["Image"]
    if ctr.get("Labels"):
        container["labels"] = _labels(ctr["Labels"])
    for key, wire in (("Command", "commands"), ("Args", "args"), ("User", "user"), ("Dir", "dir")):
        if ctr.get(key):
            container[wire] = ctr[key]
    if ctr.get("Env"):
        container["env"] = dict(item.split("=", 1) for item in ctr["Env"])
    if ctr.get("ReadOnly"):
        container["readOnly"] = True
    if ctr.get("Mounts"):
        container["mounts"] = [_mount(m) for m in ctr["Mounts"]]
    if ctr.get("StopGracePeriod") is not None:
        container["stopGracePeriod"] = short_duration(ctr["StopGracePeriod"])
    if ctr.get("Healthcheck"):  # flattenServiceHealthcheck :289-304
        h = ctr["Healthcheck"]
        container["healthcheck"] = {
            "tests": h.get("Test") or [],
            "interval": short_duration(h.get("Interval", 0)),
            "timeout": short_duration(h.get("Timeout", 0)),
            "startPeriod": short_duration(h.get("StartPeriod", 0)),
            "retries": h.get("Retries", 0),
        }
    for key, wire, ident, name in (
        ("Secrets", "secrets", "secretId", "secretName"),
        ("Configs", "configs", "configId", "configName"),
    ):
        refs = ctr.get(key) or []
        if refs:  # flattenServiceSecrets/Configs :344-396
            container[wire] = [
                {
                    ident: ref.get("SecretID") or ref.get("ConfigID"),
                    name: ref.get("SecretName") or ref.get("ConfigName") or "",
                    "fileName": (ref.get("File") or {}).get("Name", ""),
                    "fileUid": (ref.get("File") or {}).get("UID", ""),
                    "fileGid": (ref.get("File") or {}).get("GID", ""),
                    "fileMode": (ref.get("File") or {}).get("Mode", 0),
                }
                for ref in refs
            ]
    if ctr.get("CapabilityDrop"):
        container["capDrops"] = ctr["CapabilityDrop"]
    if ctr.get("CapabilityAdd"):
        container["capAdds"] = ctr["CapabilityAdd"]
    if ctr.get("Init") is not None:  # :187-191 (API >= 1.37)
        container["init"] = bool(ctr["Init"])
    view_task: dict[str, Any] = {"containerSpec": container}
    resources = task.get("Resources")
    if resources is not None:  # flattenTaskResources :398-423
        limits = resources.get("Limits")
        view_task["resources"] = {
            "limits": {"nanoCpus": limits.get("NanoCPUs", 0), "memoryBytes": limits.get("MemoryBytes", 0)}
            if limits is not None
            else {}
        }
    restart = task.get("RestartPolicy")
    if restart is not None:  # flattenTaskRestartPolicy :456-477
        view_task["restartPolicy"] = {
            "condition": restart.get("Condition", ""),
            "delay": short_duration(restart.get("Delay", 0)),
            "maxAttempts": restart.get("MaxAttempts", 0),
            "window": short_duration(restart.get("Window", 0)),
        }
    placement = task.get("Placement")
    if placement is not None:  # flattenTaskPlacement :479-499
        view_task["placement"] = {
            "constraints": placement.get("Constraints") or [],
            "platforms": [
                {"architecture": p.get("Architecture", ""), "os": p.get("OS", "")}
                for p in placement.get("Platforms") or []
            ],
            "maxReplicas": placement.get("MaxReplicas", 0),
        }
    if task.get("Networks"):  # flattenTaskNetworksAdvanced :526-541
        view_task["networksAdvanceds"] = [
            {
                "id": n["Target"],
                "aliases": n.get("Aliases") or [],
                "driverOpts": sorted((n.get("DriverOpts") or {}).values()),
            }
            for n in task["Networks"]
        ]
    if task.get("LogDriver"):  # flattenTaskLogDriver :551-564
        view_task["logDriver"] = {"name": task["LogDriver"]["Name"], "options": task["LogDriver"].get("Options") or {}}
    view: dict[str, Any] = {
        "name": spec["Name"],
        "labels": _labels(spec.get("Labels")),
        "taskSpec": view_task,
    }
    replicated = (spec.get("Mode") or {}).get("Replicated")
    view["mode"] = {
        "replicated": {"replicas": replicated.get("Replicas")} if replicated else {},
        "global": "Global" in (spec.get("Mode") or {}),
    }
    for key, wire in (("UpdateConfig", "updateConfig"), ("RollbackConfig", "rollbackConfig")):
        config = spec.get(key)
        if config is not None:  # flattenServiceUpdateOrRollbackConfig :78-93
            view[wire] = {
                "parallelism": config.get("Parallelism", 0),
                "delay": short_duration(config.get("Delay", 0)),
                "failureAction": config.get("FailureAction", ""),
                "monitor": short_duration(config.get("Monitor", 0)),
                # "%.1f"; the schema's suppressEquivalentFloatRatio compares it as a number
                "maxFailureRatio": float(config.get("MaxFailureRatio", 0)),
                "order": config.get("Order", ""),
            }
    endpoint = inspect.get("Endpoint") or {}
    source = (
        endpoint
        if (endpoint.get("Spec") or {}).get("Mode")
        else {"Spec": spec.get("EndpointSpec") or {}, "Ports": (spec.get("EndpointSpec") or {}).get("Ports")}
    )
    view["endpointSpec"] = {  # :142-152, flattenServiceEndpoint :96-104
        "mode": (source.get("Spec") or {}).get("Mode", ""),
        "ports": [
            {
                "name": p.get("Name", ""),
                "protocol": p.get("Protocol", ""),
                "targetPort": p.get("TargetPort", 0),
                "publishedPort": p.get("PublishedPort", 0),
                "publishMode": p.get("PublishMode", ""),
            }
            for p in source.get("Ports") or []
        ],
    }
    return view


def _mount(m: Mapping[str, Any]) -> dict[str, Any]:
    """flattenServiceMounts :222-286."""
    out: dict[str, Any] = {
        "target": m.get("Target", ""),
        "source": m.get("Source", ""),
        "type": m.get("Type", ""),
        "readOnly": bool(m.get("ReadOnly")),
    }
    if m.get("VolumeOptions") is not None:
        options = m["VolumeOptions"]
        driver = options.get("DriverConfig") or {}
        out["volumeOptions"] = {
            "noCopy": bool(options.get("NoCopy")),
            "labels": _labels(options.get("Labels")),
            "driverName": driver.get("Name", ""),
            "driverOptions": driver.get("Options") or {},
        }
    if m.get("TmpfsOptions") is not None:
        tmpfs = m["TmpfsOptions"]
        # int(Mode.Perm()): Go's permission bits only; a sticky 0o1000 is read back without it
        out["tmpfsOptions"] = {"sizeBytes": tmpfs.get("SizeBytes", 0), "mode": tmpfs.get("Mode", 0) & 0o777}
    return out


def network_view(inspect: Mapping[str, Any]) -> dict[str, Any]:
    """resourceDockerNetworkReadRefreshFunc (resource_docker_network_funcs.go:175-197) and
    flattenIpamConfigSpec (resource_docker_network_structures.go:11-41: a gateway only when
    Docker reports one)."""
    ipam = inspect.get("IPAM") or {}
    configs = []
    for c in ipam.get("Config") or []:
        item: dict[str, Any] = {}
        for key, wire in (("Subnet", "subnet"), ("IPRange", "ipRange"), ("Gateway", "gateway")):
            if c.get(key):
                item[wire] = c[key]
        if c.get("AuxiliaryAddresses"):
            item["auxAddress"] = c["AuxiliaryAddresses"]
        configs.append(item)
    return {
        "name": inspect["Name"],
        "labels": _labels(inspect.get("Labels")),
        "driver": inspect.get("Driver", ""),
        "internal": bool(inspect.get("Internal")),
        "attachable": bool(inspect.get("Attachable")),
        "ingress": bool(inspect.get("Ingress")),
        "ipv6": bool(inspect.get("EnableIPv6")),
        "ipamDriver": ipam.get("Driver", ""),
        "options": inspect.get("Options") or {},
        "ipamConfigs": configs,
    }


def config_view(inspect: Mapping[str, Any], raw: bool = False) -> dict[str, Any]:
    """resourceDockerConfigRead (resource_docker_config.go:104-119): name, labels, and the data
    as `data_raw` when the program gave it so, else base64 `data`."""
    import base64

    spec = inspect["Spec"]
    data = base64.b64decode(spec.get("Data") or "")
    view: dict[str, Any] = {"name": spec["Name"], "labels": _labels(spec.get("Labels"))}
    if raw:
        view["dataRaw"] = data.decode()
    else:
        view["data"] = base64.b64encode(data).decode()
    return view


def secret_view(inspect: Mapping[str, Any]) -> dict[str, Any]:
    """resourceDockerSecretRead (resource_docker_secret.go:135-140): the name only (data and
    labels stay as the state has them)."""
    return {"name": inspect["Spec"]["Name"]}


# Compared as numbers (the schema's suppressEquivalentFloatRatio, resource_docker_service.go:841,894).
FLOAT_STRINGS = frozenset({"maxFailureRatio"})
# Maps compared whole once the program sets them (a key Docker adds is a change).
WHOLE_MAPS = frozenset({"options", "env", "driverOptions"})
# What each Read leaves as the state has it (never read back): not compared.
NOT_READ = {
    "service": frozenset({"convergeConfig", "auth"}),
    "network": frozenset(),
    "config": frozenset(),
    "secret": frozenset({"data", "labels"}),
}
# Set-typed properties (a TypeSet in the schema): an element must match whole.
SET_KEYS = frozenset(
    {"labels", "mounts", "secrets", "configs", "networksAdvanceds", "ipamConfigs", "ports", "constraints"}
)
# Optional, not Computed: a value read back where the program set none is a change too
# (placement.platforms: the Docker client fills it on create when the registry answers,
# moby client/service_create.go:88-101).
READ_EVEN_IF_UNSET = {("taskSpec", "placement", "platforms")}


def _empty(value: Any) -> bool:
    return value in (None, "", 0, 0.0, False, [], {})


def configured_drift(
    inputs: Any, view: Any, path: tuple[str, ...] = (), skip: frozenset = frozenset()
) -> dict[str, tuple[Any, Any]]:
    """Where the provider's read-back differs from what the program set: {dotted path: (input, read)}.
    `skip`: top-level inputs the Read never sets (NOT_READ)."""
    found: dict[str, tuple[Any, Any]] = {}
    if isinstance(inputs, Mapping):
        view = view if isinstance(view, Mapping) else {}
        for key, wanted in inputs.items():
            if wanted is None or key == "__provider" or (not path and key in skip):
                continue
            here = (*path, key)
            read = view.get(key)
            if key in SET_KEYS and isinstance(wanted, list):
                if _set_of(wanted) != _set_of(read or []):
                    found[".".join(here)] = (wanted, read)
                continue
            if key in FLOAT_STRINGS:
                if float(wanted) != float(read or 0):
                    found[".".join(here)] = (wanted, read)
            elif isinstance(wanted, Mapping) and key in WHOLE_MAPS:
                if _normal(dict(wanted)) != _normal(dict(read or {})):
                    found[".".join(here)] = (wanted, read)
            elif isinstance(wanted, Mapping):
                found.update(configured_drift(wanted, read or {}, here))
            elif _normal(wanted) != _normal(read) and not (_empty(wanted) and _empty(read)):
                found[".".join(here)] = (wanted, read)
        for extra in READ_EVEN_IF_UNSET:
            if extra[: len(path)] == path and len(extra) == len(path) + 1 and extra[-1] not in inputs:
                if not _empty(view.get(extra[-1])):
                    found[".".join(extra)] = (None, view.get(extra[-1]))
    elif _normal(inputs) != _normal(view):
        found[".".join(path)] = (inputs, view)
    return found


def _set_of(items: list) -> list:
    """A set's elements compared whole: empty fields dropped at every level, numbers normal,
    lists of strings (nested sets) sorted."""
    return sorted(repr(_canon(item)) for item in items)


def _canon(value: Any) -> Any:
    if isinstance(value, Mapping):
        return tuple(sorted((k, _canon(v)) for k, v in value.items() if not _empty(v)))
    if isinstance(value, list):
        items = [_canon(v) for v in value]
        return tuple(sorted(items, key=repr)) if all(isinstance(v, str) for v in value) else tuple(items)
    return _normal(value)


# The inspect fields each *_view reads: what a calibration record keeps of a service, network,
# config or secret (a swarm secret's data is never in an inspect; a service's environment holds
# no secret on swarm, only the paths of the secret files).
_CONTAINER_SPEC_FIELDS = (
    "Image",
    "Labels",
    "Command",
    "Args",
    "User",
    "Dir",
    "Env",
    "ReadOnly",
    "Mounts",
    "StopGracePeriod",
    "Healthcheck",
    "Secrets",
    "Configs",
    "CapabilityDrop",
    "CapabilityAdd",
    "Init",
)
_TASK_FIELDS = ("Resources", "RestartPolicy", "Placement", "Networks", "LogDriver")
_SPEC_FIELDS = ("Name", "Labels", "Mode", "UpdateConfig", "RollbackConfig", "EndpointSpec")


def swarm_inspect_subset(kind: str, inspect: Mapping[str, Any]) -> dict[str, Any]:
    """What `VIEWS[kind]` reads of an inspect, and nothing else."""
    if kind == "network":
        keys = ("Name", "Labels", "Driver", "Internal", "Attachable", "Ingress", "EnableIPv6", "IPAM", "Options")
        return {k: inspect.get(k) for k in keys}
    spec = inspect["Spec"]
    if kind == "secret":
        return {"Spec": {"Name": spec["Name"]}}
    if kind == "config":
        return {"Spec": {k: spec.get(k) for k in ("Name", "Labels", "Data")}}
    task = spec.get("TaskTemplate") or {}
    container = task.get("ContainerSpec") or {}
    return {
        "Spec": {
            **{k: spec[k] for k in _SPEC_FIELDS if k in spec},
            "TaskTemplate": {
                "ContainerSpec": {k: container[k] for k in _CONTAINER_SPEC_FIELDS if k in container},
                **{k: task[k] for k in _TASK_FIELDS if k in task},
            },
        },
        "Endpoint": {k: v for k, v in (inspect.get("Endpoint") or {}).items() if k in ("Spec", "Ports")},
    }


def read_differs(view: Any, read: Any, path: tuple[str, ...] = ()) -> list[str]:
    """Where a *_view differs from what the provider's Read stored (a refresh's state outputs):
    the dotted paths, for the calibration against the real provider. Only what the view holds
    is compared (the Read also stores what the program never sets); a set's elements are
    compared whole, empty fields dropped, and an empty value equals an absent one (SDKv2
    stores zero values)."""
    if isinstance(view, Mapping):
        read = read if isinstance(read, Mapping) else {}
        found = []
        for key, value in view.items():
            here = (*path, key)
            if key in SET_KEYS and isinstance(value, list):
                if _set_of(value) != _set_of(read.get(key) or []):
                    found.append(".".join(here))
            elif key in FLOAT_STRINGS:
                if float(value or 0) != float(read.get(key) or 0):
                    found.append(".".join(here))
            elif isinstance(value, Mapping) and key not in WHOLE_MAPS:
                found += read_differs(value, read.get(key) or {}, here)
            elif not (_empty(value) and _empty(read.get(key))) and _normal(value) != _normal(read.get(key)):
                found.append(".".join(here))
        return found
    return [] if _normal(view) == _normal(read) else [".".join(path)]


VIEWS: dict[str, Callable[[Mapping[str, Any]], dict[str, Any]]] = {
    "service": service_view,
    "network": network_view,
    "config": config_view,
    "secret": secret_view,
}
# Schema defaults of set or list elements the program leaves unset (resource_docker_service.go:
# endpoint_spec.ports protocol "tcp", publish_mode "ingress"): the element compares with them.
ELEMENT_DEFAULTS = {"ports": {"protocol": "tcp", "publishMode": "ingress"}}


def resource_drift(
    kind: str, inputs: Mapping[str, Any], inspect: Mapping[str, Any], *, ignore_labels: frozenset = frozenset()
) -> dict[str, tuple[Any, Any]]:
    """Inputs of a service, network, config or secret the provider would read back differently.
    `ignore_labels`: label keys someone other than the program adds (the rehearsal's own)."""
    view = config_view(inspect, raw="dataRaw" in inputs) if kind == "config" else VIEWS[kind](inspect)
    return configured_drift(_with_defaults(inputs), _without_labels(view, ignore_labels), skip=NOT_READ[kind])


def _with_defaults(value: Any, key: str = "") -> Any:
    if isinstance(value, Mapping):
        return {k: _with_defaults(v, k) for k, v in value.items()}
    if isinstance(value, list):
        defaults = ELEMENT_DEFAULTS.get(key)
        return [
            {**defaults, **item} if defaults and isinstance(item, Mapping) else _with_defaults(item) for item in value
        ]
    return value


def _without_labels(value: Any, keys: frozenset) -> Any:
    if not keys:
        return value
    if isinstance(value, Mapping):
        out = {}
        for k, v in value.items():
            if k == "labels" and isinstance(v, list):
                out[k] = [item for item in v if not (isinstance(item, Mapping) and item.get("label") in keys)]
            else:
                out[k] = _without_labels(v, keys)
        return out
    if isinstance(value, list):
        return [_without_labels(v, keys) for v in value]
    return value
