"""Settings for the test suite: the real PostgreSQL and Redis that
scripts/start-services.sh starts on loopback (its printed URLs are the defaults)."""

from django_docker_runtime import env

from .base import *  # noqa: F403
from .base import cache, database

SECRET_KEY = "test-only-not-a-secret"  # never deployed: the image runs production settings
ALLOWED_HOSTS = ["testserver", "localhost"]

DATABASE_URL = env.string("DATABASE_URL", default="postgres://django_app:django_app@127.0.0.1:5432/django_app")
REDIS_URL = env.string("REDIS_URL", default="redis://127.0.0.1:6379/0")
DATABASES = {"default": database(DATABASE_URL)}
# The test runner holds one connection per test; persistent connections only get in its way.
DATABASES["default"]["CONN_MAX_AGE"] = 0
CACHES = {"default": cache(REDIS_URL)}
CELERY_BROKER_URL = REDIS_URL

# No manifest is built in tests; hashed names are production's concern.
STORAGES = {
    **STORAGES,  # noqa: F405
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
