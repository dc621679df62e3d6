"""Helpers for tests/django_app: real PostgreSQL and Redis on loopback
(scripts/start-services.sh), real subprocesses for gunicorn, celery and manage.py.

A uniquely named module rather than `from conftest import`: several test folders have a
conftest.py, and which one `conftest` names depends on collection order."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import dj_database_url
from django.conf import settings
from django.db import connections

APP_DIR = Path(__file__).resolve().parents[2] / "django_app"
VENV_BIN = Path(sys.executable).parent
# A deploy-check-strength key that is obviously not anyone's secret.
FAKE_SECRET_KEY = "x" * 20 + "-not-a-secret-only-for-tests-" + "abcdefghijklmnopqrstuvwxyz0123456789"


def closed_port() -> int:
    """A loopback port with nothing listening on it (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def app_env(**overrides: str) -> dict[str, str]:
    """An environment for a subprocess of the app: the caller's, minus every app variable,
    plus the overrides, so a test states exactly what the process sees."""
    base = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DJANGO_", "GUNICORN_", "CELERY_"))
        and key not in {"DATABASE_URL", "REDIS_URL", "WEB_CONCURRENCY", "FORWARDED_ALLOW_IPS", "GIT_SHA"}
    }
    base["PATH"] = f"{VENV_BIN}{os.pathsep}{base.get('PATH', '')}"
    base["PYTHONDONTWRITEBYTECODE"] = "1"
    return {**base, **overrides}


def production_env(**overrides: str) -> dict[str, str]:
    """A production-like environment: HTTPS on, services pointing at the test servers."""
    production = {
        "DJANGO_SETTINGS_MODULE": "config.settings.production",
        "DJANGO_SECRET_KEY": FAKE_SECRET_KEY,
        "DJANGO_ALLOWED_HOSTS": "app.example.com",
        "DJANGO_CSRF_TRUSTED_ORIGINS": "https://app.example.com",
        "DJANGO_SECURE_SSL_REDIRECT": "true",
        "DJANGO_SECURE_HSTS_SECONDS": "31536000",
        "DJANGO_SECURE_COOKIES": "true",
        "DATABASE_URL": settings.DATABASE_URL,
        "REDIS_URL": settings.REDIS_URL,
    }
    return app_env(**{**production, **overrides})


def run_app(*argv: str, env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=APP_DIR, env=env, capture_output=True, text=True, timeout=timeout)


def stop(process: subprocess.Popen, grace: float = 15) -> None:
    """SIGTERM the process group (warm shutdown), then SIGKILL whatever is left."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait(timeout=10)


def test_database_url() -> str:
    """DATABASE_URL for the database pytest-django created (test_<name>), for subprocesses."""
    config = connections["default"].settings_dict
    parsed = dj_database_url.parse(settings.DATABASE_URL)
    assert parsed["NAME"] != config["NAME"], "only after pytest-django set up the test database"
    return settings.DATABASE_URL.rsplit("/", 1)[0] + "/" + config["NAME"]


test_database_url.__test__ = False  # a helper, not a test


def wait_until(predicate, timeout: float, interval: float = 0.2, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)
