"""Sample projects: Django projects made the way a team has them, to adopt and deploy (not ours).

`python -m rehearsal sample KIND DIR` (make sample): `django-admin startproject`, then what a
team adds: an app with a model, views that read and write the database, a Celery task, a
stylesheet, uploads, migrations, a git commit. They are the proof that the program deploys a
project it does not ship (`make adopt` + `make rehearse`), so they differ from the example,
and from each other, where real projects differ:

- `split`  (shop/notes): settings split into base/local/production, requirements.txt (pip
  freeze style), dj-database-url reading DATABASE_URL, the contract's variable names, a Redis
  cache, WSGI, wsgi.py pointing at production while manage.py points at local settings.
- `single` (blog/posts): one settings.py, pyproject.toml dependencies, settings reading their own
  names (SECRET_KEY, ALLOWED_HOSTS, POSTGRES_*, CELERY_BROKER_URL), no cache, ASGI with
  uvicorn-worker, static and uploads under other paths and URLs.

Each carries `.django-docker-sample` (its kind and its items' URL) so the rehearsal knows which
checks of its own to run (rehearsal/checks/samples.py); that file is the only trace of us.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

from rehearsal.errors import RehearsalError

MARKER = ".django-docker-sample"
# What `pip install` resolved for each project's direct dependencies (pip install --dry-run
# --report, PyPI on 2026-12-06): a team's pinned lock, transitive dependencies included.
COMMON_PINS = (
    "Django==5.2.19",
    "asgiref==3.13.0",
    "sqlparse==0.6.1",
    "typing_extensions==4.16.0",
    "psycopg[binary]==3.3.8",
    "psycopg-binary==3.3.8",
    "celery[redis]==5.7.0",
    "kombu==5.7.0",
    "amqp==5.4.2",
    "billiard==4.3.2",
    "vine==5.1.0",
    "redis==8.2.0",
    "click==8.5.1",
    "click-didyoumean==0.3.1",
    "click-plugins==1.1.1.2",
    "click-repl==0.4.1",
    "prompt_toolkit==3.0.53",
    "wcwidth==0.9.5",
    "python-dateutil==2.9.0.post0",
    "six==1.17.0",
    "tzlocal==5.4.5",
    "gunicorn==27.0.1",
    "packaging==26.3",
    # The release's migration gate (docs/adopt.md): a team adds it to run migrationMode gate.
    "django-migration-linter==6.0.0",
    "appdirs==1.4.4",
    "toml==0.10.2",
)


@dataclass(frozen=True)
class Sample:
    kind: str
    project: str
    app: str
    items: str
    """The URL of the app's items: POST creates one (and a Celery task), GET <id>/ reads it."""


SAMPLES = {
    "split": Sample("split", "shop", "notes", "/notes/"),
    "single": Sample("single", "blog", "posts", "/posts/"),
}


def generate(kind: str, target: Path) -> Path:
    """Make the sample project `kind` in `target` (an empty or missing directory), committed."""
    if kind not in SAMPLES:
        raise RehearsalError(f"sample: '{kind}' is not one of {', '.join(SAMPLES)}")
    sample = SAMPLES[kind]
    target.mkdir(parents=True, exist_ok=True)
    if any(target.iterdir()):
        raise RehearsalError(f"sample: {target} is not empty")
    _django(target, "startproject", sample.project, str(target))
    _django(target, "startapp", sample.app, settings=f"{sample.project}.settings")
    _write_app(target, sample)
    (_split if kind == "split" else _single)(target, sample)
    settings = f"{sample.project}.settings.local" if kind == "split" else f"{sample.project}.settings"
    _django(target, "makemigrations", sample.app, "--verbosity", "0", settings=settings)
    (target / MARKER).write_text(json.dumps({"kind": kind, "items": sample.items}) + "\n")
    (target / ".gitignore").write_text("__pycache__/\n*.pyc\ndb.sqlite3\n.env\n/media/\n/staticfiles/\n")
    _git(target, "init", "-q")
    _git(target, "add", ".")
    _git(target, "commit", "-q", "-m", f"{sample.project}: a Django project with {sample.app}")
    return target


def _django(cwd: Path, *argv: str, settings: str | None = None) -> None:
    command = [sys.executable, "-m", "django", *argv]
    if settings:
        command = [sys.executable, "manage.py", *argv, "--settings", settings]
    # What a developer's shell has while they work on it (the single sample's settings require it).
    env = {**os.environ, "SECRET_KEY": "django-insecure-local-only"}
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True, env=env)
    if result.returncode:
        raise RehearsalError(f"sample: {' '.join(argv[:2])} failed: {result.stderr.strip()[-400:]}")


