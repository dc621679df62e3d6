"""The whole program on the prod stack: promotion of dev's digest, protection, the seed's prod."""

import json

import pytest

from planning.harness import IMAGE, JOB, REMOTE_IMAGE, STACK_REFERENCE, VOLUME, PlanError
from rehearsal.checks.tls import certificates_for
from tests.program_fixtures import DEV_DIGEST, DEV_STACK, GIT_SHA, PROD_SECRETS, dev_outputs, env_of, plan_prod

APP_SERVICES = {"migration-gate", "migrate", "collectstatic", "web", "celery-worker"}


@pytest.fixture(scope="module")
def plan():
    return plan_prod()


def test_prod_never_builds_and_runs_devs_digest(plan):
    assert plan.of_type(IMAGE) == []
    (reference,) = plan.of_type(STACK_REFERENCE)
    assert reference.inputs["name"] == DEV_STACK
    (pull,) = plan.of_type(REMOTE_IMAGE)
    assert pull.inputs["name"] == DEV_DIGEST
    assert pull.inputs["keepLocally"] is True
    app = [c for c in plan.containers() if c.label("django-docker.role") == "app"]
    assert sorted(c.label("django-docker.service") for c in app) == sorted(
        ["migration-gate", "migrate", "collectstatic", "web", "web", "web", "celery-worker"]
    )
    assert {c.inputs["image"] for c in app} == {DEV_DIGEST}
    assert {c.label("django-docker.git-sha") for c in app} == {GIT_SHA}
    assert plan.outputs["imageRef"] == DEV_DIGEST
    assert plan.outputs["imagePushed"] is True


def test_the_seeds_prod_settings(plan):
    web = plan.containers("web")
    assert len(web) == 3
    for c in web:
        assert c.inputs["memory"] == 512
        assert c.inputs["restart"] == "always"
        hc = c.inputs["healthcheck"]
        # 10s, not the seed's 30s: Docker 20.10 probes a new container first after one interval,
        # so the interval bounds how fast a release can finish.
        assert (hc["interval"], hc["timeout"], hc["retries"]) == ("10s", "10s", 3)
        assert hc["tests"] == [
            "CMD",
            "python",
            "-m",
            "django_docker_runtime.healthcheck",
            "web",
        ]  # no curl in slim images
    assert plan.containers("celery-beat") == []
    assert plan.containers("celery-worker")[0].inputs["command"][-1] == "4"


def test_data_volumes_are_protected(plan):
    volumes = {v.label("django-docker.volume"): v.options for v in plan.of_type(VOLUME)}
    for kind in ("postgres-data", "redis-data"):
        assert volumes[kind]["protect"] is True and volumes[kind]["retain_on_delete"] is True, kind
    for kind in ("static", "media"):
        assert volumes[kind]["protect"] is False and volumes[kind]["retain_on_delete"] is False, kind


def test_only_nginx_is_published_on_port_80(plan):
    published = {
        c.label("django-docker.service"): c.inputs["ports"] for c in plan.containers() if c.inputs.get("ports")
    }
    assert published == {"nginx": [{"internal": 80, "external": 80, "ip": "0.0.0.0", "protocol": "tcp"}]}
    assert plan.outputs["url"] == "http://example.com/"


def test_configured_secrets_stay_secret(plan):
    for c in plan.containers():
        text = json.dumps({k: v for k, v in c.inputs.items() if k not in c.secret_paths})
        for secret in PROD_SECRETS.values():
            assert secret not in text, c.name
    env = env_of(plan.container("django-docker-web-1"))
    assert env["DJANGO_SECRET_KEY"] == PROD_SECRETS["djangoSecretKey"]
    assert env["DATABASE_URL"] == f"postgres://app:{PROD_SECRETS['postgresPassword']}@postgres:5432/app"
    assert env["FORWARDED_ALLOW_IPS"] == "172.30.20.0/24"


def test_an_explicit_pin_wins():
    pin = "registry.example.com/acme/web@sha256:" + "e" * 64
    plan = plan_prod(overrides={"imageSource": "pin", "imagePin": pin})
    assert plan.of_type(STACK_REFERENCE) == []
    assert {c.inputs["image"] for c in plan.containers() if c.label("django-docker.role") == "app"} == {pin}


