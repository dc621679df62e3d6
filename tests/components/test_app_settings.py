"""The app as a setting: a Django project that is not the example, planned through the whole
program (what each app key does to the resources), and every way the app keys can be wrong,
refused in one line before anything is created."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from components import render
from planning.harness import JOB, VOLUME, PlanError, plan_stack
from tests.program_fixtures import PROD_SECRETS, builds, dev_outputs, env_of

RUNTIME_LINES = (
    "ARG DJANGO_DOCKER_RUNTIME=django-docker-runtime:1.0.0\nFROM ${DJANGO_DOCKER_RUNTIME} AS django-docker-runtime\n"
)


def make_project(root: Path, *, celery: bool = True) -> Path:
    """A team's project as `django-admin startproject shop .` lays it out, with split settings."""
    (root / "shop" / "settings").mkdir(parents=True)
    for path in ("shop/__init__.py", "shop/settings/__init__.py", "shop/settings/base.py", "shop/settings/prod.py"):
        (root / path).write_text("")
    (root / "shop" / "wsgi.py").write_text("application = None\n")
    (root / "shop" / "asgi.py").write_text("application = None\n")
    if celery:
        (root / "shop" / "celery.py").write_text("app = None\n")
    (root / "manage.py").write_text("")
    (root / "Dockerfile").write_text(RUNTIME_LINES + "FROM python:3.11.14-slim-bookworm\n")
    return root


APP = {
    "djangoSettingsModule": "shop.settings.prod",
    "appModule": "shop.wsgi:application",
    "celeryApp": "shop",
}


def plan_app(project: Path, stack: str = "dev", secrets: dict | None = None, **overrides):
    return plan_stack(stack, overrides={"appContext": str(project), **APP, **overrides}, secrets=secrets)


def test_a_project_that_is_not_the_example_is_built_and_run_as_its_keys_say(tmp_path):
    project = make_project(tmp_path / "shop")

    plan = plan_app(project)

    image, _ = builds(plan)
    assert image.inputs["build"]["context"] == str(project)
    assert image.inputs["build"]["dockerfile"] == str(project / "Dockerfile")
    env = env_of(plan.container("django-docker-web-1"))
    assert (env["DJANGO_SETTINGS_MODULE"], env["APP_MODULE"], env["CELERY_APP"]) == (
        "shop.settings.prod",
        "shop.wsgi:application",
        "shop",
    )
    assert plan.container("django-docker-celery-worker").inputs["command"][:4] == ["celery", "--app", "shop", "worker"]
    assert plan.container("django-docker-celery-beat").inputs["command"][:4] == ["celery", "--app", "shop", "beat"]


def test_no_celery_app_means_no_worker_no_beat_and_no_broker_in_the_environment(tmp_path):
    project = make_project(tmp_path / "shop", celery=False)

    plan = plan_app(project, celeryApp="", celeryBeat=False)

    assert plan.containers("celery-worker") == [] and plan.containers("celery-beat") == []
    assert "CELERY_APP" not in env_of(plan.container("django-docker-web-1"))
    assert plan.outputs["webContainers"]  # the rest of the stack is there


def test_app_paths_and_port_reach_the_jobs_the_mounts_and_nginx(tmp_path):
    project = make_project(tmp_path / "shop")

    plan = plan_app(
        project,
        staticRoot="/srv/static/",
        staticUrl="/assets/",
        mediaRoot="/srv/uploads",
        mediaUrl="/files/",
        appPort=9000,
        healthPath="/-/health/",
    )

    collect = plan.container("django-docker-release-collectstatic")
    assert [v["containerPath"] for v in collect.inputs["volumes"]] == ["/srv/static"]  # normalised
    assert [v["containerPath"] for v in plan.container("django-docker-web-1").inputs["volumes"]] == ["/srv/uploads"]
    env = env_of(plan.container("django-docker-web-1"))
    assert (env["PORT"], env["HEALTH_PATH"]) == ("9000", "/-/health/")
    conf = plan.nginx_conf()
    assert "server web:9000 resolve" in conf
    assert "location /assets/ {" in conf and "location /files/ {" in conf and "location /static/" not in conf


