"""gunicorn settings for the web role: `gunicorn --config python:django_docker_runtime.gunicorn_conf
django_docker_runtime.wsgi:application` (or `.asgi:application` with the uvicorn worker).

nginx finds the web replicas through a Docker DNS alias (every running replica, healthy or
not) and re-resolves it every second; it skips a replica that *refuses* a connection and
retries the next one at once. Two things follow, and this file does both:
- A replica opens its port only once it can really serve: the master imports the app
  (`preload_app`) and its URL configuration, and waits until its readiness checks pass
  (READY_CHECKS, default the database: django_docker_runtime.health; not the cache or the
  broker, which only some pages need, so a replica starting while Redis restarts still serves
  the rest), before it binds. Until then connections are refused.
- A replica's address must never die while nginx may still choose it. Docker drops a
  container from DNS only when it exits, and its address dies with it; a request nginx sends
  to a dead address waits out the connect timeout, and if nginx re-resolves meanwhile it
  cannot retry on another replica (nginx src/http/ngx_http_upstream_round_robin.c: a changed
  upstream config ends the retries, "no live upstreams", a 502). So the master never exits
  straight after it stopped serving: on SIGTERM it closes its listener (each worker its own
  copy as it stops accepting: post_worker_init), lets its workers finish, and refuses for
  WEB_DRAIN_SECONDS (nginx marks it down on a refusal: max_fails=1 in components/render.py);
  and a replica that cannot start (the app does not import, a setting
  is missing) stays up refusing, unhealthy, instead of exiting into a restart loop that would
  add and drop it in DNS every few seconds.
Order in gunicorn 27.0.1 (gunicorn/arbiter.py): `Arbiter.__init__` calls `setup()` (line 63),
which imports the app when `preload_app` is set (lines 162-163); `run()` then calls `start()`
(line 243), which runs `on_starting` (line 186) and only after it creates the listening
sockets (`sock.create_sockets`, lines 190-204) and calls `when_ready`; the workers are forked
after that (`manage_workers`, line 247). On SIGTERM `halt()` runs `stop()`, which closes the
listeners first (lines 442-456), then `on_exit` and `sys.exit` (lines 400-415). (With
`reuse_port` the workers would bind instead: keep it off.)
"""

import atexit
import os
import signal
import time

from django_docker_runtime import env

PORT = env.integer("PORT", default=8000)
bind = f"0.0.0.0:{PORT}"

# Import the WSGI app (Django) in the master, before the socket is bound (see above): an
# app that fails to import never listens.
preload_app = True

READY_POLL_SECONDS = 0.5
# How often a replica still waiting for its services says so again in the log.
READY_REMINDER_SECONDS = 60
DRAIN_SECONDS = env.integer("WEB_DRAIN_SECONDS", default=2)

# (2 x CPUs) + 1, as gunicorn suggests, but at most 4: the container has a memory limit,
# and the stack scales out with web replicas rather than with workers per replica.
# sched_getaffinity counts the CPUs this container may use, not the host's.
# The program passes --workers, --threads, --timeout, --graceful-timeout and --max-requests on
# the command line (which wins over this file); these are the defaults for anyone else.
workers = env.integer("WEB_CONCURRENCY", default=min(2 * len(os.sched_getaffinity(0)) + 1, 4))

timeout = 30
# On SIGTERM workers get as long to finish as a request may take; the container's stop
# timeout (the program's destroy grace) must be longer than this plus the drain.
graceful_timeout = timeout
keepalive = 5  # nginx reuses upstream connections

# Recycle workers now and then to contain slow leaks; the jitter keeps them from all
# restarting at once.
max_requests = 1000
max_requests_jitter = 100

# Worker heartbeat files on tmpfs: the root filesystem may be read-only, and a heartbeat on
# a disk-backed overlay can stall workers into timeouts.
worker_tmp_dir = "/dev/shm"
# The control socket (gunicorn >= 25.1) would be created under $HOME, which does not exist
# for the app user and sits on a read-only filesystem; nothing here uses gunicornc.
control_socket_disable = True

# X-Forwarded-* are trusted only from the proxy network (the program passes the frontend
# network's CIDR); loopback by default so nothing else is trusted by accident.
forwarded_allow_ips = env.string("FORWARDED_ALLOW_IPS", default="127.0.0.1,::1")

# Logs to stdout/stderr for the engine to collect; the client address nginx saw comes first.
accesslog = "-"
errorlog = "-"
loglevel = env.string("DJANGO_LOG_LEVEL", default="INFO").lower()
access_log_format = '%({x-forwarded-for}i)s %(h)s "%(r)s" %(s)s %(b)s %(M)sms "%(a)s"'


class _Master:
    """What the master's exit needs to know: its pid (forked workers inherit the atexit
    handler), whether it ever listened, and whether it was told to stop."""

    pid = os.getpid()
    listened = False
    stopping = False


def _stop_requested(signum, frame) -> None:
    """SIGTERM before gunicorn has its own handlers (while importing the app or waiting to be
    ready), or while parked: leave by way of the drain, like any other exit."""
    _Master.stopping = True
    raise SystemExit(0)


signal.signal(signal.SIGTERM, _stop_requested)  # gunicorn replaces it once it listens


