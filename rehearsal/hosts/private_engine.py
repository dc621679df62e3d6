"""A second Docker engine private to a rehearsal, that shares nothing with the main one.

The rehearsals that need an engine of their own (swarm mode: swarm_engine.py; a remote host
reached over ssh or TLS: remote_host.py) start a second `dockerd` (root only) with everything
of its own, named by its Layout:

- data root /var/lib/<name> (overlay2 needs a real filesystem, not /run's tmpfs), exec root,
  pid file and socket under /run/<name>, its own daemon.json (empty);
- its own default bridge `<device>-br0` (10.<octet>.254.1/24; not `--bridge none`, with which
  dockerd deletes the host's `docker0`, the main engine's bridge) and `--iptables=false`: it
  adds no rule to the host's iptables, where the main engine keeps its DOCKER chains.
  Published ports still reach 127.0.0.1 through the userland proxy (docker-proxy), which the
  main engine uses too;
- its own address pool (10.<octet>.0.0/16 for local networks), so its routes never overlap the
  main engine's 172.17-31 networks;
- optionally a TCP listener with TLS verification (`--tlsverify`), for a host reached over TCP;
- optionally (`forward`) one iptables rule that lets its containers reach each other across
  its bridges: the main engine sets the host's FORWARD policy to DROP, and with
  br_netfilter (bridge-nf-call-iptables=1) even traffic inside one bridge passes FORWARD, so
  without it two containers on one of its networks cannot talk. It goes first in DOCKER-USER
  (the chain the main engine leaves to users; FORWARD when there is none), matches only its own
  10.<octet>.0.0/16 both ways, carries its name as a comment, and goes on close.

On close it removes every container and network, stops the daemon (its managed containerd goes
with it), unmounts and deletes both roots and its bridge, and reports anything of its own left
(links, mounts, iptables rules naming its devices).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Optional, Sequence

import docker
import docker.errors

from rehearsal.errors import RehearsalError

START_TIMEOUT = 60.0
Say = Callable[[str], None]


class EngineUnavailable(RehearsalError):
    """This machine cannot run a private engine; str() says why, in one line."""


def _quiet(_: str) -> None:
    pass


@dataclass(frozen=True)
class Layout:
    """Where a private engine keeps everything, by name (two layouts share nothing)."""

    name: str
    """/run/<name>, /var/lib/<name>, cgroup parent /<name>."""
    device: str
    """Prefix of its network devices (at most 7 characters: `<device>-br0` fits IFNAMSIZ)."""
    octet: int
    """Its addresses: 10.<octet>.0.0/16 (the bridge 10.<octet>.254.1/24)."""
    tcp: Optional[str] = None
    """`127.0.0.1:PORT`: also listen on TCP, with TLS verification (tls_dir's files)."""
    tls_dir: Optional[Path] = None
    """ca.pem, server-cert.pem, server-key.pem (rehearsal.hosts.tls_material.DockerTls.write_server)."""
    other_prefixes: tuple[str, ...] = ()
    """Other address prefixes it uses (a swarm's overlay pool), checked against the host's routes."""
    forward: bool = False
    """Let its containers talk across the host's FORWARD DROP policy (one rule; see above)."""

    def __post_init__(self):
        if len(self.device) > 7:
            raise ValueError(f"Layout.device {self.device!r}: at most 7 characters")

    @property
    def run_root(self) -> Path:
        return Path("/run") / self.name

    @property
    def data_root(self) -> Path:
        return Path("/var/lib") / self.name

    @property
    def socket(self) -> Path:
        return self.run_root / "docker.sock"

    @property
    def pidfile(self) -> Path:
        return self.run_root / "docker.pid"

    @property
    def log(self) -> Path:
        return self.run_root / "dockerd.log"

    @property
    def bridge(self) -> str:
        return f"{self.device}-br0"

    @property
    def bridge_cidr(self) -> str:
        return f"10.{self.octet}.254.1/24"

    @property
    def local_pool(self) -> str:
        return f"10.{self.octet}.0.0/16"

    @property
    def prefixes(self) -> tuple[str, ...]:
        return (f"10.{self.octet}.", *self.other_prefixes)

    def forward_rule(self) -> tuple[str, list[str]]:
        """(chain, rule) of its one iptables rule."""
        chain = (
            "DOCKER-USER"
            if subprocess.run(["iptables", "-S", "DOCKER-USER"], capture_output=True).returncode == 0
            else "FORWARD"
        )
        rule = ["-s", self.local_pool, "-d", self.local_pool, "-m", "comment", "--comment", self.name, "-j", "ACCEPT"]
        return chain, rule

    def daemon_args(self, *, restart: bool = False) -> list[str]:
        """dockerd's arguments. `restart`: to start again on the data root of a daemon that ran,
        without --default-address-pool: a dockerd that starts with a default bridge network in
        its store, default address pools and no live-restore deletes the interface named
        docker0 (moby v20.10.24 daemon/daemon_unix.go:879-887, removeDefaultBridgeInterface:
        bridge.DefaultBridgeName, whatever --bridge says): the MAIN engine's bridge, after which
        no container of the main engine could start (it happened here). Its networks keep their
        subnets across the restart; a network created after it would take Docker's default pools."""
        pools = [] if restart else [f"--default-address-pool=base={self.local_pool},size=24"]
        args = [
            _dockerd(),
            f"--config-file={self.run_root / 'daemon.json'}",
            f"--data-root={self.data_root}",
            f"--exec-root={self.run_root / 'exec'}",
            f"--pidfile={self.pidfile}",
            f"--host=unix://{self.socket}",
            # Not --bridge=none: a dockerd started with it deletes the host's docker0, the main
            # engine's default bridge (seen here). Its own default bridge instead, made beforehand
            # (dockerd refuses to create a default bridge with a non-default name itself).
            f"--bridge={self.bridge}",
            "--iptables=false",
            "--ip6tables=false",
            "--ip-masq=false",
            "--userland-proxy=true",
            "--ip=127.0.0.1",
            *pools,
            f"--cgroup-parent=/{self.name}",
            "--storage-driver=overlay2",
            "--log-level=warn",
        ]
        if self.tcp:
            if self.tls_dir is None:
                raise ValueError("Layout.tcp needs tls_dir: a TCP listener without TLS is root for anyone")
            args += [
                f"--host=tcp://{self.tcp}",
                "--tlsverify",
                f"--tlscacert={self.tls_dir / 'ca.pem'}",
                f"--tlscert={self.tls_dir / 'server-cert.pem'}",
                f"--tlskey={self.tls_dir / 'server-key.pem'}",
            ]
        return args


# --------------------------------------------------------------------------- host snapshots


def _run(*args: str) -> str:
    return subprocess.run(args, capture_output=True, text=True, check=False).stdout


def links() -> set[str]:
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
        return HostSnapshot(links(), _iptables())


# How long `systemctl stop/restart docker` lets dockerd stop before SIGKILL: Debian's docker.io
# unit sets no TimeoutStopSec (/lib/systemd/system/docker.service), so systemd's
# DefaultTimeoutStopSec, 90 s. dockerd itself gives its containers the longest stop timeout + 5 s
# (moby v20.10.24 daemon/daemon.go ShutdownTimeout; the stack's longest is 60 s). Killing it
# sooner (this waited 60 s before) is not what a host does, and left the worker, still in its
# stop, exited after the restart (CI, 2026-12-07).
SYSTEMD_STOP_SECONDS = 90


def free_port() -> int:
    """A TCP port nothing listens on at 127.0.0.1 now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# --------------------------------------------------------------------------- the engine


@dataclass
class PrivateEngine:
    """A running private dockerd (`client` on its own unix socket)."""

    client: docker.DockerClient
    layout: Layout
    pid: int
    say: Say = _quiet
    started_seconds: float = 0.0
    before: Optional[HostSnapshot] = None
    leftover_devices: tuple[str, ...] = ()
    """Device prefixes besides the layout's that close() removes (a swarm's gwbridge, vxlans)."""
    leftovers: list[str] = field(default_factory=list)
    """What close() found it could not remove (empty when the host is as it was)."""
    _closed: bool = False

    @property
    def docker_host(self) -> str:
        """Its unix socket, for DOCKER_HOST / docker -H."""
        return f"unix://{self.layout.socket}"

    @property
    def base_url(self) -> str:
        return self.docker_host

    def restart(self, timeout: float = START_TIMEOUT) -> tuple[float, float]:
        """Stop the daemon as a host's shutdown or `systemctl restart docker` does (SIGTERM: it
        stops its containers, then exits) and start it again on the same data root; its
        containers come back by their restart policies (no live-restore). Returns (seconds to
        stop, seconds until it answered again)."""
        started = time.monotonic()
        host_bridges = {name for name in links() if name == "docker0"}
        self.client.close()
        signal_and_wait(self.pid, self.say, self.layout.name, timeout=SYSTEMD_STOP_SECONDS)
        # Its managed containerd outlives it for a moment; a dockerd started meanwhile finds its
        # pid file, dials the exiting one and gives up ("failed to start containerd: timeout
        # waiting for containerd to start", met by the remote rehearsal's restart-engine).
        self._wait_containerd_gone()
        stopped = time.monotonic() - started
        log = open(self.layout.log, "ab")
        process = subprocess.Popen(
            self.layout.daemon_args(restart=True),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        log.close()
        self.pid = process.pid
        self.client = docker.DockerClient(base_url=f"unix://{self.layout.socket}", version="1.41", timeout=60)
        again = time.monotonic()
        deadline = again + timeout
        while True:
            if process.poll() is not None:
                raise EngineUnavailable(
                    f"the private dockerd exited with {process.returncode}: {log_tail(self.layout)}"
                )
            try:
                if self.client.ping() and _tcp_listens(self.layout):
                    gone = host_bridges - links()
                    if gone:  # never again silently: see daemon_args(restart=True)
                        raise EngineUnavailable(
                            f"the host's {', '.join(sorted(gone))} vanished when the private engine restarted"
                        )
                    return stopped, time.monotonic() - again
            except EngineUnavailable:
                raise
            except Exception:  # noqa: BLE001 - not answering yet
                pass
            if time.monotonic() > deadline:
                raise EngineUnavailable(f"the private dockerd did not answer again within {timeout:.0f}s")
            time.sleep(0.2)

    def _wait_containerd_gone(self, timeout: float = 30.0) -> None:
        pidfile = self.layout.run_root / "exec" / "containerd" / "containerd.pid"
        try:
            pid = int(pidfile.read_text().strip())
        except (OSError, ValueError):
            return
        deadline = time.monotonic() + timeout
        while pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        if pid_alive(pid):
            self.say(f"{self.layout.name}: its containerd {pid} did not exit within {timeout:.0f}s; killing it")
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            time.sleep(0.5)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        started = time.monotonic()
        stop_engine(self.client, self.pid, self.say, self.layout.name)
        self.leftovers = remove_everything(self.layout, self.before, self.say, self.leftover_devices)
        self.say(
            f"{self.layout.name}: stopped and removed in {time.monotonic() - started:.1f}s"
            + (f"; LEFT BEHIND: {'; '.join(self.leftovers)}" if self.leftovers else "; host as it was")
        )

    def __enter__(self) -> "PrivateEngine":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def why_unavailable() -> Optional[str]:
    """Why a private engine cannot run here (one line), or None."""
    if os.geteuid() != 0:
        return "a private engine is a second dockerd, which needs root"
    for tool in ("dockerd", "docker-proxy", "ip", "iptables"):
        if shutil.which(tool) is None and not Path(f"/usr/sbin/{tool}").exists():
            return f"{tool} is not installed"
    if not Path("/proc/sys/net/ipv4").exists():
        return "no IPv4 networking in this kernel"
    return None


def _dockerd() -> str:
    return shutil.which("dockerd") or "/usr/sbin/dockerd"


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _ours(pid: int, layout: Layout) -> bool:
    """The process is a dockerd started with this layout's data root (a leftover of an earlier run)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return b"dockerd" in cmdline[0] and f"--data-root={layout.data_root}".encode() in cmdline