def test_an_app_without_static_files_or_uploads_gets_no_volume_no_job_and_no_location_for_them(tmp_path):
    project = make_project(tmp_path / "shop")

    plan = plan_app(project, staticRoot="", mediaRoot="")

    kinds = sorted(v.label("django-docker.volume") for v in plan.of_type(VOLUME))
    assert kinds == ["backups", "nginx-site", "postgres-data", "redis-data"]
    assert [j.label("django-docker.service") for j in plan.of_type(JOB)] == ["migration-gate", "migrate"]
    assert plan.container("django-docker-web-1").inputs.get("volumes", []) == []
    nginx = plan.container("django-docker-nginx")
    assert [v["containerPath"] for v in nginx.inputs.get("volumes", [])] == ["/etc/nginx/site"]  # its config only
    assert "/var/www/" not in plan.nginx_conf()


def test_release_commands_are_the_stacks_and_an_empty_one_is_no_job(tmp_path):
    project = make_project(tmp_path / "shop")

    plan = plan_app(project, migrateCommand="python backend/manage.py migrate --noinput --database 'main db'")
    assert plan.container("django-docker-release-migrate").inputs["command"] == [
        "python",
        "backend/manage.py",
        "migrate",
        "--noinput",
        "--database",
        "main db",
    ]

    plan = plan_app(project, migrateCommand="", collectstaticCommand="")
    assert plan.of_type(JOB) == []
    # nothing gates the replicas then: they carry a constant release label
    assert plan.container("django-docker-web-1").label("django-docker.release") == "no-release-jobs"


def test_asgi_apps_run_gunicorn_with_the_uvicorn_worker(tmp_path):
    project = make_project(tmp_path / "shop")

    plan = plan_app(project, appServer="asgi", appModule="shop.asgi:application", webThreads=4)

    command = plan.container("django-docker-web-1").inputs["command"]
    assert command[-1] == "django_docker_runtime.asgi:application"
    assert ["--worker-class", "uvicorn_worker.UvicornWorker"] == command[5:7]
    assert env_of(plan.container("django-docker-web-1"))["APP_MODULE"] == "shop.asgi:application"


def test_the_apps_own_environment_and_secrets_reach_every_app_container_and_stay_secret(tmp_path):
    project = make_project(tmp_path / "shop")

    plan = plan_app(
        project,
        appEnv=["SECRET_KEY=${DJANGO_SECRET_KEY}", "SENTRY_ENVIRONMENT=dev", "PRICE=$$5"],
        secrets={"appSecretEnv": "SENTRY_DSN=https://key@sentry.example/1\n# a comment\nexport MAIL_PASSWORD='p w'\n"},
    )

    secret_key = plan.by_name("django-docker-secret-key").outputs["result"]
    for container in plan.containers():
        if container.label("django-docker.role") != "app":
            continue
        env = env_of(container)
        assert env["SECRET_KEY"] == env["DJANGO_SECRET_KEY"] == secret_key
        assert (env["SENTRY_ENVIRONMENT"], env["PRICE"]) == ("dev", "$5")
        assert (env["SENTRY_DSN"], env["MAIL_PASSWORD"]) == ("https://key@sentry.example/1", "p w")
        assert "envs" in container.secret_paths
        assert "sentry.example" not in json.dumps({k: v for k, v in container.inputs.items() if k != "envs"})


def test_on_swarm_the_apps_secrets_and_what_refers_to_them_are_files(tmp_path):
    project = make_project(tmp_path / "shop")

    plan = plan_stack(
        "prod",
        overrides={
            "appContext": str(project),
            **APP,
            "target": "swarm",
            "appEnv": ["SECRET_KEY=${DJANGO_SECRET_KEY}", "SENTRY_ENVIRONMENT=prod"],
        },
        secrets={**PROD_SECRETS, "appSecretEnv": "SENTRY_DSN=https://key@sentry.example/1"},
        stack_references=dev_outputs(),
    )

    (web,) = [s for s in plan.of_type("docker:index/service:Service") if s.label("django-docker.service") == "web"]
    env = web.inputs["taskSpec"]["containerSpec"]["env"]
    assert env["SENTRY_ENVIRONMENT"] == "prod"
    assert {"SECRET_KEY_FILE", "SENTRY_DSN_FILE", "DJANGO_SECRET_KEY_FILE", "DATABASE_URL_FILE"} <= set(env)
    assert set(env["VALUES_FROM_FILES"].split(",")) == {
        "DJANGO_SECRET_KEY",
        "DATABASE_URL",
        "POSTGRES_PASSWORD",
        "SENTRY_DSN",
        "SECRET_KEY",
    }
    assert "sentry.example" not in json.dumps(web.inputs)


