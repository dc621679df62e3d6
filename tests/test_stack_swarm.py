"""The whole program with `target: swarm` (prod's settings): the same keys, services instead of containers."""

import base64

import pytest

from planning.harness import (
    CONTAINER,
    JOB,
    NETWORK,
    REMOTE_IMAGE,
    SECRET,
    SERVICE,
    SERVICE_CONFIG,
    PlanError,
    label_in,
    plan_stack,
)
from tests.program_fixtures import DEV_DIGEST, plan_prod

SWARM = {"target": "swarm"}


@pytest.fixture(scope="module")
def plan():
    return plan_prod(overrides=SWARM)


def services(plan) -> dict:
    return {label_in(r.inputs, "django-docker.service"): r for r in plan.of_type(SERVICE)}


def test_every_long_running_part_is_a_service_and_no_container_is_left(plan):
    assert plan.of_type(CONTAINER) == []
    assert sorted(services(plan)) == ["celery-worker", "nginx", "postgres", "redis", "web"]
    # the release gate stays a run-to-completion job on the manager, on the backend overlay
    jobs = {r.name.rsplit("-", 1)[1]: r for r in plan.of_type(JOB)}
    assert set(jobs) == {"gate", "backup", "migrate", "collectstatic"}


def test_web_and_the_worker_roll_start_first_health_gated_and_roll_back(plan):
    for name in ("web", "celery-worker"):
        svc = services(plan)[name].inputs
        assert svc["updateConfig"]["order"] == "start-first"
        assert svc["updateConfig"]["failureAction"] == "rollback"
        assert svc["rollbackConfig"]["order"] == "start-first"
        # `pulumi up` waits for the tasks to run healthy, and fails when they do not
        assert svc["convergeConfig"]["timeout"].endswith("s")
        assert svc["taskSpec"]["containerSpec"]["healthcheck"]["tests"][0] == "CMD"
        assert svc["taskSpec"]["containerSpec"]["image"] == DEV_DIGEST
    web = services(plan)["web"].inputs
    assert web["mode"]["replicated"]["replicas"] == 3  # prod's webReplicas, same key
    assert web["taskSpec"]["resources"]["limits"]["memoryBytes"] == 512 * 1024 * 1024  # prod's webMemory
    # nginx finds the tasks by one name it re-resolves (dnsrr: no virtual IP, no IPVS)
    assert web["endpointSpec"]["mode"] == "dnsrr"
    aliases = [n.get("aliases") for n in web["taskSpec"]["networksAdvanceds"]]
    assert ["web"] in aliases
    # Deleting the service, the provider waits at most this long for its containers' removal,
    # which comes after gunicorn's whole shutdown (timeout 30 s + margin 5 s): 15 s more for it.
    assert web["taskSpec"]["containerSpec"]["stopGracePeriod"] == "50s"
    worker = services(plan)["celery-worker"].inputs
    assert worker["taskSpec"]["containerSpec"]["stopGracePeriod"] == "1m15s"  # 60 s warm shutdown + 15 s


def test_commands_are_the_images_cmd_never_their_entrypoint(plan):
    # A service's `commands` is Docker's Entrypoint, unlike a container's `command` (Cmd): it
    # would skip the image's entrypoint (the official redis image's, for one). `args` is Cmd.
    for name, svc in services(plan).items():
        spec = svc.inputs["taskSpec"]["containerSpec"]
        assert "commands" not in spec, name
    # An app task's command runs behind the runtime's `run`, which turns its secret files into
    # the variables the app's own settings read.
    web_args = services(plan)["web"].inputs["taskSpec"]["containerSpec"]["args"]
    assert web_args[:5] == ["python", "-m", "django_docker_runtime.run", "--", "gunicorn"]
    assert services(plan)["redis"].inputs["taskSpec"]["containerSpec"]["args"][0] == "redis-server"


def test_the_app_runs_hardened_and_its_secrets_are_files_not_environment(plan):
    for name in ("web", "celery-worker"):
        spec = services(plan)[name].inputs["taskSpec"]["containerSpec"]
        assert spec["user"] == "10001:10001" and spec["readOnly"] is True and spec["capDrops"] == ["ALL"]
        env = spec["env"]
        assert "DJANGO_SECRET_KEY" not in env and "DATABASE_URL" not in env
        assert env["DJANGO_SECRET_KEY_FILE"] == "/run/secrets/django-secret-key"
        assert env["DATABASE_URL_FILE"] == "/run/secrets/database-url"
        mounted = {s["fileName"]: s for s in spec["secrets"]}
        assert set(mounted) == {"django-secret-key", "database-url", "postgres-password"}
        assert {s["fileMode"] for s in mounted.values()} == {0o400}
        assert {s["fileUid"] for s in mounted.values()} == {"10001"}
    # every secret's data is a secret in the state, and is the base64 the provider expects
    secrets = plan.of_type(SECRET)
    assert secrets and all("data" in r.secret_paths for r in secrets)
    urls = [base64.b64decode(r.inputs["data"]).decode() for r in secrets if r.name.endswith("database-url")]
    assert urls and all(url.startswith("postgres://") for url in urls)


