"""The Docker provider's own settings (`docker:` namespace): where the engine is and how it is
reached (ssh, TLS). Read here so that every setting still has one reader (its registryAuth:
registry.py); how the provider uses them is components/dockerhost.py's."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Mapping, Optional

import pulumi

from components import dockerhost
from components.settings.values import SettingsError

# Set to 1 to skip connecting to the Docker host before anything is created (a preview on a
# machine that cannot reach it; the plan harness, which runs the program under mocks).
SKIP_PROBE_ENV = "DJANGO_DOCKER_SKIP_HOST_PROBE"
# What `resolve` reads, as the provider's config keys.
KEYS = ("host", "sshOpts", "certPath", "caMaterial", "certMaterial", "keyMaterial", "context")


@dataclass(frozen=True, kw_only=True)
class DockerAccess:
    """How the release jobs reach the stack's Docker host: what the provider uses, resolved
    (docker:* settings, then their environment fallbacks). The PEM texts are secret Outputs."""

    host: str
    """unix:///..., tcp://HOST:PORT or ssh://[user@]host[:port][/socket]."""
    ssh_opts: tuple[str, ...] = ()
    cert_path: str = ""
    ca_material: Optional[pulumi.Output[str]] = None
    cert_material: Optional[pulumi.Output[str]] = None
    key_material: Optional[pulumi.Output[str]] = None

    def job_kwargs(self) -> dict[str, Any]:
        """JobArgs' fields for it (components.job)."""
        return {
            "docker_host": self.host,
            "ssh_opts": list(self.ssh_opts),
            "cert_path": self.cert_path,
            "ca_material": self.ca_material,
            "cert_material": self.cert_material,
            "key_material": self.key_material,
        }


def _raw(docker_config: pulumi.Config) -> dict[str, Any]:
    raw: dict[str, Any] = {}
    for key in KEYS:
        if key == "sshOpts":
            try:
                raw[key] = docker_config.get_object(key)
            except (ValueError, TypeError):
                raise SettingsError(
                    'docker:sshOpts: not a list; set it as JSON: pulumi config set docker:sshOpts \'["-i", "~/.ssh/deploy"]\''
                ) from None
        else:
            raw[key] = docker_config.get(key)
    return raw


def read_docker_host(
    docker_config: Optional[pulumi.Config] = None, env: Optional[Mapping[str, str]] = None
) -> tuple[dockerhost.DockerHost, DockerAccess]:
    """The provider's view of the Docker host, checked without connecting (dockerhost.check),
    and what the release jobs get of it. A private key stored in plain text is refused."""
    docker_config = docker_config or pulumi.Config("docker")
    env = os.environ if env is None else env
    try:
        h = dockerhost.resolve(_raw(docker_config), env)
        dockerhost.check(h)
    except dockerhost.HostError as error:
        raise SettingsError(str(error)) from None
    if h.sources.get("keyMaterial") == "docker:keyMaterial" and not pulumi.runtime.is_config_secret(
        "docker:keyMaterial"
    ):
        raise SettingsError(
            "docker:keyMaterial: stored in plain text; set it with "
            "`pulumi config set --secret docker:keyMaterial < key.pem`"
        )

    def secret(text: str) -> Optional[pulumi.Output[str]]:
        return pulumi.Output.secret(text) if text else None

    access = DockerAccess(
        host=h.host,
        ssh_opts=h.ssh_opts,
        cert_path=h.cert_path,
        ca_material=secret(h.ca_material),
        cert_material=secret(h.cert_material),
        key_material=secret(h.key_material),
    )
    return h, access


def probe_docker_host(h: dockerhost.DockerHost, env: Optional[Mapping[str, str]] = None) -> Optional[str]:
    """Connect to the Docker host as the provider will, before any resource exists: a wrong key,
    an unreachable host or a certificate the engine refuses is one line naming the setting, not
    a failure after the networks, volumes and database were created. None when skipped
    (DJANGO_DOCKER_SKIP_HOST_PROBE=1)."""
    env = os.environ if env is None else env
    if env.get(SKIP_PROBE_ENV, "") not in ("", "0"):
        return None
    try:
        return dockerhost.probe(h)
    except dockerhost.HostError as error:
        raise SettingsError(str(error)) from None
