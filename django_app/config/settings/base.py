"""Settings shared by every environment.

Nothing here requires a variable: the service URLs and the secret are read by
`production.py` (required) and `test.py` (loopback defaults). The environment is read through
django_docker_runtime.env (required values fail in one line; NAME_FILE secrets).
"""

from pathlib import Path

import dj_database_url
from dj_database_url import DBConfig

from django_docker_runtime import env

BASE_DIR = Path(__file__).resolve().parent.parent.parent

DEBUG = False
ALLOWED_HOSTS: list[str] = []

# The image's revision, reported by /health/ so a deployment can be matched to its commit.
GIT_SHA = env.string("GIT_SHA", default="unknown")

INSTALLED_APPS = [
    "django.contrib.staticfiles",
    "visits",
]

# /health/ is answered by the runtime ahead of all of these (django_docker_runtime.health).
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {"context_processors": ["django.template.context_processors.request"]},
    }
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# The paths the program mounts its static and media volumes on (docs/contracts.md).
STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
MEDIA_URL = "/media/"
MEDIA_ROOT = BASE_DIR / "media"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    # Hashed names: during a rolling deploy the old and the new release's files coexist in
    # the shared static volume, and each release's pages name only its own files.
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.ManifestStaticFilesStorage"},
}
# Uploads above this size are streamed to a temporary file (/tmp is a tmpfs in the stack).
FILE_UPLOAD_MAX_MEMORY_SIZE = 2_621_440
UPLOAD_MAX_BYTES = 5 * 1024 * 1024


def database(url: str) -> DBConfig:
    """Django's DATABASES entry for a URL: persistent connections, checked before reuse."""
    config = dj_database_url.parse(url, conn_max_age=600, conn_health_checks=True)
    # Fail in seconds, not minutes, when the server is unreachable (health checks, startup).
    config.setdefault("OPTIONS", {})["connect_timeout"] = 5
    return config


def cache(url: str) -> dict:
    return {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": url}


# Celery reads every CELERY_* setting (config/celery.py); the broker URL is set with REDIS_URL.
CELERY_TASK_ACKS_LATE = True  # a task lost with its worker is delivered again...
CELERY_TASK_REJECT_ON_WORKER_LOST = True  # ...also when the worker process is killed
CELERY_WORKER_PREFETCH_MULTIPLIER = 1  # a busy worker does not hoard queued tasks
CELERY_TASK_IGNORE_RESULT = True  # tasks write their results to PostgreSQL
CELERY_TASK_TIME_LIMIT = 60
CELERY_TASK_SOFT_TIME_LIMIT = 50
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# A task delivered but never acknowledged (its worker was SIGKILLed, its host lost) goes back
# to the queue only when a worker's sweep finds it older than `visibility_timeout`: kombu
# 5.7.0, kombu/transport/redis.py, QoS.restore_visible (restores unacked entries scored before
# `time() - visibility_timeout`), called by MultiChannelPoller.maybe_restore_messages every
# `unacked_restore_interval` seconds (default 10; Transport.register_with_event_loop), but
# scanning only every `unacked_restore_throttle`-th call (default 10: every 100 s). Longer than
# CELERY_TASK_TIME_LIMIT, so a task still running is never delivered twice; kombu's default of
# an hour left a task lost with its worker waiting an hour. A task reserved but not yet started
# (every pool process busy) can still come twice: process_visit is idempotent. Throttle 1: the
# sweep runs every 10 s, so a lost task is redelivered within visibility_timeout + 10 s.
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": CELERY_TASK_TIME_LIMIT + 30, "unacked_restore_throttle": 1}
CELERY_WORKER_HIJACK_ROOT_LOGGER = False  # keep Django's stdout logging
# Sending a task while the broker restarts: retried for about 20 s (0, 0.5, 1, 1, ... s apart)
# rather than failing the request that sends it (Celery's default gives up within a second:
# the fault rehearsal's restart-redis lost visits' tasks to it). The view records a visit whose
# send still failed for later (visits.views.enqueue).
CELERY_TASK_PUBLISH_RETRY = True
CELERY_TASK_PUBLISH_RETRY_POLICY = {"max_retries": 20, "interval_start": 0, "interval_step": 0.5, "interval_max": 1}
# What `celery beat` sends (the schedule file lives in /tmp: the root filesystem is read-only).
CELERY_BEAT_SCHEDULE = {
    "enqueue-unprocessed-visits": {"task": "visits.tasks.enqueue_unprocessed_visits", "schedule": 300.0},
}

LOG_LEVEL = env.string("DJANGO_LOG_LEVEL", default="INFO").upper()
# Everything to stdout: the engine collects container output.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(process)d %(message)s"},
    },
    "handlers": {
        "stdout": {"class": "logging.StreamHandler", "stream": "ext://sys.stdout", "formatter": "plain"},
    },
    "root": {"handlers": ["stdout"], "level": LOG_LEVEL},
}