def test_missing_dev_output_is_one_clear_error():
    with pytest.raises(PlanError) as error:
        plan_prod(stack_references={DEV_STACK: {}})
    assert str(error.value) == f"imageSourceStack: {DEV_STACK} has no imageRef output; run `pulumi up` on it first"


def test_malformed_dev_output_is_refused():
    with pytest.raises(PlanError) as error:
        plan_prod(stack_references=dev_outputs(ref="acme/web:latest"))
    assert (
        str(error.value)
        == f"imageSourceStack: {DEV_STACK} exports imageRef 'acme/web:latest', not a repo@sha256:<64 hex> digest"
    )


def test_local_only_dev_image_cannot_be_promoted():
    with pytest.raises(PlanError) as error:
        plan_prod(stack_references=dev_outputs(ref="sha256:" + "f" * 64, pushed=False))
    assert "is local to its Docker host and cannot be pulled elsewhere; set imageRegistry on that stack" in str(
        error.value
    )


def test_tls_publishes_443_and_puts_the_key_on_the_site_as_a_secret():
    certs = certificates_for("example.com")
    plan = plan_prod(
        secrets={**PROD_SECRETS, "tlsCertificate": certs.cert_pem, "tlsKey": certs.key_pem},
        overrides={"djangoHstsSeconds": 31536000},
    )
    nginx = plan.container("django-docker-nginx")
    assert [p["internal"] for p in nginx.inputs["ports"]] == [80, 443]
    site = plan.by_name("django-docker-nginx-site")
    files = plan.nginx_files()
    assert files["tls/server.crt"] == certs.cert_pem and files["tls/server.key"] == certs.key_pem
    assert "ssl_certificate tls/server.crt;" in files["nginx.conf"]  # its generation's own files
    assert site.inputs["modes"] == {"tls/server.key": "0600"}
    assert "files" in site.secret_paths
    body = certs.key_pem.splitlines()[1]
    for resource in plan.resources:
        assert body not in json.dumps({k: v for k, v in resource.inputs.items() if k not in resource.secret_paths})
    assert body not in json.dumps(site.outputs.get("generation"))
    assert body not in json.dumps(plan.outputs)
    env = env_of(plan.container("django-docker-web-1"))
    assert (env["DJANGO_SECURE_SSL_REDIRECT"], env["DJANGO_SECURE_COOKIES"], env["DJANGO_SECURE_HSTS_SECONDS"]) == (
        "true",
        "true",
        "31536000",
    )
    assert env["DJANGO_CSRF_TRUSTED_ORIGINS"] == "https://example.com"
    assert plan.outputs["url"] == "https://example.com/"
    assert {c.label("django-docker.url") for c in plan.containers() if c.label("django-docker.role") == "app"} == {
        "https://example.com/"
    }


def test_every_app_container_says_where_the_site_is(plan):
    """`make status` reads the URL off the host: the app's containers carry the stack's url output."""
    app = [c for c in plan.containers() if c.label("django-docker.role") == "app"]
    assert {c.label("django-docker.url") for c in app} == {plan.outputs["url"]} == {"http://example.com/"}


def test_a_backup_runs_before_every_migration_into_the_backups_volume(plan):
    (backup,) = [j for j in plan.of_type(JOB) if j.label("django-docker.service") == "backup"]
    (migrate,) = [j for j in plan.of_type(JOB) if j.label("django-docker.service") == "migrate"]
    assert backup.urn in migrate.options["dependencies"]
    assert backup.inputs["image"] == "postgres:15.14-bookworm"
    volumes = {v.label("django-docker.volume"): v for v in plan.of_type(VOLUME)}
    assert backup.inputs["volumes"] == [{"volumeName": volumes["backups"].outputs["name"], "containerPath": "/backups"}]
    assert volumes["backups"].options["protect"] and volumes["backups"].options["retain_on_delete"]
    script = backup.inputs["command"][2]
    assert f'-prod-before-{GIT_SHA[:12]}.dump"' in script and "tail -n +8" in script  # newest 7 kept
    # The password reaches pg_dump only through the (secret) environment.
    assert "envs" in backup.secret_paths and "PGPASSWORD=" not in script
    assert backup.label("django-docker.before-image") == DEV_DIGEST
