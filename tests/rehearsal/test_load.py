"""The rehearsal's load generator against a local HTTP server the test controls (no Docker)."""

from __future__ import annotations

import ipaddress
import json
import re
import socket
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from rehearsal.checks.load import Failure, Load, Release, Report

SHA_A = "1a2b3c4d5e6f" + "0" * 28
SHA_B = "9f8e7d6c5b4a" + "1" * 28


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, like nginx

    served = 0  # requests on this connection so far

    def do_GET(self) -> None:
        assert isinstance(self.server, Server)
        backend = self.server.backend
        self.served += 1
        if backend.closing == "every" or (backend.closing == "kept" and self.served > 1):
            # Closed as the request arrives, nothing answered: "kept" is nginx's old worker at a
            # reload closing an idle kept-alive connection; "every" is a server that never answers.
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        arrived = time.monotonic()
        status, sha, delay = backend.status, backend.sha, backend.delay
        if backend.hanging:
            backend.release.wait(10)
        elif delay:
            time.sleep(delay)
        with backend.lock:
            backend.hits.append((arrived, status, sha, self.client_address, self.headers.get("Host"), self.path))
            number = len(backend.hits)
            backend.methods.append(self.command)
        body = json.dumps({"status": "ok", "checks": {"database": "ok"}, "git_sha": sha, "id": number}).encode()
        if backend.paused:  # nginx's maintenance page (render.nginx_conf, maintenance_retry_after)
            status, body = 503, b"<html><h1>Down for maintenance</h1></html>"
        self.send_response(status)
        if backend.paused:
            self.send_header("Retry-After", "30")
        if 300 <= status < 400:
            self.send_header("Location", f"http://127.0.0.1:{backend.port}/elsewhere/")
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_POST = do_GET

    def log_message(self, *args: object) -> None:
        pass


class Server(ThreadingHTTPServer):
    """Tracks its connections so that going down also drops idle keep-alive ones (as nginx does)."""

    def __init__(self, backend: Backend):
        self.backend = backend
        self.connections: set[socket.socket] = set()
        super().__init__(("127.0.0.1", backend.port), Handler)

    def process_request(self, request, client_address):
        self.connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request):
        self.connections.discard(request)
        super().shutdown_request(request)


class Backend:
    def __init__(self) -> None:
        self.status = 200
        self.sha = SHA_A
        self.delay = 0.0
        self.hanging = False
        self.paused = False
        self.closing = ""  # "kept": close a kept-alive connection at its next request; "every": close all
        self.release = threading.Event()
        self.lock = threading.Lock()
        self.hits: list[tuple] = []
        self.methods: list[str] = []
        self.port = 0
        self.server: Server | None = None
        self.up()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def up(self) -> None:
        self.server = Server(self)  # the same port again after a down(): SO_REUSEADDR
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def down(self) -> None:
        """Refuse connections from now on: stop listening and drop open connections."""
        server, self.server = self.server, None
        assert server is not None, "the backend is already down"
        server.shutdown()
        server.server_close()
        for connection in list(server.connections):
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def count(self, status: int, sha: str | None = None) -> int:
        with self.lock:
            return sum(1 for h in self.hits if h[1] == status and (sha is None or h[2] == sha))


@pytest.fixture
def backend():
    b = Backend()
    yield b
    b.release.set()
    if b.server:
        b.down()


def sleep_until(t0: float, offset: float) -> None:
    time.sleep(max(0.0, t0 + offset - time.monotonic()))


# -- safety


@pytest.mark.parametrize(
    "url",
    [
        "http://10.0.0.1:8080",
        "http://0.0.0.0:8080",
        "http://192.168.1.5/",
        "http://[::2]:80",
        "http://example.com/",
        "http://127.0.0.1.nip.io/",
        "ftp://127.0.0.1/",
        "127.0.0.1:8080",
    ],
)
def test_refuses_anything_but_loopback(url):
    with pytest.raises(ValueError) as refused:
        Load(url)
    assert "\n" not in str(refused.value)


@pytest.mark.parametrize(
    "url",
    ["http://127.0.0.1:8080", "http://127.3.2.1", "http://[::1]:8080/", "http://localhost:8080", "https://LOCALHOST"],
)
def test_accepts_loopback(url):
    Load(url)  # not started: nothing is sent


