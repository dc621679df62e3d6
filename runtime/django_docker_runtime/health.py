"""The health endpoint: a real query on the database, a real round trip to the cache and the
Celery broker, each where the app has one, answered ahead of Django.

`wsgi()` / `asgi()` wrap the team's application so that HEALTH_PATH is answered before any of its
middleware: for any Host header (the container healthcheck calls http://127.0.0.1:PORT/...,
which need not be an allowed host) and over plain HTTP even when the SSL redirect is on, without
widening ALLOWED_HOSTS for every other URL. Which checks run: HEALTH_CHECKS (comma-separated,
default all of database, cache, broker); a check the app has nothing for is left out (a local
or dummy cache, no CELERY_APP). The answer is
`{"status": "ok"|"error", "checks": {...}, "git_sha": GIT_SHA, "hostname": <container>}`,
200 or 503; a failing check's value is `error: <exception class>` (never a host or a password).

Two scopes. `GET HEALTH_PATH` reports every check (what people and monitoring read: the broker
down is reported). `GET HEALTH_PATH?scope=ready` runs only READY_CHECKS (default: database):
what a replica cannot serve any page without. The replica's readiness, which decides whether it
gets traffic, is that one: gunicorn opens its port only once the ready checks pass
(gunicorn_conf) and the container healthcheck asks the ready scope (healthcheck). So a broker or
cache restart, which most pages never notice, neither takes a replica out of nginx's rotation nor
marks it unhealthy, while /health/ still says the broker is down (docs/contracts.md).
"""

from __future__ import annotations

import json
import logging
import os
import socket
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qs

from django_docker_runtime import env

logger = logging.getLogger("django_docker_runtime.health")

DEFAULT_PATH = "/health/"
ALL_CHECKS = ("database", "cache", "broker")
# What a replica cannot serve a single page without; the rest only some pages need.
DEFAULT_READY_CHECKS = ("database",)
READY_SCOPE = "ready"
TIMEOUT_SECONDS = 3
# Caches that live in the process answer whatever happens to the services: nothing to check.
LOCAL_CACHES = (
    "django.core.cache.backends.locmem.LocMemCache",
    "django.core.cache.backends.dummy.DummyCache",
)


def path() -> str:
    return env.string("HEALTH_PATH", default=DEFAULT_PATH)


def check_database() -> str:
    from django.db import connections

    with connections["default"].cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return "ok"


def check_cache() -> str:
    from django.core.cache import caches

    cache = caches["default"]
    key = f"django-docker:health:{socket.gethostname()}"
    cache.set(key, "ok", timeout=30)
    if cache.get(key) != "ok":
        raise LookupError("the value just written was not read back")
    return "ok"


_celery_app: Any = None


def celery_app() -> Any:
    """The Celery app CELERY_APP names (as `celery --app` finds it), imported once."""
    global _celery_app
    if _celery_app is None:
        from celery.app.utils import find_app

        _celery_app = find_app(env.string("CELERY_APP"))
    return _celery_app


def check_broker() -> str:
    with celery_app().connection_for_write() as connection:
        connection.ensure_connection(max_retries=1, timeout=TIMEOUT_SECONDS)
    return "ok"


CHECKS: dict[str, Callable[[], str]] = {"database": check_database, "cache": check_cache, "broker": check_broker}


def applicable(variable: str = "HEALTH_CHECKS") -> list[str]:
    """The checks this process runs: HEALTH_CHECKS (or READY_CHECKS: `ready()`), less those the
    app has nothing for."""
    from django.conf import settings

    if variable == "HEALTH_CHECKS":
        wanted = env.csv_list(variable, default=list(ALL_CHECKS))
    else:  # READY_CHECKS set and empty: no check (ready once the app imports)
        wanted = [] if os.environ.get(variable) == "" else env.csv_list(variable, default=list(DEFAULT_READY_CHECKS))
    unknown = [name for name in wanted if name not in CHECKS]
    if unknown:
        raise env.EnvError(variable, f"names unknown checks {unknown}; expected some of {list(ALL_CHECKS)}")
    names = []
    for name in wanted:
        if name == "database" and "default" not in settings.DATABASES:
            continue
        if name == "cache" and settings.CACHES.get("default", {}).get("BACKEND") in LOCAL_CACHES:
            continue
        if name == "broker" and not env.string("CELERY_APP", default=""):
            continue
        names.append(name)
    return names


