"""A private Docker engine in swarm mode, for the swarm rehearsal, that shares nothing with the main one.

Entering and leaving swarm mode on Docker 20.10 breaks embedded DNS for the containers already
running on that engine, so the swarm rehearsal never touches the main engine
(/var/run/docker.sock). It starts a second `dockerd` (root only) with everything of its own:

- data root /var/lib/django-docker-swarm (overlay2 needs a real filesystem, not /run's tmpfs),
  exec root, pid file and socket under /run/django-docker-swarm, its own daemon.json (empty);
- its own default bridge `ddsw-br0` (10.213.254.1/24; not `--bridge none`, with which dockerd
  deletes the host's `docker0`, the main engine's bridge) and `--iptables=false`: it adds no rule
  to the host's iptables, where the main engine keeps its DOCKER chains. Host-mode published ports still reach
  127.0.0.1 through the userland proxy (docker-proxy), which the main engine uses too;
- its own address pool (10.213.0.0/16 for local networks, 10.214.0.0/16 for overlays), so its
  routes never overlap the main engine's 172.17-31 networks;
- swarm on 127.0.0.1:2477 and VXLAN data port 4799, so nothing binds the default 2377/4789;
- `docker_gwbridge` created before `swarm init` (the documented way to configure it) with the
  Linux device name `ddsw-gwbridge` instead of `docker_gwbridge`, which the main engine would
  use for its own, and with host-mode ports bound to 127.0.0.1 only.

On close it removes every service, leaves the swarm, removes `docker_gwbridge` (and its device),
stops the daemon (its managed containerd goes with it), unmounts and deletes both roots, and
checks that no link, mount or iptables rule of its own is left.

No IPVS in this kernel: no VIP and no ingress routing mesh. Services use endpoint mode dnsrr
and host-mode published ports.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Optional

import docker
import docker.errors

from rehearsal.errors import RehearsalError

RUN_ROOT = Path("/run/django-docker-swarm")
DATA_ROOT = Path("/var/lib/django-docker-swarm")
SOCKET = RUN_ROOT / "docker.sock"
PIDFILE = RUN_ROOT / "docker.pid"
LOG = RUN_ROOT / "dockerd.log"
GW_DEVICE = "ddsw-gwbridge"  # at most 15 characters (IFNAMSIZ)
BRIDGE_DEVICE = "ddsw-br0"
BRIDGE_CIDR = "10.213.254.1/24"
GW_SUBNET = "10.213.255.0/24"
LOCAL_POOL = "10.213.0.0/16"
SWARM_POOL = "10.214.0.0/16"
SWARM_LISTEN = "127.0.0.1:2477"
DATA_PATH_PORT = 4799
DB_NODE_LABEL = ("django.db", "true")
START_TIMEOUT = 60.0


class SwarmUnavailable(RehearsalError):
    """This machine cannot run the private swarm engine; str() says why, in one line."""


Say = Callable[[str], None]


def _quiet(_: str) -> None:
    pass


# --------------------------------------------------------------------------- host snapshots


def _run(*args: str) -> str:
    return subprocess.run(args, capture_output=True, text=True, check=False).stdout


def _links() -> set[str]:
    return {line.split()[0].split("@")[0] for line in _run("ip", "-br", "link").splitlines() if line.strip()}


def _iptables() -> dict[str, set[str]]:
    return {table: set(_run("iptables", "-t", table, "-S").splitlines()) for table in ("filter", "nat", "mangle")}


def _mounts_under(*roots: Path) -> list[str]:
    found = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = line.split()[4].replace("\\040", " ")
        if any(point == str(r) or point.startswith(f"{r}/") for r in roots):
            found.append(point)
    return sorted(found, key=len, reverse=True)  # deepest first


@dataclass
class HostSnapshot:
    links: set[str]
    iptables: dict[str, set[str]]

    @staticmethod
    def take() -> "HostSnapshot":
        return HostSnapshot(_links(), _iptables())


# --------------------------------------------------------------------------- the engine


@dataclass
class PrivateEngine:
    """A running private dockerd in single-node swarm mode."""

    client: docker.DockerClient
    base_url: str
    pid: int
    node_id: str
    say: Say = _quiet
    started_seconds: float = 0.0
    before: Optional[HostSnapshot] = None
    leftovers: list[str] = field(default_factory=list)
    """What close() found it could not remove (empty when the host is as it was)."""
    _closed: bool = False

    @property
    def docker_host(self) -> str:
        """For DOCKER_HOST / docker -H."""
        return self.base_url

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        started = time.monotonic()
        _stop_engine(self.client, self.pid, self.say)
        self.leftovers = _remove_everything(self.before, self.say)
        self.say(
            f"swarm engine: stopped and removed in {time.monotonic() - started:.1f}s"
            + (f"; LEFT BEHIND: {'; '.join(self.leftovers)}" if self.leftovers else "; host as it was")
        )

    def __enter__(self) -> "PrivateEngine":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def why_unavailable() -> Optional[str]:
    """Why the private swarm engine cannot run here (one line), or None."""
    if os.geteuid() != 0:
        return "the swarm rehearsal starts a second dockerd, which needs root"
    for tool in ("dockerd", "docker-proxy", "ip", "iptables"):
        if shutil.which(tool) is None and not Path(f"/usr/sbin/{tool}").exists():
            return f"{tool} is not installed"
    if not Path("/proc/sys/net/ipv4").exists():
        return "no IPv4 networking in this kernel"
    return None


def _dockerd() -> str:
    return shutil.which("dockerd") or "/usr/sbin/dockerd"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _ours(pid: int) -> bool:
    """The process is a dockerd started with our data root (a leftover of an earlier run)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return b"dockerd" in cmdline[0] and f"--data-root={DATA_ROOT}".encode() in cmdline


