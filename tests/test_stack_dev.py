"""The whole program on the dev stack (Pulumi.dev.yaml), as `pulumi up` would register it."""

import json

import pytest

from components.settings import runtime_image_tag
from planning.harness import CONTAINER, IMAGE, JOB, NETWORK, RANDOM_PASSWORD, REMOTE_IMAGE, VOLUME
from tests.program_fixtures import GIT_SHA, builds, env_of, plan_dev

APP_SERVICES = {"migration-gate", "migrate", "collectstatic", "web", "celery-worker", "celery-beat"}


@pytest.fixture(scope="module")
def plan():
    import os

    os.environ["GIT_SHA"] = GIT_SHA
    try:
        return plan_dev()
    finally:
        del os.environ["GIT_SHA"]


def services(plan):
    return sorted(c.label("django-docker.service") for c in plan.containers())


def test_topology(plan):
    assert services(plan) == sorted(
        [
            "postgres",
            "redis",
            "migration-gate",
            "migrate",
            "collectstatic",
            "web",
            "web",
            "celery-worker",
            "celery-beat",
            "nginx",
        ]
    )
    assert len(plan.of_type(NETWORK)) == 2
    assert len(plan.of_type(VOLUME)) == 6
    assert plan.of_type(REMOTE_IMAGE) == []


def test_image_is_built_locally_tagged_with_the_sha(plan):
    image, _ = builds(plan)
    assert image.inputs["imageName"] == f"django-docker/web:{GIT_SHA[:12]}"
    assert image.inputs["skipPush"] is True
    assert "registry" not in image.inputs
    assert image.inputs["build"]["args"] == {"GIT_SHA": GIT_SHA, "DJANGO_DOCKER_RUNTIME": runtime_image_tag()}
    assert image.inputs["build"]["context"].endswith("/django_app")
    assert image.inputs["build"]["dockerfile"].endswith("/django_app/Dockerfile")
    assert "latest" not in json.dumps(image.inputs)


def test_the_runtime_is_built_first_on_the_same_host_never_pushed(plan):
    image, runtime = builds(plan)
    assert runtime.inputs["imageName"] == runtime_image_tag()
    assert runtime.inputs["imageName"].startswith("django-docker-runtime:1.0.0-")
    assert runtime.inputs["skipPush"] is True and "registry" not in runtime.inputs
    assert runtime.inputs["build"]["context"].endswith("/runtime")
    assert runtime.urn in image.options["dependencies"]
    assert len(plan.of_type(IMAGE)) == 2


def test_the_runtime_tag_follows_its_content(tmp_path):
    import shutil

    from components.settings import RUNTIME_DIR

    copy = tmp_path / "runtime"
    shutil.copytree(RUNTIME_DIR, copy, ignore=shutil.ignore_patterns("__pycache__"))
    assert runtime_image_tag(copy) == runtime_image_tag()
    (copy / "django_docker_runtime" / "health.py").write_text("# changed\n")
    assert runtime_image_tag(copy) != runtime_image_tag()
    assert runtime_image_tag(copy).rsplit("-", 1)[0] == runtime_image_tag().rsplit("-", 1)[0]  # same version


def test_app_containers_run_the_digest_not_the_tag(plan):
    image, _ = builds(plan)
    digest = image.outputs["repoDigest"]
    assert plan.outputs["imageRef"] == digest
    app = [c for c in plan.containers() if c.label("django-docker.service") in APP_SERVICES]
    assert len(app) == 7
    assert {c.inputs["image"] for c in app} == {digest}
    for c in app:
        assert c.label("django-docker.role") == "app"
        assert c.label("django-docker.git-sha") == GIT_SHA
        assert c.label("django-docker.stack") == "dev"


def test_accessories_use_pinned_images(plan):
    images = {
        c.label("django-docker.service"): c.inputs["image"]
        for c in plan.containers()
        if c.label("django-docker.role") == "accessory"
    }
    assert images == {
        "postgres": "postgres:15.14-bookworm",
        "redis": "redis:7.4.5-bookworm",
        "nginx": "nginx:1.28.0-bookworm",
    }


