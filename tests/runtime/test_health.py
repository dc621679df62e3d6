"""The runtime's health answer (django_docker_runtime.health), wrapped around the example app as
gunicorn serves it, against the real PostgreSQL and Redis: all good, each service down, which
checks run, and that it answers ahead of Django (any Host, plain HTTP, GET and HEAD only)."""

import asyncio
import io
import json
import socket
import sys
from wsgiref.util import setup_testing_defaults

import pytest
from celery import Celery
from django.core.asgi import get_asgi_application
from django.core.wsgi import get_wsgi_application
from django.db import connections

from django_docker_runtime import env, health
from tests.django_support import closed_port

# Not inside a test transaction: like Django around a request, the health answer closes an old
# connection before and after its checks (close_old_connections), which would end one.
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def app(monkeypatch):
    """The example's WSGI app behind the runtime's health answer, with the stack's variables."""
    monkeypatch.setenv("CELERY_APP", "config")
    monkeypatch.setenv("GIT_SHA", "0123abc")
    monkeypatch.delenv("HEALTH_CHECKS", raising=False)
    monkeypatch.setattr(health, "_celery_app", None)
    return health.wsgi(get_wsgi_application(), "/health/")


def call(app, path: str, method: str = "GET", host: str = "127.0.0.1:8000") -> tuple[int, dict, bytes]:
    path, _, query = path.partition("?")
    environ = {
        "PATH_INFO": path,
        "QUERY_STRING": query,
        "REQUEST_METHOD": method,
        "HTTP_HOST": host,
        "wsgi.input": io.BytesIO(),
    }
    setup_testing_defaults(environ)
    started: dict = {}

    def start_response(status, headers, exc_info=None):
        started.update(status=int(status.split()[0]), headers=dict(headers))

    body = b"".join(app(environ, start_response))
    return started["status"], started["headers"], body


def test_healthy_answers_200_with_each_check_the_git_sha_and_the_replica(app):
    status, headers, body = call(app, "/health/")

    assert status == 200
    assert json.loads(body) == {
        "status": "ok",
        "checks": {"database": "ok", "cache": "ok", "broker": "ok"},
        "git_sha": "0123abc",
        "hostname": socket.gethostname(),
    }
    assert headers["Cache-Control"] == "no-store"
    assert headers["Content-Type"] == "application/json"


def test_cache_down_answers_503_naming_the_cache_and_nothing_about_where_it_is(app, settings):
    port = closed_port()
    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": f"redis://127.0.0.1:{port}/0"}
    }

    status, _, body = call(app, "/health/")

    answer = json.loads(body)
    assert status == 503
    assert answer["status"] == "error"
    assert answer["checks"] == {"database": "ok", "cache": "error: ConnectionError", "broker": "ok"}
    assert str(port) not in body.decode()


def test_broker_down_answers_503_naming_the_broker(app, monkeypatch):
    unreachable = Celery("probe", broker=f"redis://127.0.0.1:{closed_port()}/0")
    monkeypatch.setattr(health, "_celery_app", unreachable)

    status, _, body = call(app, "/health/")

    assert status == 503
    assert json.loads(body)["checks"]["broker"].startswith("error: ")
    assert json.loads(body)["checks"]["database"] == "ok"


def test_the_ready_scope_asks_only_what_every_page_needs_so_a_broker_restart_keeps_replicas_serving(
    app, monkeypatch, settings
):
    unreachable = Celery("probe", broker=f"redis://127.0.0.1:{closed_port()}/0")
    monkeypatch.setattr(health, "_celery_app", unreachable)
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": f"redis://127.0.0.1:{closed_port()}/0",
        }
    }
    monkeypatch.delenv("READY_CHECKS", raising=False)

    everything = call(app, "/health/")
    ready = call(app, "/health/?scope=ready")

    # /health/ still says the broker and the cache are down...
    assert everything[0] == 503
    assert json.loads(everything[2])["checks"] == {
        "database": "ok",
        "cache": "error: ConnectionError",
        "broker": json.loads(everything[2])["checks"]["broker"],
    }
    assert json.loads(everything[2])["checks"]["broker"].startswith("error: ")
    # ...while the replica's readiness (gunicorn's gate, the container healthcheck) is the database's.
    assert ready[0] == 200
    assert json.loads(ready[2])["checks"] == {"database": "ok"} and json.loads(ready[2])["scope"] == "ready"


