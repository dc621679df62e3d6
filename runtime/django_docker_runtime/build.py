"""`python -m django_docker_runtime.build [--owner UID:GID]`: a Dockerfile's one step for Django's files.

Run as root while the image is built (no database, no secret): the variables the program sets at
run time get placeholders that are obviously not secrets (BUILD_PLACEHOLDERS, for this process
only: never in a layer's ENV or in `docker history`), Django is set up with the image's settings,
`collectstatic` runs when staticfiles is installed and STATIC_ROOT is set (a manifest storage's
hashed names are made now, so every web container has its manifest), and STATIC_ROOT and
MEDIA_ROOT are created and given to the app user: the release job collects into the volume
mounted at STATIC_ROOT, uploads go to the one at MEDIA_ROOT. The code stays root's.

`--env NAME=VALUE` (repeatable) sets what the settings read under their own names for this build,
`${NAME}` in VALUE being a placeholder's (SECRET_KEY=${DJANGO_SECRET_KEY}: the stack's appEnv,
in exec form so no shell expands it).

`--probe`: print, as JSON, what a stack needs to know of the project's settings with the
environment it is given (`make adopt` runs it in the image it built, with no network), or
`{"error": ...}` and exit 3 when the settings or the application do not import.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

# The run-time environment the program provides (docs/adopt.md), as placeholders for a build.
BUILD_PLACEHOLDERS = {
    "DJANGO_SECRET_KEY": "build-time-placeholder-not-a-secret-" + "x" * 32,
    "DJANGO_ALLOWED_HOSTS": "build.invalid",
    "DATABASE_URL": "postgres://build:build@build.invalid:5432/build",
    "POSTGRES_HOST": "build.invalid",
    "POSTGRES_PORT": "5432",
    "POSTGRES_DB": "build",
    "POSTGRES_USER": "build",
    "POSTGRES_PASSWORD": "build",
    "REDIS_URL": "redis://build.invalid:6379/0",
}


def _setup() -> None:
    import django

    django.setup(set_prefix=False)


REFERENCE = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def build(owner: str, extra: list[str]) -> int:
    for name, value in BUILD_PLACEHOLDERS.items():
        os.environ.setdefault(name, value)
    for item in extra:
        name, _, value = item.partition("=")
        os.environ.setdefault(
            name, REFERENCE.sub(lambda m: "$" if m.group(0) == "$$" else BUILD_PLACEHOLDERS.get(m.group(1), ""), value)
        )
    _setup()
    from django.conf import settings
    from django.core.management import call_command

    static_root = getattr(settings, "STATIC_ROOT", None)
    if static_root and "django.contrib.staticfiles" in settings.INSTALLED_APPS:
        call_command("collectstatic", interactive=False, verbosity=0)
    uid, _, gid = owner.partition(":")
    for directory, recursive in ((static_root, True), (getattr(settings, "MEDIA_ROOT", None), False)):
        if not directory:
            continue
        path = Path(directory)
        path.mkdir(parents=True, exist_ok=True)
        for entry in [path, *(path.rglob("*") if recursive else [])]:
            shutil.chown(entry, user=int(uid), group=int(gid or uid))
    return 0


def _host(url: object) -> str:
    return urlsplit(str(url)).hostname or "" if url else ""


def probe() -> dict[str, Any]:
    """What the stack needs to know of the settings, from the settings themselves."""
    _setup()
    from django.conf import settings

    database = settings.DATABASES.get("default", {})
    cache = settings.CACHES.get("default", {})
    storages = getattr(settings, "STORAGES", {})
    found: dict[str, Any] = {
        "settings_module": os.environ.get("DJANGO_SETTINGS_MODULE", ""),
        "debug": bool(settings.DEBUG),
        "secret_key_from_env": settings.SECRET_KEY == os.environ.get("DJANGO_SECRET_KEY"),
        "allowed_hosts": list(settings.ALLOWED_HOSTS),
        "csrf_trusted_origins": list(getattr(settings, "CSRF_TRUSTED_ORIGINS", [])),
        "static_root": str(settings.STATIC_ROOT or ""),
        "static_url": str(settings.STATIC_URL or ""),
        "media_root": str(settings.MEDIA_ROOT or ""),
        "media_url": str(settings.MEDIA_URL or ""),
        "staticfiles": "django.contrib.staticfiles" in settings.INSTALLED_APPS,
        "static_storage": (storages.get("staticfiles") or {}).get("BACKEND", ""),
        "database": {
            "engine": database.get("ENGINE", ""),
            "host": database.get("HOST", ""),
            "name": database.get("NAME", ""),
            "user": database.get("USER", ""),
            "password_from_env": bool(database.get("PASSWORD"))
            and database.get("PASSWORD") == os.environ.get("POSTGRES_PASSWORD"),
        },
        "cache": {"backend": cache.get("BACKEND", ""), "host": _host(cache.get("LOCATION"))},
        "wsgi_application": getattr(settings, "WSGI_APPLICATION", None),
        "asgi_application": getattr(settings, "ASGI_APPLICATION", None),
        "secure_proxy_ssl_header": list(getattr(settings, "SECURE_PROXY_SSL_HEADER", None) or []),
        "secure_ssl_redirect": bool(getattr(settings, "SECURE_SSL_REDIRECT", False)),
    }
    if os.environ.get("CELERY_APP"):
        from django_docker_runtime import health

        app = health.celery_app()
        found["celery"] = {"main": app.main, "broker_host": _host(app.conf.broker_url)}
    if os.environ.get("APP_MODULE"):
        from django_docker_runtime import app as application

        found["application"] = type(application.load()).__name__
    return found


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m django_docker_runtime.build")
    parser.add_argument("--owner", default="10001:10001", help="uid:gid given STATIC_ROOT and MEDIA_ROOT")
    parser.add_argument("--env", action="append", default=[], help="NAME=VALUE for this build (${NAME}: a placeholder)")
    parser.add_argument("--probe", action="store_true", help="print the settings' facts as JSON")
    args = parser.parse_args(argv)
    if not args.probe:
        return build(args.owner, args.env)
    try:
        print(json.dumps(probe()))
    except BaseException as error:  # the project's own code: whatever stops it is the answer
        if isinstance(error, KeyboardInterrupt):
            raise
        message = str(error).splitlines()[0] if str(error) else ""
        print(json.dumps({"error": f"{type(error).__name__}: {message}".rstrip(": ")}))
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