def _clear_leftovers(layout: Layout, say: Say, extra_devices: Sequence[str]) -> None:
    """Stop a private dockerd an interrupted run left behind, and remove its roots."""
    if layout.pidfile.exists():
        try:
            pid = int(layout.pidfile.read_text().strip() or 0)
        except ValueError:
            pid = 0
        if pid and pid_alive(pid):
            if not _ours(pid, layout):
                raise EngineUnavailable(f"{layout.pidfile} names process {pid}, which is not a private dockerd of ours")
            say(f"{layout.name}: stopping the private dockerd an earlier run left (pid {pid})")
            client = docker.DockerClient(base_url=f"unix://{layout.socket}", version="1.41", timeout=10)
            stop_engine(client, pid, say, layout.name)
    remove_everything(layout, None, say, extra_devices)


def route_overlap(prefixes: Sequence[str]) -> Optional[str]:
    """A host route inside the pools (another engine or VPN uses them): say so rather than break it."""
    for line in _run("ip", "-4", "route").splitlines():
        dest = line.split()[0] if line.strip() else ""
        if dest.startswith(tuple(prefixes)):
            return f"the host already routes {dest} ({line.strip()}), inside the private engine's pools"
    return None


def start_engine(layout: Layout, say: Say = _quiet, *, extra_devices: Sequence[str] = ()) -> PrivateEngine:
    """Start the private dockerd and wait until it answers on its socket (and its TCP port).
    Raises EngineUnavailable; on any failure, what it made is removed."""
    reason = why_unavailable()
    if reason is None:
        _clear_leftovers(layout, say, extra_devices)
        reason = route_overlap(layout.prefixes)
    if reason is None and layout.data_root.exists() and any(layout.data_root.iterdir()):
        # A daemon that starts on an old store deletes the host's docker0 (daemon_args).
        reason = f"{layout.data_root} is left from an earlier run and could not be removed"
    if reason:
        raise EngineUnavailable(reason)
    before = HostSnapshot.take()
    started = time.monotonic()
    layout.run_root.mkdir(parents=True, exist_ok=True)
    layout.data_root.mkdir(parents=True, exist_ok=True)
    (layout.run_root / "daemon.json").write_text("{}\n")
    made = subprocess.run(["ip", "link", "add", layout.bridge, "type", "bridge"], capture_output=True, text=True)
    if made.returncode == 0:  # -b and --bip exclude each other: the bridge brings its address
        made = subprocess.run(
            ["ip", "addr", "add", layout.bridge_cidr, "dev", layout.bridge], capture_output=True, text=True
        )
    if made.returncode != 0:
        remove_everything(layout, None, say, extra_devices)
        raise EngineUnavailable(f"cannot create the bridge {layout.bridge}: {made.stderr.strip()}")
    if layout.forward:
        chain, rule = layout.forward_rule()
        added = subprocess.run(["iptables", "-I", chain, "1", *rule], capture_output=True, text=True)
        if added.returncode != 0:
            remove_everything(layout, None, say, extra_devices)
            raise EngineUnavailable(f"cannot add its iptables rule to {chain}: {added.stderr.strip()}")
    log = open(layout.log, "ab")
    process = subprocess.Popen(
        layout.daemon_args(), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
    )
    log.close()
    # A fixed API version: the client must not ask the daemon for one before it answers.
    client = docker.DockerClient(base_url=f"unix://{layout.socket}", version="1.41", timeout=60)
    engine = PrivateEngine(client, layout, process.pid, say, before=before, leftover_devices=tuple(extra_devices))
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if process.poll() is not None:
                raise EngineUnavailable(f"the private dockerd exited with {process.returncode}: {log_tail(layout)}")
            try:
                if layout.socket.exists() and client.ping() and _tcp_listens(layout):
                    break
            except docker.errors.DockerException:
                pass
            except Exception:  # requests' connection errors before the socket answers
                pass
            if time.monotonic() > deadline:
                raise EngineUnavailable(
                    f"the private dockerd did not answer within {START_TIMEOUT:.0f}s: {log_tail(layout)}"
                )
            time.sleep(0.2)
        engine.started_seconds = time.monotonic() - started
        return engine
    except BaseException:
        engine.close()
        raise