def test_allowed_networks_are_explicit():
    with pytest.raises(ValueError):
        Load("http://172.18.0.3:8000")
    Load("http://172.18.0.3:8000", allowed_networks=[ipaddress.ip_network("172.18.0.0/16")])
    with pytest.raises(ValueError):
        Load("http://172.19.0.3:8000", allowed_networks=[ipaddress.ip_network("172.18.0.0/16")])


def test_no_proxy_from_the_environment_and_keep_alive(backend, monkeypatch):
    # A proxy from the environment would route traffic elsewhere; this one would refuse everything.
    for name in ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.setenv(name, "http://127.0.0.1:9")
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    load = Load(backend.url, host="example.test:8080", rate=20, workers=2, max_seconds=1.0).start()
    assert load.wait(5)
    report = load.stop()
    assert report.failed == 0 and report.errors == Counter()
    assert 17 <= report.requests <= 20
    hosts = {h[4] for h in backend.hits}
    assert hosts == {"example.test:8080"}
    assert {h[5] for h in backend.hits} == {"/health/"}
    # One keep-alive connection per worker's session.
    assert len({h[3] for h in backend.hits}) <= 2


def test_redirects_are_failures_not_followed(backend):
    backend.status = 302
    load = Load(backend.url, rate=50, workers=2, max_requests=4).start()
    assert load.wait(5)
    report = load.stop()
    assert report.statuses == Counter({302: 4}) and report.failed == 4
    assert [f.kind for f in report.failures] == ["302"] * 4
    assert {h[5] for h in backend.hits} == {"/health/"}


def test_expected_status_is_a_parameter(backend):
    backend.status = 503
    load = Load(backend.url, path="status/", rate=50, workers=1, max_requests=3, expect=503).start()
    assert load.wait(5)
    report = load.stop()
    assert (report.requests, report.failed) == (3, 0)
    assert {h[5] for h in backend.hits} == {"/status/"}


def test_a_writing_load_collects_what_each_acknowledged_answer_says(backend):
    backend.status = 201
    load = Load(
        backend.url, path="/visits/", method="post", expect=201, collect="id", rate=50, workers=2, max_requests=6
    ).start()
    assert load.wait(5)
    report = load.stop()
    assert set(backend.methods) == {"POST"} and report.failed == 0
    assert sorted(report.collected) == [1, 2, 3, 4, 5, 6]
    # Answers with another status are failures, and what they say is not collected.
    backend.status = 500
    load = Load(backend.url, method="POST", expect=201, collect="id", rate=50, workers=1, max_requests=2).start()
    assert load.wait(5)
    report = load.stop()
    assert (report.failed, report.collected) == (2, ())


# -- a release: 503s, an outage, a new git_sha


def test_release_window(backend):
    load = Load(backend.url, rate=20, workers=4, timeout=2, max_seconds=30).start()
    t0 = time.monotonic()
    sleep_until(t0, 1.2)
    backend.status = 503
    sleep_until(t0, 1.8)
    backend.down()  # connections refused
    sleep_until(t0, 2.6)
    backend.sha, backend.status = SHA_B, 200
    backend.up()
    sleep_until(t0, 3.4)
    report = load.stop()

    assert report.statuses[503] == backend.count(503) > 0
    assert report.errors and all(kind.startswith("ConnectionError") for kind in report.errors)
    assert "ConnectionError(ConnectionRefusedError)" in report.errors
    assert report.failed == report.statuses[503] + sum(report.errors.values())
    assert report.requests == sum(report.statuses.values()) + sum(report.errors.values())
    assert 0.8 * 20 * 3.4 <= report.requests <= 20 * 3.4 + 4
    assert report.unfinished == 0
    assert all(1.15 <= f.at <= 2.8 for f in report.failures), [f.at for f in report.failures]
    assert report.failed_seconds == 2  # seconds 1 and 2
    assert 1.3 <= report.longest_gap <= 1.9  # from the first 503 (1.2) to the restart (2.6)
    assert 3.35 <= report.duration <= 3.6

    a, b = report.releases[SHA_A], report.releases[SHA_B]
    # Every body names its release, the 503s' too: SHA_A answered until the outage.
    assert a.count == backend.count(200, SHA_A) + backend.count(503, SHA_A)
    assert b.count == backend.count(200, SHA_B)
    assert a.first < 0.2 and 1.6 <= a.last <= 1.9
    assert 2.55 <= b.first <= 2.8 and b.last >= 3.2
    assert re.search(
        r"releases: 1a2b3c4d5e6f 0\.\d-1\.\ds \(\d+\), 9f8e7d6c5b4a 2\.\d-3\.\ds \(\d+\)$", report.details()
    ), report.details()
    assert "failed seconds: 2 (1-2)" in report.details()


