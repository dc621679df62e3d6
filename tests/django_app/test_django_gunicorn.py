"""The web role as the container runs it: gunicorn with the committed gunicorn.conf.py and
production settings, over real HTTP."""

import json
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest

from config import healthcheck
from django_app_support import APP_DIR, closed_port, production_env, run_app, stop, test_database_url, wait_until

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


def gunicorn_argv(port: int) -> list[str]:
    # The contract's web argv, with a free loopback port instead of 0.0.0.0:8000.
    return ["gunicorn", "--config", "gunicorn.conf.py", "--bind", f"127.0.0.1:{port}", "config.wsgi:application"]


@pytest.fixture(scope="module")
def server(django_db_setup, django_db_blocker) -> Iterator[tuple[str, subprocess.Popen]]:
    with django_db_blocker.unblock():
        database_url = test_database_url()
    port = closed_port()
    env = production_env(DATABASE_URL=database_url, GIT_SHA=GIT_SHA, WEB_CONCURRENCY="2", GUNICORN_TIMEOUT="10")
    process = subprocess.Popen(
        gunicorn_argv(port), cwd=APP_DIR, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True,
    )
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
    assert json.loads(body) == {"status": "ok", "checks": {"database": "ok", "redis": "ok"}, "git_sha": GIT_SHA}


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
    assert set(json.loads(body)) == {"hostname"}
    assert headers["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains; preload"


def test_unknown_hosts_are_refused_except_for_health(server):
    base, _ = server

    assert get(f"{base}/whoami/", {"Host": "evil.example.net", "X-Forwarded-Proto": "https"})[0] == 400
    assert get(f"{base}/health/", {"Host": "evil.example.net"})[0] == 200


def test_sigterm_shuts_down_gracefully_with_access_logs_on_stdout(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock():
        database_url = test_database_url()
    port = closed_port()
    env = production_env(DATABASE_URL=database_url, WEB_CONCURRENCY="1", DJANGO_SECURE_SSL_REDIRECT="false")
    process = subprocess.Popen(
        gunicorn_argv(port), cwd=APP_DIR, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
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


def test_gunicorn_without_the_secret_stops_once_with_one_line():
    env = production_env()
    del env["DJANGO_SECRET_KEY"]

    result = run_app(*gunicorn_argv(closed_port()), env=env, timeout=30)

    assert result.returncode == 1
    assert "Traceback" not in result.stdout + result.stderr
    assert result.stderr.strip().splitlines()[-1] == "configuration error: DJANGO_SECRET_KEY is required and not set"
    assert "Booting worker" not in result.stdout + result.stderr
