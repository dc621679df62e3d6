"""The nginx design on a real nginx of the pinned feature set (needs a Docker engine).

nginx runs components.render.nginx_conf(...) unedited (put into the container before it
starts, as the program's `uploads` do); "replicas" are tiny HTTP servers sharing the
network alias `web` and answering with their hostname. Shown: nginx follows replicas that
start and stop without being restarted, a replica that stops gracefully or refuses
connections costs no request, and the container healthcheck as rendered turns it healthy.
Everything this module creates carries its label and is removed in the fixture's finally.
"""

from __future__ import annotations

import threading
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from docker import DockerClient
    from docker.models.containers import Container
    from docker.models.networks import Network

docker = pytest.importorskip("docker")

from components import render  # noqa: E402 (after the skip: this module needs the Docker SDK)
from tests.nginx_check import APP_PATHS, NGINX_IMAGE, archive, docker_client, ensure_image, pinned_image  # noqa: E402

pytestmark = pytest.mark.docker

LABEL = "tests.nginx-resolve"
PYTHON_IMAGE = "python:3.11.14-slim-bookworm"  # django_app/Dockerfile's FROM
REQUEST_TIMEOUT = 20  # > proxy_next_upstream_timeout (15 s): nginx gives up first
PACE = 0.02  # seconds between a steady client's requests
MAX_POSTS = 40_000  # test_h's bound (about 4,000 a cycle here, at most 8 cycles)

# A replica: HTTP/1.1 with keep-alive (nginx keeps upstream connections), answers GET with
# its hostname. DELAY seconds pass before it binds (a booting replica: the alias resolves,
# the port refuses). On SIGTERM, like gunicorn: stop accepting, finish the requests in
# flight, close idle keep-alive connections, exit. On SIGUSR1: stop accepting and stay (a
# replica whose drain lasts).
REPLICA = r"""
import os, signal, socket, sys, threading, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

NAME = socket.gethostname().encode()
stopping = threading.Event()
idle = set()
lock = threading.Lock()

class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 5  # idle keep-alive connections close after 5 s, as gunicorn's keepalive

    def handle(self):
        self.served = 0  # requests on this connection so far
        self.close_connection = True
        self.handle_one_request()
        while not self.close_connection and not stopping.is_set():
            with lock:
                idle.add(self.connection)
            try:
                self.handle_one_request()
            finally:
                with lock:
                    idle.discard(self.connection)

    def do_GET(self):
        with lock:
            idle.discard(self.connection)
        self.served += 1
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(NAME)))
        self.send_header("X-Request-On-Connection", str(self.served))
        # Like gunicorn: a request that asks for close is answered so (nginx >= 1.29.7 would
        # otherwise keep the connection for the next request, which then meets it closed).
        if stopping.is_set() or self.headers.get("Connection", "").lower() == "close":
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.write(NAME)

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.do_GET()

    def log_message(self, *args):
        pass

time.sleep(float(os.environ.get("DELAY", "0")))
class Server(ThreadingHTTPServer):
    request_queue_size = 128  # socketserver's 5 overflows under a burst of new connections

server = Server(("0.0.0.0", 8000), Handler)
server.daemon_threads = False  # server_close() waits for requests in flight

def close_door():
    stopping.set()
    server.shutdown()
    server.socket.close()  # new connections are refused from here on
    with lock:
        for conn in list(idle):
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

def stop():
    close_door()
    server.server_close()
    print("replica stopped", flush=True)
    os._exit(0)

def refuse():
    close_door()  # and stay in the alias: a replica whose drain lasts
    print("replica refusing", flush=True)

signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=stop).start())
signal.signal(signal.SIGUSR1, lambda *_: threading.Thread(target=refuse).start())
print("replica listening", flush=True)
server.serve_forever()
while True:  # after SIGUSR1: alive, refusing, until SIGTERM
    time.sleep(1)
"""


def wait_for(predicate, timeout: float, what: str, every: float = 0.1):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(every)