def on_starting(server):
    """Runs in the master before it binds: settings, URL configuration, then readiness.

    preload_app has already imported the app (APP_MODULE, through django_docker_runtime.wsgi or
    .asgi), which loaded the settings, so a missing variable has stopped the start with its
    one-line message instead of failing every worker boot in a loop; the fallback covers an app
    that did not set Django up.
    """
    import django
    from django.apps import apps
    from django.urls import get_resolver

    if not apps.ready:
        django.setup(set_prefix=False)
    # Django imports the URL configuration (and so every view module) on the first request;
    # import it now, so a release whose views cannot import never listens either.
    get_resolver().url_patterns  # noqa: B018 (the access is the import)
    _wait_until_ready(server)


def when_ready(server):
    _Master.listened = True


def post_worker_init(worker):
    """A stopping worker neither keeps nor drops a connection the kernel queued for it.

    A listening socket the worker still holds goes on taking connections (the kernel completes
    the handshake) that nobody may accept; at the last close they are reset, after nginx has sent
    its request (a GET nginx repeats elsewhere; a POST it never repeats, lost). Two workers of
    gunicorn 27.0.1 held it that way when told to stop:
    - gthread (`--threads` > 1) stops accepting at once but keeps the socket through its graceful
      wait, at least STOP_KEEPALIVE_LINGER with a kept-alive connection (workers/gthread.py `run`:
      `set_accept_enabled(False)`, then the wait, then `s.close()`): closed here as it stops
      accepting, so the port refuses within a second and nginx goes elsewhere before sending;
    - sync (one thread, the default) finishes its request and leaves its loop without looking at
      the socket again (workers/sync.py `run_for_one`): here it first serves what was queued
      while it finished, then lets go.
    The master lets go of its copy first (arbiter.stop). uvicorn's worker (ASGI) is left as it
    is: not measured here."""
    stop_accepting = getattr(worker, "set_accept_enabled", None)
    if stop_accepting is not None:

        def set_accept_enabled(enabled: bool) -> None:
            stop_accepting(enabled)
            if not enabled and not worker.alive:  # stopping, not merely at worker_connections
                for listener in worker.sockets:
                    listener.close()

        worker.set_accept_enabled = set_accept_enabled
    elif hasattr(worker, "run_for_one"):
        run = worker.run

        def run_then_serve_the_queue() -> None:
            run()
            for listener in worker.sockets:
                while True:
                    try:
                        worker.accept(listener)  # serves the request, like the loop it left
                    except OSError:  # nothing queued (the socket is non-blocking), or closed
                        break
                listener.close()

        worker.run = run_then_serve_the_queue


class _OncePerMessage:
    """A logging filter: each distinct message once, so polling does not flood the log."""

    def __init__(self) -> None:
        self.seen: set[str] = set()

    def filter(self, record) -> bool:
        message = record.getMessage()
        if message in self.seen:
            return False
        self.seen.add(message)
        return True


def _wait_until_ready(server) -> None:
    """Poll the readiness checks until all pass, however long that takes (a database still
    starting after a host reboot comes up eventually; the replica then serves). Meanwhile the
    port stays closed and the container's healthcheck fails, so `pulumi up` reports it. The
    master's connections are closed before it goes on, so no worker inherits a socket."""
    from django.core.cache import caches
    from django.db import connections

    from django_docker_runtime import health

    names = health.ready()
    once = _OncePerMessage()
    health.logger.addFilter(once)  # each distinct failure (with its detail) is logged once
    started = reminded = time.monotonic()
    waited = False
    try:
        while True:
            failed = {name: value for name, value in health.run_checks(names).items() if value != "ok"}
            if not failed:
                break
            reasons = ", ".join(f"{name} {value}" for name, value in failed.items())
            now = time.monotonic()
            if not waited or now - reminded >= READY_REMINDER_SECONDS:
                server.log.warning("web: not ready after %ds: %s; not listening until it is", now - started, reasons)
                waited, reminded = True, now
            connections.close_all()  # a fresh connection on the next poll
            time.sleep(READY_POLL_SECONDS)
        if waited:
            server.log.info("Ready: %s answered", ", ".join(names))
    finally:
        health.logger.removeFilter(once)
        connections.close_all()  # the database check's connection (persistent: CONN_MAX_AGE)
        _disconnect_caches(caches)


def _disconnect_caches(caches) -> None:
    """Close the connections the cache check opened, so no forked worker inherits them.

    `close()` is a cache's documented hook, but Django's own RedisCache keeps its connection
    pools across it (django/core/cache/backends/redis.py 5.2: RedisCacheClient._pools, no
    close()); redis-py resets a pool in a forked child without closing the parent's sockets
    (redis/connection.py ConnectionPool._checkpid). So its pools are disconnected here too.
    """
    for cache in caches.all(initialized_only=True):
        cache.close()
        for pool in getattr(getattr(cache, "_cache", None), "_pools", {}).values():
            pool.disconnect()


def _at_exit() -> None:
    """In the master only (a worker lingering would keep the listening socket open).

    Every exit drains: refusing connections for DRAIN_SECONDS first (see the top). One that
    never served and was not told to stop (the app did not import, a setting is missing)
    stays up refusing, unhealthy, until it is: a restart could not fix it, and a restart loop
    would add and drop the replica in DNS every few seconds. Silent, so the one-line reason
    printed above stays the last line."""
    if os.getpid() != _Master.pid:
        return
    signal.signal(signal.SIGTERM, _stop_requested)
    try:
        while not (_Master.listened or _Master.stopping):
            time.sleep(3600)
    except SystemExit:
        pass  # SIGTERM while parked: drain, then exit
    time.sleep(DRAIN_SECONDS)


# Registered as gunicorn reads this file, in the master, before it imports the app: so it
# also covers an app that fails to import.
atexit.register(_at_exit)
