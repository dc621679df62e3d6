"""tools/compose_import.py: compose files -> Pulumi.<stack>.yaml, refusals in one line each."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from planning.harness import plan_stack
from tests.program_fixtures import dev_outputs, env_of
from tools import compose_app, compose_import
from tools.compose_import import Options, Translation, main, merge_files, run, translate

FIXTURES = Path(__file__).parent / "fixtures"
SEED = FIXTURES / "seed"
TEAM = FIXTURES / "team"
PROJECT_ROOT = Path(__file__).resolve().parents[2]
SEED_LESSON = PROJECT_ROOT.parent / "shared" / "seeds" / "000_383d617d54ff1a8a.txt"

# Every secret value the fixtures hold: none may ever be written or printed.
SECRET_VALUES = (
    "postgres:postgres@",
    "tutorial-db-pass-9f3k",
    "tutorial-secret-key-x8s7d6f5g4h3j2k1",
    "quickstart-pw-77",
    "hostnet-dev-secret-555",
    "abc123@o1.ingest.sentry.io",
    "team-db-pass-31x",
    "team-secret-key-q8w7e6r5t4y3",
    "f00d4a@o42.ingest.sentry.io",
    "sk_live_team_stripe_51",
    "tmp-secret-value-71",
)
# What the program's settings need of a project (tests that write compose files of their own):
# a Dockerfile that takes the runtime, the settings, application and Celery modules.
RUNTIME_DOCKERFILE = (
    "ARG DJANGO_DOCKER_RUNTIME=django-docker-runtime:1.0.0\n"
    "FROM ${DJANGO_DOCKER_RUNTIME} AS django-docker-runtime\n"
    "FROM python:3.11.14-slim-bookworm\n"
)


def project(root: Path, package: str = "config", dockerfile: str = RUNTIME_DOCKERFILE) -> Path:
    """A Django project as far as the settings check it: config.settings.production,
    config.wsgi, config.asgi, the Celery app config."""
    (root / package / "settings").mkdir(parents=True, exist_ok=True)
    for name in ("__init__.py", "settings/__init__.py", "settings/production.py", "wsgi.py", "asgi.py"):
        (root / package / name).write_text("")
    (root / "manage.py").write_text("")
    (root / "Dockerfile").write_text(dockerfile)
    return root


def importer(tmp_path, *files, stack="imported", **kwargs):
    outcome = run([FIXTURES / f for f in files], stack, out_dir=tmp_path, **kwargs)
    everything = "\n".join(outcome.stdout + outcome.stderr)
    if outcome.written:
        everything += outcome.written.read_text()
    for value in SECRET_VALUES:
        assert value not in everything
    return outcome


def translated(tmp_path: Path, services: dict, *, production: bool = False) -> Translation:
    """The translation of a compose file's services (no validation: what each key maps to)."""
    _, defaults = compose_import.project_defaults(PROJECT_ROOT)
    return translate({"services": services}, Options(production=production, base_dir=tmp_path), defaults)


def notes_of(t: Translation, path: str) -> list[str]:
    """The notes of one compose key, without the key."""
    return [note.removeprefix(f"{path}: ") for note in t.notes if note.startswith(f"{path}: ")]


def written(outcome) -> str:
    assert outcome.code == 0, outcome.stderr
    return outcome.written.read_text()


def plan_written(tmp_path, outcome, **kwargs):
    """The written file, planned by the program itself (Pulumi.yaml and __main__.py beside it)."""
    for name in ("Pulumi.yaml", "__main__.py"):
        (tmp_path / name).write_text((PROJECT_ROOT / name).read_text())
    return plan_stack(outcome.written.name.split(".")[1], root=tmp_path, **kwargs)


# --- the seed ---------------------------------------------------------------------------------


@pytest.mark.skipif(
    not SEED_LESSON.exists(), reason="the seed lesson lives beside this build environment's checkout only"
)
def test_seed_fixtures_are_the_seed_lessons_compose_blocks_verbatim():
    lesson = SEED_LESSON.read_text()
    for name in ("docker-compose.yml", "docker-compose.prod.yml"):
        header, body = (SEED / name).read_text().split("\n", 1)
        assert header.startswith("# Copied verbatim from ../shared/seeds/000_383d617d54ff1a8a.txt")
        assert f"```yaml\n{body}```" in lesson


SEED_DEV = """\
# Written by tools/compose_import.py from docker-compose.yml. Only what differs from Pulumi.yaml's defaults.
# Each value names the compose key it came from.
# Secrets (pulumi config set --secret ...), never copied from the compose files: postgresPassword.
config:
  django-docker:appContext: tests/tools/fixtures/seed  # services.web.build
  django-docker:appDockerfile: Dockerfile.django-docker  # services.web.build (Dockerfile.django-docker beside it)
  django-docker:appModule: myproject.wsgi:application  # services.web.build (Dockerfile CMD)
  django-docker:djangoSettingsModule: myproject.settings.production  # services.web.environment.DJANGO_SETTINGS_MODULE
  django-docker:celeryApp: myproject  # services.celery.command --app
  django-docker:postgresDb: myproject  # services.db.environment.POSTGRES_DB
  django-docker:postgresUser: postgres  # services.db.environment.POSTGRES_USER
  django-docker:httpPort: 80  # services.nginx.ports '80:80'
  django-docker:bindAddress: 0.0.0.0  # services.nginx.ports '80:80'
"""

SEED_PROD = """\
# Written by tools/compose_import.py from docker-compose.yml + docker-compose.prod.yml. Only what differs from Pulumi.yaml's defaults.
# Each value names the compose key it came from.
# Secrets (pulumi config set --secret ...), never copied from the compose files: postgresPassword, djangoSecretKey, appSecretEnv.
config:
  django-docker:appContext: tests/tools/fixtures/seed  # services.web.build
  django-docker:appDockerfile: Dockerfile.django-docker  # services.web.build (Dockerfile.django-docker beside it)
  django-docker:appModule: myproject.wsgi:application  # services.web.build (Dockerfile CMD)
  django-docker:djangoSettingsModule: myproject.settings.production  # services.web.environment.DJANGO_SETTINGS_MODULE
  django-docker:celeryApp: myproject  # services.celery.command --app
  django-docker:restartPolicy: always  # services.web.restart
  django-docker:webReplicas: 3  # services.web.deploy.replicas
  django-docker:healthcheckInterval: 30s  # services.web.healthcheck.interval
  django-docker:postgresDb: myproject  # services.db.environment.POSTGRES_DB
  django-docker:postgresUser: postgres  # services.db.environment.POSTGRES_USER
  django-docker:httpPort: 80  # services.nginx.ports '80:80'
  django-docker:bindAddress: 0.0.0.0  # services.nginx.ports '80:80'
"""


def test_seed_images_are_refused_unpinned_one_line_each(tmp_path):
    outcome = importer(tmp_path, "seed/docker-compose.yml", stack="dev")
    assert outcome.code == 2 and outcome.written is None and not list(tmp_path.iterdir())
    assert outcome.stderr == [
        "services.db.image: postgres:15 is not pinned to a patch release; the program needs postgres:15.x "
        "(e.g. postgres:15.14-bookworm), or pass --default-images",
        "services.redis.image: redis:7-alpine is not pinned to a patch release; the program needs redis:7.x.y "
        "(e.g. redis:7.4.5-bookworm), or pass --default-images",
        "services.nginx.image: nginx:alpine is not pinned to a patch release; the program needs nginx:1.x.y "
        "(e.g. nginx:1.28.0-bookworm), or pass --default-images",
        "compose_import: 3 compose key(s) refused; nothing written",
    ]


def test_seed_dev_from_docker_compose_yml_alone(tmp_path):
    outcome = importer(tmp_path, "seed/docker-compose.yml", stack="dev", default_images=True)
    assert written(outcome) == SEED_DEV
    assert outcome.stdout[0] == (
        "wrote Pulumi.dev.yaml from docker-compose.yml: appContext=tests/tools/fixtures/seed, "
        "appDockerfile=Dockerfile.django-docker, appModule=myproject.wsgi:application, "
        "djangoSettingsModule=myproject.settings.production, celeryApp=myproject, postgresDb=myproject, "
        "postgresUser=postgres, httpPort=80, bindAddress=0.0.0.0"
    )
    for line in (
        "note: services.web.ports: '8000:8000' not published: web replicas are reached only through nginx (httpPort)",
        "note: services.db.image: postgres:15 is not pinned; using the program's pinned postgres:15.14-bookworm "
        "(--default-images)",
        # The seed's own Dockerfile does not take the runtime; `make adopt` wrote one beside it.
        "note: services.web.build: Dockerfile does not take the runtime (no ARG DJANGO_DOCKER_RUNTIME); the program "
        "builds Dockerfile.django-docker, which `make adopt` wrote beside it",
        # The web service has no command: what it ran is its Dockerfile's CMD.
        "note: services.web.build: the web service has no command: its Dockerfile's CMD "
        "`gunicorn --bind 0.0.0.0:8000 myproject.wsgi:application` is read instead",
        "note: services.celery.command: not mapped: -l info (the program runs Celery at INFO; djangoLogLevel is "
        "Django's)",
        "note: services.celery.command: no --concurrency (Celery starts one process per CPU); the program runs "
        "celeryConcurrency 2",
        "  pulumi config set --secret --stack dev postgresPassword   # replaces services.db.environment.POSTGRES_PASSWORD",
    ):
        assert line in outcome.stdout
    summary = next(line for line in outcome.stdout if line.startswith("understood, no config"))
    for key in (
        "services.web.volumes",
        "services.web.depends_on",
        "services.nginx.volumes",
        "services.celery.command",
        "services.celery.build",
        "services.web.environment.DATABASE_URL",
    ):
        assert key in summary
    plan = plan_written(tmp_path, outcome)
    assert plan.config["django-docker:httpPort"] == "80"
    assert len(plan.containers("web")) == 2  # the program's default: compose said nothing
    (web,) = plan.containers("web")[:1]
    assert env_of(web)["APP_MODULE"] == "myproject.wsgi:application"
    assert env_of(web)["DJANGO_SETTINGS_MODULE"] == "myproject.settings.production"
    (worker,) = plan.containers("celery-worker")
    assert "--app myproject worker" in " ".join(worker.inputs["command"])


