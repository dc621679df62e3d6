"""tools/compose_import.py: compose files -> Pulumi.<stack>.yaml, refusals in one line each."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from planning.harness import plan_stack
from tests.program_fixtures import dev_outputs, env_of
from tools import compose_import
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
        "'gunicorn --bind 0.0.0.0:8000 myproject.wsgi:application' is read instead",
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
    ):
        assert key in doc