def test_slow_responses_do_not_cause_bursts(backend):
    load = Load(backend.url, rate=20, workers=4, timeout=5, max_seconds=30).start()
    t0 = time.monotonic()
    sleep_until(t0, 0.4)
    backend.delay = 1.0
    sleep_until(t0, 1.4)
    backend.delay = 0.0
    sleep_until(t0, 2.6)
    report = load.stop()

    assert report.failed == 0
    arrivals = sorted(h[0] for h in backend.hits)
    assert len(arrivals) <= 20 * 2.6 + 4
    # Catching up on missed slots would send several requests per worker at once after the slow
    # second; pacing allows about 20/s * 0.25 s in any quarter second.
    busiest = max(sum(1 for t in arrivals if start <= t < start + 0.25) for start in arrivals)
    assert busiest <= 8, busiest
    assert 0.8 <= report.longest_gap <= 1.35


# -- bounds


def test_stops_by_itself_at_max_requests(backend):
    load = Load(backend.url, rate=50, workers=3, max_requests=7, max_seconds=30).start()
    assert load.wait(3)
    time.sleep(0.2)
    report = load.stop()
    assert report.requests == 7 == len(backend.hits)
    assert report.duration < 0.5  # the end is when the load stopped, not when stop() was called


def test_stops_by_itself_at_max_seconds(backend):
    load = Load(backend.url, rate=20, workers=2, max_seconds=0.6).start()
    assert load.wait(3)
    time.sleep(0.3)
    report = load.stop()
    assert 0.55 <= report.duration <= 0.9
    assert 10 <= report.requests <= 12  # slots at 0.00, 0.05, ... 0.55
    assert report.longest_gap < 0.3


def test_stop_is_bounded_when_the_server_hangs(backend):
    backend.hanging = True
    load = Load(backend.url, rate=20, workers=3, timeout=5, stop_grace=0.5).start()
    time.sleep(0.3)
    started = time.monotonic()
    report = load.stop()
    assert time.monotonic() - started < 1.5
    assert (report.requests, report.failed, report.unfinished) == (0, 0, 3)
    assert report.longest_gap == pytest.approx(report.duration)
    backend.release.set()
    time.sleep(0.1)
    assert load.stop() is report  # late answers do not change the report
    assert report.requests == 0


def test_context_manager_and_refused_connections():
    with socket.socket() as probe:  # a free loopback port with nothing listening
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with Load(f"http://127.0.0.1:{port}", rate=50, workers=2, max_requests=3) as load:
        assert load.wait(3)
    report = load.report
    assert report.errors == Counter({"ConnectionError(ConnectionRefusedError)": 3})
    assert report.failed == 3 and report.longest_gap == pytest.approx(report.duration)


# -- output


def test_line_format():
    report = Report(requests=240, failed=3, failed_seconds=1, longest_gap=0.44, duration=12.0)
    assert report.line("dev", "new-image") == "release dev new-image: 240 requests, 3 failed, longest gap 0.4s"
    assert (
        Report(0, 0, 0, 12.0, 12.0).line("prod", "nginx-config")
        == "release prod nginx-config: 0 requests, 0 failed, longest gap 12.0s"
    )


def test_details():
    report = Report(
        requests=650,
        failed=4,
        failed_seconds=3,
        longest_gap=0.7,
        duration=30.1,
        statuses=Counter({200: 647, 502: 1}),
        errors=Counter({"ConnectionError(ConnectionResetError)": 3}),
        releases={SHA_B: Release(410, 9.8, 30.1), SHA_A: Release(240, 0.0, 12.3)},
        failures=(
            Failure(9.1, None, "ConnectionError(ConnectionResetError)"),
            Failure(9.9, 502, None),
            Failure(10.2, None, "ConnectionError(ConnectionResetError)"),
            Failure(12.5, None, "ConnectionError(ConnectionResetError)"),
        ),
    )
    assert report.details() == (
        "  failures: ConnectionError(ConnectionResetError) x3, 502 x1\n"
        "  failed seconds: 3 (9-10, 12)\n"
        "  releases: 1a2b3c4d5e6f 0.0-12.3s (240), 9f8e7d6c5b4a 9.8-30.1s (410)"
    )
    assert Report(5, 0, 0, 0.2, 1.0).details() == "  failures: none\n  releases: no git_sha seen"


