"""Fixtures for tests/django_app; helpers live in tests/django_support.py."""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
from django.conf import settings

from tests.django_support import APP_DIR, app_env, run_app, stop, test_database_url, wait_until


@pytest.fixture(scope="session", autouse=True)
def _services_are_up() -> None:
    """Stop early, with the fix, when the loopback services are not running."""
    database = urlsplit(settings.DATABASE_URL)
    cache = urlsplit(settings.REDIS_URL)
    for name, url, address in (
        ("PostgreSQL", settings.DATABASE_URL, (database.hostname, database.port or 5432)),
        ("Redis", settings.REDIS_URL, (cache.hostname, cache.port or 6379)),
    ):
        try:
            socket.create_connection(address, timeout=2).close()
        except OSError:
            pytest.exit(f"{name} is not reachable at {url}: run `sudo scripts/start-services.sh` first", returncode=2)


@pytest.fixture(scope="module")
def celery_worker(django_db_setup, django_db_blocker) -> Iterator[subprocess.Popen]:
    """A real `celery worker` process (the contract's argv) on the real Redis and the test
    database. Tests that use it must be transaction=True so the worker sees their rows."""
    with django_db_blocker.unblock():
        database_url = test_database_url()
    env = app_env(
        CELERY_APP="config",
        DJANGO_SETTINGS_MODULE="config.settings.test",
        DATABASE_URL=database_url,
        REDIS_URL=settings.REDIS_URL,
    )
    process = subprocess.Popen(
        ["celery", "--app", "config", "worker", "--loglevel", "INFO", "--concurrency", "1"],
        cwd=APP_DIR,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its own process group: stop() reaches the pool children too
    )
    assert process.stdout is not None  # stdout=PIPE
    try:
        # Ready when it answers a ping through the broker, as the worker healthcheck does.
        wait_until(
            lambda: process.poll() is not None
            or run_app(sys.executable, "-m", "django_docker_runtime.healthcheck", "worker", env=env).returncode == 0,
            timeout=60,
            what="the celery worker to answer a ping",
        )
        if process.poll() is not None:
            pytest.fail(f"celery worker exited:\n{process.stdout.read()}")
        yield process
    finally:
        stop(process)