def test_seed_prod_from_both_files(tmp_path):
    outcome = importer(
        tmp_path, "seed/docker-compose.yml", "seed/docker-compose.prod.yml", stack="prod", default_images=True
    )
    assert written(outcome) == SEED_PROD
    assert outcome.stdout[-8:] == [
        "secrets: never copied; run these (each prompts for the value; unset, the program generates one):",
        "  pulumi config set --secret --stack prod postgresPassword   # replaces services.db.environment.POSTGRES_PASSWORD",
        "  pulumi config set --secret --stack prod djangoSecretKey   # replaces services.web.env_file",
        "the app's own secrets: never copied; one NAME=value line each in a file, then:",
        "  pulumi config set --secret --stack prod appSecretEnv < app.env   # the lines of .env.production "
        "(services.web.env_file) your app reads that the program does not set",
        "to serve HTTPS on httpsPort (needs both):",
        "  pulumi config set --secret --stack prod tlsCertificate < fullchain.pem",
        "  pulumi config set --secret --stack prod tlsKey < privkey.pem",
    ]
    assert any(line.startswith("note: services.web.env_file: .env.production not read") for line in outcome.stdout)
    assert (
        "note: services.web.image: 'myregistry.com/myproject:${TAG:-latest}' not used: the program builds "
        "appContext and tags it with the git SHA"
    ) in outcome.stdout
    plan = plan_written(tmp_path, outcome, secrets={"postgresPassword": "x" * 20, "djangoSecretKey": "y" * 50})
    assert len(plan.containers("web")) == 3


def test_seed_prod_promoting_a_dev_stacks_digest(tmp_path):
    outcome = importer(
        tmp_path,
        "seed/docker-compose.yml",
        "seed/docker-compose.prod.yml",
        stack="prod",
        default_images=True,
        image_source_stack="organization/django-docker/dev",
    )
    text = written(outcome)
    assert "  django-docker:imageSource: stack  # services.web.image\n" in text
    assert "  django-docker:imageSourceStack: organization/django-docker/dev  # --image-source-stack\n" in text
    # No build here, but what the image runs still names the app: the Dockerfile's CMD and the environment.
    assert "  django-docker:appModule: myproject.wsgi:application  # services.web.build (Dockerfile CMD)\n" in text
    assert "appContext" not in text
    assert (
        "note: services.web.build: not used: the program runs the digest organization/django-docker/dev exported "
        "(imageSource: stack); that stack builds it (its appContext)"
    ) in outcome.stdout
    plan_written(tmp_path, outcome, stack_references=dev_outputs())


# --- real-world files -------------------------------------------------------------------------

TUTORIAL = """\
# Written by tools/compose_import.py from docker-compose.yml. Only what differs from Pulumi.yaml's defaults.
# Each value names the compose key it came from.
# Secrets (pulumi config set --secret ...), never copied from the compose files: postgresPassword, djangoSecretKey.
config:
  django-docker:appContext: tests/tools/fixtures/tutorial  # services.app.build.context
  django-docker:appModule: shop.wsgi:application  # services.app.command
  django-docker:djangoSettingsModule: shop.settings.prod  # services.app.environment.DJANGO_SETTINGS_MODULE
  django-docker:celeryApp: shop  # services.worker.command --app
  django-docker:appEnv:
    - CELERY_BROKER_URL=redis://redis:6379/1  # services.app.environment.CELERY_BROKER_URL
    - DEBUG=0  # services.app.environment.DEBUG
  django-docker:webReplicas: 4  # services.app.scale
  django-docker:webMemory: 768M  # services.app.mem_limit
  django-docker:webConcurrency: 3  # services.app.command --workers
  django-docker:webTimeout: 60  # services.app.command --timeout
  django-docker:healthcheckInterval: 15s  # services.app.healthcheck.interval
  django-docker:healthcheckTimeout: 5s  # services.app.healthcheck.timeout
  django-docker:healthcheckRetries: 5  # services.app.healthcheck.retries
  django-docker:healthcheckStartPeriod: 1m0s  # services.app.healthcheck.start_period
  django-docker:celeryConcurrency: 4  # services.worker.command --concurrency
  django-docker:celeryMemory: 1G  # services.worker.mem_limit
  django-docker:celeryBeat: true  # services.worker.command --beat
  django-docker:postgresImage: postgres:15.6-alpine  # services.postgres.image
  django-docker:postgresDb: shopdb  # services.postgres.environment.POSTGRES_DB
  django-docker:postgresUser: shop  # services.postgres.environment.POSTGRES_USER
  django-docker:postgresMemory: 1G  # services.postgres.deploy.resources.limits.memory
  django-docker:redisImage: redis:7.2.4-alpine  # services.redis.image
  django-docker:redisMemory: 128M  # services.redis.mem_limit
  django-docker:nginxImage: nginx:1.25.4-alpine  # services.nginx.image
  django-docker:httpPort: 8000  # services.nginx.ports '127.0.0.1:8000:80'
  django-docker:serverName: shop.example.org  # services.app.environment.DJANGO_ALLOWED_HOSTS (first host)
  django-docker:djangoAllowedHosts: www.shop.example.org  # services.app.environment.DJANGO_ALLOWED_HOSTS (other hosts)
  django-docker:djangoLogLevel: WARNING  # services.app.environment.DJANGO_LOG_LEVEL
"""


def test_tutorial_list_environment_scale_and_commands(tmp_path):
    outcome = importer(tmp_path, "tutorial/docker-compose.yml")
    assert written(outcome) == TUTORIAL
    plan = plan_written(tmp_path, outcome, secrets={"postgresPassword": "x" * 20, "djangoSecretKey": "y" * 50})
    assert len(plan.containers("web")) == 4
    # The broker's own Redis database (1) stays apart from REDIS_URL's cache (0): Django's
    # cache.clear() would flush the queued tasks with it.
    assert env_of(plan.containers("web")[0])["CELERY_BROKER_URL"] == "redis://redis:6379/1"


def test_cookiecutter_production_is_refused_key_by_key(tmp_path):
    outcome = importer(tmp_path, "cookiecutter/production.yml")
    assert outcome.code == 2 and not list(tmp_path.iterdir())
    assert outcome.stderr == [
        "services.traefik: no role in this program (web, celery worker, celery beat, postgres, redis, nginx); "
        "the program runs only those: remove the service",
        "services.flower: no role in this program (web, celery worker, celery beat, postgres, redis, nginx); "
        "the program runs only those: remove the service",
        "services.awscli: no role in this program (web, celery worker, celery beat, postgres, redis, nginx); "
        "the program runs only those: remove the service",
        "services.postgres.build: the program runs the official postgres image (postgresImage); remove the build",
        "services.postgres.image: acme_shop_production_postgres is not the postgres image; the program runs postgres:15.x",
        "services.redis.image: docker.io/redis:6 is not redis 7.x; the program needs redis:7.x.y (a major upgrade is a migration)",
        "compose_import: 6 compose key(s) refused; nothing written",
    ]


def test_unpinned_latest_images_are_refused_even_with_default_images(tmp_path):
    outcome = importer(tmp_path, "unpinned/docker-compose.yml", default_images=True)
    assert outcome.code == 2
    assert outcome.stderr == [
        "services.db.image: postgres:latest is mutable (latest); the program needs postgres:15.x (pin a patch release)",
        "services.redis.image: redis is mutable (latest); the program needs redis:7.x.y (pin a patch release)",
        "compose_import: 2 compose key(s) refused; nothing written",
    ]


def test_host_network_and_privileges_in_a_production_override_are_refused(tmp_path):
    outcome = importer(tmp_path, "hostnet/docker-compose.yml", "hostnet/docker-compose.prod.yml")
    assert outcome.code == 2
    assert outcome.stderr == [
        "services.db.ports: the program never publishes PostgreSQL; remove it",
        "services.db.shm_size: the program keeps Docker's /dev/shm size; remove it",
        "services.db.volumes: './initdb:/docker-entrypoint-initdb.d' bind-mounts a host path into PostgreSQL; the "
        "program keeps its data in its own volume and runs no init scripts; remove it",
        "services.web.volumes: './src:/app/src' bind-mounts a host path; the program runs the built image and mounts "
        "nothing from the host; remove it",
        "services.web.network_mode: the program puts every container on its own frontend/backend networks; remove it",
        "services.web.privileged: the program runs no privileged container; remove it",
        "services.web.cap_add: the program adds no capabilities; remove it",
        "services.web.deploy.resources.limits.cpus: the program sets no CPU limits; remove it",
        "compose_import: 8 compose key(s) refused; nothing written",
    ]


def test_the_base_file_alone_notes_dev_conveniences(tmp_path):
    # The published database and the code bind mount are development conveniences: notes, not
    # refusals. The worker's queues are celeryQueues; the DSN, a secret, is for appSecretEnv.
    outcome = importer(tmp_path, "hostnet/docker-compose.yml", stack="dev")
    text = written(outcome)
    assert "  django-docker:celeryQueues: default,emails  # services.worker.command --queues\n" in text
    assert "  django-docker:appModule: config.wsgi  # services.web.command\n" in text
    assert (
        "note: services.db.ports: '5432:5432' not published: the program never publishes PostgreSQL (reach it with "
        "`make exec STACK=<stack> SERVICE=postgres`)" in outcome.stdout
    )
    assert (
        "note: services.web.volumes: './src:/app/src' not mounted: the program runs the built image, so a code "
        "change needs `pulumi up` (no live reload)"
    ) in outcome.stdout
    assert "httpPort=8000" in outcome.stdout[0]  # no nginx: web's published port becomes nginx's
    assert outcome.stdout[-3:] == [
        "  pulumi config set --secret --stack dev djangoSecretKey   # replaces services.web.environment.DJANGO_SECRET_KEY",
        "the app's own secrets: never copied; one NAME=value line each in a file, then:",
        "  pulumi config set --secret --stack dev appSecretEnv < app.env   # SENTRY_DSN "
        "(services.web.environment.SENTRY_DSN)",
    ]
    plan = plan_written(
        tmp_path,
        outcome,
        secrets={"djangoSecretKey": "y" * 50, "appSecretEnv": "SENTRY_DSN=https://k@sentry.example/1\n"},
    )
    (worker,) = plan.containers("celery-worker")
    assert worker.inputs["command"][-2:] == ["--queues", "default,emails"]


# --- settings validation, secrets, overwriting ---------------------------------------------------


def test_a_value_the_settings_refuse_is_refused_with_the_settings_line(tmp_path):
    compose = project(tmp_path) / "in.yml"
    compose.write_text("services:\n  web:\n    build: .\n    healthcheck:\n      interval: 1.5s\n")
    outcome = run([compose], "x", out_dir=tmp_path)
    assert outcome.code == 2 and not (tmp_path / "Pulumi.x.yaml").exists()
    assert outcome.stderr == [
        "services.web.healthcheck.interval: healthcheckInterval: '1.5s' is not valid; expected a duration like 30s or 1m30s",
        "compose_import: the program's settings refused the result; nothing written",
    ]