def test_ready_checks_chooses_the_readiness_and_empty_means_none(app, monkeypatch):
    monkeypatch.setenv("READY_CHECKS", "database,cache")
    assert json.loads(call(app, "/health/?scope=ready")[2])["checks"] == {"database": "ok", "cache": "ok"}
    monkeypatch.setenv("READY_CHECKS", "")
    assert json.loads(call(app, "/health/?scope=ready")[2])["checks"] == {}
    monkeypatch.setenv("READY_CHECKS", "disk")
    with pytest.raises(env.EnvError, match=r"READY_CHECKS names unknown checks \['disk'\]"):
        call(app, "/health/?scope=ready")


def test_database_down_answers_503_naming_the_database(app):
    connection = connections["default"]
    real_port = connection.settings_dict["PORT"]
    connection.close()
    connection.settings_dict["PORT"] = closed_port()
    try:
        status, _, body = call(app, "/health/")
    finally:
        connection.close()
        connection.settings_dict["PORT"] = real_port

    assert status == 503
    assert json.loads(body)["checks"] == {"database": "error: OperationalError", "cache": "ok", "broker": "ok"}


def test_health_checks_chooses_the_checks_and_what_the_app_lacks_is_left_out(app, monkeypatch, settings):
    monkeypatch.setenv("HEALTH_CHECKS", "database")
    assert json.loads(call(app, "/health/")[2])["checks"] == {"database": "ok"}

    monkeypatch.delenv("HEALTH_CHECKS")
    monkeypatch.delenv("CELERY_APP")  # no Celery: no broker to check
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    assert json.loads(call(app, "/health/")[2])["checks"] == {"database": "ok"}

    monkeypatch.setenv("HEALTH_CHECKS", "database,disk")
    with pytest.raises(env.EnvError, match=r"HEALTH_CHECKS names unknown checks \['disk'\]"):
        call(app, "/health/")


def test_health_answers_any_host_but_other_pages_still_check_it(app):
    # The container healthcheck's Host is 127.0.0.1:8000, which is not an allowed host.
    assert call(app, "/health/", host="127.0.0.1:8000")[0] == 200
    assert call(app, "/whoami/", host="127.0.0.1:8000")[0] == 400


def test_health_is_not_redirected_to_https(settings):
    # The healthcheck speaks plain HTTP to the container even when the site redirects.
    settings.SECURE_SSL_REDIRECT = True
    app = health.wsgi(get_wsgi_application(), "/health/")  # its middleware reads the setting now

    assert call(app, "/health/", host="testserver")[0] == 200
    assert call(app, "/whoami/", host="testserver")[0] == 301


def test_health_only_answers_get_and_head_and_another_path_is_the_apps(app, monkeypatch):
    monkeypatch.setenv("HEALTH_PATH", "/-/ready/")
    moved = health.wsgi(get_wsgi_application())  # the path from HEALTH_PATH

    status, _, body = call(app, "/health/", method="HEAD")
    assert (status, body) == (200, b"")
    assert call(app, "/health/", method="POST", host="testserver")[0] == 404  # the app's answer
    assert call(moved, "/-/ready/")[0] == 200
    assert call(moved, "/health/", host="testserver")[0] == 404


def test_the_asgi_wrapper_answers_the_same_and_passes_the_rest_to_the_app(app):
    asgi = health.asgi(get_asgi_application(), "/health/")

    def request(path: str, host: bytes) -> tuple[int, bytes]:
        sent: list[dict] = []
        requests = [{"type": "http.request", "body": b"", "more_body": False}]

        async def receive():
            if requests:
                return requests.pop()
            await asyncio.sleep(3600)  # no disconnect while Django answers (it listens for one)

        async def send(message):
            sent.append(message)

        scope = {
            "type": "http",
            "method": "GET",
            "path": path,
            "raw_path": path.encode(),
            "query_string": b"",
            "headers": [(b"host", host)],
            "scheme": "http",
            "server": ("127.0.0.1", 8000),
            "client": ("127.0.0.1", 5000),
            "http_version": "1.1",
            "asgi": {"version": "3.0"},
        }
        asyncio.run(asgi(scope, receive, send))
        return sent[0]["status"], b"".join(m.get("body", b"") for m in sent[1:])

    status, body = request("/health/", b"127.0.0.1:8000")
    assert status == 200 and json.loads(body)["checks"]["database"] == "ok"
    assert request("/whoami/", b"127.0.0.1:8000")[0] == 400  # Django's own host validation


def test_the_health_module_imports_no_django_until_asked():
    # gunicorn's config and the healthcheck command import it before Django is set up.
    code = "import sys, django_docker_runtime.health; print('django.conf' in sys.modules)"
    import subprocess

    from tests.django_support import app_env

    result = subprocess.run([sys.executable, "-c", code], env=app_env(), capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"
