"""A Docker SDK client for a stack's Docker host, the way the provider finds it.

Shared by the release jobs (components.job) and the day-2 commands (ops/); it imports no
Pulumi, so `make status` starts fast.
"""

from __future__ import annotations

import os

import docker


def connect(docker_host: str, timeout: int = 60) -> docker.DockerClient:
    """A client for `docker_host`: empty = the environment's DOCKER_HOST or the default socket;
    ssh:// through the `ssh` binary (as the docker CLI does; no paramiko); else a base URL."""
    if not docker_host:
        return docker.from_env(timeout=timeout, use_ssh_client=os.environ.get("DOCKER_HOST", "").startswith("ssh://"))
    if docker_host.startswith("ssh://"):
        return docker.DockerClient(base_url=docker_host, use_ssh_client=True, timeout=timeout)
    return docker.DockerClient(base_url=docker_host, timeout=timeout)