def test_every_problem_the_settings_find_is_one_line_after_its_compose_key(tmp_path):
    # No project where the build points, and a duration the program refuses: both, in one run.
    compose = tmp_path / "in.yml"
    compose.write_text("services:\n  web:\n    build: .\n    healthcheck:\n      interval: 1.5s\n")
    outcome = run([compose], "x", out_dir=tmp_path)
    assert outcome.stderr == [
        f"services.web.build: appDockerfile: {tmp_path}/Dockerfile does not exist",
        "services.web.healthcheck.interval: healthcheckInterval: '1.5s' is not valid; expected a duration like 30s or 1m30s",
        "compose_import: the program's settings refused the result; nothing written",
    ]


def test_force_is_needed_to_overwrite(tmp_path):
    existing = tmp_path / "Pulumi.dev.yaml"
    existing.write_text("config: {}\n")
    outcome = importer(tmp_path, "seed/docker-compose.yml", stack="dev", default_images=True)
    assert (outcome.code, outcome.stderr) == (2, ["Pulumi.dev.yaml: exists; pass --force to overwrite it"])
    assert existing.read_text() == "config: {}\n"
    outcome = importer(tmp_path, "seed/docker-compose.yml", stack="dev", default_images=True, force=True)
    assert existing.read_text() == SEED_DEV


def test_secrets_are_never_written_or_printed(tmp_path, capsys):
    code = main([str(FIXTURES / "tutorial/docker-compose.yml"), "--stack", "shop", "--out-dir", str(tmp_path)])
    captured = capsys.readouterr()
    text = (tmp_path / "Pulumi.shop.yaml").read_text()
    assert code == 0
    for value in SECRET_VALUES:
        assert value not in captured.out + captured.err + text
    assert not any(
        key in yaml.safe_load(text)["config"]
        for key in ("django-docker:postgresPassword", "django-docker:djangoSecretKey")
    )
    assert (
        "  pulumi config set --secret --stack shop djangoSecretKey   # replaces services.app.environment.DJANGO_SECRET_KEY"
        in captured.out
    )


def test_the_module_runs_from_the_command_line(tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "tools.compose_import",
            str(SEED / "docker-compose.yml"),
            "--stack",
            "dev",
            "--out-dir",
            str(tmp_path),
        ],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2
    assert result.stderr.splitlines()[0].startswith("services.db.image: postgres:15 is not pinned to a patch release")


# --- merging ------------------------------------------------------------------------------------


def test_merge_follows_composes_rules():
    base = {
        "services": {
            "web": {
                "command": ["gunicorn", "a"],
                "ports": ["8000:8000", "9000:9000"],
                "volumes": ["a:/data", "b:/static"],
                "environment": {"A": "1", "B": "2"},
                "depends_on": ["db"],
                "healthcheck": {"test": ["CMD", "x"], "interval": "5s"},
                "dns": ["1.1.1.1"],
            }
        }
    }
    override = {
        "services": {
            "web": {
                "command": "gunicorn b",
                "ports": ["8000:8000", "8080:80"],
                "volumes": ["c:/data"],
                "environment": {"B": "3"},
                "depends_on": {"redis": {"condition": "service_healthy"}},
                "healthcheck": {"test": ["CMD", "y"]},
                "dns": ["8.8.8.8"],
            },
            "db": {"image": "postgres:15.14"},
        }
    }
    web = merge_files([base, override])["services"]["web"]
    assert web["command"] == "gunicorn b"
    assert web["ports"] == ["8000:8000", "9000:9000", "8080:80"]
    assert web["volumes"] == ["c:/data", "b:/static"]
    assert web["environment"] == {"A": "1", "B": "3"}
    assert web["depends_on"] == {"db": {"condition": "service_started"}, "redis": {"condition": "service_healthy"}}
    assert web["healthcheck"] == {"test": ["CMD", "y"], "interval": "5s"}
    assert web["dns"] == ["1.1.1.1", "8.8.8.8"]


def test_list_environment_merges_by_name(tmp_path):
    project(tmp_path)
    (tmp_path / "a.yml").write_text(
        "services:\n  web:\n    build: .\n    environment:\n      - DJANGO_LOG_LEVEL=INFO\n"
    )
    (tmp_path / "b.yml").write_text("services:\n  web:\n    environment:\n      DJANGO_LOG_LEVEL: error\n")
    outcome = run([tmp_path / "a.yml", tmp_path / "b.yml"], "x", out_dir=tmp_path)
    assert "  django-docker:djangoLogLevel: ERROR  # services.web.environment.DJANGO_LOG_LEVEL\n" in written(outcome)


@pytest.mark.parametrize(
    "snippet, line",
    [
        (
            "  web:\n    build: .\n    environment:\n      DJANGO_ALLOWED_HOSTS: '*'\n",
            "services.web.environment.DJANGO_ALLOWED_HOSTS: '*' allows every host; the program needs the names (serverName, djangoAllowedHosts)",
        ),
        (
            "  web:\n    build: .\n    restart: 'no'\n",
            "services.web.restart: 'no' is not a policy the program has; restartPolicy is always, unless-stopped or on-failure",
        ),
        (
            "  web:\n    build: .\n  worker:\n    build: .\n    command: celery -A x worker\n    deploy:\n      replicas: 3\n",
            "services.worker.deploy.replicas: 3: the program runs one Celery worker container; raise celeryConcurrency instead",
        ),
        (
            "  web:\n    build: .\n    environment:\n      DATABASE_URL: postgres://u:p@rds.example.com:5432/app\n",
            "services.web.environment.DATABASE_URL: points at host 'rds.example.com', not the compose file's PostgreSQL service; "
            "the program runs its own PostgreSQL",
        ),
        (
            "  web:\n    build: .\n  db:\n    image: postgres:16.4\n",
            "services.db.image: postgres:16.4 is not postgres 15.x; the program needs postgres:15.x (a major upgrade is a migration)",
        ),
        (
            "  web:\n    build: .\n  db:\n    image: postgres:15-alpine\n",
            "services.db.image: postgres:15-alpine is not pinned to a patch release; the program needs postgres:15.x "
            "(e.g. postgres:15.14-bookworm); --default-images does not apply: postgres:15.14-bookworm is not the release line of '15-alpine'",
        ),
        (
            "  web:\n    build: .\n    ports:\n      - '8000'\n",
            "services.web.ports: '8000' publishes a random host port; the program needs one fixed host port (httpPort)",
        ),
        (
            "  web:\n    build: .\n    sysctls:\n      net.core.somaxconn: 1024\n",
            "services.web.sysctls: the program sets no sysctls; remove it",
        ),
        (
            "  web:\n    build: .\n    stop_grace_period: 1m\n    oom_score_adj: 10\n",
            "services.web.oom_score_adj: the program sets no OOM score; remove it",
        ),
        (
            "  web:\n    build: .\n    frobnicate: true\n",
            "services.web.frobnicate: not a key the importer knows; nothing in the program maps it",
        ),
    ],
)
def test_one_line_refusals(tmp_path, snippet, line):
    (tmp_path / "c.yml").write_text("services:\n" + snippet)
    outcome = run([tmp_path / "c.yml"], "x", out_dir=tmp_path, default_images=True)
    assert outcome.code == 2 and not (tmp_path / "Pulumi.x.yaml").exists()
    assert outcome.stderr[0] == line, outcome.stderr


def test_reset_tag_is_refused_not_a_traceback(tmp_path):
    (tmp_path / "c.yml").write_text("services:\n  web:\n    build: .\n    ports: !reset []\n")
    outcome = run([tmp_path / "c.yml"], "x", out_dir=tmp_path)
    assert outcome.stderr == [
        "c.yml:4: !reset is not supported by the importer; write the merged value",
        "compose_import: refused; nothing written",
    ]


def test_the_mapping_table_covers_the_keys_it_names():
    doc = compose_import.__doc__
    for key in (
        "webReplicas",
        "webMemory",
        "celeryMemory",
        "postgresImage",
        "httpPort",
        "bindAddress",
        "restartPolicy",
        "healthcheck*",
        "celeryConcurrency",
        "celeryBeat",
        "postgresDb",
        "djangoAllowedHosts",
        "appContext",
        "appDockerfile",
        "imageRepository",
        "appServer",
        "appModule",
        "appPort",
        "webThreads",
        "webMaxRequests",
        "webMaxRequestsJitter",
        "celeryApp",
        "celeryPool",
        "celeryQueues",
        "celeryMaxTasksPerChild",
        "migrateCommand",
        "collectstaticCommand",
        "djangoSettingsModule",
        "appEnv",
        "appSecretEnv",
    ):
        assert key in doc


# --- a team's compose files: a build beside them, gunicorn after migrate, Celery, its own variables ---

TEAM_PROD = """\
# Written by tools/compose_import.py from docker-compose.yml + docker-compose.prod.yml. Only what differs from Pulumi.yaml's defaults.
# Each value names the compose key it came from.
# Secrets (pulumi config set --secret ...), never copied from the compose files: postgresPassword, djangoSecretKey, appSecretEnv.
config:
  django-docker:imageRepository: acme/shop  # services.web.image
  django-docker:appContext: tests/tools/fixtures/team/shop  # services.web.build.context
  django-docker:appDockerfile: docker/Dockerfile  # services.web.build.dockerfile
  django-docker:appModule: shop.wsgi:application  # services.web.command
  django-docker:djangoSettingsModule: shop.settings.production  # services.web.environment.DJANGO_SETTINGS_MODULE
  django-docker:celeryApp: shop  # services.worker.command --app
  django-docker:appEnv:
    - CELERY_BROKER_URL=redis://redis:6379/1  # services.web.environment.CELERY_BROKER_URL
    - SECRET_KEY=${DJANGO_SECRET_KEY}  # services.web.environment.SECRET_KEY
    - ALLOWED_HOSTS=${DJANGO_ALLOWED_HOSTS}  # services.web.environment.ALLOWED_HOSTS
    - SENTRY_ENVIRONMENT=production  # services.web.environment.SENTRY_ENVIRONMENT
    - PYTHONUNBUFFERED=1  # services.web.environment.PYTHONUNBUFFERED
    - DEBUG=False  # services.web.environment.DEBUG
    - SHOP_PAYMENTS_MODE=live  # services.web.environment.SHOP_PAYMENTS_MODE
  django-docker:restartPolicy: always  # services.nginx.restart
  django-docker:webReplicas: 3  # services.web.deploy.replicas
  django-docker:webMemory: 1G  # services.web.deploy.resources.limits.memory
  django-docker:webConcurrency: 4  # services.web.command --workers
  django-docker:webThreads: 4  # services.web.command --threads
  django-docker:webTimeout: 60  # services.web.command --timeout
  django-docker:celeryMaxTasksPerChild: 200  # services.worker.command --max-tasks-per-child
  django-docker:celeryQueues: default,emails  # services.worker.command --queues
  django-docker:celeryMemory: 1G  # services.worker.mem_limit
  django-docker:celeryBeat: true  # services.beat
  django-docker:postgresImage: postgres:15.8-bookworm  # services.db.image
  django-docker:postgresDb: shop  # services.db.environment.POSTGRES_DB
  django-docker:postgresUser: shop  # services.db.environment.POSTGRES_USER
  django-docker:redisImage: redis:7.4.1-bookworm  # services.redis.image
  django-docker:nginxImage: nginx:1.27.3-bookworm  # services.nginx.image
  django-docker:httpPort: 80  # services.nginx.ports '80:80'
  django-docker:bindAddress: 0.0.0.0  # services.nginx.ports '80:80'
  django-docker:serverName: shop.example.com  # services.web.environment.ALLOWED_HOSTS (first host)
  django-docker:djangoAllowedHosts: www.shop.example.com  # services.web.environment.ALLOWED_HOSTS (other hosts)
"""

