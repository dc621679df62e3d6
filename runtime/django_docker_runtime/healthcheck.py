"""Container healthchecks without curl: `python -m django_docker_runtime.healthcheck web|worker|beat`.

web:    GET http://127.0.0.1:PORT/HEALTH_PATH?scope=ready (the readiness checks only: READY_CHECKS,
        django_docker_runtime.health); exit 0 on 200.
worker: celery ping of this container's own node (celery@<hostname>) through the broker.
beat:   a `celery beat` process runs in this container and the broker answers (beat has no
        control channel to ping, so this is the most a probe can say about it).
The worker and beat find the Celery app as `celery --app` does, from CELERY_APP.
"""

from __future__ import annotations

import os
import socket
import sys
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from django_docker_runtime import env

TIMEOUT_SECONDS = 5


def health_url() -> str:
    from django_docker_runtime import health

    return f"http://127.0.0.1:{env.integer('PORT', default=8000)}{health.path()}?scope={health.READY_SCOPE}"


def web(url: str | None = None) -> int:
    try:
        with urllib.request.urlopen(url or health_url(), timeout=TIMEOUT_SECONDS) as response:
            return 0 if response.status == 200 else 1
    except urllib.error.HTTPError as exc:  # 503 carries the failing check in its body
        print(exc.read().decode(errors="replace")[:500], file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"web healthcheck: {exc}", file=sys.stderr)
        return 1


def worker() -> int:
    from django_docker_runtime.health import celery_app

    node = f"celery@{socket.gethostname()}"
    replies = celery_app().control.ping(destination=[node], timeout=TIMEOUT_SECONDS)
    if any(node in reply for reply in replies):
        return 0
    print(f"worker healthcheck: no reply from {node}", file=sys.stderr)
    return 1


def _beat_running(proc: Path = Path("/proc")) -> bool:
    me = os.getpid()
    for entry in proc.iterdir():
        if not entry.name.isdigit() or int(entry.name) == me:
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:  # gone meanwhile, or not ours to read
            continue
        if any(arg.endswith(b"celery") for arg in argv) and b"beat" in argv:
            return True
    return False


def beat() -> int:
    if not _beat_running():
        print("beat healthcheck: no celery beat process", file=sys.stderr)
        return 1
    from django_docker_runtime.health import celery_app

    try:
        with celery_app().connection_for_write() as connection:
            connection.ensure_connection(max_retries=1, timeout=TIMEOUT_SECONDS)
    except Exception as exc:  # kombu raises several types for one fact: no broker
        print(f"beat healthcheck: broker unreachable: {exc}", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str]) -> int:
    roles: dict[str, Callable[[], int]] = {"web": web, "worker": worker, "beat": beat}
    if len(argv) != 1 or argv[0] not in roles:
        print("usage: python -m django_docker_runtime.healthcheck web|worker|beat", file=sys.stderr)
        return 2
    env.expand_files(os.environ)  # a swarm task's secrets are files; the app's settings read NAME
    return roles[argv[0]]()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