def _git(cwd: Path, *argv: str) -> None:
    identity = ["-c", "user.email=team@example.com", "-c", "user.name=team"]
    subprocess.run(["git", "-C", str(cwd), *identity, *argv], check=True, capture_output=True)


def _write(root: Path, path: str, text: str) -> None:
    (root / path).parent.mkdir(parents=True, exist_ok=True)
    (root / path).write_text(textwrap.dedent(text).lstrip())


def _write_app(root: Path, s: Sample) -> None:
    """The app a team writes: a model, views on it, a Celery task, a template and a stylesheet."""
    name = s.app
    _write(
        root,
        f"{name}/models.py",
        """
        from django.db import models


        class Item(models.Model):
            text = models.CharField(max_length=200)
            created = models.DateTimeField(auto_now_add=True)
            processed_by = models.CharField(max_length=100, blank=True)
        """,
    )
    _write(
        root,
        f"{name}/tasks.py",
        f"""
        import socket

        from celery import shared_task

        from {name}.models import Item


        @shared_task
        def process_item(item_id):
            Item.objects.filter(pk=item_id).update(processed_by=socket.gethostname())
        """,
    )
    _write(
        root,
        f"{name}/views.py",
        f"""
        from django.core.files.storage import default_storage
        from django.db import transaction
        from django.http import JsonResponse
        from django.shortcuts import get_object_or_404, render
        from django.views.decorators.csrf import csrf_exempt
        from django.views.decorators.http import require_GET, require_POST

        from {name}.models import Item
        from {name}.tasks import process_item


        @require_GET
        def index(request):
            return render(request, "{name}/index.html", {{"items": Item.objects.order_by("-id")[:20]}})


        @csrf_exempt
        @require_POST
        def create(request):
            item = Item.objects.create(text=request.POST.get("text", "")[:200])
            transaction.on_commit(lambda: process_item.delay(item.pk))
            return JsonResponse({{"id": item.pk}}, status=201)


        @require_GET
        def detail(request, item_id):
            item = get_object_or_404(Item, pk=item_id)
            return JsonResponse({{"id": item.pk, "text": item.text, "processed_by": item.processed_by or None}})


        @csrf_exempt
        @require_POST
        def upload(request):
            stored = default_storage.save("uploads/" + request.FILES["file"].name, request.FILES["file"])
            return JsonResponse({{"url": default_storage.url(stored)}}, status=201)
        """,
    )
    _write(
        root,
        f"{name}/urls.py",
        f"""
        from django.urls import path

        from {name} import views

        urlpatterns = [
            path("", views.create),
            path("<int:item_id>/", views.detail),
            path("upload/", views.upload),
        ]
        """,
    )
    _write(
        root,
        f"{name}/templates/{name}/index.html",
        f"""
        {{% load static %}}<!doctype html>
        <html><head><title>{s.project}</title><link rel="stylesheet" href="{{% static '{name}/site.css' %}}"></head>
        <body><ul>{{% for item in items %}}<li>{{{{ item.text }}}}</li>{{% endfor %}}</ul></body></html>
        """,
    )
    _write(root, f"{name}/static/{name}/site.css", "body { font-family: sans-serif; }\n")
    _write(
        root,
        f"{s.project}/urls.py",
        f"""
        from django.contrib import admin
        from django.urls import include, path

        from {name} import views

        urlpatterns = [
            path("admin/", admin.site.urls),
            path("", views.index),
            path("{s.items.strip("/")}/", include("{name}.urls")),
        ]
        """,
    )
    _write(
        root,
        f"{s.project}/__init__.py",
        """
        from .celery import app as celery_app

        __all__ = ("celery_app",)
        """,
    )


def _celery(root: Path, s: Sample, settings: str) -> None:
    """The Celery app as Celery's Django guide writes it."""
    _write(
        root,
        f"{s.project}/celery.py",
        f"""
        import os

        from celery import Celery

        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "{settings}")

        app = Celery("{s.project}")
        app.config_from_object("django.conf:settings", namespace="CELERY")
        app.autodiscover_tasks()
        """,
    )


def _startproject_settings(root: Path, s: Sample) -> str:
    text = (root / s.project / "settings.py").read_text()
    text = text.replace("'django.contrib.staticfiles',\n]", f"'django.contrib.staticfiles',\n    '{s.app}',\n]")
    return text