def test_stateful_services_and_nginx_run_one_task_stop_first_on_the_data_node(plan):
    for name in ("postgres", "redis", "nginx"):
        svc = services(plan)[name].inputs
        assert svc["mode"]["replicated"]["replicas"] == 1
        assert svc["updateConfig"]["order"] == "stop-first"
        assert svc["taskSpec"]["placement"]["constraints"] == ["node.labels.django-docker.data==true"]
    pg = services(plan)["postgres"].inputs["taskSpec"]["containerSpec"]
    assert (
        "POSTGRES_PASSWORD" not in pg["env"] and pg["env"]["POSTGRES_PASSWORD_FILE"] == "/run/secrets/postgres-password"
    )
    for name in ("postgres", "redis"):
        assert "ports" not in (services(plan)[name].inputs.get("endpointSpec") or {})  # never published


def test_nginx_publishes_on_the_node_and_takes_its_config_as_a_swarm_config(plan):
    nginx = services(plan)["nginx"].inputs
    (port,) = nginx["endpointSpec"]["ports"]
    assert (port["targetPort"], port["publishedPort"], port["publishMode"]) == (80, 80, "host")
    (config,) = plan.of_type(SERVICE_CONFIG)
    assert "resolve" in config.inputs["dataRaw"] and "server web:8000" in config.inputs["dataRaw"]
    (mounted,) = nginx["taskSpec"]["containerSpec"]["configs"]
    assert mounted["fileName"] == "/etc/nginx/nginx.conf"


def test_networks_are_overlays_the_backend_internal_and_attachable_for_the_jobs(plan):
    networks = {label_in(r.inputs, "django-docker.network"): r.inputs for r in plan.of_type(NETWORK)}
    assert {n["driver"] for n in networks.values()} == {"overlay"}
    assert networks["backend"]["internal"] is True and networks["backend"]["attachable"] is True
    assert "options" not in networks["backend"]  # the bridge-only host-address option


def test_no_app_service_changes_before_the_release_jobs_ran(plan):
    # Every app service carries the release gate (migrate's run id, resolved only once migrate
    # and collectstatic exited 0) in its labels: a failed migration stops `pulumi up` first.
    (migrate,) = [r for r in plan.of_type(JOB) if r.name.endswith("-migrate")]
    for name in ("web", "celery-worker"):
        assert label_in(services(plan)[name].inputs, "django-docker.release") == migrate.outputs["runId"]


def test_a_release_changes_services_in_place_not_their_names(plan):
    other = plan_prod(
        overrides=SWARM,
        stack_references={
            "organization/django-docker/dev": {
                "imageRef": DEV_DIGEST.split("@")[0] + "@sha256:" + "b" * 64,
                "imagePushed": True,
                "gitSha": "f" * 40,
            }
        },
    )
    assert {r.urn for r in other.of_type(SERVICE)} == {r.urn for r in plan.of_type(SERVICE)}


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"target": "kubernetes"}, "target: 'kubernetes' is not one of containers, swarm"),
        ({**SWARM, "bindAddress": "127.0.0.1"}, "bindAddress: 127.0.0.1 cannot be kept on swarm"),
        ({**SWARM, "swarmDataLabel": "Data Node"}, "swarmDataLabel: 'Data Node' is not valid"),
        ({**SWARM, "swarmSharedStorage": "nfs-server"}, "swarmSharedStorage: 'nfs-server' is not valid"),
        (
            {**SWARM, "migrationMode": "maintenance"},
            "migrationMode: maintenance needs nginx as a container (target containers); on swarm use gate",
        ),
    ],
)
def test_bad_swarm_settings_are_refused_in_one_line(overrides, message):
    with pytest.raises(PlanError) as error:
        plan_prod(overrides=overrides)
    assert str(error.value).startswith(message)
    assert "\n" not in str(error.value)


def test_shared_storage_lets_the_app_run_on_every_node():
    shared = plan_prod(overrides={**SWARM, "swarmSharedStorage": "10.0.0.5:/srv/django"})
    web = services(shared)["web"].inputs["taskSpec"]
    assert web["placement"].get("constraints") in (None, [])
    (media,) = [m for m in web["containerSpec"]["mounts"] if m["type"] == "volume"]
    assert media["volumeOptions"]["driverOptions"] == {
        "type": "nfs",
        "o": "addr=10.0.0.5,rw,nfsvers=4",
        "device": ":/srv/django",
    }


# --- what the provider reads back: the program writes it that way (rehearsal/emulation/readback.py)


def test_a_local_build_for_swarm_is_refused_in_one_line():
    with pytest.raises(PlanError) as error:
        plan_stack("dev", overrides={**SWARM, "bindAddress": "0.0.0.0"})
    assert str(error.value).startswith("imageRegistry: target swarm runs the app on every node, which pull it")