@dataclass
class Stack:
    client: DockerClient
    run: str
    network: Network
    nginx: Container | None = None
    url: str = ""
    replicas: dict[str, Container] = field(default_factory=dict)  # name -> container

    def replica(self, suffix: str, delay: float = 0):
        name = f"nginx-resolve-{self.run}-{suffix}"
        container = self.client.containers.create(
            PYTHON_IMAGE,
            ["python", "-u", "-c", REPLICA],
            name=name,
            hostname=name,
            environment={"DELAY": str(delay)},
            labels={LABEL: self.run},
            network=self.network.name,
            networking_config={self.network.name: self.client.api.create_endpoint_config(aliases=[render.WEB_HOST])},
            stop_signal="SIGTERM",
        )
        container.start()
        self.replicas[name] = container
        return name

    def get(self, path: str = "/") -> tuple[int, str]:
        """(status, body) of one GET through nginx; (0, error) when no HTTP answer came."""
        status, body, _ = self.exchange("GET", path)
        return status, body

    def exchange(self, method: str, path: str = "/") -> tuple[int, str, str]:
        """(status, body, the replica's X-Request-On-Connection) of one request through nginx."""
        data = b"visit" if method == "POST" else None
        request = urllib.request.Request(self.url + path, data=data, method=method)
        try:
            with urllib.request.urlopen(request, timeout=REQUEST_TIMEOUT) as response:
                on = response.headers.get("X-Request-On-Connection", "")
                return response.status, response.read().decode(errors="replace"), on
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode(errors="replace")[:200], ""
        except OSError as error:
            return 0, repr(error), ""

    def answered_by(self, count: int) -> tuple[list[str], list[tuple[int, str]]]:
        """Send `count` GETs; (bodies of the 200s, the failures)."""
        names: list[str] = []
        failures: list[tuple[int, str]] = []
        for _ in range(count):
            status, body = self.get()
            if status == 200:
                names.append(body)
            else:
                failures.append((status, body))
        return names, failures


class SteadyClient:
    """GETs every PACE seconds in a thread until stopped; records every outcome."""

    def __init__(self, stack: Stack):
        self.stack = stack
        self.results: list[tuple[float, int, str]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self):
        while not self._stop.is_set():
            started = time.monotonic()
            status, body = self.stack.get()
            self.results.append((time.monotonic() - started, status, body))
            self._stop.wait(PACE)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(timeout=REQUEST_TIMEOUT + 5)
        assert not self._thread.is_alive(), "the client thread did not stop"

    @property
    def failures(self):
        return [(status, body) for _, status, body in self.results if status != 200]

    @property
    def names(self):
        return {body for _, status, body in self.results if status == 200}

    def summary(self) -> str:
        slowest = max((elapsed for elapsed, _, _ in self.results), default=0)
        return f"{len(self.results)} requests, {len(self.failures)} failed, slowest {slowest:.2f}s"


def _remove_stale(client) -> None:
    """Leftovers of runs killed before their finally (older than 15 min: not a live run)."""
    cutoff = datetime.now(timezone.utc) - timedelta(minutes=15)
    for container in client.containers.list(all=True, filters={"label": LABEL}):
        created = datetime.fromisoformat(container.attrs["Created"][:19]).replace(tzinfo=timezone.utc)
        if created < cutoff:
            container.remove(force=True)
    for network in client.networks.list(filters={"label": LABEL}):
        created = datetime.fromisoformat(network.attrs["Created"][:19]).replace(tzinfo=timezone.utc)
        if created < cutoff:
            try:
                network.remove()
            except docker.errors.APIError:  # still in use: not ours to force
                pass


@pytest.fixture(scope="module")
def stack():
    client = docker_client(timeout=120)
    ensure_image(client, NGINX_IMAGE)
    ensure_image(client, PYTHON_IMAGE)
    assert pinned_image("nginxImage") == NGINX_IMAGE
    _remove_stale(client)
    run = uuid.uuid4().hex[:8]
    network = client.networks.create(f"nginx-resolve-{run}", driver="bridge", labels={LABEL: run})
    stack = Stack(client, run, network)
    try:
        stack.replica("r1")
        stack.replica("r2")
        conf = render.nginx_conf(server_name="example.test", client_max_body_size="10m", tls=False, **APP_PATHS)
        stack.nginx = client.containers.create(
            NGINX_IMAGE,
            name=f"nginx-resolve-{run}-nginx",
            labels={LABEL: run},
            network=network.name,
            ports={"80/tcp": ("127.0.0.1", None)},
            healthcheck={  # the rendered test; a quick interval so the test need not wait long
                "test": render.nginx_healthcheck(),
                "interval": 1_000_000_000,
                "timeout": 3_000_000_000,
                "retries": 3,
                "start_period": 5_000_000_000,
            },
        )
        stack.nginx.put_archive("/", archive({render.NGINX_CONF: conf}))
        stack.nginx.start()
        stack.nginx.reload()
        port = stack.nginx.attrs["NetworkSettings"]["Ports"]["80/tcp"][0]["HostPort"]
        stack.url = f"http://127.0.0.1:{port}"
        started, early = time.monotonic(), []

        def first_200():
            status, body = stack.get()
            if status != 200:
                early.append((status, body[:60]))
            return status == 200

        wait_for(first_200, 15, "nginx to answer 200 through the upstream", every=0.02)
        print(f"first 200 through nginx {time.monotonic() - started:.2f}s after start; before it: {early}")
        yield stack
    finally:
        try:
            if stack.nginx is not None:
                lines = stack.nginx.logs(stdout=False, stderr=True).decode(errors="replace").splitlines()
                print("--- nginx's error log (last 30 lines)", *lines[-30:], sep="\n")
        except Exception:
            pass
        for container in client.containers.list(all=True, filters={"label": f"{LABEL}={run}"}):
            container.remove(force=True)
        network.remove()
        client.close()


