"""gunicorn settings for the web role: `gunicorn --config gunicorn.conf.py config.wsgi:application`."""

import os

from config import env

bind = "0.0.0.0:8000"

# (2 x CPUs) + 1, as gunicorn suggests, but at most 4: the container has a memory limit,
# and the stack scales out with web replicas rather than with workers per replica.
# sched_getaffinity counts the CPUs this container may use, not the host's.
workers = env.integer("WEB_CONCURRENCY", default=min(2 * len(os.sched_getaffinity(0)) + 1, 4))

timeout = env.integer("GUNICORN_TIMEOUT", default=30)
# On SIGTERM workers get as long to finish as a request may take; the container's stop
# timeout (the program's destroy grace) must be longer than this.
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


def on_starting(server):
    """Load Django's settings in the master, so a missing variable stops gunicorn once with
    its one-line message (config/env.py) instead of failing every worker boot in a loop."""
    import django

    env.default_settings_module()
    django.setup(set_prefix=False)
