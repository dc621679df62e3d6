"""The private engine in swarm mode, for the swarm rehearsal (rehearsal.hosts.private_engine).

Entering and leaving swarm mode on Docker 20.10 breaks embedded DNS for the containers already
running on that engine, so the swarm rehearsal never touches the main engine
(/var/run/docker.sock). Its private dockerd is named after this checkout, so that two
worktrees (two sessions, or a test run beside a rehearsal) never share one (`layout_for`:
"django-docker-swarm-<4 hex>", devices `dds<4 hex>-*`, 10.<150..212>.0.0/16), and adds, for
swarm mode:

- its own overlay pool (the next /16), swarm on 127.0.0.1:<2477 + n> and VXLAN data port
  <4799 + n> (n from the same 4 hex), so nothing binds the default 2377/4789 and two
  checkouts' swarms do not bind each other's;
- `docker_gwbridge` created before `swarm init` (the documented way to configure it) with the
  Linux device name `dds<4 hex>-gw` instead of `docker_gwbridge`, which the main engine would
  use for its own, and with host-mode ports bound to 127.0.0.1 only.

On close it removes every service and leaves the swarm before the engine goes (private_engine),
and `docker_gwbridge` (and its device) and vxlan devices with it.

No IPVS in this kernel: no VIP and no ingress routing mesh. Services use endpoint mode dnsrr
and host-mode published ports.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Optional

import docker
import docker.errors

from planning.harness import PROJECT_ROOT
from rehearsal.errors import RehearsalError
from rehearsal.hosts.private_engine import (
    EngineUnavailable,
    Layout,
    PrivateEngine,
    copy_images,
    start_engine,
    why_unavailable,
)

DB_NODE_LABEL = ("django.db", "true")


@dataclass(frozen=True)
class SwarmLayout:
    """The private swarm engine's names, addresses and ports for one checkout."""

    engine: Layout
    gw_device: str
    """docker_gwbridge's Linux device (at most 15 characters: IFNAMSIZ)."""
    gw_subnet: str
    pool: str
    """The overlays' address pool."""
    listen: str
    """Swarm's own listener (127.0.0.1:PORT)."""
    data_path_port: int
    """The overlays' VXLAN port."""

    @property
    def devices(self) -> tuple[str, ...]:
        """Besides the layout's own devices: the gwbridge and the overlays' vxlan devices."""
        return (self.gw_device, "vx-")


def layout_for(root: Path = PROJECT_ROOT) -> SwarmLayout:
    """This checkout's swarm engine: `django-docker-swarm-<4 hex of its path>`, devices
    `dds<4 hex>-*`, addresses 10.<150..212, even>.0.0/16 and the next /16 for the overlays (the
    remote-host engine's are 10.216-247)."""
    tag = hashlib.sha256(str(root.resolve()).encode()).hexdigest()[:4]
    n = int(tag, 16)
    octet = 150 + 2 * (n % 32)
    return SwarmLayout(
        engine=Layout(f"django-docker-swarm-{tag}", f"dds{tag}", octet, other_prefixes=(f"10.{octet + 1}.",)),
        gw_device=f"dds{tag}-gw",
        gw_subnet=f"10.{octet}.255.0/24",
        pool=f"10.{octet + 1}.0.0/16",
        listen=f"127.0.0.1:{2477 + n % 500}",
        data_path_port=4799 + n % 500,
    )


__all__ = [
    "PrivateEngine",
    "SwarmUnavailable",
    "copy_images",
    "layout_for",
    "private_engine",
    "start_private_engine",
    "why_unavailable",
]


class SwarmUnavailable(EngineUnavailable):
    """This machine cannot run the private swarm engine; str() says why, in one line."""


Say = Callable[[str], None]


def _quiet(_: str) -> None:
    pass


def start_private_engine(say: Say = _quiet, node_label: tuple[str, str] = DB_NODE_LABEL) -> PrivateEngine:
    """Start the private dockerd, init a single-node swarm, label the node (as an operator labels
    the data node: docs/swarm.md). Raises SwarmUnavailable."""
    began = time.monotonic()
    swarm = layout_for()
    try:
        engine = start_engine(swarm.engine, say, extra_devices=swarm.devices)
    except EngineUnavailable as error:
        raise SwarmUnavailable(str(error)) from None
    client = engine.client
    try:
        answered = engine.started_seconds
        info = client.info()
        if (info.get("Swarm") or {}).get("LocalNodeState") not in ("inactive", None):
            raise SwarmUnavailable(f"the private engine is already in swarm state {info['Swarm']['LocalNodeState']}")
        # docker_gwbridge before swarm init, with our own device name (moby docs, "Customize the
        # docker_gwbridge interface"); host-mode ports bound to loopback only.
        client.networks.create(
            "docker_gwbridge",
            driver="bridge",
            options={
                "com.docker.network.bridge.name": swarm.gw_device,
                "com.docker.network.bridge.enable_icc": "false",
                "com.docker.network.bridge.enable_ip_masquerade": "false",
                "com.docker.network.bridge.host_binding_ipv4": "127.0.0.1",
            },
            ipam=docker.types.IPAMConfig(pool_configs=[docker.types.IPAMPool(subnet=swarm.gw_subnet)]),
        )
        try:
            node_id = client.swarm.init(
                advertise_addr="127.0.0.1",
                listen_addr=swarm.listen,
                data_path_port=swarm.data_path_port,
                default_addr_pool=[swarm.pool],
                subnet_size=24,
            )
        except docker.errors.APIError as error:
            raise SwarmUnavailable(f"swarm init failed: {error.explanation or error}") from None
        if not isinstance(node_id, str) or not node_id:
            node_id = client.info()["Swarm"]["NodeID"]
        node = client.nodes.get(node_id)
        spec = dict(node.attrs["Spec"])
        spec["Labels"] = {**(spec.get("Labels") or {}), node_label[0]: node_label[1]}
        node.update(spec)
        engine.started_seconds = time.monotonic() - began
        say(
            f"swarm engine: private dockerd (pid {engine.pid}) answered in {answered:.1f}s, "
            f"swarm ready in {engine.started_seconds:.1f}s ({engine.docker_host}, node label "
            f"{node_label[0]}={node_label[1]})"
        )
        return engine
    except BaseException:
        engine.close()
        raise


