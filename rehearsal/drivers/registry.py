"""A private image registry on loopback, for the real engine's promotion (`imageSource: stack`).

Prod runs the digest dev pushed: with the real Pulumi engine that needs a registry dev pushes to
and prod pulls from, with credentials (dev's `imageRegistryUsername/Password`, prod's
`docker:registryAuth`). None is reachable here, so the run starts one: Debian's
`docker-registry` (the distribution/distribution registry) on 127.0.0.1, with htpasswd (bcrypt)
basic auth and storage in the run's own directory. The Docker engine talks plain HTTP to a
registry on 127.0.0.0/8 without being told to (moby registry/config.go: loopback is an insecure
registry by default), so no TLS and no daemon setting is needed.
"""

from __future__ import annotations

import secrets
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import requests

from rehearsal.errors import RehearsalError

PACKAGES_HINT = "apt-get install docker-registry apache2-utils"
USERNAME = "deploy-bot"
START_SECONDS = 20


@dataclass
class Registry:
    """One registry process; `address` is what a stack config names (host:port)."""

    address: str
    username: str
    password: str
    process: subprocess.Popen
    root: Path

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start(root: Path, *, port: Optional[int] = None) -> Registry:
    """Start a registry whose data, config and log live under `root` (made here)."""
    missing = [tool for tool in ("docker-registry", "htpasswd") if shutil.which(tool) is None]
    if missing:
        raise RehearsalError(
            f"the real engine's promotion needs a registry: {', '.join(missing)} missing ({PACKAGES_HINT})"
        )
    root.mkdir(parents=True, exist_ok=True)
    password = secrets.token_urlsafe(18)
    hashed = subprocess.run(
        ["htpasswd", "-nbB", USERNAME, password], capture_output=True, text=True, check=True
    ).stdout.strip()
    (root / "htpasswd").write_text(hashed + "\n")
    port = port or _free_port()
    address = f"127.0.0.1:{port}"
    (root / "config.yml").write_text(
        "version: 0.1\n"
        "log: {level: warn}\n"
        f"storage: {{filesystem: {{rootdirectory: {root / 'data'}}}, delete: {{enabled: true}}}}\n"
        f"http: {{addr: '{address}'}}\n"
        f"auth: {{htpasswd: {{realm: rehearsal, path: {root / 'htpasswd'}}}}}\n"
    )
    log = open(root / "registry.log", "ab")
    process = subprocess.Popen(
        ["docker-registry", "serve", str(root / "config.yml")],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RehearsalError(f"the registry exited at start ({root / 'registry.log'})")
        try:
            if requests.get(f"http://{address}/v2/", auth=(USERNAME, password), timeout=2).status_code == 200:
                return Registry(address, USERNAME, password, process, root)
        except requests.RequestException:
            pass
        time.sleep(0.2)
    process.kill()
    raise RehearsalError(f"the registry did not answer on {address} within {START_SECONDS}s")


def push(client, registry: Registry, image: str) -> tuple[str, str]:
    """`image` (on the engine `client` reaches) pushed to `registry` as <address>/<image>, with its
    credentials: (that name, the repository@sha256 digest the registry gave). The name is left
    on the engine; `forget` removes the run's names."""
    name = f"{registry.address}/{image}"
    repository, tag = name.rsplit(":", 1)
    client.api.tag(image, repository, tag)
    auth = {"username": registry.username, "password": registry.password}
    digest = ""
    for line in client.api.push(repository, tag=tag, auth_config=auth, stream=True, decode=True):
        if line.get("error"):
            raise RehearsalError(f"push of {image} to {registry.address} failed: {line['error']}")
        digest = (line.get("aux") or {}).get("Digest") or digest
    if not digest:
        raise RehearsalError(f"push of {image} to {registry.address} gave no digest")
    return name, f"{repository}@{digest}"


def pull(client, registry: Registry, name: str) -> str:
    """<address>/<image> pulled from `registry` onto the engine `client` reaches, with its
    credentials, as the provider's RemoteImage pulls (terraform-provider-docker v4.5.0
    resource_docker_image_funcs.go findImage, pullImage); returns the image id."""
    repository, tag = name.rsplit(":", 1)
    auth = {"username": registry.username, "password": registry.password}
    for line in client.api.pull(repository, tag=tag, auth_config=auth, stream=True, decode=True):
        if line.get("error"):
            raise RehearsalError(f"pull of {name} failed: {line['error']}")
    return client.api.inspect_image(name)["Id"]


def forget(client, registry: Registry) -> int:
    """Remove every name of the run's registry from an engine (the images stay where another
    name keeps them); returns how many."""
    import docker.errors

    removed = 0
    for image in client.api.images():
        for name in (image.get("RepoTags") or []) + (image.get("RepoDigests") or []):
            if name.startswith(f"{registry.address}/"):
                try:
                    client.api.remove_image(name, noprune=True)
                    removed += 1
                except docker.errors.APIError:
                    pass
    return removed