def ready() -> list[str]:
    """The readiness checks (READY_CHECKS, default database; empty: none), of those the app has."""
    return applicable("READY_CHECKS")


def run_checks(names: Iterable[str] | None = None) -> dict[str, str]:
    """Each check's result, "ok" or "error: <class>"; any failure is an answer, never an exception."""
    from django.db import close_old_connections

    results = {}
    # What Django's request_started/request_finished signals do around a view: a connection the
    # database dropped (a restart) is not reused, and none outlives CONN_MAX_AGE.
    close_old_connections()
    try:
        for name in applicable() if names is None else names:
            try:
                results[name] = CHECKS[name]()
            except Exception as exc:  # any failure is an answer, not a 500
                logger.warning("health check %s failed: %s", name, exc)
                # The class name only: the answer must not leak hosts or credentials.
                results[name] = f"error: {type(exc).__name__}"
    finally:
        close_old_connections()
    return results


def scope_of(query_string: str) -> str:
    """`ready` when the query asks for the readiness scope (`scope=ready`), else "" (every check)."""
    return READY_SCOPE if READY_SCOPE in parse_qs(query_string).get("scope", []) else ""


def answer(scope: str = "") -> tuple[int, bytes]:
    """(HTTP status, JSON body) of one health request: every check, or the ready scope's."""
    checks = run_checks(ready() if scope == READY_SCOPE else None)
    healthy = all(value == "ok" for value in checks.values())
    body: dict[str, Any] = {
        "status": "ok" if healthy else "error",
        "checks": checks,
        "git_sha": env.string("GIT_SHA", default="unknown"),
        "hostname": socket.gethostname(),
    }
    if scope:
        body["scope"] = scope
    return (200 if healthy else 503), json.dumps(body).encode()


HEADERS = [("Content-Type", "application/json"), ("Cache-Control", "no-store")]
REASONS = {200: "200 OK", 503: "503 Service Unavailable"}


def wsgi(application: Callable, health_path: str | None = None) -> Callable:
    """A WSGI application that answers `health_path` (GET, HEAD) itself, else calls `application`."""
    where = health_path or path()

    def wrapped(environ: dict, start_response: Callable) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == where and environ.get("REQUEST_METHOD") in ("GET", "HEAD"):
            status, body = answer(scope_of(environ.get("QUERY_STRING", "")))
            start_response(REASONS[status], [*HEADERS, ("Content-Length", str(len(body)))])
            return [body if environ["REQUEST_METHOD"] == "GET" else b""]
        return application(environ, start_response)

    wrapped.wrapped_application = application  # type: ignore[attr-defined]
    return wrapped


def asgi(application: Callable, health_path: str | None = None) -> Callable:
    """An ASGI application that answers `health_path` (GET, HEAD) itself, else calls `application`.
    The checks run in Django's thread-sensitive executor, like any sync view."""
    from asgiref.sync import sync_to_async

    where = health_path or path()

    async def wrapped(scope: dict, receive: Callable, send: Callable) -> None:
        if scope.get("type") == "http" and scope.get("path") == where and scope.get("method") in ("GET", "HEAD"):
            scope_name = scope_of(scope.get("query_string", b"").decode("latin-1"))
            status, body = await sync_to_async(answer, thread_sensitive=True)(scope_name)
            headers = [(k.lower().encode(), v.encode()) for k, v in [*HEADERS, ("Content-Length", str(len(body)))]]
            await send({"type": "http.response.start", "status": status, "headers": headers})
            await send({"type": "http.response.body", "body": body if scope["method"] == "GET" else b""})
            return
        await application(scope, receive, send)

    wrapped.wrapped_application = application  # type: ignore[attr-defined]
    return wrapped