TEAM_NOTES = [
    "note: services.web.command: `python manage.py migrate --noinput` runs as the release's migrate job "
    "(migrateCommand), once per release before web and Celery change, not at every start",
    "note: services.web.command: `python manage.py collectstatic --noinput` runs as the release's collectstatic job "
    "(collectstaticCommand), once per release before web and Celery change, not at every start",
    "note: services.web.command: not mapped: --access-logfile - (the runtime's config logs access and errors to "
    "stdout/stderr, for the engine to collect)",
    "note: services.web.command: not mapped: --keep-alive 5 (the runtime's config keeps connections alive 5 s: "
    "nginx reuses its upstream connections)",
    "note: services.worker.command: not mapped: -l INFO (the program runs Celery at INFO; djangoLogLevel is Django's)",
    "note: services.worker.command: mapped as nothing: -O fair (fair scheduling is Celery's default since 4.0)",
    "note: services.worker.command: not mapped: --autoscale 8,2 (the program runs a fixed celeryConcurrency under "
    "celeryMemory's limit, which an autoscaled pool could outgrow; set celeryConcurrency to the processes you want)",
    "note: services.worker.command: no --concurrency beside --autoscale; the program runs celeryConcurrency 2",
    "note: services.beat.command: not mapped: -l INFO (the program runs Celery at INFO; djangoLogLevel is Django's)",
    "note: services.beat.command: not mapped: --scheduler django_celery_beat.schedulers:DatabaseScheduler (the "
    "program's beat passes no --scheduler, so Celery takes the app's beat_scheduler setting: set it to "
    "'django_celery_beat.schedulers:DatabaseScheduler' in the app's Celery configuration, CELERY_BEAT_SCHEDULER in "
    "Django settings read with namespace='CELERY')",
    "note: services.web.build.target: 'production' is docker/Dockerfile's last stage, the one the program builds "
    "(it passes no target)",
    # PYTHON_VERSION is the Dockerfile's default already: nothing to say.
    "note: services.web.build.args: not mapped: GIT_COMMIT, PIP_INDEX_URL (the program's build passes only its own "
    "GIT_SHA and DJANGO_DOCKER_RUNTIME: give each ARG its value as a default in the Dockerfile; GIT_COMMIT: the "
    "program passes the commit as GIT_SHA)",
    "note: services.web.image: ':latest' not used: the program tags the image with the git SHA",
    "note: restartPolicy: applies to every container, also services.db, services.redis (no restart: there)",
]


def test_a_teams_compose_files_beside_their_project(tmp_path):
    outcome = importer(tmp_path, "team/deploy/docker-compose.yml", "team/deploy/docker-compose.prod.yml", stack="shop")
    assert written(outcome) == TEAM_PROD
    assert [line for line in outcome.stdout if line.startswith("note: ")] == TEAM_NOTES
    assert outcome.stdout[-8:-3] == [
        "secrets: never copied; run these (each prompts for the value; unset, the program generates one):",
        "  pulumi config set --secret --stack shop postgresPassword   # replaces services.db.environment.POSTGRES_PASSWORD",
        "  pulumi config set --secret --stack shop djangoSecretKey   # replaces services.web.environment.SECRET_KEY",
        "the app's own secrets: never copied; one NAME=value line each in a file, then:",
        "  pulumi config set --secret --stack shop appSecretEnv < app.env   # SENTRY_DSN "
        "(services.web.environment.SENTRY_DSN); STRIPE_API_KEY (services.web.environment.STRIPE_API_KEY)",
    ]
    summary = next(line for line in outcome.stdout if line.startswith("understood, no config"))
    for key in ("services.worker.build", "services.beat.build", "services.worker.image", "services.beat.image"):
        assert key in summary  # the same build and image as the web service's

    secrets = {
        "postgresPassword": "p" * 20,
        "djangoSecretKey": "k" * 50,
        "appSecretEnv": "SENTRY_DSN=https://key@sentry.example/1\nSTRIPE_API_KEY=sk_test_x\n",
    }
    plan = plan_written(tmp_path, outcome, secrets=secrets)
    web = plan.containers("web")
    assert len(web) == 3
    command = web[0].inputs["command"]
    for words in (["--workers", "4"], ["--threads", "4"], ["--timeout", "60"], ["--max-requests", "1000"]):
        assert " ".join(words) in " ".join(command)
    env = env_of(web[0])
    assert env["APP_MODULE"] == "shop.wsgi:application"
    assert env["SECRET_KEY"] == env["DJANGO_SECRET_KEY"] == "k" * 50  # the app's own name for the program's
    assert env["ALLOWED_HOSTS"] == "shop.example.com,www.shop.example.com"
    assert env["SHOP_PAYMENTS_MODE"] == "live" and env["STRIPE_API_KEY"] == "sk_test_x"
    (worker,) = plan.containers("celery-worker")
    assert " ".join(worker.inputs["command"]).endswith(
        "--app shop worker --loglevel INFO --concurrency 2 --max-tasks-per-child 200 --queues default,emails"
    )
    assert len(plan.containers("celery-beat")) == 1


# --- the build: context, Dockerfile, target, args, image ------------------------------------------


def compose_file(directory: Path, text: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "docker-compose.yml").write_text(text)
    return directory / "docker-compose.yml"


def test_a_context_is_relative_to_the_first_compose_file_and_written_relative_to_the_program(tmp_path):
    project(tmp_path / "shop")
    base = compose_file(
        tmp_path / "deploy", "services:\n  web:\n    build: ../shop\n    command: gunicorn config.wsgi\n"
    )
    (tmp_path / "deploy" / "prod").mkdir()
    (tmp_path / "deploy" / "prod" / "override.yml").write_text("services:\n  web:\n    scale: 3\n")
    outcome = run([base, tmp_path / "deploy" / "prod" / "override.yml"], "x", out_dir=tmp_path)
    text = written(outcome)
    expected = os.path.relpath(tmp_path / "shop", PROJECT_ROOT)
    assert f"  django-docker:appContext: {expected}  # services.web.build\n" in text


def test_a_context_that_does_not_exist_is_refused_naming_its_compose_key(tmp_path):
    compose = compose_file(
        tmp_path,
        "services:\n  web:\n    build:\n      context: ../nowhere\n      dockerfile: docker/Dockerfile\n"
        "    command: gunicorn config.wsgi\n",
    )
    outcome = run([compose], "x", out_dir=tmp_path)
    assert outcome.code == 2 and not (tmp_path / "Pulumi.x.yaml").exists()
    assert outcome.stderr == [
        f"services.web.build.context: appContext: {tmp_path.parent / 'nowhere'} is not a directory",
        "compose_import: the program's settings refused the result; nothing written",
    ]


def test_a_dockerfile_without_the_runtime_is_refused_naming_its_compose_key(tmp_path):
    project(tmp_path, dockerfile="FROM python:3.11.14-slim-bookworm\n")
    compose = compose_file(tmp_path, "services:\n  web:\n    build: .\n    command: gunicorn config.wsgi\n")
    outcome = run([compose], "x", out_dir=tmp_path)
    assert outcome.stderr == [
        f"services.web.build: appDockerfile: {tmp_path}/Dockerfile does not take the runtime (no `ARG "
        "DJANGO_DOCKER_RUNTIME`); add the lines in docs/adopt.md, or let `make adopt` write one",
        "compose_import: the program's settings refused the result; nothing written",
    ]


def test_modules_the_compose_files_do_not_name_are_refused_as_pulumi_yamls_defaults(tmp_path):
    project(tmp_path, package="shop")  # shop/, not config/: the default settings module is not there
    compose = compose_file(tmp_path, "services:\n  web:\n    build: .\n    command: gunicorn shop.wsgi\n")
    outcome = run([compose], "x", out_dir=tmp_path)
    assert outcome.stderr == [
        f"djangoSettingsModule: config.settings.production is not a module of {tmp_path} (no "
        "config/settings/production.py) (Pulumi.yaml's default: the compose files do not set djangoSettingsModule)",
        "compose_import: the program's settings refused the result; nothing written",
    ]


@pytest.mark.parametrize(
    "build, lines",
    [
        (
            "{context: 'https://github.com/acme/shop.git#main'}",
            [
                "services.web.build.context: 'https://github.com/acme/shop.git#main' is a remote context; the "
                "program builds a directory (appContext)"
            ],
        ),
        (
            "{context: '${APP_DIR}'}",
            [
                "services.web.build.context: needs variable interpolation; the importer reads no environment: "
                "write the path"
            ],
        ),
        (
            "{context: ., ssh: [default], secrets: [pip], dockerfile_inline: 'FROM x', frobnicate: 1}",
            [
                "services.web.build.ssh: the program's build forwards no SSH agent; fetch private dependencies "
                "before the build",
                "services.web.build.secrets: the program's build mounts no build secrets; fetch private "
                "dependencies before the build",
                "services.web.build.dockerfile_inline: the program builds from a Dockerfile in the context "
                "(appDockerfile); write it to a file",
                "services.web.build.frobnicate: not a build key the importer knows; nothing in the program maps it",
            ],
        ),
    ],
)
def test_builds_the_program_cannot_do_are_refused(tmp_path, build, lines):
    t = translated(tmp_path, yaml.safe_load(f"web: {{build: {build}, command: gunicorn x.wsgi}}"))
    assert t.refusals == lines


