"""The Docker provider's `docker:registryAuth`: what its image pulls authenticate with (prod pulls
the promoted digest; a private registry needs it). Checked in its whole shape, and never quoted:
it holds a password.

The provider matches an entry to a pull by the registry's host name (terraform-provider-docker
v4.5.0 provider.go:303-345, resource_docker_image_funcs.go:249-255); an entry is
{address, username, password} or {address, configFile / configFileContent}.
"""

from __future__ import annotations

import json
from typing import Any

import pulumi

from components.settings.keys import closest
from components.settings.values import OPAQUE_SECRET, host_name_problem

KEY = "docker:registryAuth"
FIELDS = ("address", "username", "password", "configFile", "configFileContent", "authDisabled")
SHAPE = "a list of {address, username, password}"
HOW = f"set it with `pulumi config set --path '{KEY}[0].address' ghcr.io` (and --secret for the password)"


def check_registry_auth(docker_config: pulumi.Config) -> list[str]:
    """Every problem of `docker:registryAuth`, one line each (empty: fine or not set)."""
    raw = docker_config.get("registryAuth")
    if raw is None or raw == OPAQUE_SECRET:
        return []
    # Not docker_config.get_object: on a value that is not JSON it raises ConfigTypeError, whose
    # message quotes the whole value, password included (pulumi/config.py, _get_object and
    # ConfigTypeError.__init__: "Configuration '{key}' value '{value}' is not a valid 'JSON object'").
    try:
        entries = json.loads(raw, parse_constant=_no_constant)
    except ValueError:
        return [f"{KEY}: not JSON ({SHAPE}); {HOW}"]
    if not isinstance(entries, list) or not entries:
        return [f"{KEY}: not {SHAPE}; {HOW}"]
    secret = pulumi.runtime.is_config_secret(KEY)
    problems = []
    for index, entry in enumerate(entries):
        at = f"{KEY}[{index}]"
        if not isinstance(entry, dict):
            problems.append(f"{at}: not an object {{address, username, password}}")
            continue
        for field in entry:
            if field not in FIELDS:
                meant = closest(str(field), FIELDS)
                problems.append(
                    f"{at}.{field}: unknown field; "
                    + (f"did you mean {meant}?" if meant else f"expected {', '.join(FIELDS)}")
                )
        address = entry.get("address")
        if not isinstance(address, str) or not address.strip():
            problems.append(f"{at}.address: required, the registry host (e.g. ghcr.io)")
        else:
            host = address.strip().removeprefix("https://").removeprefix("http://").split("/", 1)[0]
            why = host_name_problem(host.rsplit(":", 1)[0] if host.count(":") == 1 else host)
            if why:
                problems.append(f"{at}.address: '{address}' {why}; expected a registry host like ghcr.io")
        for field in ("username", "password", "configFile", "configFileContent"):
            if field in entry and not isinstance(entry[field], str):
                problems.append(f"{at}.{field}: expected a string")
        password = entry.get("password")
        if isinstance(password, str) and password and not secret:
            problems.append(
                f"{at}.password: stored in plain text; set it with `pulumi config set --secret --path '{at}.password'`"
            )
        if isinstance(password, str) and password and not password.strip():
            problems.append(f"{at}.password: only whitespace")
        if isinstance(password, str) and password.strip() and not str(entry.get("username") or "").strip():
            problems.append(f"{at}.username: required with a password")
    return problems


def _no_constant(name: str) -> Any:
    """json.loads takes NaN and Infinity, which are not JSON (and no field here is a number)."""
    raise ValueError(name)
