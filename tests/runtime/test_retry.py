"""A request that may be repeated is repeated while the database comes back
(django_docker_runtime.retry), around the example app as the runtime serves it, against the real
PostgreSQL reached through a forwarder that refuses until it is opened (a restarting database)."""

import asyncio
import io
import json
import logging
import threading
import time
from contextlib import contextmanager
from wsgiref.util import setup_testing_defaults

import pytest
from django.core.asgi import get_asgi_application
from django.core.wsgi import get_wsgi_application
from django.db import connections

from django_docker_runtime import health, retry
from tests.django_support import DelayedForwarder
from visits.models import Visit

pytestmark = pytest.mark.django_db(transaction=True)


@contextmanager
def database_away_for(seconds: float | None):
    """The default database refuses connections, and answers again after `seconds` (None: never)."""
    connection = connections["default"]
    real_host, real_port = connection.settings_dict["HOST"], connection.settings_dict["PORT"]
    connection.close()
    with DelayedForwarder((real_host or "127.0.0.1", int(real_port or 5432))) as forwarder:
        connection.settings_dict["HOST"], connection.settings_dict["PORT"] = "127.0.0.1", forwarder.port
        opener = threading.Timer(seconds, forwarder.open) if seconds is not None else None
        if opener:
            opener.start()
        try:
            yield forwarder
        finally:
            if opener:
                opener.cancel()
            connections.close_all()
            connection.settings_dict["HOST"], connection.settings_dict["PORT"] = real_host, real_port


@pytest.fixture
def logged():
    """What the runtime's retry logs (Django's logging setup replaces the root's handlers, so
    caplog's would miss it)."""
    lines: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record):
            lines.append(record.getMessage())

    handler = Keep(level=logging.DEBUG)
    retry.logger.addHandler(handler)
    yield lines
    retry.logger.removeHandler(handler)


def call(app, path: str, method: str = "GET") -> tuple[int, bytes]:
    environ = {"PATH_INFO": path, "REQUEST_METHOD": method, "HTTP_HOST": "testserver", "wsgi.input": io.BytesIO()}
    setup_testing_defaults(environ)
    started: dict = {}

    def start_response(status, headers, exc_info=None):
        started["status"] = int(status.split()[0])

    body = b"".join(app(environ, start_response))
    return started["status"], body


def test_a_get_waits_out_a_database_restart_and_is_answered(logged):
    visit = Visit.objects.create(path="/", served_by="test")
    app = health.wsgi(retry.wsgi(get_wsgi_application(), seconds=10), "/health/")

    with database_away_for(1.5):
        started = time.monotonic()
        status, body = call(app, "/visits/")
        took = time.monotonic() - started

    assert status == 200
    assert [v["id"] for v in json.loads(body)["visits"]] == [visit.pk]
    assert 1.4 <= took < 5
    assert [line.split(" attempt")[0] for line in logged] == [
        "GET /visits/: the database was unavailable; served after 2"
    ]


def test_a_post_is_never_repeated_and_health_still_reports_the_database():
    app = health.wsgi(retry.wsgi(get_wsgi_application(), seconds=10), "/health/")

    with database_away_for(1.0):
        started = time.monotonic()
        post = call(app, "/visits/", method="POST")
        health_answer = call(app, "/health/")
        took = time.monotonic() - started

    assert post[0] == 500  # it may have written: only the client may repeat it
    assert health_answer[0] == 503 and json.loads(health_answer[1])["checks"]["database"].startswith("error")
    assert took < 1.0  # neither waited


def test_the_wait_is_bounded_then_the_500_goes_through(logged):
    app = retry.wsgi(get_wsgi_application(), seconds=1.0)

    with database_away_for(None):
        started = time.monotonic()
        status, _ = call(app, "/visits/")
        took = time.monotonic() - started

    assert status == 500
    assert 0.5 <= took <= 1.5  # it waited, up to the budget and no longer
    assert len(logged) == 1 and logged[0].startswith("GET /visits/: the database was unavailable; still failing after")


def test_another_error_is_not_repeated(monkeypatch):
    from visits import views

    calls = []

    class Broken:
        class objects:  # noqa: N801 (a model's manager, as the view uses it)
            @staticmethod
            def all():
                calls.append(1)
                raise ValueError("a bug, not the database")

    monkeypatch.setattr(views, "Visit", Broken)
    app = retry.wsgi(get_wsgi_application(), seconds=10)

    assert call(app, "/visits/")[0] == 500
    assert calls == [1]


def test_off_with_zero_seconds():
    application = get_wsgi_application()
    assert retry.wsgi(application, seconds=0) is application


def test_the_asgi_wrapper_waits_out_the_restart_too():
    visit = Visit.objects.create(path="/", served_by="test")
    app = retry.asgi(get_asgi_application(), seconds=10)

    def request(path: str) -> tuple[int, bytes]:
        sent: list[dict] = []
        requests = [{"type": "http.request", "body": b"", "more_body": False}]

        async def receive():
            if requests:
                return requests.pop()
            await asyncio.sleep(3600)

        async def send(message):
            sent.append(message)

        scope = {
            "type": "http",
            "method": "GET",
            "path": path,
            "raw_path": path.encode(),
            "query_string": b"",
            "headers": [(b"host", b"testserver")],
            "scheme": "http",
            "server": ("127.0.0.1", 8000),
            "client": ("127.0.0.1", 5000),
            "http_version": "1.1",
            "asgi": {"version": "3.0"},
        }
        asyncio.run(app(scope, receive, send))
        starts = [m for m in sent if m["type"] == "http.response.start"]
        assert len(starts) == 1  # the held-back 500 never reached the client
        return starts[0]["status"], b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")

    with database_away_for(1.0):
        status, body = request("/visits/")

    assert status == 200
    assert [v["id"] for v in json.loads(body)["visits"]] == [visit.pk]