def _tcp_listens(layout: Layout) -> bool:
    if not layout.tcp:
        return True
    host, port = layout.tcp.rsplit(":", 1)
    try:
        with socket.create_connection((host, int(port)), timeout=1):
            return True
    except OSError:
        return False


@contextlib.contextmanager
def private_engine(layout: Layout, say: Say = _quiet) -> Iterator[PrivateEngine]:
    """`with private_engine(layout, say) as engine:` start it, and remove it afterwards whatever happens."""
    engine = start_engine(layout, say)
    try:
        yield engine
    finally:
        engine.close()


def log_tail(layout: Layout, lines: int = 3) -> str:
    try:
        text = layout.log.read_text(errors="replace").strip().splitlines()
    except OSError:
        return "(no log)"
    return " | ".join(line[-200:] for line in text[-lines:]) or "(empty log)"


def signal_and_wait(pid: int, say: Say, name: str, timeout: float = 30.0) -> None:
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
            if not pid_alive(pid):
                return
        time.sleep(0.2)
    say(f"{name}: dockerd {pid} did not stop within {timeout:.0f}s; killing it")
    try:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    except (ProcessLookupError, ChildProcessError):
        pass


def stop_engine(client: docker.DockerClient, pid: int, say: Say, name: str) -> None:
    """Remove what runs on it (services, containers, networks; the swarm left), then stop it."""
    try:
        try:
            for service in client.services.list():
                service.remove()
        except docker.errors.APIError:
            pass  # not a swarm manager: no services
        # Nothing to drain on the way out: the containers go at once.
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
        say(f"{name}: cleanup through the API stopped: {error}")
    finally:
        client.close()
    signal_and_wait(pid, say, name)


