"""/health/: a real query on PostgreSQL and a real PING on Redis.

Answered by a middleware placed first, so it works for any Host header (the container
healthcheck calls http://127.0.0.1:8000/health/) and over plain HTTP even when the SSL
redirect is on, without widening ALLOWED_HOSTS for every other URL.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import redis
from django.conf import settings
from django.db import connections
from django.http import HttpRequest, HttpResponse, JsonResponse

logger = logging.getLogger(__name__)

HEALTH_PATH = "/health/"


def check_database() -> str:
    with connections["default"].cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return "ok"


def check_redis() -> str:
    client = redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=3, socket_timeout=3)
    try:
        client.ping()
    finally:
        client.close()
    return "ok"


CHECKS: dict[str, Callable[[], str]] = {"database": check_database, "redis": check_redis}


def run_checks() -> dict[str, str]:
    results = {}
    for name, check in CHECKS.items():
        try:
            results[name] = check()
        except Exception as exc:  # any failure is an answer, not a 500
            logger.warning("health check %s failed: %s", name, exc)
            # The class name only: the health answer must not leak hosts or credentials.
            results[name] = f"error: {type(exc).__name__}"
    return results


def health_response() -> JsonResponse:
    checks = run_checks()
    healthy = all(value == "ok" for value in checks.values())
    body = {"status": "ok" if healthy else "error", "checks": checks, "git_sha": settings.GIT_SHA}
    response = JsonResponse(body, status=200 if healthy else 503)
    response["Cache-Control"] = "no-store"
    return response


class HealthCheckMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path == HEALTH_PATH and request.method in ("GET", "HEAD"):
            return health_response()
        return self.get_response(request)