def test_a_web_service_without_a_build_is_refused(tmp_path):
    t = translated(tmp_path, {"web": {"image": "ghcr.io/acme/shop:1.4", "command": "gunicorn x.wsgi"}})
    assert t.refusals == [
        "services.web.image: 'ghcr.io/acme/shop:1.4' is an image built elsewhere; the program builds the app's image "
        "itself, from its source with the runtime (appContext): add a build: (the project's directory), or pass "
        "--image-source-stack to run a stack's digest"
    ]


def test_web_worker_and_beat_build_one_image(tmp_path):
    t = translated(
        tmp_path,
        {
            "web": {"build": {"context": ".", "target": "prod"}, "command": "gunicorn x.wsgi"},
            "worker": {"build": {"context": ".", "target": "dev"}, "command": "celery -A x worker -c 1"},
            "beat": {"build": {"context": "other"}, "command": "celery -A x beat"},
        },
    )
    assert t.refusals == [
        "services.worker.build: builds other args or another target than services.web.build; the program builds "
        "one image for web, worker and beat",
        f"services.beat.build.context: '{os.path.relpath(tmp_path / 'other', PROJECT_ROOT)}' differs from "
        f"services.web.build.context '{os.path.relpath(tmp_path, PROJECT_ROOT)}'; the program has one appContext",
        "services.beat.build: builds other args or another target than services.web.build; the program builds "
        "one image for web, worker and beat",
    ]


STAGED_DOCKERFILE = RUNTIME_DOCKERFILE + (
    "ARG PIP_INDEX_URL=https://pypi.org/simple\n"
    "FROM python:3.11.14-slim-bookworm AS base\n"
    "ENV DJANGO_SETTINGS_MODULE=config.settings.production\n"
    "FROM base AS production\n"
    "ARG NODE_ENV=production\n"
    'CMD ["gunicorn", "config.wsgi:application", "-w", "3"]\n'
)


@pytest.mark.parametrize(
    "build, notes, refusals",
    [
        (
            {"context": ".", "target": "production"},
            [
                "services.web.build.target: 'production' is Dockerfile's last stage, the one the program builds (it "
                "passes no target)"
            ],
            [],
        ),
        (
            {"context": ".", "target": "base"},
            [],
            [
                "services.web.build.target: 'base' is not Dockerfile's last stage ('production'); the program builds "
                "the last stage (it passes no target): put that stage last, or build from a Dockerfile whose last "
                "stage it is"
            ],
        ),
        ({"context": ".", "target": "dev"}, [], ["services.web.build.target: 'dev' is not a stage of Dockerfile"]),
        (
            {
                "context": ".",
                "args": {
                    "GIT_SHA": "${GIT_SHA}",
                    "NODE_ENV": "production",
                    "PIP_INDEX_URL": "https://pypi.internal/simple",
                    "VCS_REF": "x",
                },
            },
            [
                "services.web.build.args: GIT_SHA (the commit): the program passes its own",
                "services.web.build.args: not mapped: PIP_INDEX_URL, VCS_REF (the program's build passes only its own "
                "GIT_SHA and DJANGO_DOCKER_RUNTIME: give each ARG its value as a default in the Dockerfile; VCS_REF: "
                "the program passes the commit as GIT_SHA)",
            ],
            [],
        ),
        (
            {"context": ".", "args": ["NODE_ENV=production", "EXTRA"]},
            [
                "services.web.build.args: not mapped: EXTRA (the program's build passes only its own GIT_SHA and "
                "DJANGO_DOCKER_RUNTIME: give each ARG its value as a default in the Dockerfile)"
            ],
            [],
        ),
        (
            {"context": ".", "cache_from": ["shop:cache"], "platforms": ["linux/arm64"]},
            [
                "services.web.build.cache_from: not mapped (the program's build uses the Docker host's own cache)",
                "services.web.build.platforms: not mapped (the program builds for the Docker host's platform)",
            ],
            [],
        ),
    ],
)
def test_target_and_args_against_the_dockerfile(tmp_path, build, notes, refusals):
    project(tmp_path, dockerfile=STAGED_DOCKERFILE)
    t = translated(tmp_path, {"web": {"build": build, "command": "gunicorn config.wsgi"}})
    assert [n for n in t.notes if n.startswith("services.web.build")] == notes
    assert t.refusals == refusals


def test_without_a_command_the_dockerfile_names_the_app(tmp_path):
    project(tmp_path, dockerfile=STAGED_DOCKERFILE)
    t = translated(tmp_path, {"web": {"build": "."}})
    assert notes_of(t, "services.web.build") == [
        "the web service has no command: its Dockerfile's CMD `gunicorn config.wsgi:application -w 3` is read instead"
    ]
    assert (t.values["appModule"], t.sources["appModule"]) == (
        "config.wsgi:application",
        "services.web.build (Dockerfile CMD)",
    )
    assert (t.values["webConcurrency"], t.sources["webConcurrency"]) == (
        3,
        "services.web.build (Dockerfile CMD) --workers",
    )
    assert (t.values["djangoSettingsModule"], t.sources["djangoSettingsModule"]) == (
        "config.settings.production",
        "services.web.build (Dockerfile ENV DJANGO_SETTINGS_MODULE)",
    )
    # The compose file's own command and environment win over the image's, as they do in Compose.
    t = translated(
        tmp_path,
        {
            "web": {
                "build": ".",
                "command": "gunicorn config.asgi -w 5",
                "environment": {"DJANGO_SETTINGS_MODULE": "x.y"},
            }
        },
    )
    assert (t.values["appModule"], t.values["webConcurrency"], t.values["djangoSettingsModule"]) == (
        "config.asgi",
        5,
        "x.y",
    )


@pytest.mark.parametrize(
    "entrypoint, line",
    [
        (
            '["/entrypoint.sh"]',
            "note: services.web.build: the Dockerfile's ENTRYPOINT `/entrypoint.sh` runs before each command the "
            'program gives (web, worker, beat, the release jobs): it must end by running them (exec "$@")',
        ),
        (
            '["gunicorn", "--bind", "0.0.0.0:8000"]',
            "refuse: services.web.build: the Dockerfile's ENTRYPOINT `gunicorn --bind 0.0.0.0:8000` starts gunicorn "
            "itself, so every command the program gives (web, worker, beat, the release jobs) would become its "
            "arguments; make it CMD",
        ),
    ],
)
def test_the_dockerfiles_entrypoint_runs_the_programs_commands(tmp_path, entrypoint, line):
    project(tmp_path, dockerfile=RUNTIME_DOCKERFILE + f"ENTRYPOINT {entrypoint}\n")
    t = translated(tmp_path, {"web": {"build": ".", "command": "gunicorn config.wsgi"}})
    kind, _, text = line.partition(": ")
    assert text in (t.notes if kind == "note" else t.refusals)


@pytest.mark.parametrize(
    "image, key, notes",
    [
        ("shop", {"imageRepository": "shop"}, []),
        (
            "acme/shop:1.2",
            {"imageRepository": "acme/shop"},
            ["':1.2' not used: the program tags the image with the git SHA"],
        ),
        (
            "ghcr.io/acme/shop:1.2",
            {},
            [
                "'ghcr.io/acme/shop:1.2' not used: to push to ghcr.io/acme, set imageRegistry ghcr.io/acme and "
                "imageRepository shop with imageRegistryUsername and imageRegistryPassword (the program tags with "
                "the git SHA)"
            ],
        ),
        (
            "localhost:5000/shop",
            {},
            [
                "'localhost:5000/shop' not used: to push to localhost:5000, set imageRegistry localhost:5000 and "
                "imageRepository shop with imageRegistryUsername and imageRegistryPassword (the program tags with the "
                "git SHA)"
            ],
        ),
        ("${IMAGE}", {}, ["'${IMAGE}' not used: the program builds appContext and tags it with the git SHA"]),
        (
            "shop@sha256:" + "a" * 64,
            {},
            [f"'shop@sha256:{'a' * 64}' not used: the program builds appContext and tags it with the git SHA"],
        ),
    ],
)
def test_the_web_image_beside_a_build_names_the_repository(tmp_path, image, key, notes):
    t = translated(
        tmp_path,
        {
            "web": {"build": ".", "image": image, "command": "gunicorn x.wsgi"},
            "worker": {"image": image, "command": "celery -A x worker -c 1"},
        },
    )
    assert {k: t.values[k] for k in key} == key and ("imageRepository" in t.values) == bool(key)
    assert notes_of(t, "services.web.image") == notes
    assert "services.worker.image" in t.understood  # the web service's image: the same one


def test_another_image_on_the_worker_is_noted(tmp_path):
    t = translated(
        tmp_path,
        {
            "web": {"build": ".", "command": "gunicorn x.wsgi"},
            "worker": {"image": "other:1", "command": "celery -A x worker -c 1"},
        },
    )
    assert notes_of(t, "services.worker.image") == [
        "'other:1' not used: every app container runs the one image the program builds"
    ]


# --- gunicorn, uvicorn, daphne: every option mapped or named ------------------------------------

WEB = "services.web.command"