def remove_everything(
    layout: Layout, before: Optional[HostSnapshot], say: Say, extra_devices: Sequence[str] = ()
) -> list[str]:
    """Unmount and delete both roots; delete its devices; report what is left."""
    left: list[str] = []
    for point in _mounts_under(layout.run_root, layout.data_root):
        subprocess.run(["umount", "-l", point], capture_output=True, check=False)
    for point in _mounts_under(layout.run_root, layout.data_root):
        left.append(f"mount {point}")
    devices = (layout.device, *extra_devices)
    _remove_rules_named(layout.name)
    for device in links():
        if device == layout.bridge or device in extra_devices:
            subprocess.run(["ip", "link", "delete", device], capture_output=True, check=False)
    if not left:
        for root in (layout.data_root, layout.run_root):
            shutil.rmtree(root, ignore_errors=True)
            if root.exists():
                left.append(f"directory {root}")
    if before is not None:
        after = HostSnapshot.take()
        # Links of its own: its bridges (and a swarm's vxlan devices). Veths cannot be told
        # apart from the main engine's (which may be creating some meanwhile): they go with the
        # containers and the daemon, and are not touched here.
        for link in sorted(after.links - before.links):
            if link.startswith(devices):
                subprocess.run(["ip", "link", "delete", link], capture_output=True, check=False)
        left.extend(f"link {link}" for link in sorted(links() - before.links) if link.startswith(devices))
        for table, rules in after.iptables.items():
            added = sorted(rules - before.iptables[table])
            # Only what names our devices is ours to remove; anything else the main engine may have added meanwhile.
            for rule in added:
                if any(device in rule for device in devices) and rule.startswith("-A "):
                    subprocess.run(["iptables", "-t", table, "-D", *rule[3:].split()], check=False)
            left.extend(
                f"iptables -t {table} {r}"
                for r in sorted(set(_run("iptables", "-t", table, "-S").splitlines()) - before.iptables[table])
                if any(device in r for device in devices)
            )
    return left