def test_durations_are_written_as_the_provider_reads_them_back(plan):
    from rehearsal.emulation.readback import short_duration

    durations = []
    for svc in services(plan).values():
        spec = svc.inputs["taskSpec"]
        durations.append(spec["containerSpec"]["stopGracePeriod"])
        durations += [spec["containerSpec"]["healthcheck"][k] for k in ("interval", "timeout", "startPeriod")]
        durations += [svc.inputs[c][k] for c in ("updateConfig", "rollbackConfig") for k in ("delay", "monitor")]
    assert "1m" in durations  # postgres's 60 s stop grace period, as shortDur spells it
    for text in durations:
        assert short_duration(duration_ns(text)) == text, text


def duration_ns(text: str) -> int:
    from components.settings.values import valid_ns

    return valid_ns(text)


def test_no_tmpfs_mode_the_read_back_would_change(plan):
    for svc in services(plan).values():
        for mount in svc.inputs["taskSpec"]["containerSpec"].get("mounts") or []:
            assert "mode" not in (mount.get("tmpfsOptions") or {})


def test_the_frontend_overlay_states_the_gateway_docker_reports(plan):
    (frontend,) = [n for n in plan.of_type(NETWORK) if n.label("django-docker.network") == "frontend"]
    assert frontend.inputs["ipamConfigs"] == [{"subnet": "172.30.20.0/24", "gateway": "172.30.20.1"}]


def test_singletons_go_before_their_replacement_and_platforms_are_left_to_the_registry(plan):
    singletons = {"postgres", "redis", "nginx", "celery-beat"}
    for name, svc in services(plan).items():
        assert svc.options["delete_before_replace"] is (name in singletons), name
        assert svc.options["ignore_changes"] == ["taskSpec.placement.platforms"], name


REGISTRY = "registry.example.com:5000"
PINNED = {
    f"{REGISTRY}/postgres:15.14-bookworm": f"{REGISTRY}/postgres@sha256:{'1' * 64}",
    f"{REGISTRY}/redis:7.4.5-bookworm": f"{REGISTRY}/redis@sha256:{'2' * 64}",
    f"{REGISTRY}/nginx:1.28.0-bookworm": f"{REGISTRY}/nginx@sha256:{'3' * 64}",
}


def test_accessory_images_are_pinned_to_the_digest_their_registry_gave():
    # The Docker client pins a tag to the registry's digest when the provider creates a service,
    # and the provider reads that back: the program writes it so, or every `pulumi up` would
    # update postgres, redis and nginx (components/swarm.py pinned_image).
    overrides = {
        **SWARM,
        "postgresImage": f"{REGISTRY}/postgres:15.14-bookworm",
        "redisImage": f"{REGISTRY}/redis:7.4.5-bookworm",
        "nginxImage": f"docker.io/library/nginx:1.28.0-bookworm@sha256:{'4' * 64}",
    }
    plan = plan_prod(overrides=overrides, registry_digests=PINNED)
    images = {name: svc.inputs["taskSpec"]["containerSpec"]["image"] for name, svc in services(plan).items()}
    assert images["postgres"] == f"{REGISTRY}/postgres:15.14-bookworm@sha256:{'1' * 64}"
    assert images["redis"] == f"{REGISTRY}/redis:7.4.5-bookworm@sha256:{'2' * 64}"
    # a digest given is used as it is, in the client's familiar form, with nothing pulled for it
    assert images["nginx"] == f"nginx:1.28.0-bookworm@sha256:{'4' * 64}"
    pulls = {r.inputs["name"]: r for r in plan.of_type(REMOTE_IMAGE) if r.name.endswith("-image")}
    assert sorted(pulls) == [f"{REGISTRY}/postgres:15.14-bookworm", f"{REGISTRY}/redis:7.4.5-bookworm"]
    assert all(r.inputs["keepLocally"] is True for r in pulls.values())


def test_an_accessory_no_registry_gave_keeps_its_tag(plan):
    # Built on the host (no repo digest of its repository): no client can pin it either.
    assert services(plan)["postgres"].inputs["taskSpec"]["containerSpec"]["image"] == "postgres:15.14-bookworm"


def test_a_release_changes_only_what_a_service_updates_in_place(plan):
    # A task's labels are ForceNew (tf v4.5.0 resource_docker_service.go:86-91, helpers.go
    # labelSchema): only what never changes is there; the commit and the release gate are the
    # service's own labels, which a rolling update changes.
    for name in ("web", "celery-worker"):
        svc = services(plan)[name].inputs
        task = {item["label"]: item["value"] for item in svc["taskSpec"]["containerSpec"]["labels"]}
        assert sorted(task) == [
            "django-docker.role",
            "django-docker.service",
            "django-docker.stack",
            "django-docker.url",
        ], name
        own = {item["label"] for item in svc["labels"]}
        assert {"django-docker.git-sha", "django-docker.release"} <= own, name