@pytest.mark.parametrize(
    "command, values, notes",
    [
        ("gunicorn proj.wsgi:application -w 3", {"webConcurrency": 3, "appModule": "proj.wsgi:application"}, []),
        ("gunicorn --workers=3 proj.wsgi", {"webConcurrency": 3, "appModule": "proj.wsgi"}, []),
        ("gunicorn -w3 proj.wsgi", {"webConcurrency": 3}, []),
        ("python -m gunicorn --workers 3 proj.wsgi", {"webConcurrency": 3}, []),
        ("python3.11 -m gunicorn proj.wsgi --thr 6", {"webThreads": 6}, []),  # argparse takes a unique prefix
        ("gunicorn proj.wsgi --threads 4", {"webThreads": 4}, []),
        ("gunicorn proj.wsgi -t 90", {"webTimeout": 90}, []),
        ("gunicorn proj.wsgi --timeout=90", {"webTimeout": 90}, []),
        (
            "gunicorn proj.wsgi --max-requests 500 --max-requests-jitter=50",
            {"webMaxRequests": 500, "webMaxRequestsJitter": 50},
            [],
        ),
        ("gunicorn -k uvicorn_worker.UvicornWorker proj.asgi:application", {"appServer": "asgi"}, []),
        (
            "gunicorn --worker-class=uvicorn.workers.UvicornWorker proj.asgi:application",
            {"appServer": "asgi", "appModule": "proj.asgi:application"},
            [
                "--worker-class uvicorn.workers.UvicornWorker: uvicorn.workers.UvicornWorker is deprecated in favour "
                "of uvicorn-worker's; the program runs uvicorn_worker.UvicornWorker, which the image must install "
                "(uvicorn-worker)"
            ],
        ),
        (
            "gunicorn -k uvicorn_worker.UvicornWorker --threads 8 proj.asgi",
            {"appServer": "asgi"},
            ["not mapped: --threads 8 (an asgi worker runs one event loop; webThreads is for wsgi)"],
        ),
        ("gunicorn -k gthread --threads 4 proj.wsgi", {"appServer": "wsgi", "webThreads": 4}, []),
        (
            "gunicorn -k gthread proj.wsgi",
            {"appServer": "wsgi"},
            [
                "--worker-class gthread with one thread: the program runs gunicorn's sync worker (webThreads 1); "
                "webThreads above 1 runs gthread"
            ],
        ),
        ("gunicorn --bind 0.0.0.0:9000 proj.wsgi", {"appPort": 9000}, []),
        ("gunicorn -b :9000 proj.wsgi", {"appPort": 9000}, []),
        ("gunicorn -b [::]:9000 proj.wsgi", {"appPort": 9000}, []),
        (
            "gunicorn -b 127.0.0.1:8000 proj.wsgi",
            {"appPort": 8000},
            [
                "'127.0.0.1:8000': the program binds 0.0.0.0, so nginx reaches each replica over the frontend "
                "network (loopback would refuse it)"
            ],
        ),
        (
            "gunicorn --graceful-timeout 30 proj.wsgi",
            {},
            ["not mapped: --graceful-timeout 30 (the program sets the graceful timeout to webTimeout)"],
        ),
        (
            "gunicorn --keep-alive 5 proj.wsgi",
            {},
            [
                "not mapped: --keep-alive 5 (the runtime's config keeps connections alive 5 s: nginx reuses its "
                "upstream connections)"
            ],
        ),
        ("gunicorn --log-level debug proj.wsgi", {"djangoLogLevel": "DEBUG"}, []),
        (
            "gunicorn --access-logfile - --error-logfile=- proj.wsgi",
            {},
            [
                "not mapped: --access-logfile - (the runtime's config logs access and errors to stdout/stderr, for "
                "the engine to collect)",
                "not mapped: --error-logfile=- (the runtime's config logs access and errors to stdout/stderr, for the "
                "engine to collect)",
            ],
        ),
        (
            "gunicorn --preload proj.wsgi",
            {},
            [
                "not mapped: --preload (the runtime's config always preloads the app (an app that cannot import never listens))"
            ],
        ),
        (
            "gunicorn --worker-tmp-dir /dev/shm proj.wsgi",
            {},
            [
                "not mapped: --worker-tmp-dir /dev/shm (the runtime's config keeps worker heartbeats in /dev/shm (tmpfs))"
            ],
        ),
        (
            "gunicorn --forwarded-allow-ips=* proj.wsgi",
            {},
            [
                "not mapped: --forwarded-allow-ips=* (the program trusts X-Forwarded-* from the frontend network "
                "only (frontendSubnet))"
            ],
        ),
        (
            "gunicorn -c gunicorn.conf.py proj.wsgi",
            {},
            [
                "not mapped: -c gunicorn.conf.py (the program runs gunicorn with the runtime's config, "
                "python:django_docker_runtime.gunicorn_conf; write that file's settings as options of this command "
                "to have them mapped)"
            ],
        ),
        (
            "gunicorn --config=python:proj.gunicorn proj.wsgi",
            {},
            [
                "not mapped: --config=python:proj.gunicorn (the program runs gunicorn with the runtime's config, "
                "python:django_docker_runtime.gunicorn_conf; write that file's settings as options of this command "
                "to have them mapped)"
            ],
        ),
        (
            "gunicorn --reload --certfile c.pem proj.wsgi",
            {},
            [
                "not mapped: --reload (a development setting: the program runs the built image (no live reload))",
                "not mapped: --certfile c.pem (nginx terminates TLS (tlsCertificate, tlsKey); the app serves plain "
                "HTTP on the frontend network)",
            ],
        ),
        ("gunicorn -e FEATURE_X=on proj.wsgi", {"appEnv": ["FEATURE_X=on"]}, []),
        (
            "uvicorn proj.asgi:application --host 0.0.0.0 --port 8001 --workers 4",
            {"appServer": "asgi", "appModule": "proj.asgi:application", "appPort": 8001, "webConcurrency": 4},
            [
                "uvicorn: the program runs the app with gunicorn and uvicorn-worker's UvicornWorker (appServer asgi), "
                "which the image must install (uvicorn-worker)"
            ],
        ),
        (
            "python -m uvicorn proj.asgi:app --reload --limit-max-requests 800 --proxy-headers",
            {"appServer": "asgi", "webMaxRequests": 800},
            [
                "uvicorn: the program runs the app with gunicorn and uvicorn-worker's UvicornWorker (appServer asgi), "
                "which the image must install (uvicorn-worker)",
                "not mapped: --reload (a development setting: the program runs the built image (no live reload))",
                "not mapped: --proxy-headers (the program trusts X-Forwarded-* from the frontend network only "
                "(frontendSubnet))",
            ],
        ),
        (
            "daphne -b 0.0.0.0 -p 8002 proj.asgi:application",
            {"appServer": "asgi", "appModule": "proj.asgi:application", "appPort": 8002},
            [
                "daphne: the program runs the app with gunicorn and uvicorn-worker's UvicornWorker (appServer asgi) "
                "instead of daphne, which the image must install (uvicorn-worker; websockets need uvicorn's websockets "
                "package)"
            ],
        ),
        (
            "python manage.py runserver 0.0.0.0:8000",
            {},
            [
                "manage.py runserver is a development server; the program runs gunicorn (webConcurrency workers) "
                "serving appModule"
            ],
        ),
        (
            "/start",
            {},
            [
                "`/start` runs no server the importer reads (gunicorn, uvicorn, daphne); the program runs gunicorn serving appModule"
            ],
        ),
    ],
)
def test_web_command_options(tmp_path, command, values, notes):
    t = translated(tmp_path, {"web": {"build": ".", "command": command}})
    assert t.refusals == []
    assert {k: t.values[k] for k in values} == values
    assert notes_of(t, WEB) == notes


@pytest.mark.parametrize(
    "command, refusal",
    [
        (
            "gunicorn -k gevent proj.wsgi",
            "services.web.command --worker-class: gevent needs its own event loop library and a monkey-patched app; the "
            "program runs gunicorn's sync or gthread worker (appServer wsgi, webThreads) or uvicorn-worker's "
            "UvicornWorker (appServer asgi)",
        ),
        (
            "gunicorn -k eventlet proj.wsgi",
            "services.web.command --worker-class: eventlet needs its own event loop library and a monkey-patched app; "
            "the program runs gunicorn's sync or gthread worker (appServer wsgi, webThreads) or uvicorn-worker's "
            "UvicornWorker (appServer asgi)",
        ),
        (
            "gunicorn -b unix:/run/gunicorn.sock proj.wsgi",
            "services.web.command --bind: 'unix:/run/gunicorn.sock': nginx reaches the app over TCP on appPort; bind "
            "host:port instead",
        ),
        (
            "gunicorn -b 0.0.0.0:8000 -b 0.0.0.0:8001 proj.wsgi",
            "services.web.command --bind: '0.0.0.0:8000, 0.0.0.0:8001' listens on several ports; the app has one, appPort",
        ),
        (
            "gunicorn -b 0.0.0.0:$PORT proj.wsgi",
            "services.web.command --bind: '$PORT' needs variable interpolation; the importer reads no environment: "
            "write the port",
        ),
        (
            "gunicorn --daemon proj.wsgi",
            "services.web.command --daemon: a daemonized server leaves the container's main process, which ends the "
            "container; remove it",
        ),
        (
            "gunicorn --check-config proj.wsgi",
            "services.web.command --check-config: the command would not serve; remove it",
        ),
        (
            "gunicorn 'proj.app:create_app()'",
            "services.web.command: 'proj.app:create_app()' calls an application factory; the runtime serves "
            "APP_MODULE as module:attribute: make the application a module attribute",
        ),
        (
            "gunicorn proj.wsgi other.wsgi",
            "services.web.command: `proj.wsgi other.wsgi`: gunicorn serves one application (appModule); remove the rest",
        ),
        ("gunicorn --frobnicate 1 proj.wsgi", "services.web.command: --frobnicate is not an option of gunicorn 27"),
        (
            "gunicorn --work 4 proj.wsgi",
            "services.web.command: --work is ambiguous for gunicorn 27 (--worker-class, --worker-connections, "
            "--worker-tmp-dir, --workers)",
        ),
        ("gunicorn -w proj.wsgi", "services.web.command --workers: 'proj.wsgi' is not a whole number (webConcurrency)"),
        (
            "uvicorn proj.asgi:app --uds /tmp/u.sock",
            "services.web.command --uds: nginx reaches the app over TCP on appPort; remove it",
        ),
        (
            "uvicorn proj.app:create_app --factory",
            "services.web.command --factory: the runtime serves APP_MODULE as module:attribute, not a factory: make "
            "the application a module attribute",
        ),
        (
            "gunicorn proj.wsgi & uvicorn proj.asgi:app",
            "services.web.command: runs 2 servers; the program runs one per container",
        ),
    ],
)
def test_web_commands_the_program_cannot_run_are_refused(tmp_path, command, refusal):
    t = translated(tmp_path, {"web": {"build": ".", "command": command}})
    assert t.refusals == [refusal]


def test_a_secret_in_a_command_is_never_shown(tmp_path):
    t = translated(
        tmp_path,
        {
            "web": {"build": ".", "command": "uvicorn proj.asgi:app --ssl-keyfile-password tmp-secret-value-71"},
            "worker": {
                "build": ".",
                "command": "celery -bredis://:tmp-secret-value-71@redis:6379/0 -A proj worker -c 2 "
                "--result-backend=redis://:tmp-secret-value-71@redis:6379/1",
            },
        },
    )
    assert (
        "not mapped: --ssl-keyfile-password <value not shown> (nginx terminates TLS (tlsCertificate, tlsKey); the app serves plain HTTP on the frontend network)"
        in notes_of(t, WEB)
    )
    assert notes_of(t, "services.worker.command") == [
        "not mapped: -b <value not shown> (the program's Redis is the broker: the app's Celery configuration reads "
        "REDIS_URL)",
        "not mapped: --result-backend <value not shown> (the app's Celery configuration sets result_backend)",
    ]
    assert "tmp-secret-value-71" not in "\n".join(t.notes + t.refusals)