def _clear_leftovers(say: Say) -> None:
    """Stop a private dockerd an interrupted run left behind, and remove its roots."""
    if PIDFILE.exists():
        try:
            pid = int(PIDFILE.read_text().strip() or 0)
        except ValueError:
            pid = 0
        if pid and _pid_alive(pid):
            if not _ours(pid):
                raise SwarmUnavailable(f"{PIDFILE} names process {pid}, which is not a private dockerd of ours")
            say(f"swarm engine: stopping the private dockerd an earlier run left (pid {pid})")
            client = docker.DockerClient(base_url=f"unix://{SOCKET}", version="1.41", timeout=10)
            _stop_engine(client, pid, say)
    _remove_everything(None, say)


def _daemon_args() -> list[str]:
    return [
        _dockerd(),
        f"--config-file={RUN_ROOT / 'daemon.json'}",
        f"--data-root={DATA_ROOT}",
        f"--exec-root={RUN_ROOT / 'exec'}",
        f"--pidfile={PIDFILE}",
        f"--host=unix://{SOCKET}",
        # Not --bridge=none: a dockerd started with it deletes the host's docker0, the main
        # engine's default bridge (seen here). Its own default bridge instead, made beforehand
        # (dockerd refuses to create a default bridge with a non-default name itself).
        f"--bridge={BRIDGE_DEVICE}",
        "--iptables=false",
        "--ip6tables=false",
        "--ip-masq=false",
        "--userland-proxy=true",
        "--ip=127.0.0.1",
        f"--default-address-pool=base={LOCAL_POOL},size=24",
        "--cgroup-parent=/django-docker-swarm",
        "--storage-driver=overlay2",
        "--log-level=warn",
    ]


def _route_overlap() -> Optional[str]:
    """A host route inside our pools (another engine or VPN uses them): say so rather than break it."""
    for line in _run("ip", "-4", "route").splitlines():
        dest = line.split()[0] if line.strip() else ""
        if dest.startswith(("10.213.", "10.214.")):
            return f"the host already routes {dest} ({line.strip()}), inside the private engine's pools"
    return None