def test_the_maintenance_page_is_counted_apart_and_its_window_measured(backend):
    load = Load(backend.url, rate=40, workers=2, max_seconds=3.0, maintenance=True).start()
    t0 = time.monotonic()
    sleep_until(t0, 0.5)
    backend.paused = True
    sleep_until(t0, 1.5)
    backend.paused = False
    sleep_until(t0, 2.0)
    backend.status = 503  # an app's own 503 (no Retry-After, no page) is a failure
    sleep_until(t0, 2.3)
    backend.status = 200
    report = load.stop()
    assert 30 <= report.maintenance <= 50, report
    assert 0.8 <= report.window <= 1.1, report.window
    assert report.failed >= 8 and {f.status for f in report.failures} == {503}
    assert report.line("prod", "maintenance-migration").endswith(
        f", {report.maintenance} maintenance 503, window {report.window:.1f}s"
    )


def test_without_maintenance_the_page_is_a_failure(backend):
    backend.paused = True
    load = Load(backend.url, rate=50, workers=1, max_requests=3).start()
    assert load.wait(5)
    report = load.stop()
    assert (report.failed, report.maintenance) == (3, 0)
    assert report.line("dev", "x") == f"release dev x: 3 requests, 3 failed, longest gap {report.longest_gap:.1f}s"


def test_combined_reports_add_up_and_keep_the_worst():
    from rehearsal.checks.load import combined

    health = Report(
        100,
        1,
        1,
        0.5,
        10.0,
        Counter({200: 99}),
        failures=(Failure(4.2, 502, None),),
        maintenance_times=(3.0, 3.5, 4.0),
        releases={SHA_A: Release(99, 0.0, 10.0)},
    )
    pages = Report(50, 0, 0, 1.2, 10.1, Counter({200: 45}), maintenance_times=(2.9, 3.8, 4.3, 8.0, 8.2))
    both = combined([health, pages])
    assert (both.requests, both.failed, both.failed_seconds, both.longest_gap) == (150, 1, 1, 1.2)
    assert both.maintenance == 8 and both.windows == [(2.9, 4.3), (8.0, 8.2)] and round(both.window, 1) == 1.4
    assert both.statuses == Counter({200: 144}) and both.releases == {SHA_A: Release(99, 0.0, 10.0)}
    assert (
        combined([pages]).line("p", "s")
        == "release p s: 50 requests, 0 failed, longest gap 1.2s, 5 maintenance 503, window 1.4s"
    )
    assert "  maintenance page: 5 answers, windows 2.9-4.3s, 8.0-8.2s" in pages.details()


def test_a_kept_alive_connection_closed_under_a_repeatable_request_is_sent_again_once(backend):
    # As a browser does (RFC 9112 9.3.1): the request goes out again on a new connection, counted.
    backend.closing = "kept"
    with Load(backend.url, rate=20, workers=1, max_requests=10) as load:
        assert load.wait(10)
    report = load.stop()
    assert (report.requests, report.failed) == (10, 0)
    assert report.retried == 9  # every request after the first met its connection closed
    assert "sent again on a new connection: 9" in report.details()


def test_nothing_else_is_sent_again(backend):
    # Not a POST (nginx and browsers never repeat one), and not a request on a new connection.
    backend.closing = "kept"
    with Load(backend.url, rate=20, workers=1, max_requests=6, method="POST") as posts:
        assert posts.wait(10)
    report = posts.stop()
    assert (report.failed, report.retried) == (3, 0)
    backend.closing = "every"
    with Load(backend.url, rate=20, workers=1, max_requests=4) as gets:
        assert gets.wait(10)
    report = gets.stop()
    assert (report.failed, report.retried) == (4, 0)
    assert set(report.errors) == {"ConnectionError(RemoteDisconnected)"}
