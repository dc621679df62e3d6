"""The Docker provider's own settings (`docker:` namespace): where the engine is, and the
credentials its image pulls use. Read here so that every setting still has one reader."""

from __future__ import annotations

import pulumi

from components.settings.values import SettingsError


def docker_host() -> str:
    """`docker:host`; empty: DOCKER_HOST or the local socket (as the provider itself falls back)."""
    return (pulumi.Config("docker").get("host") or "").strip()


def check_registry_auth(docker_config: pulumi.Config) -> None:
    """The provider's own `docker:registryAuth`: what its image pulls authenticate with (prod pulls
    the promoted digest; a private registry needs it). The provider matches an entry to a pull by
    the registry's host name (terraform-provider-docker v4.5.0 provider.go:303-345,
    resource_docker_image_funcs.go:249-255). Refused: an entry without an address, and a
    password stored in plain text (the whole key is secret once any part of it was set --secret).
    """
    key = "docker:registryAuth"
    try:
        entries = docker_config.get_object("registryAuth")
    except (ValueError, TypeError):
        raise SettingsError(
            f"{key}: not a list of {{address, username, password}}; set it with "
            f"`pulumi config set --path '{key}[0].address' ghcr.io`"
        ) from None
    if entries is None:
        return
    if not isinstance(entries, list):
        raise SettingsError(f"{key}: not a list of {{address, username, password}}")
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict) or not str(entry.get("address") or "").strip():
            raise SettingsError(f"{key}[{index}].address: required, the registry host (e.g. ghcr.io)")
        if entry.get("password") and not pulumi.runtime.is_config_secret(key):
            raise SettingsError(
                f"{key}[{index}].password: stored in plain text; set it with "
                f"`pulumi config set --secret --path '{key}[{index}].password'`"
            )