# --- manage.py and sh -c: the release jobs, and the server after them -----------------------------


@pytest.mark.parametrize(
    "command, values, notes",
    [
        (
            'sh -c "python manage.py migrate && python manage.py collectstatic --noinput --clear && '
            'exec gunicorn proj.wsgi -w 2"',
            {"migrateCommand": "python manage.py migrate --noinput", "webConcurrency": 2},
            [
                "`python manage.py migrate` runs as the release's migrate job (migrateCommand), once per release "
                "before web and Celery change, not at every start",
                "`python manage.py collectstatic --noinput --clear` runs as the release's collectstatic job "
                "(collectstaticCommand), once per release before web and Celery change, not at every start",
                "not mapped: --clear (the old release keeps serving its static files while a new one starts)",
            ],
        ),
        (
            ["/bin/bash", "-ec", "cd /srv/app; python src/manage.py migrate --no-input; gunicorn proj.wsgi"],
            {"migrateCommand": "python src/manage.py migrate --no-input"},
            [
                "not mapped: `cd /srv/app` (the program runs commands in the image's WORKDIR)",
                "`python src/manage.py migrate --no-input` runs as the release's migrate job (migrateCommand), once "
                "per release before web and Celery change, not at every start",
            ],
        ),
        (
            "sh -c './wait-for-it.sh db:5432 -- gunicorn proj.wsgi 2>&1 | tee /var/log/web.log'",
            {"appModule": "proj.wsgi"},
            [
                "not mapped: 2>&1 (the engine collects stdout and stderr)",
                "not mapped: `./wait-for-it.sh db:5432 --` before gunicorn (the program starts app containers once "
                "PostgreSQL and Redis are healthy)",
                "not mapped: `tee /var/log/web.log` (the program runs only its own command here)",
            ],
        ),
        (
            'sh -c "gunicorn proj.wsgi -w 2 > /var/log/web.log 2>&1"',  # `-w 2 >`: 2 is the workers, not a descriptor
            {"webConcurrency": 2},
            ["not mapped: >/var/log/web.log 2>&1 (the engine collects stdout and stderr)"],
        ),
        (
            "sh -c 'python manage.py wait_for_db && python manage.py compilemessages && ddtrace-run gunicorn proj.wsgi'",
            {"appModule": "proj.wsgi"},
            [
                "not mapped: `python manage.py wait_for_db` (the program starts app containers once PostgreSQL and "
                "Redis are healthy)",
                "not mapped: `python manage.py compilemessages` (the program runs no other manage.py command at start: "
                "run it at build time in the Dockerfile, or once with `make manage`)",
                "not mapped: `ddtrace-run` before gunicorn (the program starts the process itself)",
            ],
        ),
    ],
)
def test_chains_become_release_jobs_and_the_server(tmp_path, command, values, notes):
    t = translated(tmp_path, {"web": {"build": ".", "command": command}})
    assert t.refusals == []
    assert {k: t.values[k] for k in values} == values
    assert notes_of(t, WEB) == notes


# --- Celery: every option of worker and beat mapped or named ---------------------------------------

WORKER = "services.worker.command"


@pytest.mark.parametrize(
    "command, values, notes",
    [
        (
            "celery -A proj worker",
            {"celeryApp": "proj"},
            ["no --concurrency (Celery starts one process per CPU); the program runs celeryConcurrency 2"],
        ),
        (
            "celery --app=proj.celery:app worker --concurrency=8",
            {"celeryApp": "proj.celery:app", "celeryConcurrency": 8},
            [],
        ),
        ("python -m celery -A proj worker -c4", {"celeryConcurrency": 4}, []),
        ("celery worker -A proj -c 2", {"celeryApp": "proj"}, []),  # Celery 4's order
        ("celery -A proj worker -c 2 -P threads", {"celeryPool": "threads"}, []),
        ("celery -A proj worker -c 2 --pool=solo", {"celeryPool": "solo"}, []),
        ("celery -A proj worker -c 2 -Pprocesses", {"celeryPool": "prefork"}, []),
        ("celery -A proj worker -c 2 --max-tasks-per-child 100", {"celeryMaxTasksPerChild": 100}, []),
        ("celery -A proj worker -c 2 -Q default,emails", {"celeryQueues": "default,emails"}, []),
        ("celery -A proj worker -c 2 --queues='a, b'", {"celeryQueues": "a,b"}, []),
        ("celery -A proj worker -c 2 -B", {"celeryBeat": True}, []),
        (
            "celery -A proj worker -c 2 -O fair",
            {},
            ["mapped as nothing: -O fair (fair scheduling is Celery's default since 4.0)"],
        ),
        (
            "celery -A proj worker -c 2 -Ofair",
            {},
            ["mapped as nothing: -Ofair (fair scheduling is Celery's default since 4.0)"],
        ),
        (
            "celery -A proj worker -c 2 --loglevel=DEBUG",
            {},
            ["not mapped: --loglevel=DEBUG (the program runs Celery at INFO; djangoLogLevel is Django's)"],
        ),
        (
            "celery -A proj worker --autoscale=10,3",
            {},
            [
                "not mapped: --autoscale=10,3 (the program runs a fixed celeryConcurrency under celeryMemory's limit, "
                "which an autoscaled pool could outgrow; set celeryConcurrency to the processes you want)",
                "no --concurrency beside --autoscale; the program runs celeryConcurrency 2",
            ],
        ),
        (
            "celery -A proj worker -c 2 --max-memory-per-child 200000 --prefetch-multiplier 1 -E",
            {},
            [
                "not mapped: --max-memory-per-child 200000 (celeryMemory limits the container; to recycle a child "
                "before it, set worker_max_memory_per_child in the app's Celery configuration)",
                "not mapped: --prefetch-multiplier 1 (no stack key: set worker_prefetch_multiplier in the app's "
                "Celery configuration)",
                "not mapped: -E (no stack key: set worker_send_task_events in the app's Celery configuration)",
            ],
        ),
        (
            "celery -A proj worker -c 2 --without-gossip --without-mingle --without-heartbeat",
            {},
            [
                "not mapped: --without-gossip (the program runs one worker container: no other worker to gossip with)",
                "not mapped: --without-mingle (the program runs one worker container: no other worker to mingle with)",
                "not mapped: --without-heartbeat (worker heartbeats are events for monitors; the program runs none)",
            ],
        ),
        (
            "celery -A proj worker -c 2 -n worker1@%h",
            {},
            [
                "not mapped: -n worker1@%h (the runtime's healthcheck pings the container's own node by Celery's "
                "default name, celery@<hostname>)"
            ],
        ),
        (
            "celery -A proj worker -c 2 -B --scheduler django_celery_beat.schedulers:DatabaseScheduler -s /tmp/s",
            {"celeryBeat": True},
            [
                "not mapped: --scheduler django_celery_beat.schedulers:DatabaseScheduler (the program's beat passes "
                "no --scheduler, so Celery takes the app's beat_scheduler setting: set it to "
                "'django_celery_beat.schedulers:DatabaseScheduler' in the app's Celery configuration, "
                "CELERY_BEAT_SCHEDULER in Django settings read with namespace='CELERY')",
                "not mapped: -s /tmp/s (the program's beat keeps its schedule in /tmp/celerybeat-schedule: the root "
                "filesystem is read-only)",
            ],
        ),
        (
            "watchmedo auto-restart --directory=./ --pattern=*.py --recursive -- celery -A proj worker -c 2",
            {"celeryApp": "proj"},
            [
                "not mapped: `watchmedo auto-restart --directory=./ '--pattern=*.py' --recursive --` before celery "
                "(live reload is a development tool: the program runs the built image)"
            ],
        ),
    ],
)
def test_celery_worker_options(tmp_path, command, values, notes):
    t = translated(
        tmp_path, {"web": {"build": ".", "command": "gunicorn proj.wsgi"}, "worker": {"build": ".", "command": command}}
    )
    assert t.refusals == []
    assert {k: t.values[k] for k in values} == values
    assert notes_of(t, WORKER) == notes


def test_celery_beat_options(tmp_path):
    t = translated(
        tmp_path,
        {
            "web": {"build": ".", "command": "gunicorn proj.wsgi"},
            "worker": {"build": ".", "command": "celery -A proj worker -c 2"},
            "beat": {
                "build": ".",
                "command": [
                    "celery",
                    "--app",
                    "proj",
                    "beat",
                    "-l",
                    "info",
                    "-S",
                    "django_celery_beat.schedulers:DatabaseScheduler",
                    "--schedule",
                    "/var/beat",
                    "--max-interval",
                    "30",
                ],
            },
        },
    )
    assert t.refusals == []
    assert (t.values["celeryBeat"], t.values["celeryApp"]) == (True, "proj")
    assert notes_of(t, "services.beat.command") == [
        "not mapped: -l info (the program runs Celery at INFO; djangoLogLevel is Django's)",
        "not mapped: -S django_celery_beat.schedulers:DatabaseScheduler (the program's beat passes no --scheduler, so "
        "Celery takes the app's beat_scheduler setting: set it to 'django_celery_beat.schedulers:DatabaseScheduler' "
        "in the app's Celery configuration, CELERY_BEAT_SCHEDULER in Django settings read with namespace='CELERY')",
        "not mapped: --schedule /var/beat (the program's beat keeps its schedule in /tmp/celerybeat-schedule: the "
        "root filesystem is read-only)",
        "not mapped: --max-interval 30 (no stack key: set beat_max_loop_interval in the app's Celery configuration)",
    ]


@pytest.mark.parametrize(
    "command, refusal",
    [
        (
            "celery -A proj worker -P gevent -c 100",
            "services.worker.command --pool: gevent needs its own package and a monkey-patched app, which the "
            "program's worker does not do; celeryPool is prefork, threads or solo (threads for I/O-bound tasks)",
        ),
        (
            "celery -A proj worker --pool=eventlet -c 100",
            "services.worker.command --pool: eventlet needs its own package and a monkey-patched app, which the "
            "program's worker does not do; celeryPool is prefork, threads or solo (threads for I/O-bound tasks)",
        ),
        (
            "celery -A proj worker -c 2 -O fast",
            "services.worker.command -O: 'fast' is not a scheduling Celery 5 has (default, fair)",
        ),
        (
            "celery -A proj worker -c 2 -DE",
            "services.worker.command --detach: a daemonized server leaves the container's main process, which ends "
            "the container; remove it",
        ),
        (
            "celery multi start w1 -A proj",
            "services.worker.command: celery multi starts detached workers; the program runs one worker in the foreground",
        ),
        ("celery -A proj worker --frob", "services.worker.command: --frob is not an option of celery worker"),
        ("celery -A proj worker -c", "services.worker.command: -c of celery worker needs a value"),
        (
            "celery -A proj worker -c 2 & gunicorn proj.wsgi",
            "services.worker.command: `gunicorn proj.wsgi` runs gunicorn in the worker service; the program "
            "runs it in its own container",
        ),
    ],
)
def test_celery_commands_the_program_cannot_run_are_refused(tmp_path, command, refusal):
    t = translated(
        tmp_path, {"web": {"build": ".", "command": "gunicorn proj.wsgi"}, "worker": {"build": ".", "command": command}}
    )
    assert t.refusals == [refusal]