def _split(root: Path, s: Sample) -> None:
    base = _startproject_settings(root, s)
    base = base.replace(
        "BASE_DIR = Path(__file__).resolve().parent.parent", "BASE_DIR = Path(__file__).resolve().parent.parent.parent"
    )
    base = re.sub(r"\n# SECURITY WARNING: keep the secret key.*?\nALLOWED_HOSTS = \[\]\n", "\n", base, flags=re.S)
    base = re.sub(r"\nDATABASES = \{.*?\n\}\n", "\n", base, flags=re.S)
    base += textwrap.dedent(
        """
        STATIC_ROOT = BASE_DIR / "staticfiles"
        MEDIA_URL = "/media/"
        MEDIA_ROOT = BASE_DIR / "media"
        CELERY_TASK_ACKS_LATE = True
        """
    )
    (root / s.project / "settings.py").unlink()
    _write(root, f"{s.project}/settings/__init__.py", "")
    (root / s.project / "settings" / "base.py").write_text(base)
    _write(
        root,
        f"{s.project}/settings/local.py",
        """
        from .base import *  # noqa

        SECRET_KEY = "django-insecure-local-only"
        DEBUG = True
        ALLOWED_HOSTS = ["localhost", "127.0.0.1"]
        DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": BASE_DIR / "db.sqlite3"}}
        CELERY_TASK_ALWAYS_EAGER = True
        """,
    )
    _write(
        root,
        f"{s.project}/settings/production.py",
        """
        import os

        import dj_database_url

        from .base import *  # noqa

        SECRET_KEY = os.environ["DJANGO_SECRET_KEY"]
        DEBUG = False
        ALLOWED_HOSTS = os.environ["DJANGO_ALLOWED_HOSTS"].split(",")
        CSRF_TRUSTED_ORIGINS = [o for o in os.environ.get("DJANGO_CSRF_TRUSTED_ORIGINS", "").split(",") if o]
        DATABASES = {"default": dj_database_url.parse(os.environ["DATABASE_URL"], conn_max_age=60)}
        CACHES = {
            "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": os.environ["REDIS_URL"]}
        }
        CELERY_BROKER_URL = os.environ["REDIS_URL"]
        SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
        """,
    )
    for module in ("manage.py", f"{s.project}/asgi.py"):
        path = root / module
        path.write_text(path.read_text().replace(f"'{s.project}.settings'", f"'{s.project}.settings.local'"))
    wsgi = root / s.project / "wsgi.py"
    wsgi.write_text(wsgi.read_text().replace(f"'{s.project}.settings'", f"'{s.project}.settings.production'"))
    _celery(root, s, f"{s.project}.settings.production")
    pins = sorted({*COMMON_PINS, "dj-database-url==3.1.2"}, key=str.lower)
    (root / "requirements.txt").write_text("\n".join(pins) + "\n")
    (root / ".python-version").write_text("3.11\n")


def _single(root: Path, s: Sample) -> None:
    settings = _startproject_settings(root, s)
    settings = settings.replace("from pathlib import Path\n", "import os\nfrom pathlib import Path\n")
    settings = re.sub(r"SECRET_KEY = '[^']*'", 'SECRET_KEY = os.environ["SECRET_KEY"]', settings)
    settings = settings.replace("DEBUG = True", 'DEBUG = os.environ.get("DEBUG", "0") == "1"')
    settings = settings.replace(
        "ALLOWED_HOSTS = []", 'ALLOWED_HOSTS = os.environ.get("ALLOWED_HOSTS", "localhost").split(",")'
    )
    settings = re.sub(
        r"DATABASES = \{.*?\n\}\n",
        textwrap.dedent(
            """
            DATABASES = {
                "default": {
                    "ENGINE": "django.db.backends.postgresql",
                    "HOST": os.environ.get("POSTGRES_HOST", "localhost"),
                    "PORT": os.environ.get("POSTGRES_PORT", "5432"),
                    "NAME": os.environ.get("POSTGRES_DB", "blog"),
                    "USER": os.environ.get("POSTGRES_USER", "blog"),
                    "PASSWORD": os.environ.get("POSTGRES_PASSWORD", ""),
                }
            }
            """
        ).lstrip(),
        settings,
        flags=re.S,
    )
    settings += textwrap.dedent(
        """
        STATIC_ROOT = BASE_DIR / "collected-static"
        MEDIA_URL = "/uploads/"
        MEDIA_ROOT = BASE_DIR / "uploads"
        ASGI_APPLICATION = "blog.asgi.application"
        CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "redis://localhost:6379/0")
        SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
        """
    )
    (root / s.project / "settings.py").write_text(settings)
    _celery(root, s, f"{s.project}.settings")
    pins = sorted({*COMMON_PINS, "uvicorn-worker==0.4.0", "uvicorn==0.55.0", "h11==0.16.0"}, key=str.lower)
    dependencies = "".join(f'    "{pin}",\n' for pin in pins)
    (root / "pyproject.toml").write_text(
        f'[project]\nname = "{s.project}"\nversion = "0.1.0"\nrequires-python = ">=3.11"\n'
        f"dependencies = [\n{dependencies}]\n"
    )