def start_private_engine(say: Say = _quiet, node_label: tuple[str, str] = DB_NODE_LABEL) -> PrivateEngine:
    """Start the private dockerd, init a single-node swarm, label the node (as an operator labels
    the data node: docs/swarm.md). Raises SwarmUnavailable."""
    reason = why_unavailable() or _route_overlap()
    if reason:
        raise SwarmUnavailable(reason)
    _clear_leftovers(say)
    before = HostSnapshot.take()
    started = time.monotonic()
    RUN_ROOT.mkdir(parents=True, exist_ok=True)
    DATA_ROOT.mkdir(parents=True, exist_ok=True)
    (RUN_ROOT / "daemon.json").write_text("{}\n")
    made = subprocess.run(["ip", "link", "add", BRIDGE_DEVICE, "type", "bridge"], capture_output=True, text=True)
    if made.returncode == 0:  # -b and --bip exclude each other: the bridge brings its address
        made = subprocess.run(["ip", "addr", "add", BRIDGE_CIDR, "dev", BRIDGE_DEVICE], capture_output=True, text=True)
    if made.returncode != 0:
        _remove_everything(None, say)
        raise SwarmUnavailable(f"cannot create the bridge {BRIDGE_DEVICE}: {made.stderr.strip()}")
    log = open(LOG, "ab")
    process = subprocess.Popen(
        _daemon_args(), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
    )
    log.close()
    base_url = f"unix://{SOCKET}"
    # A fixed API version: the client must not ask the daemon for one before it answers.
    client = docker.DockerClient(base_url=base_url, version="1.41", timeout=60)
    engine = PrivateEngine(client, base_url, process.pid, "", say, before=before)
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if process.poll() is not None:
                raise SwarmUnavailable(f"the private dockerd exited with {process.returncode}: {_log_tail()}")
            try:
                if SOCKET.exists() and client.ping():
                    break
            except docker.errors.DockerException:
                pass
            except Exception:  # requests' connection errors before the socket answers
                pass
            if time.monotonic() > deadline:
                raise SwarmUnavailable(f"the private dockerd did not answer within {START_TIMEOUT:.0f}s: {_log_tail()}")
            time.sleep(0.2)
        answered = time.monotonic() - started
        info = client.info()
        if (info.get("Swarm") or {}).get("LocalNodeState") not in ("inactive", None):
            raise SwarmUnavailable(f"the private engine is already in swarm state {info['Swarm']['LocalNodeState']}")
        # docker_gwbridge before swarm init, with our own device name (moby docs, "Customize the
        # docker_gwbridge interface"); host-mode ports bound to loopback only.
        client.networks.create(
            "docker_gwbridge",
            driver="bridge",
            options={
                "com.docker.network.bridge.name": GW_DEVICE,
                "com.docker.network.bridge.enable_icc": "false",
                "com.docker.network.bridge.enable_ip_masquerade": "false",
                "com.docker.network.bridge.host_binding_ipv4": "127.0.0.1",
            },
            ipam=docker.types.IPAMConfig(pool_configs=[docker.types.IPAMPool(subnet=GW_SUBNET)]),
        )
        try:
            engine.node_id = client.swarm.init(
                advertise_addr="127.0.0.1",
                listen_addr=SWARM_LISTEN,
                data_path_port=DATA_PATH_PORT,
                default_addr_pool=[SWARM_POOL],
                subnet_size=24,
            )
        except docker.errors.APIError as error:
            raise SwarmUnavailable(f"swarm init failed: {error.explanation or error}") from None
        if not isinstance(engine.node_id, str) or not engine.node_id:
            engine.node_id = client.info()["Swarm"]["NodeID"]
        node = client.nodes.get(engine.node_id)
        spec = dict(node.attrs["Spec"])
        spec["Labels"] = {**(spec.get("Labels") or {}), node_label[0]: node_label[1]}
        node.update(spec)
        engine.started_seconds = time.monotonic() - started
        say(
            f"swarm engine: private dockerd (pid {process.pid}) answered in {answered:.1f}s, "
            f"swarm ready in {engine.started_seconds:.1f}s ({base_url}, node label "
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


def _log_tail(lines: int = 3) -> str:
    try:
        text = LOG.read_text(errors="replace").strip().splitlines()
    except OSError:
        return "(no log)"
    return " | ".join(line[-200:] for line in text[-lines:]) or "(empty log)"


def _signal_and_wait(pid: int, say: Say, timeout: float = 30.0) -> None:
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            done, _ = os.waitpid(pid, os.WNOHANG)
            if done:
                return
        except ChildProcessError:
            if not _pid_alive(pid):
                return
        time.sleep(0.2)
    say(f"swarm engine: dockerd {pid} did not stop within {timeout:.0f}s; killing it")
    try:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    except (ProcessLookupError, ChildProcessError):
        pass


def _stop_engine(client: docker.DockerClient, pid: int, say: Say) -> None:
    try:
        for service in client.services.list():
            service.remove()
        # Nothing to drain on the way out: the tasks' containers go at once.
        for container in client.containers.list(all=True):
            container.remove(force=True)
        try:
            client.swarm.leave(force=True)
        except docker.errors.APIError:
            pass
        for network in client.networks.list():
            if network.name not in ("host", "none", "bridge"):
                try:
                    network.remove()
                except docker.errors.APIError:
                    pass
    except Exception as error:  # the daemon may already be gone; the rest still cleans up
        say(f"swarm engine: cleanup through the API stopped: {error}")
    finally:
        client.close()
    _signal_and_wait(pid, say)


def _remove_everything(before: Optional[HostSnapshot], say: Say) -> list[str]:
    """Unmount and delete both roots; delete our bridge device; report what is left."""
    left: list[str] = []
    for point in _mounts_under(RUN_ROOT, DATA_ROOT):
        subprocess.run(["umount", "-l", point], capture_output=True, check=False)
    for point in _mounts_under(RUN_ROOT, DATA_ROOT):
        left.append(f"mount {point}")
    for device in (GW_DEVICE, BRIDGE_DEVICE):
        if device in _links():
            subprocess.run(["ip", "link", "delete", device], capture_output=True, check=False)
    if not left:
        for root in (DATA_ROOT, RUN_ROOT):
            shutil.rmtree(root, ignore_errors=True)
            if root.exists():
                left.append(f"directory {root}")
    if before is not None:
        after = HostSnapshot.take()
        # Links of its own: its bridges, and vxlan devices of its overlays. Veths cannot be told
        # apart from the main engine's (which may be creating some meanwhile): they go with the
        # containers and the daemon, and are not touched here.
        for link in sorted(after.links - before.links):
            if link.startswith(("ddsw", "vx-")):
                subprocess.run(["ip", "link", "delete", link], capture_output=True, check=False)
        left.extend(f"link {link}" for link in sorted(_links() - before.links) if link.startswith(("ddsw", "vx-")))
        for table, rules in after.iptables.items():
            added = sorted(rules - before.iptables[table])
            # Only what names our device is ours to remove; anything else the main engine may have added meanwhile.
            for rule in added:
                if ("ddsw-" in rule or "docker_gwbridge" in rule) and rule.startswith("-A "):
                    subprocess.run(["iptables", "-t", table, "-D", *rule[3:].split()], check=False)
            left.extend(
                f"iptables -t {table} {r}"
                for r in sorted(set(_run("iptables", "-t", table, "-S").splitlines()) - before.iptables[table])
                if GW_DEVICE in r
            )
    return left


# --------------------------------------------------------------------------- images


def copy_images(
    main: docker.DockerClient, private: docker.DockerClient, names: list[str], say: Say = _quiet
) -> dict[str, str]:
    """Copy images from the main engine into the private one (`docker save | docker load`, streamed).

    Returns name -> image id on the private engine. An image already there with the same id is
    not copied again. Raises RehearsalError naming an image the main engine does not have.
    """
    copied: dict[str, str] = {}
    for name in names:
        try:
            image = main.images.get(name)
        except docker.errors.ImageNotFound:
            raise RehearsalError(f"image {name} is not on the main engine (build the stand-ins first)") from None
        try:
            if private.images.get(name).id == image.id:
                copied[name] = image.id
                continue
        except docker.errors.ImageNotFound:
            pass
        started = time.monotonic()
        reader, writer = os.pipe()
        size = [0]
        failure: list[BaseException] = []

        def produce(image=image, writer=writer, size=size, failure=failure) -> None:
            try:
                with os.fdopen(writer, "wb") as sink:
                    for chunk in image.save(named=True, chunk_size=1 << 20):
                        size[0] += len(chunk)
                        sink.write(chunk)
            except BaseException as error:  # surfaced below
                failure.append(error)

        thread = threading.Thread(target=produce, name=f"save-{name}", daemon=True)
        thread.start()
        with os.fdopen(reader, "rb") as source:
            private.api.load_image(source)
        thread.join()
        if failure:
            raise RehearsalError(f"copying {name} to the swarm engine failed: {failure[0]}")
        copied[name] = private.images.get(name).id
        say(f"swarm engine: copied {name} ({size[0] / 1e6:.0f} MB) in {time.monotonic() - started:.1f}s")
    return copied


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
