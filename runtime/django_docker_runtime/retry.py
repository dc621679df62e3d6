"""A request that may be repeated is repeated when the database was briefly away.

A PostgreSQL restart (a new memory limit, a minor upgrade, a crash) refuses connections for a
few seconds. Every request that reaches the database meanwhile fails with Django's 500, and nginx
cannot help: every replica talks to the same database, and a retry on the next one fails the same
millisecond. So the runtime waits here, in the replica: when Django answered a GET, HEAD or
OPTIONS request (idempotent by HTTP's rules, RFC 9110 9.2.2) with a 500 because the database
refused or dropped the connection (`django.db.OperationalError` or `InterfaceError`, seen through
Django's `got_request_exception` signal), the answer is thrown away, the replica waits until a
new connection to the database succeeds, and runs the request again; for at most
DB_RETRY_SECONDS (default 15; 0 turns it off) from the first attempt. Any other request, any other
error and any other answer pass through untouched: a POST is never repeated (it may have written).

`wsgi(app)` and `asgi(app)` wrap the team's application inside the health answer
(django_docker_runtime.wsgi, .asgi), so /health/ is never retried: it reports the database down.
"""

from __future__ import annotations

import contextvars
import logging
import sys
import time
from collections.abc import Callable, Iterable
from typing import Any

from django_docker_runtime import env

logger = logging.getLogger("django_docker_runtime.retry")

DEFAULT_SECONDS = 15
REPEATABLE = ("GET", "HEAD", "OPTIONS")
POLL_SECONDS = 0.25

# The request being served, as a small mutable record: the signal handler may run in another
# context (asgiref runs sync code in a copy of it), which sees the same object.
_current: contextvars.ContextVar[dict | None] = contextvars.ContextVar("django_docker_runtime_retry", default=None)
_connected = False


def budget() -> float:
    return float(env.integer("DB_RETRY_SECONDS", default=DEFAULT_SECONDS))


def _note_exception(sender: Any = None, **kwargs: Any) -> None:
    """got_request_exception's handler: Django calls it inside its `except` block."""
    from django.db import InterfaceError, OperationalError

    record = _current.get()
    if record is not None and isinstance(sys.exc_info()[1], (OperationalError, InterfaceError)):
        record["database"] = True


def _listen() -> None:
    global _connected
    if not _connected:
        from django.core.signals import got_request_exception

        got_request_exception.connect(_note_exception, dispatch_uid="django_docker_runtime.retry")
        _connected = True


def wait_for_database(deadline: float) -> bool:
    """Until `deadline` (monotonic): True once a new connection to the default database succeeds."""
    from django.db import DatabaseError, connections

    while True:
        connections.close_all()  # never reuse a connection the restart killed
        try:
            connections["default"].ensure_connection()
            return True
        except DatabaseError:
            pass
        if time.monotonic() + POLL_SECONDS >= deadline:
            return False
        time.sleep(POLL_SECONDS)


def _say(method: str, path: str, attempts: int, started: float, served: bool) -> None:
    how = "served" if served else "still failing"
    logger.warning(
        "%s %s: the database was unavailable; %s after %d attempt(s) in %.1fs",
        method,
        path,
        how,
        attempts,
        time.monotonic() - started,
    )


def _attempt_wsgi(application: Callable, environ: dict) -> tuple[dict, Any, bool]:
    """One run of the app: (what it passed start_response, its body iterable, whether the
    database failed under it)."""
    record: dict = {"database": False}
    answered: dict = {}

    def capture(status: str, headers: list, exc_info: Any = None) -> Callable:
        answered.update(status=status, headers=headers, exc_info=exc_info)
        return _no_write

    token = _current.set(record)
    try:
        result = application(environ, capture)
    finally:
        _current.reset(token)
    return answered, result, record["database"] and str(answered.get("status", "")).startswith("500")


def wsgi(application: Callable, seconds: float | None = None) -> Callable:
    """A WSGI application that repeats a GET/HEAD/OPTIONS whose 500 came from a lost database."""
    limit = budget() if seconds is None else seconds
    if limit <= 0:
        return application
    _listen()

    def wrapped(environ: dict, start_response: Callable) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD", "")
        if method not in REPEATABLE:
            return application(environ, start_response)
        started = time.monotonic()
        deadline = started + limit
        attempts = 0
        while True:
            attempts += 1
            answered, result, failed = _attempt_wsgi(application, environ)
            waited = failed and time.monotonic() < deadline
            if waited and wait_for_database(deadline):
                close = getattr(result, "close", None)
                if close is not None:
                    close()
                continue
            if attempts > 1 or waited:
                _say(method, environ.get("PATH_INFO", ""), attempts, started, not failed)
            start_response(answered["status"], answered["headers"], answered.get("exc_info"))
            return result

    wrapped.wrapped_application = application  # type: ignore[attr-defined]
    return wrapped


def _no_write(data: bytes) -> None:
    raise RuntimeError("the legacy WSGI write() is not supported behind django_docker_runtime.retry")


async def _attempt_asgi(
    application: Callable, scope: dict, receive: Callable, send: Callable, received: list[dict]
) -> tuple[list[dict], bool]:
    """One run of the app: (the messages held back: a 500 and what followed it, or none when
    the answer went to the client), whether the database failed under it. A repeated attempt
    reads the request's messages again from `received`, what the earlier ones read."""
    replay = list(received)
    record: dict = {"database": False}
    held: list[dict] = []

    async def receive_again() -> dict:
        if replay:
            return replay.pop(0)
        message = await receive()
        received.append(message)
        return message

    async def hold(message: dict) -> None:
        # A 500 is held back with everything after it until it is known to be kept; any other
        # answer goes to the client as it comes.
        if held or (message["type"] == "http.response.start" and message.get("status") == 500):
            held.append(message)
        else:
            await send(message)

    token = _current.set(record)
    try:
        await application(scope, receive_again, hold)
    finally:
        _current.reset(token)
    return held, bool(held) and record["database"]


def asgi(application: Callable, seconds: float | None = None) -> Callable:
    """An ASGI application that repeats a GET/HEAD/OPTIONS whose 500 came from a lost database."""
    limit = budget() if seconds is None else seconds
    if limit <= 0:
        return application
    _listen()
    from asgiref.sync import sync_to_async

    async def wrapped(scope: dict, receive: Callable, send: Callable) -> None:
        if scope.get("type") != "http" or scope.get("method") not in REPEATABLE:
            await application(scope, receive, send)
            return
        started = time.monotonic()
        deadline = started + limit
        received: list[dict] = []
        attempts = 0
        while True:
            attempts += 1
            held, failed = await _attempt_asgi(application, scope, receive, send, received)
            waited = failed and time.monotonic() < deadline
            if waited and await sync_to_async(wait_for_database, thread_sensitive=True)(deadline):
                continue
            if attempts > 1 or waited:
                _say(scope["method"], scope.get("path", ""), attempts, started, not failed)
            for message in held:  # the 500 kept: deliver what was held back
                await send(message)
            return

    wrapped.wrapped_application = application  # type: ignore[attr-defined]
    return wrapped