def _remove_rules_named(name: str) -> None:
    """Every filter rule whose comment is `name` (its forward rule; a leftover of a killed run too)."""
    for line in _run("iptables", "-S").splitlines():
        if line.startswith("-A ") and f"--comment {name} " in f"{line} ":
            subprocess.run(["iptables", "-D", *line[3:].split()], capture_output=True, check=False)


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

        # Saved under the very tag asked for: `named=True` takes the image's first tag (docker-py
        # 7.2.0 models/images.py Image.save), and a stand-in tagged twice then arrived on the
        # private engine under its other name (a 404 for the one asked for).
        tag = name if name in image.tags else True

        def produce(image=image, writer=writer, size=size, failure=failure, tag=tag) -> None:
            try:
                with os.fdopen(writer, "wb") as sink:
                    for chunk in image.save(named=tag, chunk_size=1 << 20):
                        size[0] += len(chunk)
                        sink.write(chunk)
            except BaseException as error:  # surfaced below
                failure.append(error)

        thread = threading.Thread(target=produce, name=f"save-{name}", daemon=True)
        thread.start()
        with os.fdopen(reader, "rb") as source:
            # load_image returns the daemon's progress as a stream (API >= 1.23, docker-py 7.2.0
            # api/image.py load_image): the image is tagged only once that stream has been read
            # to its end; an `images.get` before it answered 404 now and then.
            errors = [
                item["error"] for item in private.api.load_image(source) if isinstance(item, dict) and "error" in item
            ]
        thread.join()
        if errors:
            raise RehearsalError(f"copying {name} to the private engine failed: {errors[0]}")
        if failure:
            raise RehearsalError(f"copying {name} to the private engine failed: {failure[0]}")
        copied[name] = private.images.get(name).id
        say(f"private engine: copied {name[:60]} ({size[0] / 1e6:.0f} MB) in {time.monotonic() - started:.1f}s")
    return copied
