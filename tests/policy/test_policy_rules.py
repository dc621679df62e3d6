"""Each rule of the policy pack with passing and failing resources."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from policy_support import (
    DIGEST,
    accessory_container,
    accessory_service,
    app_service,
    make_args,
    network,
    nginx_container,
    nginx_service,
    one_shot_container,
    policy_violations,
    swarm_secret,
    violations,
    volume,
    web_container,
    with_container_spec,
    with_task_spec,
)
from policy_support import (
    docker_rules as r,
)
from pulumi_policy import EnforcementLevel
from pulumi_policy.proxy import UnknownValueError

C, N, V = r.CONTAINER, r.NETWORK, r.VOLUME
S, SECRET = r.SERVICE, r.SECRET


def test_compliant_resources_pass_every_rule_mandatory_and_advisory():
    resources = [
        (C, web_container()),
        (C, one_shot_container("migrate")),
        (C, one_shot_container("collectstatic")),
        (C, accessory_container()),
        (C, nginx_container()),
        (N, network("frontend")),
        (N, network("backend")),
        (V, volume("media")),
    ]
    for resource_type, props in resources:
        assert policy_violations(make_args(resource_type, props)) == {}, props
    protected = make_args(V, volume("postgres-data", stack="prod"), stack="prod", protect=True)
    assert policy_violations(protected) == {}


def test_compliant_swarm_resources_pass_every_rule_mandatory_and_advisory():
    for props in (
        app_service("web"),
        app_service("celery-worker", mode={"replicated": {"replicas": 1}}),
        accessory_service("postgres"),
        accessory_service("redis", "redis:7.4.5-bookworm"),
        nginx_service(),
    ):
        assert policy_violations(make_args(S, props, stack="prod")) == {}, props
    secret = make_args(SECRET, swarm_secret(), stack="prod", additional_secret_outputs=["data"])
    assert policy_violations(secret) == {}


# --- image-pinned ------------------------------------------------------------


@pytest.mark.parametrize(
    "image",
    [
        "postgres:15.14-bookworm",
        "localhost:5000/django-docker/web:3f2c1ab",
        DIGEST,
        "sha256:" + "b" * 64,
        "nginx:latest@sha256:" + "c" * 64,  # the digest decides what runs
    ],
)
def test_image_pinned_accepts_version_tags_and_digests(image):
    assert violations(r.validate_image_pinned, make_args(C, accessory_container(image=image))) == []


@pytest.mark.parametrize(
    "image, why",
    [
        ("postgres:latest", "latest is a moving tag"),
        ("registry.example.com/team/web:latest", "latest is a moving tag"),
        ("postgres", "neither tag nor digest"),
        ("localhost:5000/web", "neither tag nor digest"),
        ("web@sha256:abc", "malformed digest"),
        ("", "no image reference"),
    ],
)
def test_image_pinned_rejects_latest_untagged_and_malformed(image, why):
    found = violations(r.validate_image_pinned, make_args(C, accessory_container(image=image), name="db"))
    assert len(found) == 1 and why in found[0] and "db" in found[0]


def test_image_pinned_checks_pulled_images_and_ignores_builds():
    assert violations(r.validate_image_pinned, make_args(r.REMOTE_IMAGE, {"name": "redis"})) != []
    assert violations(r.validate_image_pinned, make_args(r.REMOTE_IMAGE, {"name": "redis:7.4.5-bookworm"})) == []
    assert violations(r.validate_image_pinned, make_args(r.IMAGE, {"imageName": "web:latest"})) == []


# --- app-image-by-digest -----------------------------------------------------


def test_app_image_by_digest_accepts_registry_digest_and_local_id():
    for image in (DIGEST, "sha256:" + "d" * 64):
        assert violations(r.validate_app_image_by_digest, make_args(C, web_container(image=image))) == []


@pytest.mark.parametrize("image", ["registry.example.com/django-docker/web:3f2c1ab", "web:latest", "web@sha256:123"])
def test_app_image_by_digest_rejects_tags_for_app_containers(image):
    assert violations(r.validate_app_image_by_digest, make_args(C, web_container(image=image))) != []
    assert violations(r.validate_app_image_by_digest, make_args(C, one_shot_container(image=image))) != []


def test_app_image_by_digest_leaves_accessories_to_their_pinned_tags():
    assert violations(r.validate_app_image_by_digest, make_args(C, accessory_container())) == []


# --- resources-labelled ------------------------------------------------------


def test_resources_labelled_requires_service_and_a_known_role():
    unlabelled = web_container(labels=[])
    assert len(violations(r.validate_resources_labelled, make_args(C, unlabelled))) == 2
    odd_role = web_container(
        labels=[
            {"label": "django-docker.service", "value": "web"},
            {"label": "django-docker.role", "value": "worker"},
        ]
    )
    found = violations(r.validate_resources_labelled, make_args(C, odd_role))
    assert len(found) == 1 and "'worker'" in found[0]


def test_resources_labelled_requires_network_and_volume_names():
    assert violations(r.validate_resources_labelled, make_args(N, {"internal": True, "labels": []})) != []
    assert violations(r.validate_resources_labelled, make_args(V, {"labels": []})) != []
    assert violations(r.validate_resources_labelled, make_args(N, network("backend"))) == []
    assert violations(r.validate_resources_labelled, make_args(V, volume("static"))) == []


# --- app-memory-limit --------------------------------------------------------


@pytest.mark.parametrize("memory", [None, 0, -1, True])
def test_app_memory_limit_rejects_missing_or_non_positive(memory):
    props = web_container()
    if memory is None:
        del props["memory"]
    else:
        props["memory"] = memory
    assert violations(r.validate_app_memory_limit, make_args(C, props)) != []


def test_app_memory_limit_applies_to_one_shots_but_not_accessories():
    no_memory_migrate = one_shot_container()
    del no_memory_migrate["memory"]
    assert violations(r.validate_app_memory_limit, make_args(C, no_memory_migrate)) != []
    no_memory_db = accessory_container()
    del no_memory_db["memory"]
    assert violations(r.validate_app_memory_limit, make_args(C, no_memory_db)) == []
    assert violations(r.validate_app_memory_limit, make_args(C, web_container(memory=256))) == []


# --- app-restart-policy ------------------------------------------------------


@pytest.mark.parametrize("restart", ["always", "unless-stopped", "on-failure"])
def test_app_restart_policy_accepts_restarting_policies(restart):
    assert violations(r.validate_app_restart_policy, make_args(C, web_container(restart=restart))) == []


@pytest.mark.parametrize("restart", ["no", None, ""])
def test_app_restart_policy_rejects_long_running_without_restart(restart):
    assert violations(r.validate_app_restart_policy, make_args(C, web_container(restart=restart))) != []


def test_app_restart_policy_one_shots_must_not_restart():
    assert violations(r.validate_app_restart_policy, make_args(C, one_shot_container(restart="no"))) == []
    loop = violations(
        r.validate_app_restart_policy, make_args(C, one_shot_container("collectstatic", restart="always"))
    )
    assert len(loop) == 1 and "one-shot" in loop[0]


# --- app-healthcheck ---------------------------------------------------------


def test_app_healthcheck_rejects_missing_empty_and_disabled():
    for healthcheck in (None, {}, {"tests": []}, {"tests": ["NONE"]}):
        props = web_container(healthcheck=healthcheck)
        assert violations(r.validate_app_healthcheck, make_args(C, props)) != [], healthcheck


def test_app_healthcheck_exempts_one_shots_only():
    assert violations(r.validate_app_healthcheck, make_args(C, one_shot_container("migrate"))) == []
    celery_without = web_container(
        healthcheck=None,
        labels=[
            {"label": "django-docker.service", "value": "celery-worker"},
            {"label": "django-docker.role", "value": "app"},
        ],
    )
    assert violations(r.validate_app_healthcheck, make_args(C, celery_without)) != []


# --- app-non-root ------------------------------------------------------------


@pytest.mark.parametrize("user", [None, "", "0", "root", "0:0", "root:app"])
def test_app_non_root_rejects_root_or_unset(user):
    assert violations(r.validate_app_non_root, make_args(C, web_container(user=user))) != []
    assert violations(r.validate_app_non_root, make_args(C, one_shot_container(user=user))) != []


@pytest.mark.parametrize("user", ["10001:10001", "10001", "app", "10001:0"])
def test_app_non_root_accepts_other_users(user):
    assert violations(r.validate_app_non_root, make_args(C, web_container(user=user))) == []


def test_app_non_root_does_not_judge_accessories():
    assert violations(r.validate_app_non_root, make_args(C, accessory_container(user="root"))) == []


# --- only-nginx-publishes-ports ----------------------------------------------


def test_only_nginx_publishes_ports():
    assert violations(r.validate_only_nginx_publishes_ports, make_args(C, nginx_container())) == []
    exposed_db = accessory_container(ports=[{"internal": 5432, "external": 5432, "ip": "127.0.0.1"}])
    found = violations(r.validate_only_nginx_publishes_ports, make_args(C, exposed_db))
    assert len(found) == 1 and "127.0.0.1:5432->5432" in found[0]
    assert violations(r.validate_only_nginx_publishes_ports, make_args(C, web_container(publishAllPorts=True))) != []
    assert violations(r.validate_only_nginx_publishes_ports, make_args(C, web_container(ports=[]))) == []


# --- backend-network-internal ------------------------------------------------


def test_backend_network_must_be_internal():
    assert violations(r.validate_backend_network_internal, make_args(N, network("backend"))) == []
    for internal in (False, None):
        args = make_args(N, network("backend", internal=internal))
        assert violations(r.validate_backend_network_internal, args) != []
    assert violations(r.validate_backend_network_internal, make_args(N, network("frontend"))) == []


# --- prod-data-volumes-protected ---------------------------------------------


@pytest.mark.parametrize("kind", ["postgres-data", "redis-data"])
def test_prod_data_volumes_must_be_protected(kind):
    unprotected = make_args(V, volume(kind, stack="prod"), stack="prod", protect=False)
    found = violations(r.validate_prod_data_volumes_protected, unprotected)
    assert len(found) == 1 and kind in found[0]
    protected = make_args(V, volume(kind, stack="prod"), stack="prod", protect=True)
    assert violations(r.validate_prod_data_volumes_protected, protected) == []


def test_prod_data_volume_rule_spares_dev_and_non_data_volumes():
    assert violations(r.validate_prod_data_volumes_protected, make_args(V, volume("postgres-data"), stack="dev")) == []
    assert (
        violations(r.validate_prod_data_volumes_protected, make_args(V, volume("static", stack="prod"), stack="prod"))
        == []
    )


def test_prod_data_volume_rule_reads_the_stack_from_the_urn_first():
    # A dev label copied into prod must not let a prod volume go unprotected.
    mislabelled = make_args(V, volume("postgres-data", stack="dev"), stack="prod")
    assert violations(r.validate_prod_data_volumes_protected, mislabelled) != []
    # Without a readable URN, the program's stack label decides.
    no_urn = make_args(V, volume("postgres-data", stack="prod"), urn="")
    assert violations(r.validate_prod_data_volumes_protected, no_urn) != []


def test_production_stacks_come_from_policy_config():
    args = make_args(V, volume("redis-data"), stack="production", config={"productionStacks": ["production"]})
    assert violations(r.validate_prod_data_volumes_protected, args) != []
    assert (
        violations(r.validate_prod_data_volumes_protected, make_args(V, volume("redis-data"), stack="production")) == []
    )


# --- prod-never-builds -------------------------------------------------------


def test_prod_never_builds():
    image = {"imageName": "registry.example.com/django-docker/web:abc", "build": {"context": "django_app"}}
    assert violations(r.validate_prod_never_builds, make_args(r.IMAGE, image, stack="dev")) == []
    found = violations(r.validate_prod_never_builds, make_args(r.IMAGE, image, stack="prod", name="web-image"))
    assert len(found) == 1 and "web-image" in found[0]


# --- advisory CIS runtime rules ----------------------------------------------


@pytest.mark.parametrize(
    "validate, bad, good",
    [
        (r.validate_cis_read_only_root, {"readOnly": False}, {"readOnly": True}),
        (
            r.validate_cis_capabilities_dropped,
            {"capabilities": {"drops": ["NET_RAW"]}},
            {"capabilities": {"drops": ["all"]}},
        ),
        (
            r.validate_cis_capabilities_dropped,
            {"capabilities": None},
            {"capabilities": {"drops": ["ALL"], "adds": ["CHOWN"]}},
        ),
        (r.validate_cis_no_new_privileges, {"securityOpts": []}, {"securityOpts": ["no-new-privileges"]}),
        (
            r.validate_cis_no_new_privileges,
            {"securityOpts": ["no-new-privileges:false"]},
            {"securityOpts": ["no-new-privileges=true"]},
        ),
        (r.validate_cis_not_privileged, {"privileged": True}, {"privileged": False}),
        (r.validate_cis_host_namespaces, {"networkMode": "host"}, {"networkMode": "bridge"}),
        (r.validate_cis_host_namespaces, {"pidMode": "host"}, {"pidMode": None}),
        (
            r.validate_cis_docker_socket,
            {"volumes": [{"hostPath": "/var/run/docker.sock", "containerPath": "/var/run/docker.sock"}]},
            {"volumes": [{"volumeName": "media", "containerPath": "/app/media"}]},
        ),
        (
            r.validate_cis_docker_socket,
            {"mounts": [{"type": "bind", "source": "/run/docker.sock", "target": "/d.sock"}]},
            {"mounts": [{"type": "tmpfs", "target": "/tmp"}]},
        ),
    ],
)
def test_cis_rules_on_containers(validate, bad, good):
    assert violations(validate, make_args(C, web_container(**bad))) != []
    assert violations(validate, make_args(C, web_container(**good))) == []


def test_cis_accessory_rules_cover_what_the_mandatory_app_rules_do_not():
    bare_db = accessory_container(memory=None, healthcheck=None)
    assert violations(r.validate_cis_accessory_memory_limit, make_args(C, bare_db)) != []
    assert violations(r.validate_cis_accessory_healthcheck, make_args(C, bare_db)) != []
    # App containers are the mandatory rules' business: no double report.
    bare_web = web_container(memory=None, healthcheck=None)
    assert violations(r.validate_cis_accessory_memory_limit, make_args(C, bare_web)) == []
    assert violations(r.validate_cis_accessory_healthcheck, make_args(C, bare_web)) == []


# --- swarm rules (target: swarm) -----------------------------------------------


def _sv(validate, props, **kwargs):
    return violations(validate, make_args(S, props, name="svc", **kwargs))


def test_swarm_service_labelled():
    assert _sv(r.validate_swarm_service_labelled, app_service()) == []
    found = _sv(r.validate_swarm_service_labelled, app_service(labels=[]))
    assert len(found) == 2 and all(message.startswith("svc ") for message in found)
    # The container rule does not look at services, nor the swarm rule at containers.
    assert violations(r.validate_resources_labelled, make_args(S, app_service(labels=[]))) == []
    assert violations(r.validate_swarm_service_labelled, make_args(C, web_container(labels=[]))) == []


@pytest.mark.parametrize("image", ["redis:7.4.5-bookworm", DIGEST, "sha256:" + "b" * 64])
def test_swarm_image_pinned_accepts_tags_and_digests(image):
    props = with_container_spec(accessory_service("redis"), image=image)
    assert _sv(r.validate_swarm_image_pinned, props) == []


@pytest.mark.parametrize(
    "image, why",
    [("redis:latest", "latest is a moving tag"), ("redis", "neither tag nor digest"), (None, "no image reference")],
)
def test_swarm_image_pinned_rejects_latest_and_untagged(image, why):
    found = _sv(r.validate_swarm_image_pinned, with_container_spec(accessory_service("redis"), image=image))
    assert len(found) == 1 and why in found[0] and found[0].startswith("svc (redis) ")


def test_swarm_app_image_by_digest():
    assert _sv(r.validate_swarm_app_image_by_digest, app_service()) == []
    tagged = with_container_spec(app_service(), image="registry.example.com/django-docker/web:3f2c1ab")
    found = _sv(r.validate_swarm_app_image_by_digest, tagged)
    assert len(found) == 1 and "svc (web)" in found[0] and "digest" in found[0]
    assert _sv(r.validate_swarm_app_image_by_digest, accessory_service()) == []


@pytest.mark.parametrize("memory", [None, 0, -1, True])
def test_swarm_memory_limit_rejects_missing_or_non_positive(memory):
    limits = {} if memory is None else {"memoryBytes": memory}
    for props in (app_service(), accessory_service()):  # every service, accessories too
        broken = with_task_spec(props, resources={"limits": limits})
        found = _sv(r.validate_swarm_memory_limit, broken)
        assert len(found) == 1 and "memoryBytes" in found[0]
    assert _sv(r.validate_swarm_memory_limit, with_task_spec(app_service(), resources=None)) != []


def test_swarm_memory_limit_accepts_a_limit():
    assert _sv(r.validate_swarm_memory_limit, app_service()) == []
    assert _sv(r.validate_swarm_memory_limit, accessory_service()) == []


@pytest.mark.parametrize("user", [None, "", "0", "root", "0:0"])
def test_swarm_app_non_root_rejects_root_or_unset(user):
    found = _sv(r.validate_swarm_app_non_root, with_container_spec(app_service(), user=user))
    assert len(found) == 1 and found[0].startswith("svc (web) runs as user")


def test_swarm_app_non_root_accepts_a_user_and_leaves_accessories_alone():
    assert _sv(r.validate_swarm_app_non_root, app_service()) == []
    assert _sv(r.validate_swarm_app_non_root, with_container_spec(app_service(), user="10001")) == []
    assert _sv(r.validate_swarm_app_non_root, accessory_service()) == []


@pytest.mark.parametrize("read_only", [None, False])
def test_swarm_app_read_only_root(read_only):
    assert _sv(r.validate_swarm_app_read_only_root, app_service()) == []
    found = _sv(r.validate_swarm_app_read_only_root, with_container_spec(app_service(), readOnly=read_only))
    assert len(found) == 1 and "writable root filesystem" in found[0]


@pytest.mark.parametrize("drops", [None, [], ["NET_RAW"]])
def test_swarm_app_capabilities_dropped(drops):
    assert _sv(r.validate_swarm_app_capabilities_dropped, app_service()) == []
    assert _sv(r.validate_swarm_app_capabilities_dropped, with_container_spec(app_service(), capDrops=["all"])) == []
    found = _sv(r.validate_swarm_app_capabilities_dropped, with_container_spec(app_service(), capDrops=drops))
    assert len(found) == 1 and "capDrops" in found[0]


@pytest.mark.parametrize(
    "name, value",
    [
        ("DJANGO_SECRET_KEY", "django-insecure-0123456789"),
        ("POSTGRES_PASSWORD", "hunter2-value"),
        ("REGISTRY_TOKEN", "ghp_0123456789"),
        ("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI"),
        ("STRIPE_API_KEY", "sk_live_0123"),
    ],
)
def test_swarm_no_secret_in_env_rejects_secret_names(name, value):
    env = {**app_service()["taskSpec"]["containerSpec"]["env"], name: value}
    found = _sv(r.validate_swarm_no_secret_in_env, with_container_spec(app_service(), env=env))
    assert len(found) == 1 and name in found[0] and found[0].startswith("svc (web) ")
    assert value not in found[0]  # the message never repeats the secret


@pytest.mark.parametrize(
    "name, value",
    [
        ("DATABASE_URL", "postgres://app:s3cret@postgres:5432/app"),
        ("CELERY_BROKER_URL", "redis://:s3cret@redis:6379/0"),
    ],
)
def test_swarm_no_secret_in_env_rejects_urls_with_a_password(name, value):
    env = {**app_service()["taskSpec"]["containerSpec"]["env"], name: value}
    found = _sv(r.validate_swarm_no_secret_in_env, with_container_spec(app_service(), env=env))
    assert len(found) == 1 and name in found[0] and "s3cret" not in found[0]


def test_swarm_no_secret_in_env_accepts_secret_files_and_urls_without_password():
    env = {
        "DJANGO_SECRET_KEY_FILE": "/run/secrets/django-secret-key",
        "POSTGRES_PASSWORD_FILE": "/run/secrets/postgres-password",
        "DATABASE_URL": "postgres://app@postgres:5432/app",
        "REDIS_URL": "redis://redis:6379/0",
        "DJANGO_SECURE_HSTS_SECONDS": "0",
    }
    assert _sv(r.validate_swarm_no_secret_in_env, with_container_spec(app_service(), env=env)) == []
    assert _sv(r.validate_swarm_no_secret_in_env, accessory_service()) == []
    assert _sv(r.validate_swarm_no_secret_in_env, with_container_spec(app_service(), env=None)) == []
    # Accessories are held to it too: postgres with its password in the environment.
    leaky_db = with_container_spec(accessory_service(), env={"POSTGRES_PASSWORD": "hunter2"})
    assert _sv(r.validate_swarm_no_secret_in_env, leaky_db) != []


def test_swarm_no_secret_in_env_reports_secret_names_even_when_values_are_unknown():
    # During a preview a value may be unknown; a secret-named variable is refused by its name
    # alone, and the value checks are then left to `pulumi up`.
    unknown = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"
    env = {"DJANGO_SECRET_KEY": unknown, "DATABASE_URL": unknown}
    found: list[str] = []
    with pytest.raises(UnknownValueError):
        r.validate_swarm_no_secret_in_env(
            make_args(S, with_container_spec(app_service(), env=env)), lambda message, urn=None: found.append(message)
        )
    assert len(found) == 1 and "DJANGO_SECRET_KEY" in found[0]


def test_swarm_no_secret_in_env_leaves_containers_to_their_secret_envs():
    # The container target passes secrets as (Pulumi-secret) environment variables by design.
    container = web_container(envs=["DJANGO_SECRET_KEY=x", "DATABASE_URL=postgres://app:pw@postgres/app"])
    assert violations(r.validate_swarm_no_secret_in_env, make_args(C, container)) == []


def test_swarm_secret_data_must_be_marked_secret():
    marked = make_args(SECRET, swarm_secret(), name="web-database-url", additional_secret_outputs=["data"])
    assert violations(r.validate_swarm_secret_data_secret, marked) == []
    plain = make_args(SECRET, swarm_secret(), name="web-database-url")
    found = violations(r.validate_swarm_secret_data_secret, plain)
    assert len(found) == 1 and found[0].startswith("web-database-url (web) ") and "not marked secret" in found[0]
    assert "c2VjcmV0" not in found[0]


def test_swarm_only_nginx_publishes_ports():
    assert _sv(r.validate_swarm_only_nginx_publishes_ports, nginx_service()) == []
    assert _sv(r.validate_swarm_only_nginx_publishes_ports, accessory_service()) == []
    for service, image in (("postgres", "postgres:15.14-bookworm"), ("redis", "redis:7.4.5-bookworm")):
        exposed = accessory_service(
            service, image, endpointSpec={"mode": "vip", "ports": [{"targetPort": 5432, "publishedPort": 5432}]}
        )
        found = _sv(r.validate_swarm_only_nginx_publishes_ports, exposed)
        assert len(found) == 1 and f"svc ({service})" in found[0] and "5432->5432/tcp" in found[0]
    any_port = app_service(endpointSpec={"mode": "vip", "ports": [{"targetPort": 8000}]})
    found = _sv(r.validate_swarm_only_nginx_publishes_ports, any_port)
    assert len(found) == 1 and "(any)->8000" in found[0]


@pytest.mark.parametrize("service, image", [("postgres", "postgres:15.14-bookworm"), ("redis", "redis:7.4.5-bookworm")])
def test_swarm_stateful_singleton_accepts_the_programs_shape(service, image):
    assert _sv(r.validate_swarm_stateful_singleton, accessory_service(service, image)) == []
    by_hostname = with_task_spec(accessory_service(service, image), placement={"constraints": ["node.hostname==db1"]})
    assert _sv(r.validate_swarm_stateful_singleton, by_hostname) == []


@pytest.mark.parametrize(
    "change, why",
    [
        ({"mode": {"replicated": {"replicas": 2}}}, "replicas=2"),
        ({"mode": {"replicated": {}}}, "replicas=None"),
        ({"mode": {"global": True}}, "global mode"),
        ({"updateConfig": {"order": "start-first", "failureAction": "rollback"}}, "order='start-first'"),
        ({"updateConfig": None}, "order=None"),
        ({"rollbackConfig": {"order": "start-first"}}, "rolls back start-first"),
    ],
)
def test_swarm_stateful_singleton_rejects_more_than_one_task_at_a_time(change, why):
    found = _sv(r.validate_swarm_stateful_singleton, accessory_service("postgres", **change))
    assert len(found) == 1 and why in found[0] and found[0].startswith("svc (postgres) is stateful")


@pytest.mark.parametrize("constraints", [None, [], ["node.platform.os==linux"], ["node.labels.data!=true"]])
def test_swarm_stateful_singleton_requires_a_node_placement(constraints):
    props = with_task_spec(accessory_service("redis", "redis:7.4.5-bookworm"), placement={"constraints": constraints})
    found = _sv(r.validate_swarm_stateful_singleton, props)
    assert len(found) == 1 and "placement constraint" in found[0]


def test_swarm_stateful_singleton_leaves_stateless_services_alone():
    assert _sv(r.validate_swarm_stateful_singleton, app_service()) == []
    assert _sv(r.validate_swarm_stateful_singleton, nginx_service(mode={"replicated": {"replicas": 2}})) == []


def test_swarm_app_rollout_accepts_the_programs_shape():
    assert _sv(r.validate_swarm_app_rollout, app_service()) == []
    # Accessories are not judged by it.
    assert _sv(r.validate_swarm_app_rollout, accessory_service(convergeConfig=None, updateConfig=None)) == []


@pytest.mark.parametrize(
    "change, why",
    [
        ({"convergeConfig": None}, "no convergeConfig"),
        ({"updateConfig": {"order": "start-first", "failureAction": "pause"}}, "failureAction='pause'"),
        ({"updateConfig": {"order": "start-first"}}, "failureAction=None"),
    ],
)
def test_swarm_app_rollout_rejects_an_unawaited_or_unrolled_back_release(change, why):
    props = {key: value for key, value in app_service(**change).items() if value is not None}
    found = _sv(r.validate_swarm_app_rollout, props)
    assert len(found) == 1 and why in found[0] and found[0].startswith("svc (web) ")


@pytest.mark.parametrize("healthcheck", [None, {"tests": []}, {"tests": ["NONE"]}])
def test_swarm_app_rollout_requires_a_healthcheck(healthcheck):
    found = _sv(r.validate_swarm_app_rollout, with_container_spec(app_service(), healthcheck=healthcheck))
    assert len(found) == 1 and "no healthcheck" in found[0]


def test_one_bad_swarm_service_is_reported_by_each_broken_rule_and_no_other():
    web = with_container_spec(app_service(), user="root", image="web:latest", readOnly=False)
    found = policy_violations(make_args(S, web), EnforcementLevel.MANDATORY)
    assert set(found) == {
        "swarm-app-non-root",
        "swarm-image-pinned",
        "swarm-app-image-by-digest",
        "swarm-app-read-only-root",
    }
    db = accessory_service(mode={"replicated": {"replicas": 2}}, endpointSpec={"ports": [{"targetPort": 5432}]})
    found = policy_violations(make_args(S, db), EnforcementLevel.MANDATORY)
    assert set(found) == {"swarm-stateful-singleton", "swarm-only-nginx-publishes-ports"}
    # No container rule looks at a service, however broken.
    assert not [name for name in found if not name.startswith("swarm-")]


# --- the pack as a whole -----------------------------------------------------


def test_enforcement_levels():
    levels = {policy.name: policy.enforcement_level for policy in r.POLICIES}
    mandatory = {name for name, level in levels.items() if level == EnforcementLevel.MANDATORY}
    assert mandatory == {
        "image-pinned",
        "app-image-by-digest",
        "resources-labelled",
        "app-memory-limit",
        "app-restart-policy",
        "app-healthcheck",
        "app-non-root",
        "only-nginx-publishes-ports",
        "backend-network-internal",
        "prod-data-volumes-protected",
        "prod-never-builds",
        "swarm-service-labelled",
        "swarm-image-pinned",
        "swarm-app-image-by-digest",
        "swarm-memory-limit",
        "swarm-app-non-root",
        "swarm-app-read-only-root",
        "swarm-app-capabilities-dropped",
        "swarm-no-secret-in-env",
        "swarm-secret-data-secret",
        "swarm-only-nginx-publishes-ports",
        "swarm-stateful-singleton",
        "swarm-app-rollout",
    }
    advisory = {name for name, level in levels.items() if level == EnforcementLevel.ADVISORY}
    assert advisory == set(levels) - mandatory
    assert all(name.startswith("cis-") for name in advisory)
    assert len(levels) == len(r.POLICIES), "policy names must be unique"


def test_one_bad_container_is_reported_by_each_broken_rule_and_no_other():
    props = web_container(image="web:latest", user="root", memory=0)
    found = policy_violations(make_args(C, props), EnforcementLevel.MANDATORY)
    assert set(found) == {"image-pinned", "app-image-by-digest", "app-non-root", "app-memory-limit"}


def test_unknown_values_at_preview_are_left_to_the_engine():
    # The dev image digest is unknown until the image is built: pulumi_policy
    # turns this error into "can't run policy during preview" and reruns at up.
    unknown = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"
    with pytest.raises(UnknownValueError):
        violations(r.validate_app_image_by_digest, make_args(C, web_container(image=unknown)))


# --- what the documentation and the pack's own virtualenv say -----------------

ROOT = Path(__file__).resolve().parents[2]


def test_the_documented_rule_table_matches_the_pack():
    text = (ROOT / "docs" / "delivery.md").read_text()
    documented = dict(re.findall(r"^\| `([a-z0-9-]+)` \| (mandatory|advisory) \|", text, re.M))
    assert documented == {policy.name: policy.enforcement_level.value for policy in r.POLICIES}


def test_policy_venv_pins_agree_with_the_project():
    def pins(path):
        return dict(
            line.split("==") for line in path.read_text().splitlines() if "==" in line and not line.startswith("#")
        )

    project = {**pins(ROOT / "requirements.txt"), **pins(ROOT / "requirements-dev.txt")}
    pack = pins(ROOT / "policy" / "requirements.txt")
    assert set(pack) == {"pulumi", "pulumi-policy"}
    assert all(project[name] == version for name, version in pack.items())


def test_a_label_unknown_in_preview_does_not_stop_the_rules_that_need_other_labels():
    # A release's preview: the release gate's run id label and the image digest are not known
    # yet. Seen on the real engine: reading every label made pulumi_policy skip every app rule.
    unknown = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"
    labels = web_container()["labels"] + [{"label": "django-docker.release", "value": unknown}]
    args = make_args(C, web_container(labels=labels, image=unknown))
    label_rules = [
        r.validate_resources_labelled,
        r.validate_app_memory_limit,
        r.validate_app_restart_policy,
        r.validate_app_healthcheck,
        r.validate_app_non_root,
        r.validate_only_nginx_publishes_ports,
    ]
    for rule in label_rules:
        assert violations(rule, args) == [], rule.__name__
    with pytest.raises(UnknownValueError):  # the image rules do skip: the digest is what they judge
        violations(r.validate_app_image_by_digest, args)