def nginx_started_at(stack: Stack) -> tuple[str, int]:
    assert stack.nginx is not None, "the stack fixture creates nginx"
    stack.nginx.reload()
    return stack.nginx.attrs["State"]["StartedAt"], stack.nginx.attrs["RestartCount"]


def test_a_requests_reach_every_replica(stack):
    names, failures = stack.answered_by(30)

    assert failures == []
    assert set(names) == {n for n in stack.replicas}


def test_b_a_new_replica_gets_requests_within_seconds_without_touching_nginx(stack):
    before = nginx_started_at(stack)
    name = stack.replica("r3")
    started = time.monotonic()

    failures: list = []

    def reached():
        status, body = stack.get()
        if status != 200:
            failures.append((status, body))
        return body == name

    wait_for(reached, 10, f"{name} to receive a request through nginx", every=0.05)
    print(f"{name} reached after {time.monotonic() - started:.1f}s")
    assert failures == []
    assert nginx_started_at(stack) == before  # no restart, no new container


def test_c_a_replica_stopping_gracefully_costs_no_request(stack):
    assert len(stack.replicas) >= 2
    victim_name, victim = next(iter(stack.replicas.items()))
    with SteadyClient(stack) as client:
        wait_for(lambda: victim_name in client.names, 5, f"{victim_name} to be in rotation")
        time.sleep(0.5)
        stopped = time.monotonic()
        victim.stop(timeout=10)
        stop_seconds = time.monotonic() - stopped
        time.sleep(3)
    del stack.replicas[victim_name]
    victim.reload()
    print(f"docker stop took {stop_seconds:.1f}s (exit {victim.attrs['State']['ExitCode']}); {client.summary()}")

    assert client.failures == []
    assert victim.attrs["State"]["ExitCode"] == 0  # it stopped on SIGTERM, not by SIGKILL
    names_after, failures_after = stack.answered_by(20)
    assert failures_after == []
    assert victim_name not in names_after
    assert set(names_after) == set(stack.replicas)


def test_d_a_replica_that_refuses_connections_costs_no_request(stack):
    since = int(time.time()) - 1
    with SteadyClient(stack) as client:
        name = stack.replica("late", delay=3)
        wait_for(lambda: name in client.names, 12, f"{name} to answer once it listens", every=0.1)
        time.sleep(0.5)
    print(client.summary())
    late = stack.replicas[name]
    late.reload()
    address = late.attrs["NetworkSettings"]["Networks"][stack.network.name]["IPAddress"]
    errors = stack.nginx.logs(stdout=False, stderr=True, since=since).decode(errors="replace")

    assert client.failures == []
    # Not vacuous: nginx did try the replica while it refused, and passed the request on.
    assert "(111: Connection refused) while connecting to upstream" in errors
    assert f'upstream: "http://{address}:{APP_PATHS["app_port"]}/"' in errors


def test_e_health_door_answers_204_inside_and_the_healthcheck_turns_healthy(stack):
    code = stack.nginx.exec_run(
        [
            "curl",
            "--silent",
            "--output",
            "/dev/null",
            "--write-out",
            "%{http_code}",
            f"http://127.0.0.1:{render.NGINX_HEALTH_PORT}{render.NGINX_HEALTH_PATH}",
        ]
    )
    assert (code.exit_code, code.output.decode()) == (0, "204")

    def health():
        stack.nginx.reload()
        return stack.nginx.attrs["State"].get("Health", {}).get("Status") == "healthy"

    wait_for(health, 15, "the nginx container to turn healthy")

    # The door is on nginx's loopback only: from the network it refuses.
    nginx_ip = stack.nginx.attrs["NetworkSettings"]["Networks"][stack.network.name]["IPAddress"]
    replica = next(iter(stack.replicas.values()))
    probe = replica.exec_run(
        [
            "python",
            "-c",
            f"import socket\ntry:\n socket.create_connection(('{nginx_ip}', {render.NGINX_HEALTH_PORT}), 3)\n"
            " print('open')\nexcept OSError as e:\n print(type(e).__name__)",
        ]
    )
    assert probe.output.decode().strip() == "ConnectionRefusedError"