def test_networks_backend_is_internal_and_only_nginx_and_web_are_on_frontend(plan):
    nets = {n.label("django-docker.network"): n for n in plan.of_type(NETWORK)}
    assert nets["backend"].inputs["internal"] is True
    assert nets["backend"].inputs["options"] == {"com.docker.network.bridge.inhibit_ipv4": "true"}
    assert not nets["frontend"].inputs.get("internal")
    # the gateway Docker gives it, stated: read back after an engine restart (components/network.py)
    assert nets["frontend"].inputs["ipamConfigs"] == [{"subnet": "172.30.10.0/24", "gateway": "172.30.10.1"}]
    frontend, backend = nets["frontend"].outputs["name"], nets["backend"].outputs["name"]
    on = {}
    for c in plan.containers():
        for attachment in c.inputs["networksAdvanced"]:
            on.setdefault(attachment["name"], []).append(c.label("django-docker.service"))
    assert sorted(on[frontend]) == ["nginx", "web", "web"]
    assert sorted(on[backend]) == sorted(
        [
            "postgres",
            "redis",
            "migration-gate",
            "migrate",
            "collectstatic",
            "web",
            "web",
            "celery-worker",
            "celery-beat",
        ]
    )


def test_aliases(plan):
    aliases = {}
    for c in plan.containers():
        for attachment in c.inputs["networksAdvanced"]:
            for alias in attachment.get("aliases", []):
                aliases.setdefault(alias, []).append(c.label("django-docker.service"))
    # Every web replica answers to `web`, the one name nginx resolves (render.nginx_conf).
    assert aliases == {"postgres": ["postgres"], "redis": ["redis"], "web": ["web", "web"]}


def test_volumes_and_mounts(plan):
    volumes = {v.label("django-docker.volume"): v for v in plan.of_type(VOLUME)}
    assert set(volumes) == {"postgres-data", "redis-data", "backups", "static", "media", "nginx-site"}
    assert not any(v.options["protect"] or v.options["retain_on_delete"] for v in volumes.values())
    name = {kind: v.outputs["name"] for kind, v in volumes.items()}
    mounts = {
        c.label("django-docker.service"): sorted(
            (m["volumeName"], m["containerPath"], bool(m.get("readOnly"))) for m in c.inputs.get("volumes", [])
        )
        for c in plan.containers()
    }
    assert mounts["postgres"] == [(name["postgres-data"], "/var/lib/postgresql/data", False)]
    assert mounts["redis"] == [(name["redis-data"], "/data", False)]
    assert mounts["collectstatic"] == [(name["static"], "/app/staticfiles", False)]
    assert mounts["web"] == [(name["media"], "/app/media", False)]
    assert mounts["celery-worker"] == [(name["media"], "/app/media", False)]
    assert mounts["nginx"] == sorted(
        [
            (name["static"], "/var/www/static", True),
            (name["media"], "/var/www/media", True),
            (name["nginx-site"], "/etc/nginx/site", True),
        ]
    )
    # Dev takes no backup before migrating (backupBeforeMigrate is prod's); `make backup` still can.
    assert "backup" not in mounts
    assert mounts["migrate"] == []


def test_only_nginx_publishes_ports_on_loopback(plan):
    published = {
        c.label("django-docker.service"): c.inputs["ports"] for c in plan.containers() if c.inputs.get("ports")
    }
    assert published == {"nginx": [{"internal": 80, "external": 8080, "ip": "127.0.0.1", "protocol": "tcp"}]}
    assert plan.outputs["url"] == "http://localhost:8080/"


def test_limits_users_restart_and_hardening(plan):
    for c in plan.containers():
        service = c.label("django-docker.service")
        assert c.inputs["memory"] > 0, service
        assert c.inputs["securityOpts"] == ["no-new-privileges:true"], service
        assert c.inputs["logOpts"] == {"max-size": "10m", "max-file": "3"}, service
        if service in APP_SERVICES:
            assert c.inputs["user"] == "10001:10001"
            assert c.inputs["readOnly"] is True
            assert c.inputs["capabilities"] == {"drops": ["ALL"]}
            assert c.inputs["tmpfs"] == {"/tmp": "rw,noexec,nosuid,size=64m"}
            assert c.inputs["init"] is True
    by = {c.name: c for c in plan.containers()}
    assert by["django-docker-web-1"].inputs["memory"] == 512
    assert by["django-docker-redis"].inputs["memory"] == 256
    # Swap not limited apart from memory: what every Docker host reads back (common.MEMORY_SWAP_UNLIMITED).
    assert {c.inputs["memorySwap"] for c in plan.containers()} == {-1}
    assert by["django-docker-web-1"].inputs["restart"] == "unless-stopped"
    assert "restart" not in by["django-docker-release-migrate"].inputs  # a job never restarts


