"""Helpers for tests/django_app and tests/runtime: real PostgreSQL and Redis on loopback
(scripts/start-services.sh), real subprocesses for gunicorn, celery and manage.py of the
example app, with the runtime (runtime/django_docker_runtime) on their path as in the image.

A module of its own rather than `from conftest import`: several test folders have a
conftest.py, and which one `conftest` names depends on collection order."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dj_database_url
from django.conf import settings
from django.db import connections

APP_DIR = Path(__file__).resolve().parents[1] / "django_app"
RUNTIME_DIR = APP_DIR.parent / "runtime"
# What the program runs in the web containers (render.web_command), the bind aside.
WEB_APPLICATION = "django_docker_runtime.wsgi:application"
GUNICORN_CONFIG = "python:django_docker_runtime.gunicorn_conf"
VENV_BIN = Path(sys.executable).parent
# A deploy-check-strength key that is obviously not anyone's secret.
FAKE_SECRET_KEY = "x" * 20 + "-not-a-secret-only-for-tests-" + "abcdefghijklmnopqrstuvwxyz0123456789"


def closed_port() -> int:
    """A loopback port with nothing listening on it (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def accepts(port: int, timeout: float = 0.5) -> bool:
    """Whether something accepts a TCP connection on the loopback port (what nginx sees)."""
    try:
        socket.create_connection(("127.0.0.1", port), timeout=timeout).close()
        return True
    except OSError:
        return False


@contextmanager
def refusing_port() -> Iterator[int]:
    """A loopback port that refuses connections for as long as the block runs: bound but not
    listening, so the kernel answers a SYN with RST and nothing else can take the port."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


class DelayedForwarder:
    """A loopback TCP forwarder to `target` that refuses connections until `open()`: until
    then its port is bound but not listening (see refusing_port). A service that comes up late."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.opened_at: float | None = None  # time.monotonic() when it started listening
        self._listener = socket.socket()
        self._listener.bind(("127.0.0.1", 0))
        self._listener.settimeout(0.1)  # the accept loop checks for close() this often
        self.port: int = self._listener.getsockname()[1]
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._threads: list[threading.Thread] = []

    def __enter__(self) -> DelayedForwarder:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def open(self) -> None:
        self._listener.listen()
        self.opened_at = time.monotonic()
        self._start(self._accept_loop)

    def close(self) -> None:
        self._stopping.set()
        with self._lock:
            for sock in self._sockets:
                try:
                    sock.shutdown(socket.SHUT_RDWR)  # wakes the pumps blocked in recv()
                except OSError:
                    pass
                sock.close()
        for thread in self._threads:
            thread.join(timeout=5)
        self._listener.close()

    def _start(self, target, *args) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        self._threads.append(thread)
        thread.start()

    def _accept_loop(self) -> None:
        while not self._stopping.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            client.settimeout(None)
            upstream.settimeout(None)
            with self._lock:
                if self._stopping.is_set():
                    client.close()
                    upstream.close()
                    return
                self._sockets += [client, upstream]
            self._start(self._pump, client, upstream)
            self._start(self._pump, upstream, client)

    @staticmethod
    def _pump(source: socket.socket, destination: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                destination.sendall(data)
            destination.shutdown(socket.SHUT_WR)
        except OSError:  # the other side or close() ended the connection
            pass


def process_tree(pid: int) -> list[int]:
    """The process and its descendants (by scanning /proc for parent ids)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                # The field after the parenthesised command name: state, then the parent's pid.
                parents[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    tree = [pid]
    for member in tree:
        tree += [child for child, parent in parents.items() if parent == member]
    return tree


def established_tcp_remote_ports(pids: list[int]) -> dict[int, list[int]]:
    """For each pid, the remote ports of the established TCP connections whose sockets it holds."""
    remote_port_by_inode: dict[str, int] = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for row in Path(table).read_text().splitlines()[1:]:
            fields = row.split()
            if fields[3] == "01":  # TCP_ESTABLISHED
                remote_port_by_inode[fields[9]] = int(fields[2].rsplit(":", 1)[1], 16)
    held: dict[int, list[int]] = {}
    for pid in pids:
        ports = []
        try:
            for fd in Path(f"/proc/{pid}/fd").iterdir():
                try:
                    target = os.readlink(fd)
                except OSError:
                    continue
                if target.startswith("socket:[") and target[8:-1] in remote_port_by_inode:
                    ports.append(remote_port_by_inode[target[8:-1]])
        except OSError:  # gone meanwhile
            continue
        held[pid] = sorted(ports)
    return held


def app_env(**overrides: str) -> dict[str, str]:
    """An environment for a subprocess of the app: the caller's, minus every app variable,
    plus the overrides, so a test states exactly what the process sees."""
    base = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DJANGO_", "GUNICORN_", "CELERY_", "HEALTH_"))
        and key
        not in {
            "DATABASE_URL",
            "REDIS_URL",
            "WEB_CONCURRENCY",
            "WEB_DRAIN_SECONDS",
            "FORWARDED_ALLOW_IPS",
            "GIT_SHA",
            "APP_MODULE",
            "PORT",
            "PYTHONPATH",
        }
    }
    base["PATH"] = f"{VENV_BIN}{os.pathsep}{base.get('PATH', '')}"
    base["PYTHONPATH"] = str(RUNTIME_DIR)  # as the image's ENV PYTHONPATH=/opt/django-docker-runtime
    base["PYTHONDONTWRITEBYTECODE"] = "1"
    base["WEB_DRAIN_SECONDS"] = "0"  # the drain has its own test; elsewhere it only slows stops
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
        # What the program sets for the runtime (render.app_env).
        "APP_MODULE": "config.wsgi:application",
        "CELERY_APP": "config",
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


# A helper, not a test, though test modules import it under its test_ name. Function attributes
# live in __dict__; assigning one through it is what the type checker accepts.
test_database_url.__dict__["__test__"] = False


def wait_until(predicate, timeout: float, interval: float = 0.2, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)