def test_f_a_request_nginx_never_repeats_goes_over_a_connection_of_its_own(stack):
    """nginx repeats a GET on another replica when its connection breaks, never a POST once
    sent (ngx_http_upstream_next: NGX_HTTP_UPSTREAM_FT_NON_IDEMPOTENT). A POST on a kept-alive
    connection that a draining replica closes under it was a 502 in the release rehearsal;
    on a connection of its own, a draining replica refuses before anything is sent."""
    gets = [stack.exchange("GET") for _ in range(20)]
    posts = [stack.exchange("POST") for _ in range(20)]

    assert {status for status, _, _ in gets + posts} == {200}
    # Not vacuous: the GETs do reuse the replica's connections.
    assert max(int(on) for _, _, on in gets) > 1
    assert {on for _, _, on in posts} == {"1"}


def test_g_a_replica_that_comes_up_while_every_other_refuses_is_reached_at_once(stack):
    """Every replica nginx knows refuses, so nginx marks each failed for fail_timeout (5 s),
    the new one too while it boots; then the new one listens. The marks alone would keep it
    out until they expire ("no live upstreams": ngx_http_upstream_get_peer skips a peer with
    fails >= max_fails, and nothing clears the marks when all are failed); the fresh attempt
    (@again, @health_again) ignores them. CI met this in a dev release as 6 failed probes:
    both new replicas had refused while booting, then both old ones refused while draining."""
    for container in stack.replicas.values():
        container.kill(signal="SIGUSR1")
    for container in stack.replicas.values():
        wait_for(lambda c=container: b"replica refusing" in c.logs(), 5, f"{container.name} to refuse")
    name = stack.replica("phoenix", delay=3)
    phoenix = stack.replicas[name]
    since = int(time.time()) - 1
    with SteadyClient(stack):  # marks every replica failed, phoenix while it boots
        wait_for(lambda: b"replica listening" in phoenix.logs(), 10, f"{name} to listen", every=0.05)
        after = [(path, *stack.get(path)) for path in ("/", "/health/") * 10]
    errors = stack.nginx.logs(stdout=False, stderr=True, since=since).decode(errors="replace")

    # Not vacuous: every replica, phoenix included, had been marked failed before it listened.
    assert "no live upstreams" in errors
    assert [(path, status, body) for path, status, body in after if (status, body) != (200, name)] == []


def test_h_a_post_nothing_of_which_reached_a_replica_is_sent_again(stack):
    """A replica's address dies with its container, and nginx learns it only at its next
    resolution (valid=1s): until then a request may try the dead address (the connect times
    out, nothing is sent) and, when the resolution changes the replica set meanwhile, nginx
    cannot go on to the next one ("no live upstreams", a 502, ngx_http_upstream_get_round_robin_peer).
    The fresh attempt repeats such a request whatever its method: none of it reached a replica.
    Here the dead address is a replica taken off the network (its alias goes with it), again
    and again under POSTs from several clients, until nginx has met that case (bounded)."""
    names = [stack.replica(f"h{n}") for n in (1, 2)]
    for name in names:
        wait_for(lambda n=name: b"replica listening" in stack.replicas[n].logs(), 10, f"{name} to listen")
    since = int(time.time()) - 1
    results: list[tuple[int, str]] = []
    stop = threading.Event()

    def post():
        while not stop.is_set() and len(results) < MAX_POSTS:
            status, body, _ = stack.exchange("POST")
            results.append((status, body))

    clients = [threading.Thread(target=post, daemon=True) for _ in range(6)]
    for client in clients:
        client.start()
    met, cycles = False, 0
    try:
        while not met and cycles < 8:
            cycles += 1
            victim = stack.replicas[names[cycles % 2]]
            stack.network.disconnect(victim)
            time.sleep(2.5)
            stack.network.connect(victim, aliases=[render.WEB_HOST])
            time.sleep(2)
            errors = stack.nginx.logs(stdout=False, stderr=True, since=since).decode(errors="replace")
            met = any("no live upstreams" in line and '"POST / ' in line for line in errors.splitlines())
    finally:
        stop.set()
        for client in clients:
            client.join(timeout=REQUEST_TIMEOUT + 5)
    failed = [(status, body[:80]) for status, body in results if status != 200]
    print(f"{len(results)} POSTs over {cycles} cycles, {len(failed)} failed; nginx met the case: {met}")

    assert met, f"in {cycles} cycles no POST met a dead address across a resolution"
    assert failed == []