def test_healthchecks_and_wait(plan):
    by = {c.name: c for c in plan.containers()}
    web = by["django-docker-web-1"].inputs
    assert web["healthcheck"] == {
        "tests": ["CMD", "python", "-m", "django_docker_runtime.healthcheck", "web"],
        "interval": "5s",
        "timeout": "10s",
        "retries": 3,
        "startPeriod": "20s",
    }
    # `pulumi up` waits for healthy: the start period plus two probe cycles (Healthcheck.wait_seconds).
    assert (web["wait"], web["waitTimeout"]) == (True, 20 + 2 * (5 + 10))
    assert by["django-docker-celery-worker"].inputs["healthcheck"]["tests"][-1] == "worker"
    assert by["django-docker-postgres"].inputs["healthcheck"]["tests"][:2] == ["CMD", "pg_isready"]
    assert by["django-docker-redis"].inputs["healthcheck"]["tests"] == ["CMD", "redis-cli", "ping"]
    assert by["django-docker-nginx"].inputs["healthcheck"]["tests"][:2] == ["CMD", "curl"]
    for c in plan.of_type(CONTAINER):
        assert c.inputs["wait"] is True and c.inputs["waitTimeout"] > 0, c.name
    for c in plan.of_type(JOB):
        assert c.inputs["timeoutSeconds"] == 1800 and "healthcheck" not in c.inputs, c.name
    assert {c.name for c in plan.of_type(JOB)} == {
        "django-docker-release-migration-gate",
        "django-docker-release-migrate",
        "django-docker-release-collectstatic",
    }


def test_durations_are_spelled_as_the_provider_reads_them_back():
    # "1m" would come back from the provider as "1m0s": a change on every `pulumi up`.
    plan = plan_dev(
        overrides={"healthcheckInterval": "1m", "healthcheckStartPeriod": "90s", "healthcheckTimeout": "1500ms"}
    )
    healthcheck = plan.container("django-docker-web-1").inputs["healthcheck"]
    assert (healthcheck["interval"], healthcheck["startPeriod"], healthcheck["timeout"]) == ("1m0s", "1m30s", "1.5s")


def test_commands(plan):
    by = {c.label("django-docker.service"): c.inputs.get("command") for c in plan.containers()}
    assert by["web"] == [
        "gunicorn",
        "--config",
        "python:django_docker_runtime.gunicorn_conf",
        "--workers",
        "2",
        "--timeout",
        "30",
        "--graceful-timeout",
        "30",
        "--max-requests",
        "1000",
        "--max-requests-jitter",
        "100",
        "django_docker_runtime.wsgi:application",
    ]
    assert by["migrate"] == ["python", "manage.py", "migrate", "--noinput"]
    assert by["collectstatic"] == ["python", "manage.py", "collectstatic", "--noinput"]
    assert by["celery-beat"][:4] == ["celery", "--app", "config", "beat"]
    assert by["celery-worker"] == ["celery", "--app", "config", "worker", "--loglevel", "INFO", "--concurrency", "2"]
    assert by["redis"][:3] == ["redis-server", "--appendonly", "yes"]


def test_app_environment(plan):
    env = env_of(plan.container("django-docker-web-1"))
    password = plan.by_name("django-docker-postgres-password").outputs["result"]
    assert env["DATABASE_URL"] == f"postgres://app:{password}@postgres:5432/app"
    assert env["REDIS_URL"] == "redis://redis:6379/0"
    assert env["DJANGO_ALLOWED_HOSTS"] == "localhost"
    assert env["DJANGO_CSRF_TRUSTED_ORIGINS"] == "http://localhost:8080"
    assert env["DJANGO_SECURE_SSL_REDIRECT"] == "false"
    assert env["FORWARDED_ALLOW_IPS"] == "172.30.10.0/24"
    assert env["DJANGO_SECRET_KEY"] == plan.by_name("django-docker-secret-key").outputs["result"]
    # Every app container gets the same environment.
    envs = {json.dumps(c.inputs["envs"]) for c in plan.containers() if c.label("django-docker.role") == "app"}
    assert len(envs) == 1


def test_no_secret_in_plain_text(plan):
    secrets = [r.outputs["result"] for r in plan.of_type(RANDOM_PASSWORD)]
    assert len(secrets) == 2
    for c in plan.containers():
        if "envs" in c.inputs:
            assert "envs" in c.secret_paths, c.name
        plain = {k: v for k, v in c.inputs.items() if k not in c.secret_paths}
        text = json.dumps(plain)
        for secret in secrets:
            assert secret not in text, c.name
    assert "DJANGO_SECRET_KEY" not in json.dumps(plan.outputs)