@contextlib.contextmanager
def private_engine(say: Say = _quiet) -> Iterator[PrivateEngine]:
    """`with private_engine(say) as engine:` start it, and remove it afterwards whatever happens."""
    engine = start_private_engine(say)
    try:
        yield engine
    finally:
        engine.close()


# --------------------------------------------------------------------------- the stack beside


BESIDE_IMAGES = ("python:3.11.14-slim-bookworm",)
BESIDE_LABEL = "rehearsal.swarm-beside"
_SERVE = "import http.server as h; h.HTTPServer(('', 8000), h.SimpleHTTPRequestHandler).serve_forever()"
_FETCH = (
    "import socket, sys, urllib.request as u; "
    "ip = socket.gethostbyname(sys.argv[1]); "
    "body = u.urlopen('http://%s:8000/' % sys.argv[1], timeout=5).read(); "
    "print(ip, len(body))"
)


class BesideProbe:
    """Two containers on a user network of the MAIN engine that must keep resolving and answering.

    Start it before the private engine, check() while the swarm runs (and after it is gone):
    the peer resolves the server by name through the main engine's embedded DNS (what swarm
    mode on the same engine breaks) and fetches a page from it. `url`: also fetch an
    existing stack's URL (e.g. a rehearsed stack's nginx on 127.0.0.1) from the host.
    """

    def __init__(self, main: docker.DockerClient, *, image: Optional[str] = None, url: Optional[str] = None):
        self.main = main
        self.url = url
        self.image = image or next((i for i in BESIDE_IMAGES if _has_image(main, i)), None)
        if self.image is None:
            raise RehearsalError(f"no image for the beside check on the main engine (wanted one of {BESIDE_IMAGES})")
        self.tag = f"swarm-beside-{os.getpid()}"
        self.network: Optional[docker.models.networks.Network] = None
        self.containers: list = []

    def start(self) -> "BesideProbe":
        labels = {BESIDE_LABEL: self.tag}
        self.network = self.main.networks.create(self.tag, driver="bridge", labels=labels)
        for role in ("server", "peer"):
            self.containers.append(
                self.main.containers.run(
                    self.image,
                    ["python3", "-c", _SERVE],
                    name=f"{self.tag}-{role}",
                    detach=True,
                    labels=labels,
                    network=self.tag,
                    working_dir="/tmp",
                )
            )
        deadline = time.monotonic() + 20
        while True:
            try:
                self.check()
                return self
            except RehearsalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.3)

    def check(self) -> str:
        """One line: what resolved and answered, and how long it took. Raises RehearsalError."""
        started = time.monotonic()
        peer = self.containers[1]
        result = peer.exec_run(["python3", "-c", _FETCH, f"{self.tag}-server"])
        output = result.output.decode(errors="replace").strip()
        if result.exit_code != 0:
            raise RehearsalError(f"beside the swarm engine, a main-engine container failed: {output.splitlines()[-1:]}")
        line = f"main engine: {self.tag}-server resolved to {output.split()[0]} and answered"
        if self.url:
            import urllib.request

            with urllib.request.urlopen(self.url, timeout=5) as response:
                line += f"; {self.url} answered {response.status}"
        return f"{line} ({time.monotonic() - started:.2f}s)"

    def close(self) -> None:
        for container in self.containers:
            try:
                container.remove(force=True)
            except docker.errors.NotFound:
                pass
        self.containers = []
        if self.network is not None:
            try:
                self.network.remove()
            except docker.errors.NotFound:
                pass
            self.network = None

    def __enter__(self) -> "BesideProbe":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()


def _has_image(client: docker.DockerClient, name: str) -> bool:
    try:
        client.images.get(name)
        return True
    except docker.errors.ImageNotFound:
        return False


def beside_check(main: docker.DockerClient, *, image: Optional[str] = None, url: Optional[str] = None) -> str:
    """Start a BesideProbe, check once, clean up: one line. For a check at one moment only."""
    with BesideProbe(main, image=image, url=url) as probe:
        return probe.check()
