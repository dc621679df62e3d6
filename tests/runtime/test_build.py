"""The runtime's build step (collectstatic with placeholders, the app's directories) and its
probe of a project's settings, on the example app in a scratch copy."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.django_support import APP_DIR, app_env

SETTINGS = {"DJANGO_SETTINGS_MODULE": "config.settings.production"}


@pytest.fixture
def project(tmp_path) -> Path:
    copy = tmp_path / "app"
    shutil.copytree(APP_DIR, copy, ignore=shutil.ignore_patterns("__pycache__", "staticfiles", "media"))
    return copy


def _runtime(cwd: Path, *argv: str, **environ: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "django_docker_runtime.build", *argv],
        cwd=cwd,
        env=app_env(**environ),
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_build_collects_static_files_and_gives_the_app_its_directories_with_no_secret_set(project):
    me = f"{os.getuid()}:{os.getgid()}"

    result = _runtime(project, "--owner", me, **SETTINGS)  # no DJANGO_SECRET_KEY, no DATABASE_URL

    assert result.returncode == 0, result.stderr
    static, media = project / "staticfiles", project / "media"
    manifest = json.loads((static / "staticfiles.json").read_text())
    assert "visits/site.css" in manifest["paths"]  # the manifest storage's hashed names, made now
    assert (static / manifest["paths"]["visits/site.css"]).is_file()
    assert media.is_dir() and (media.stat().st_uid, static.stat().st_uid) == (os.getuid(), os.getuid())


def test_the_probe_reports_what_the_stack_needs_from_the_settings_themselves(project):
    probe_env = {
        **SETTINGS,
        "DJANGO_SECRET_KEY": "probe-secret-key-" + "k" * 40,
        "DJANGO_ALLOWED_HOSTS": "probe.invalid",
        "DATABASE_URL": "postgres://u:probe-password@database.probe.invalid:5432/probe",
        "POSTGRES_PASSWORD": "probe-password",
        "REDIS_URL": "redis://redis.probe.invalid:6379/0",
        "CELERY_APP": "config",
        "APP_MODULE": "config.wsgi:application",
    }

    result = _runtime(project, "--probe", **probe_env)

    assert result.returncode == 0, result.stdout + result.stderr
    found = json.loads(result.stdout)
    assert found["secret_key_from_env"] is True
    assert found["allowed_hosts"] == ["probe.invalid"]
    assert (found["static_root"], found["static_url"]) == (str(project / "staticfiles"), "/static/")
    assert (found["media_root"], found["media_url"]) == (str(project / "media"), "/media/")
    assert found["database"]["engine"] == "django.db.backends.postgresql"
    assert (found["database"]["host"], found["database"]["password_from_env"]) == ("database.probe.invalid", True)
    assert found["cache"] == {"backend": "django.core.cache.backends.redis.RedisCache", "host": "redis.probe.invalid"}
    assert found["celery"] == {"main": "config", "broker_host": "redis.probe.invalid"}
    assert found["application"] == "WSGIHandler" and found["debug"] is False


def test_the_probe_says_in_one_line_why_the_settings_do_not_import(project):
    result = _runtime(project, "--probe", **SETTINGS)  # DJANGO_SECRET_KEY is required

    assert result.returncode == 3
    assert json.loads(result.stdout) == {
        "error": "EnvError: configuration error: DJANGO_SECRET_KEY is required and not set"
    }
