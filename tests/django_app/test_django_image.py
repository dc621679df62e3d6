"""The image itself, built from django_app/ on the local engine (classic builder, through
the API) and run the way the stacks run it: read-only root, tmpfs /tmp, no capabilities.

Needs a Docker engine and the base `python:3.11.14-slim-bookworm` (a stand-in here: no
registry); skipped without them. Services are the loopback ones, so containers use the
host network."""

import socket
import time

import pytest

from tests.django_support import APP_DIR, production_env, test_database_url, wait_until

docker = pytest.importorskip("docker")

pytestmark = [pytest.mark.docker, pytest.mark.django_db]

TAG = "django-app-tests:pytest"
GIT_SHA = "feedfacefeedfacefeedfacefeedfacefeedface"
WEB_ARGV = [
    "gunicorn",
    "--config",
    "python:django_docker_runtime.gunicorn_conf",
    "django_docker_runtime.wsgi:application",
]


@pytest.fixture(scope="module")
def engine(python_engine):
    return python_engine


@pytest.fixture(scope="module")
def image(engine, runtime_image):
    built, _ = engine.images.build(
        path=str(APP_DIR),
        tag=TAG,
        buildargs={"GIT_SHA": GIT_SHA, "DJANGO_DOCKER_RUNTIME": runtime_image},
        rm=True,
        pull=False,
    )
    return built


def run(engine, *command: str, **kwargs) -> str:
    return engine.containers.run(TAG, list(command), remove=True, network_mode="host", **kwargs).decode()


def test_image_config_follows_the_contract(image):
    config = image.attrs["Config"]
    env = dict(item.split("=", 1) for item in config["Env"])

    assert config["User"] == "10001:10001"
    assert config["Entrypoint"] is None
    assert config["Cmd"] == WEB_ARGV
    assert config["WorkingDir"] == "/app"
    assert config["Healthcheck"]["Test"] == ["CMD", "python", "-m", "django_docker_runtime.healthcheck", "web"]
    assert "8000/tcp" in config["ExposedPorts"]
    assert config["Labels"]["org.opencontainers.image.revision"] == GIT_SHA
    assert {
        k: env[k]
        for k in ("GIT_SHA", "PYTHONDONTWRITEBYTECODE", "PYTHONUNBUFFERED", "DJANGO_SETTINGS_MODULE", "APP_MODULE")
    } == {
        "GIT_SHA": GIT_SHA,
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONUNBUFFERED": "1",
        "DJANGO_SETTINGS_MODULE": "config.settings.production",
        "APP_MODULE": "config.wsgi:application",
    }
    assert env["PYTHONPATH"] == "/opt/django-docker-runtime"


def test_no_secret_in_any_layer_or_in_history(engine, image):
    history = " ".join(layer["CreatedBy"] for layer in image.history())

    assert "SECRET" not in history.upper()
    assert run(engine, "sh", "-c", "env | grep -c SECRET_KEY || true").strip() == "0"


def test_runtime_has_no_compilers_and_uses_the_compiled_psycopg(engine, image):
    output = run(
        engine,
        "sh",
        "-c",
        "command -v gcc || echo no-gcc; dpkg-query -W libpq-dev 2>/dev/null || echo no-libpq-dev; "
        "python -c 'import psycopg; print(psycopg.pq.__impl__)'",
    )

    assert output.split() == ["no-gcc", "no-libpq-dev", "c"]


def test_the_app_owns_only_what_it_writes(engine, image):
    output = run(
        engine,
        "sh",
        "-c",
        "stat -c '%U %n' /app /app/config /app/staticfiles /app/media; "
        "touch /app/x 2>/dev/null && echo app-writable || echo app-readonly; "
        "ls /app/staticfiles/visits/",
    )

    lines = output.splitlines()
    assert lines[:5] == ["root /app", "root /app/config", "app /app/staticfiles", "app /app/media", "app-readonly"]
    assert "site.css" in lines[5:] and any(n.startswith("site.") and n.count(".") == 2 for n in lines[5:])


def test_web_container_becomes_healthy_read_only_and_stops_gracefully(engine, image):
    with socket.socket() as probe:
        if probe.connect_ex(("127.0.0.1", 8000)) == 0:
            pytest.skip("port 8000 is busy on this host (the host network is needed for loopback services)")
    env = production_env(DATABASE_URL=test_database_url(), WEB_CONCURRENCY="2")
    env = {k: v for k, v in env.items() if k.startswith(("DJANGO_", "DATABASE_", "REDIS_", "WEB_", "CELERY_APP"))}
    container = engine.containers.run(
        TAG,
        detach=True,
        network_mode="host",
        environment=env,
        read_only=True,
        tmpfs={"/tmp": ""},
        cap_drop=["ALL"],
        security_opt=["no-new-privileges"],
    )
    try:

        def health():
            container.reload()
            assert container.status == "running", container.logs().decode()
            return container.attrs["State"]["Health"]["Status"] == "healthy"

        wait_until(health, timeout=60, interval=1, what="the image's HEALTHCHECK to pass")
        started = time.monotonic()
        container.stop(timeout=40)
        container.reload()
        assert container.attrs["State"]["ExitCode"] == 0
        assert time.monotonic() - started < 30
        logs = container.logs().decode()
        # the image's HEALTHCHECK asks for readiness only (runtime/django_docker_runtime/healthcheck.py)
        assert '"GET /health/?scope=ready HTTP/1.1" 200' in logs and "Python-urllib" in logs
    finally:
        container.remove(force=True)
