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

from typing import Any, Mapping

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