def test_an_image_that_is_not_built_here_needs_no_project_on_disk(tmp_path):
    plan = plan_stack(
        "dev",
        overrides={
            "imageSource": "pin",
            "imagePin": "acme/web@sha256:" + "a" * 64,
            "appContext": str(tmp_path / "gone"),
        },
    )
    assert plan.containers("web")


# (overrides, secrets, the one line that refuses them)
BAD_APP: list[tuple[dict, dict, str]] = [
    ({"appContext": "{project}/nowhere"}, {}, "appContext: {project}/nowhere is not a directory"),
    ({"appDockerfile": "Dockerfile.prod"}, {}, "appDockerfile: {project}/Dockerfile.prod does not exist"),
    (
        {"appDockerfile": "Dockerfile.plain"},
        {},
        "appDockerfile: {project}/Dockerfile.plain does not take the runtime (no `ARG DJANGO_DOCKER_RUNTIME`); "
        "add the lines in docs/adopt.md, or let `make adopt` write one",
    ),
    (
        {"djangoSettingsModule": "shop.settings.production"},
        {},
        "djangoSettingsModule: shop.settings.production is not a module of {project} (no shop/settings/production.py)",
    ),
    (
        {"djangoSettingsModule": "shop/settings.py"},
        {},
        "djangoSettingsModule: 'shop/settings.py' is not valid; expected a dotted module path like config.settings",
    ),
    ({"appModule": "shop.wsgi:"}, {}, "appModule: 'shop.wsgi:' is not valid; expected module.path:attribute"),
    (
        {"appModule": "config.wsgi:application"},
        {},
        "appModule: config.wsgi is not a module of {project} (no config/wsgi.py)",
    ),
    (
        {"celeryApp": "tasks"},
        {},
        "celeryApp: tasks is not a module of {project} (no tasks.py); set it to the module that creates the "
        "Celery app, or empty for no Celery",
    ),
    (
        {"celeryApp": "", "celeryBeat": True},
        {},
        "celeryBeat: true needs celeryApp (the app beat schedules tasks for); set it, or false",
    ),
    ({"appServer": "uwsgi"}, {}, "appServer: 'uwsgi' is not one of wsgi, asgi"),
    ({"appPort": 0}, {}, "appPort: 0 is out of range; expected 1 to 65535"),
    (
        {"healthPath": "health"},
        {},
        "healthPath: 'health' is not valid; expected a path that starts and ends with /, e.g. /static/",
    ),
    (
        {"healthChecks": "database,disk"},
        {},
        "healthChecks: 'database,disk' is not a list of database, cache, broker",
    ),
    (
        {"readyChecks": "database,database"},
        {},
        "readyChecks: 'database,database' is not a list of database, cache, broker",
    ),
    (
        {"staticRoot": "staticfiles"},
        {},
        "staticRoot: 'staticfiles' is not an absolute path in the image; expected e.g. /app/staticfiles",
    ),
    (
        {"mediaRoot": "/tmp/media"},
        {},
        "mediaRoot: /tmp/media is a system or runtime path; expected a directory of the app's",
    ),
    (
        {"mediaRoot": "/app/staticfiles/media"},
        {},
        "mediaRoot: /app/staticfiles/media and staticRoot /app/staticfiles overlap; expected two apart",
    ),
    ({"staticUrl": "/"}, {}, "staticUrl: '/' would hide the whole app; expected a path like /static/"),
    (
        {"mediaUrl": "/static/uploads/"},
        {},
        "mediaUrl: /static/uploads/ overlaps staticUrl /static/; expected separate paths",
    ),
    (
        {"migrateCommand": "python manage.py migrate --database 'main"},
        {},
        "migrateCommand: 'python manage.py migrate --database 'main' cannot be split into arguments "
        "(No closing quotation)",
    ),
    ({"appEnv": ["SENTRY_ENVIRONMENT"]}, {}, "appEnv[0]: 'SENTRY_ENVIRONMENT' is not NAME=value"),
    (
        {"appEnv": ["DATABASE_URL=sqlite:///x"]},
        {},
        "appEnv[0]: DATABASE_URL is set by the program; refer to it as ${DATABASE_URL} under another name",
    ),
    (
        {"appEnv": ["A=1", "KEY=${SECRET}"]},
        {},
        "appEnv[1]: KEY refers to ${SECRET}, which the program does not set; expected one of "
        + ", ".join(render.PROVIDED_ENV),
    ),
    (
        {"appEnv": ["PRICE=$5"]},
        {},
        "appEnv[0]: PRICE has a lone $; write $$ for a $, ${NAME} for a variable",
    ),
    ({"appEnv": ["A=1", "A=2"]}, {}, "appEnv: A is set twice"),
    ({"migrationMode": "yolo"}, {}, "migrationMode: 'yolo' is not one of gate, maintenance"),
    ({"migrationMode": ""}, {}, "migrationMode: empty is not one of gate, maintenance"),
    (
        {"migrationMode": "maintenance", "migrateCommand": ""},
        {},
        "migrationMode: maintenance, but migrateCommand is empty (no migration to wait for)",
    ),
    ({"maintenanceRetryAfter": "0"}, {}, "maintenanceRetryAfter: 0 is out of range; expected 1 to 3600"),
    ({"maintenanceRetryAfter": "soon"}, {}, "maintenanceRetryAfter: 'soon' is not a whole number; expected 1 to 3600"),
    ({"appEnv": "A=1"}, {}, 'appEnv: not a list of strings; expected e.g. ["NAME=value"]'),
    (
        {"appSecretEnv": "SENTRY_DSN=https://key@sentry.example/1"},
        {},
        "appSecretEnv: stored in plain text; set it with `pulumi config set --secret appSecretEnv`",
    ),
    (
        {},
        {"appSecretEnv": "DJANGO_SECRET_KEY=hunter2-not-shown"},
        "appSecretEnv: DJANGO_SECRET_KEY is set by the program; use another name",
    ),
    (
        {},
        {"appSecretEnv": "a line that is no assignment hunter2-not-shown"},
        "appSecretEnv: not dotenv lines NAME=value (one per line); set it with "
        "`pulumi config set --secret appSecretEnv < app.env`",
    ),
]


@pytest.mark.parametrize(
    "overrides, secrets, message", BAD_APP, ids=[f"{next(iter(o or s))}-{i}" for i, (o, s, _) in enumerate(BAD_APP)]
)
def test_a_wrong_app_key_is_one_line_naming_it_and_never_a_secret(tmp_path, overrides, secrets, message):
    project = make_project(tmp_path / "shop")
    (project / "Dockerfile.plain").write_text("FROM python:3.11.14-slim-bookworm\n")
    overrides = {k: v.replace("{project}", str(project)) if isinstance(v, str) else v for k, v in overrides.items()}

    with pytest.raises(PlanError) as error:
        plan_app(project, secrets=secrets or None, **overrides)

    assert str(error.value) == message.replace("{project}", str(project))
    assert "hunter2" not in str(error.value)


def test_every_app_problem_is_reported_in_one_run(tmp_path):
    project = make_project(tmp_path / "shop")

    with pytest.raises(PlanError) as error:
        plan_app(project, appServer="uwsgi", healthPath="health", appEnv=["X"], djangoSettingsModule="shop.nope")

    lines = str(error.value).splitlines()
    assert [line.split(":")[0] for line in lines] == ["appServer", "healthPath", "appEnv[0]", "djangoSettingsModule"]
