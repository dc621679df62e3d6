"""Container healthchecks without curl: `python -m config.healthcheck web|worker`.

web:    GET http://127.0.0.1:8000/health/; exit 0 on 200.
worker: celery ping of this container's own node (celery@<hostname>); exit 0 on a reply.
"""

from __future__ import annotations

import socket
import sys
import urllib.error
import urllib.request

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


def main(argv: list[str]) -> int:
    roles = {"web": web, "worker": worker}
    if len(argv) != 1 or argv[0] not in roles:
        print("usage: python -m config.healthcheck web|worker", file=sys.stderr)
        return 2
    return roles[argv[0]]()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
