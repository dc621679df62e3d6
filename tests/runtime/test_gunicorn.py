"""The web role as the container runs it: gunicorn with the runtime's config
(django_docker_runtime.gunicorn_conf) serving the runtime's wrapper of the example app, with its
production settings, over real HTTP against the real PostgreSQL and Redis."""

import json
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from django.conf import settings

from django_docker_runtime import healthcheck
from tests.django_support import (
    APP_DIR,
    GUNICORN_CONFIG,
    WEB_APPLICATION,
    DelayedForwarder,
    accepts,
    closed_port,
    established_tcp_remote_ports,
    process_tree,
    production_env,
    refusing_port,
    stop,
    test_database_url,
    wait_until,
)

# pytest-django creates the test database only when some collected test asks for it.
pytestmark = pytest.mark.django_db

GIT_SHA = "4f2c0ffee4f2c0ffee4f2c0ffee4f2c0ffee4f2c"


def get(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, headers=headers or {})

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None

    opener = urllib.request.build_opener(NoRedirect)
    try:
        with opener.open(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def gunicorn_argv(port: int, *flags: str) -> list[str]:
    # The program's web argv (render.web_command), with a free loopback port instead of 0.0.0.0:PORT.
    return ["gunicorn", "--config", GUNICORN_CONFIG, *flags, "--bind", f"127.0.0.1:{port}", WEB_APPLICATION]


@pytest.fixture(scope="module")
def server(django_db_setup, django_db_blocker) -> Iterator[tuple[str, subprocess.Popen]]:
    with django_db_blocker.unblock():
        database_url = test_database_url()
    port = closed_port()
    env = production_env(DATABASE_URL=database_url, GIT_SHA=GIT_SHA)
    process = subprocess.Popen(
        gunicorn_argv(port, "--workers", "2", "--timeout", "10", "--graceful-timeout", "10"),
        cwd=APP_DIR,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    assert process.stdout is not None  # stdout=PIPE
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: process.poll() is not None or _answers(base), timeout=30, what="gunicorn to answer")
        assert process.poll() is None, process.stdout.read()
        yield base, process
    finally:
        stop(process)


def _answers(base: str) -> bool:
    try:
        get(f"{base}/health/")
        return True
    except OSError:
        return False


def test_health_over_http_reports_the_image_revision(server):
    base, _ = server

    status, _, body = get(f"{base}/health/")

    assert status == 200
    answer = json.loads(body)
    assert answer == {
        "status": "ok",
        "checks": {"database": "ok", "cache": "ok", "broker": "ok"},
        "git_sha": GIT_SHA,
        "hostname": answer["hostname"],
    }
    assert answer["hostname"] == socket.gethostname()  # the replica that answered


def test_web_healthcheck_command_passes_against_gunicorn(server):
    base, _ = server

    assert healthcheck.web(f"{base}/health/") == 0
    assert healthcheck.web(f"http://127.0.0.1:{closed_port()}/health/") == 1


def test_https_redirect_and_forwarded_proto_from_the_trusted_proxy(server):
    base, _ = server
    host = {"Host": "app.example.com"}

    status, headers, _ = get(f"{base}/whoami/", host)
    assert (status, headers["Location"]) == (301, "https://app.example.com/whoami/")

    status, headers, body = get(f"{base}/whoami/", {**host, "X-Forwarded-Proto": "https"})
    assert status == 200
    assert json.loads(body)["secure"] is True  # request.is_secure() behind the trusted proxy
    assert headers["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains; preload"


def test_unknown_hosts_are_refused_except_for_health(server):
    base, _ = server

    assert get(f"{base}/whoami/", {"Host": "evil.example.net", "X-Forwarded-Proto": "https"})[0] == 400
    assert get(f"{base}/health/", {"Host": "evil.example.net"})[0] == 200


def test_sigterm_shuts_down_gracefully_with_access_logs_on_stdout(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock():
        database_url = test_database_url()
    port = closed_port()
    env = production_env(DATABASE_URL=database_url, DJANGO_SECURE_SSL_REDIRECT="false")
    process = subprocess.Popen(
        gunicorn_argv(port, "--workers", "1"),
        cwd=APP_DIR,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        wait_until(lambda: _answers(f"http://127.0.0.1:{port}"), timeout=30, what="gunicorn to answer")
        get(f"http://127.0.0.1:{port}/whoami/", {"Host": "app.example.com", "X-Forwarded-For": "203.0.113.7"})
        started = time.monotonic()
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=20)
    finally:
        stop(process)

    assert process.returncode == 0
    assert time.monotonic() - started < 10
    assert '203.0.113.7 127.0.0.1 "GET /whoami/ HTTP/1.1" 200' in output
    assert "Handling signal: term" in output


# --- a replica opens its port only when it can serve, and never flaps in DNS ---------------


def start_gunicorn(argv: list[str], env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(
        argv,
        cwd=APP_DIR,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


def stays_up_refusing(process: subprocess.Popen, port: int, seconds: float) -> bool:
    """Probe the port every 20 ms for `seconds`: True when the process stayed up and never accepted."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None or accepts(port, timeout=0.2):
            return False
        time.sleep(0.02)
    return True


def stop_and_read(process: subprocess.Popen) -> tuple[float, str]:
    """SIGTERM (as `docker stop`): how long it took to exit, and everything it printed."""
    started = time.monotonic()
    process.send_signal(signal.SIGTERM)
    output, _ = process.communicate(timeout=15)
    return time.monotonic() - started, output


def parked(argv: list[str], env: dict[str, str], port: int, seconds: float = 3) -> tuple[float, str]:
    """Start gunicorn, require it to stay up refusing for `seconds`, then stop it:
    (how long the stop took, everything it printed)."""
    process = start_gunicorn(argv, env)
    try:
        assert stays_up_refusing(process, port, seconds), process.communicate(timeout=10)[0]
        return stop_and_read(process)
    finally:
        stop(process)


def test_a_missing_setting_stops_the_start_with_one_line_and_the_replica_stays_down_quietly():
    env = production_env()
    del env["DJANGO_SECRET_KEY"]
    port = closed_port()
    # Up, not listening, not restarting: a replica that cannot start does not flap in DNS.
    took, output = parked(gunicorn_argv(port), env, port)

    assert took < 5
    assert "Traceback" not in output
    assert output.strip().splitlines()[-1] == "configuration error: DJANGO_SECRET_KEY is required and not set"
    assert "Booting worker" not in output and "Listening at" not in output


def test_a_release_whose_app_fails_to_import_never_listens_and_stays_down_quietly():
    port = closed_port()
    env = production_env(APP_MODULE="broken_release_wsgi:application", WEB_DRAIN_SECONDS="1")
    env["PYTHONPATH"] += f":{Path(__file__).resolve().parent}"
    took, output = parked(gunicorn_argv(port), env, port)

    assert 1 <= took < 5  # told to stop, it drains like any other exit
    assert "broken release: the app fails to import" in output
    assert "Listening at" not in output and "Booting worker" not in output


def test_gunicorn_never_listens_while_the_database_refuses_and_says_why_once():
    port = closed_port()
    with refusing_port() as database_port:
        env = production_env(DATABASE_URL=f"postgres://app:app@127.0.0.1:{database_port}/app")
        took, output = parked(gunicorn_argv(port), env, port, seconds=4)

    assert took < 5  # still waiting, not stuck: `docker stop` ends it at once
    assert "web: not ready after 0s: database error: OperationalError; not listening until it is" in output
    assert "Traceback" not in output
    assert "Listening at" not in output and "Booting worker" not in output
    # Each distinct failure is logged once with its detail, not on every 0.5 s poll.
    assert output.count("health check database failed") == 1
    assert output.count("web: not ready") == 1


def test_gunicorn_listens_once_the_database_answers_and_forks_workers_without_its_connections(
    django_db_setup, django_db_blocker
):
    with django_db_blocker.unblock():
        database_url = urlsplit(test_database_url())
    redis_port = urlsplit(settings.REDIS_URL).port or 6379
    port = closed_port()
    with DelayedForwarder((database_url.hostname, database_url.port or 5432)) as database:
        late_url = database_url._replace(netloc=database_url.netloc.rsplit("@", 1)[0] + f"@127.0.0.1:{database.port}")
        env = production_env(DATABASE_URL=late_url.geturl())
        started = time.monotonic()
        process = start_gunicorn(gunicorn_argv(port, "--workers", "2"), env)
        try:
            # The database refuses for 2 s, then answers; gunicorn must not accept before that.
            while not accepts(port, timeout=0.2):
                assert process.poll() is None, process.communicate(timeout=10)[0]
                assert time.monotonic() - started < 20, "gunicorn did not start listening"
                if database.opened_at is None and time.monotonic() - started >= 2:
                    database.open()
                time.sleep(0.02)
            listening_at = time.monotonic()
            assert database.opened_at is not None and listening_at > database.opened_at

            # Before any request: once the workers are forked, neither they nor the master
            # hold the connections the master's checks opened.
            def master_and_workers() -> list[int] | None:
                tree = process_tree(process.pid)
                return tree if len(tree) == 3 else None

            gunicorn = wait_until(master_and_workers, timeout=10, interval=0.05, what="the master and its 2 workers")
            held = established_tcp_remote_ports(gunicorn)
            assert {pid: ports for pid, ports in held.items() if {database.port, redis_port} & set(ports)} == {}

            status, _, body = get(f"http://127.0.0.1:{port}/health/")
        finally:
            stop(process)
            output = process.stdout.read()

    assert (status, json.loads(body)["checks"]) == (200, {"database": "ok", "cache": "ok", "broker": "ok"}), output
    assert "web: not ready after 0s: database error: OperationalError; not listening until it is" in output
    assert output.index("Ready: database answered") < output.index("Listening at")


def test_a_replica_serves_while_the_broker_and_cache_are_down_and_health_says_so(django_db_setup, django_db_blocker):
    # Redis restarting (or gone) is not a reason to take a replica out: pages that do not need it
    # are served, the container healthcheck (the ready scope) passes, /health/ reports it.
    with django_db_blocker.unblock():
        database_url = test_database_url()
    port = closed_port()
    with refusing_port() as redis_port:
        env = production_env(
            DATABASE_URL=database_url, REDIS_URL=f"redis://127.0.0.1:{redis_port}/0", DJANGO_SECURE_SSL_REDIRECT="false"
        )
        process = start_gunicorn(gunicorn_argv(port, "--workers", "1"), env)
        try:
            base = f"http://127.0.0.1:{port}"
            wait_until(lambda: process.poll() is not None or accepts(port, 0.2), timeout=30, what="gunicorn to listen")
            assert process.poll() is None, process.communicate(timeout=10)[0]
            page = get(f"{base}/visits/", {"Host": "app.example.com"})
            everything = get(f"{base}/health/")
            healthcheck_exit = healthcheck.web(f"{base}/health/?scope=ready")
        finally:
            stop(process)

    assert page[0] == 200 and "visits" in json.loads(page[2])
    assert everything[0] == 503
    checks = json.loads(everything[2])["checks"]
    assert checks["database"] == "ok" and checks["cache"].startswith("error") and checks["broker"].startswith("error")
    assert healthcheck_exit == 0
    assert healthcheck.health_url().endswith("/health/?scope=ready")


# --- a stopping replica refuses connections for WEB_DRAIN_SECONDS before it exits


def _refusing_until_exit(process: subprocess.Popen, port: int, timeout: float) -> tuple[float, bool]:
    """(seconds until the process exited, whether the port accepted anything meanwhile)."""
    started = time.monotonic()
    accepted = False
    while process.poll() is None:
        accepted = accepted or accepts(port, timeout=0.2)
        assert time.monotonic() - started < timeout, f"gunicorn still running after {timeout}s"
        time.sleep(0.05)
    return time.monotonic() - started, accepted


def listening_gunicorn(django_db_blocker, *flags: str, drain: str) -> tuple[subprocess.Popen, int]:
    """gunicorn with the runtime's config on a free loopback port, once it listens."""
    with django_db_blocker.unblock():
        database_url = test_database_url()
    port = closed_port()
    env = production_env(DATABASE_URL=database_url, WEB_DRAIN_SECONDS=drain)
    process = start_gunicorn(gunicorn_argv(port, *flags), env)
    try:
        wait_until(lambda: accepts(port), timeout=30, what="gunicorn to listen")
    except BaseException:
        stop(process)
        raise
    return process, port


def test_sigterm_closes_the_port_at_once_then_drains_before_exiting(django_db_setup, django_db_blocker):
    process, port = listening_gunicorn(django_db_blocker, "--workers", "1", drain="2")
    try:
        process.send_signal(signal.SIGTERM)
        time.sleep(0.3)  # the listener closes as the master handles the signal
        assert process.poll() is None, "exited without draining"
        elapsed, accepted = _refusing_until_exit(process, port, timeout=15)
    finally:
        stop(process)

    assert not accepted  # refused throughout: nginx retries elsewhere at once
    assert process.returncode == 0
    assert 1.2 <= elapsed < 8  # the 2 s drain (minus the 0.3 s above), not an immediate exit


def test_sigterm_refuses_new_connections_while_threads_still_answer_kept_alive_ones(django_db_setup, django_db_blocker):
    """With threads (gunicorn's gthread worker, `webThreads` > 1), a stopping worker lingers for its
    kept-alive connections (gunicorn 27.0.1 workers/gthread.py run: STOP_KEEPALIVE_LINGER) and,
    left alone, holds its copy of the listening socket open the while: the kernel goes on
    completing handshakes nobody accepts, and resets them at the close, after nginx has sent its
    request there (a POST, which nginx never repeats, lost). The runtime closes the worker's copy
    as the worker stops accepting, so the port refuses, and nginx goes elsewhere before sending."""
    import http.client

    process, port = listening_gunicorn(django_db_blocker, "--workers", "1", "--threads", "4", drain="2")
    kept = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        kept.request("GET", "/health/", headers={"Host": "localhost"})
        first = kept.getresponse()
        first.read()
        assert first.getheader("Connection", "").lower() != "close"  # kept alive: the worker lingers for it
        process.send_signal(signal.SIGTERM)
        signalled = time.monotonic()
        wait_until(lambda: not accepts(port, timeout=0.2), timeout=5, what="the port to refuse")
        refused_after = time.monotonic() - signalled
        # Still lingering: a request on the kept-alive connection is answered (and told to close).
        try:
            kept.request("GET", "/health/", headers={"Host": "localhost"})
            second = kept.getresponse()
            second.read()
            answer = (second.status, second.getheader("Connection", "").lower())
        except (OSError, http.client.HTTPException) as error:
            answer = (0, repr(error))
    finally:
        kept.close()
        stop(process)

    assert refused_after < 1.5  # the worker's loop wakes within 1 s of the signal
    assert answer in ((200, "close"), (503, "close"))


def test_a_sync_worker_stopping_mid_request_answers_what_came_meanwhile(django_db_setup, django_db_blocker):
    """gunicorn's sync worker (one thread, the default) told to stop while it serves a request
    finishes it and leaves its loop (gunicorn 27.0.1 workers/sync.py run_for_one): a connection
    the kernel queued meanwhile was never accepted, and was reset when the worker exited, after
    nginx had sent its request there (a POST lost). The runtime's worker serves what is queued
    before it lets go of the socket."""
    process, port = listening_gunicorn(django_db_blocker, "--workers", "1", drain="1")
    try:
        busy = socket.create_connection(("127.0.0.1", port), timeout=10)
        busy.sendall(b"GET /health/ HTTP/1.1\r\nHost: localhost\r\n")  # the worker waits for the rest
        time.sleep(0.3)
        process.send_signal(signal.SIGTERM)
        time.sleep(0.3)  # the master has let go of its copy; the worker holds its own
        queued = socket.create_connection(("127.0.0.1", port), timeout=10)
        queued.sendall(b"GET /health/ HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        busy.sendall(b"\r\n")
        first = busy.recv(200)
        try:
            second = queued.recv(200)
        except OSError as error:
            second = repr(error).encode()
        busy.close()
        queued.close()
    finally:
        stop(process)

    assert first.startswith(b"HTTP/1.1 ")
    assert second.startswith(b"HTTP/1.1 ")