def test_without_a_celery_service_the_stack_runs_no_celery(tmp_path):
    t = translated(tmp_path, {"web": {"build": ".", "command": "gunicorn proj.wsgi"}})
    assert (t.values["celeryApp"], t.sources["celeryApp"]) == ("", "services (no Celery worker)")
    assert notes_of(t, "services")[0] == (
        "no Celery worker service: celeryApp is empty (no worker nor beat; health checks no broker)"
    )


def test_the_tables_have_every_option_of_the_pinned_gunicorn_and_celery():
    # gunicorn 27.0.1 and Celery 5.7.0 (django_app/requirements.txt): every option their parsers
    # declare is in the importer's tables, taking a value exactly when it does.
    import gunicorn.config
    from celery.bin.beat import beat
    from celery.bin.celery import celery
    from celery.bin.worker import worker

    def arity(flags):
        return {name: flag.arity for flag in flags for name in flag.names}

    expected = {}
    for setting in gunicorn.config.KNOWN_SETTINGS:
        for name in setting.cli or ():
            nargs = getattr(setting, "nargs", None)
            flag = setting.action in ("store_true", "store_false", "store_const")
            expected[name] = "optional" if nargs == "?" else ("flag" if flag else "value")
    expected.update({"-v": "flag", "--version": "flag"})
    assert arity(compose_app.GUNICORN) == expected
    for command, flags in (
        (celery, compose_app.CELERY_GLOBAL),
        (worker, compose_app.CELERY_WORKER),
        (beat, compose_app.CELERY_BEAT),
    ):
        declared = {
            name: "flag" if getattr(param, "is_flag", False) else "value"
            for param in command.params
            for name in [*param.opts, *param.secondary_opts]
        }
        assert arity(flags) == declared, command.name


# --- the environment: the program's own, their aliases, the app's own (appEnv), secrets ------------


def test_the_apps_environment(tmp_path):
    env = {
        "FEATURE_X": "on",
        "PRICE": "$$5",
        "STRIPE_SECRET_KEY": "tmp-secret-value-71",
        "EMAIL_URL": "smtp://mailer:tmp-secret-value-71@smtp.example.com:587",
        "API_TOKEN": "${API_TOKEN}",
        "SECRET_KEY": "tmp-secret-value-71",
        "DB_HOST": "db",
        "DB_NAME": "shop",
        "REDIS_HOST": "cache",
        "CACHE_URL": "redis://cache:6379/0",
        "CELERY_RESULT_BACKEND": "redis://cache:6379/3",
        "GIT_SHA": "abc",
        "DEBUG": "1",
        "PORT": "9000",
        "CELERY_APP": "proj",
        "DJANGO_CSRF_TRUSTED_ORIGINS": "https://x.example",
        "GUNICORN_CMD_ARGS": "--workers 5 --keep-alive 10",
    }
    t = translated(
        tmp_path,
        {
            "web": {"build": ".", "command": "gunicorn proj.wsgi", "environment": env},
            "worker": {"build": ".", "command": "celery worker -c 1"},  # the app from CELERY_APP
            "db": {"image": "postgres:15.8-bookworm"},
            "cache": {"image": "redis:7.4.1-bookworm"},
        },
    )
    assert t.refusals == []
    assert t.values["appEnv"] == [
        "FEATURE_X=on",
        "PRICE=$$5",  # Compose's $$ is appEnv's $$: a $
        "SECRET_KEY=${DJANGO_SECRET_KEY}",
        "DB_HOST=${POSTGRES_HOST}",
        "DB_NAME=${POSTGRES_DB}",
        "REDIS_HOST=redis",
        "CACHE_URL=${REDIS_URL}",
        "CELERY_RESULT_BACKEND=redis://redis:6379/3",
        "DEBUG=1",
    ]
    assert {k: t.values[k] for k in ("postgresDb", "appPort", "celeryApp", "webConcurrency")} == {
        "postgresDb": "shop",
        "appPort": 9000,
        "celeryApp": "proj",
        "webConcurrency": 5,
    }
    assert t.secrets == {"djangoSecretKey": "services.web.environment.SECRET_KEY"}
    assert list(t.secret_env) == ["STRIPE_SECRET_KEY", "EMAIL_URL", "API_TOKEN"]
    path = "services.web.environment"
    assert notes_of(t, f"{path}.GIT_SHA") == [
        "not copied: the program passes the commit as the build argument GIT_SHA (the Dockerfile's `ARG GIT_SHA` "
        "and `ENV GIT_SHA=$GIT_SHA` give it to the app)"
    ]
    assert notes_of(t, f"{path}.DEBUG") == [
        "1: Django's DEBUG shows tracebacks and settings to anyone who meets an error; set it off for a stack people use"
    ]
    assert notes_of(t, f"{path}.GUNICORN_CMD_ARGS") == [
        "not mapped: --keep-alive 10 (the runtime's config keeps connections alive 5 s: nginx reuses its upstream "
        "connections)"
    ]
    assert f"{path}.DJANGO_CSRF_TRUSTED_ORIGINS" in t.understood
    assert "tmp-secret-value-71" not in repr(t)


@pytest.mark.parametrize(
    "env, refusal",
    [
        (
            {"FROM_SHELL": None},
            "services.web.environment.FROM_SHELL: needs a value from the environment; the importer reads no environment: write the value",
        ),
        (
            {"FROM_SHELL": "${FROM_SHELL:-x}"},
            "services.web.environment.FROM_SHELL: needs a value from the environment; the importer reads no environment: write the value",
        ),
        (
            {"POSTGRES_HOST": "rds.example.com"},
            "services.web.environment.POSTGRES_HOST: points at host 'rds.example.com', not the compose file's "
            "PostgreSQL service; the program runs its own PostgreSQL",
        ),
        (
            {"DB_HOST": "rds.example.com"},
            "services.web.environment.DB_HOST: points at host 'rds.example.com', not the compose file's PostgreSQL "
            "service; the program runs its own PostgreSQL",
        ),
        (
            {"REDIS_HOST": "elasticache.example.com"},
            "services.web.environment.REDIS_HOST: points at host 'elasticache.example.com', not the compose file's "
            "Redis service; the program runs its own Redis",
        ),
        (
            {"CELERY_BROKER_URL": "amqp://rabbit:5672//"},
            "services.web.environment.CELERY_BROKER_URL: points at host 'rabbit', not the compose file's Redis "
            "service; the program runs its own Redis",
        ),
    ],
)
def test_variables_the_importer_cannot_take_are_refused(tmp_path, env, refusal):
    t = translated(
        tmp_path,
        {
            "web": {"build": ".", "command": "gunicorn proj.wsgi", "environment": env},
            "db": {"image": "postgres:15.8-bookworm"},
            "redis": {"image": "redis:7.4.1-bookworm"},
        },
    )
    assert t.refusals == [refusal]


def test_one_value_of_a_variable_for_every_app_container(tmp_path):
    t = translated(
        tmp_path,
        {
            "web": {"build": ".", "command": "gunicorn proj.wsgi", "environment": {"FEATURE_X": "on"}},
            "worker": {"build": ".", "command": "celery -A proj worker -c 1", "environment": {"FEATURE_X": "off"}},
        },
    )
    assert t.refusals == [
        "services.worker.environment.FEATURE_X: 'off' differs from services.web.environment.FEATURE_X 'on'; appEnv "
        "has one FEATURE_X for every app container"
    ]


def test_the_log_level_of_the_environment_wins_over_gunicorns(tmp_path):
    t = translated(
        tmp_path,
        {
            "web": {
                "build": ".",
                "command": "gunicorn proj.wsgi --log-level warning",
                "environment": {"DJANGO_LOG_LEVEL": "info"},
            }
        },
    )
    assert (t.values["djangoLogLevel"], t.sources["djangoLogLevel"]) == (
        "INFO",
        "services.web.environment.DJANGO_LOG_LEVEL",
    )
    assert notes_of(t, "services.web.command --log-level") == [
        "not mapped: WARNING (djangoLogLevel, Django's and the server's one level, is INFO from "
        "services.web.environment.DJANGO_LOG_LEVEL)"
    ]


def test_app_secrets_are_named_for_app_secret_env_and_checked_by_the_program(tmp_path):
    project(tmp_path)
    compose = compose_file(
        tmp_path,
        "services:\n  web:\n    build: .\n    command: gunicorn config.wsgi\n    environment:\n"
        "      SENTRY_DSN: https://tmp-secret-value-71@sentry.example/1\n      FEATURE_X: 'on'\n",
    )
    outcome = run([compose], "x", out_dir=tmp_path)
    text = written(outcome)
    assert "    - FEATURE_X=on  # services.web.environment.FEATURE_X\n" in text
    assert "SENTRY_DSN" not in text.split("config:", 1)[1]
    assert outcome.stdout[-2:] == [
        "the app's own secrets: never copied; one NAME=value line each in a file, then:",
        "  pulumi config set --secret --stack x appSecretEnv < app.env   # SENTRY_DSN (services.web.environment.SENTRY_DSN)",
    ]
    assert "tmp-secret-value-71" not in "\n".join(outcome.stdout + outcome.stderr) + text


def test_services_without_a_command_say_what_the_program_runs(tmp_path):
    t = translated(tmp_path, {"web": {"build": "."}, "worker": {"build": "."}, "beat": {"build": "."}})
    assert notes_of(t, "services.web") == [
        "no command (and none in a Dockerfile read); the program runs gunicorn serving appModule"
    ]
    assert notes_of(t, "services.worker") == [
        "no command (and none in a Dockerfile read); the program runs `celery --app <celeryApp> worker`"
    ]
    assert notes_of(t, "services.beat") == [
        "no command (and none in a Dockerfile read); the program runs `celery --app <celeryApp> beat`"
    ]