def test_release_gates_web_and_workers(plan):
    migrate_id = plan.container("django-docker-release-migrate").id  # the gate resolves to it
    assert migrate_id
    for c in plan.containers():
        if c.label("django-docker.service") in {"web", "celery-worker", "celery-beat"}:
            assert c.label("django-docker.release") == migrate_id, c.name
    # The one-shots themselves (not just their component) wait for healthy postgres and redis.
    accessories = {plan.container("django-docker-postgres").urn, plan.container("django-docker-redis").urn}
    for name in ("django-docker-release-migrate", "django-docker-release-collectstatic"):
        assert accessories <= set(plan.container(name).options["dependencies"]), name


def test_nginx_follows_the_replicas_by_dns_and_is_never_replaced_by_them(plan):
    nginx = plan.container("django-docker-nginx")
    assert "uploads" not in nginx.inputs  # an upload is ForceNew: its config is on the site volume
    assert nginx.inputs["command"] == ["nginx", "-c", "/etc/nginx/site/current/nginx.conf", "-g", "daemon off;"]
    conf = plan.nginx_conf()
    assert "server web:8000 resolve max_fails=1 fail_timeout=5s;" in conf
    assert "resolver 127.0.0.11 valid=1s ipv6=off;" in conf
    assert nginx.options["replacement_trigger"] is None
    # No input of nginx comes from a replica or from its configuration: neither replaces it.
    site = plan.by_name("django-docker-nginx-site")
    fed = {urn for urns in nginx.options["property_dependencies"].values() for urn in urns}
    assert site.urn not in fed and site.urn in nginx.options["dependencies"]
    assert not fed & {plan.container(f"django-docker-web-{i}").urn for i in (1, 2)}
    # Created after the replicas (first boot), without depending on any of their values.
    replicas = {plan.container(f"django-docker-web-{i}").urn for i in (1, 2)}
    assert replicas <= set(nginx.options["dependencies"])


def test_every_container_and_job_states_its_replacement_order(plan):
    # pulumi-docker marks Container delete-before-replace; the engine follows it unless the
    # program says otherwise, deleting dependents first (shared/research W1). So: said, each one.
    order = {r.name: r.options["delete_before_replace"] for r in plan.containers()}
    assert order == {
        "django-docker-postgres": True,
        "django-docker-redis": True,
        "django-docker-nginx": True,
        "django-docker-celery-beat": True,
        "django-docker-web-1": False,
        "django-docker-web-2": False,
        "django-docker-celery-worker": False,
        "django-docker-release-migration-gate": False,
        "django-docker-release-migrate": False,
        "django-docker-release-collectstatic": False,
    }
    for c in plan.of_type(CONTAINER):
        assert c.options["replace_on_changes"] == ["*"], c.name
        assert "name" not in c.inputs, c.name  # auto-named: old and new can coexist
    networks = {n.label("django-docker.network"): n.options["delete_before_replace"] for n in plan.of_type(NETWORK)}
    assert networks == {"frontend": True, "backend": False}


def test_outputs(plan):
    assert plan.outputs["gitSha"] == GIT_SHA
    assert plan.outputs["imagePushed"] is False
    assert plan.outputs["webContainers"] == [plan.container(f"django-docker-web-{i}").outputs["name"] for i in (1, 2)]


def test_dirty_marker_and_registry_push(monkeypatch):
    monkeypatch.setenv("GIT_SHA", GIT_SHA + "-dirty")
    plan = plan_dev(
        overrides={"imageRegistry": "ghcr.io/acme", "imageRegistryUsername": "bot"},
        secrets={"imageRegistryPassword": "token-value-123"},
    )
    image, runtime = builds(plan)
    assert runtime.inputs["skipPush"] is True  # only the app's image goes to the registry
    assert image.inputs["imageName"] == f"ghcr.io/acme/django-docker/web:{GIT_SHA[:12]}-dirty"
    assert image.inputs["skipPush"] is False
    assert image.inputs["registry"] == {"server": "ghcr.io", "username": "bot", "password": "token-value-123"}
    assert "registry.password" in image.secret_paths or "registry" in image.secret_paths
    assert plan.outputs["imageRef"].startswith("ghcr.io/acme/django-docker/web@sha256:")
    assert plan.outputs["imagePushed"] is True


@pytest.mark.parametrize("replicas", [1, 5])
def test_replica_count_flows_to_containers_but_not_to_nginx(plan, replicas):
    scaled = plan_dev(overrides={"webReplicas": replicas})
    assert len(scaled.containers("web")) == replicas
    conf = lambda p: p.nginx_conf()  # noqa: E731
    assert conf(scaled) == conf(plan)
