"""Container healthchecks without curl: `python -m config.healthcheck web|worker|beat`.

web:    GET http://127.0.0.1:8000/health/; exit 0 on 200.
worker: celery ping of this container's own node (celery@<hostname>); exit 0 on a reply.
beat:   a `celery beat` process runs in this container and the broker answers (beat has no
        control channel to ping, so this is the most a probe can say about it).
"""

from __future__ import annotations

import os
import socket
import sys
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

TIMEOUT_SECONDS = 5
HEALTH_URL = "http://127.0.0.1:8000/health/"


def web(url: str = HEALTH_URL) -> int:
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_SECONDS) as response:
            return 0 if response.status == 200 else 1
    except urllib.error.HTTPError as exc:  # 503 carries the failing check in its body
        print(exc.read().decode(errors="replace")[:500], file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"web healthcheck: {exc}", file=sys.stderr)
        return 1


def worker() -> int:
    from config.celery import app

    node = f"celery@{socket.gethostname()}"
    replies = app.control.ping(destination=[node], timeout=TIMEOUT_SECONDS)
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
    from config.celery import app

    try:
        with app.connection_for_write() as connection:
            connection.ensure_connection(max_retries=1, timeout=TIMEOUT_SECONDS)
    except Exception as exc:  # kombu raises several types for one fact: no broker
        print(f"beat healthcheck: broker unreachable: {exc}", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str]) -> int:
    roles: dict[str, Callable[[], int]] = {"web": web, "worker": worker, "beat": beat}
    if len(argv) != 1 or argv[0] not in roles:
        print("usage: python -m config.healthcheck web|worker|beat", file=sys.stderr)
        return 2
    return roles[argv[0]]()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
