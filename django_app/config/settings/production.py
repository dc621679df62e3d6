"""Production settings: every deployed container (web, migrate, collectstatic, celery).

Required variables stop the process with a one-line error naming them (django_docker_runtime.env).
HTTPS behaviour is switched by variables so that a plain-HTTP dev stack runs these same
settings with the redirect, HSTS and secure cookies off.
"""

from django_docker_runtime import env

from .base import *  # noqa: F403
from .base import cache, database

SECRET_KEY = env.string("DJANGO_SECRET_KEY")
ALLOWED_HOSTS = env.csv_list("DJANGO_ALLOWED_HOSTS")
CSRF_TRUSTED_ORIGINS = env.csv_list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

DATABASE_URL = env.string("DATABASE_URL")
REDIS_URL = env.string("REDIS_URL")
DATABASES = {"default": database(DATABASE_URL)}
CACHES = {"default": cache(REDIS_URL)}
CELERY_BROKER_URL = REDIS_URL

# nginx terminates TLS and sets X-Forwarded-Proto; web is reachable only through nginx
# (frontend network), so the header cannot come from a client directly.
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env.boolean("DJANGO_SECURE_SSL_REDIRECT", default=False)
SECURE_HSTS_SECONDS = env.integer("DJANGO_SECURE_HSTS_SECONDS", default=0)
# Turning HSTS on commits the whole domain to HTTPS, as Django's deploy checks recommend.
SECURE_HSTS_INCLUDE_SUBDOMAINS = SECURE_HSTS_SECONDS > 0
SECURE_HSTS_PRELOAD = SECURE_HSTS_SECONDS > 0
SESSION_COOKIE_SECURE = env.boolean("DJANGO_SECURE_COOKIES", default=False)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
