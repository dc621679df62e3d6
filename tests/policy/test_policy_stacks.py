"""Both committed stacks, and prod on swarm, pass every mandatory rule of the policy pack.

The program runs under the SDK's mocks (planning.harness) with each stack's
committed config; every resource it registers is handed to every policy, as
the engine would hand it: its type, inputs (wire names), URN, `protect` and
`additionalSecretOutputs`.
"""

from __future__ import annotations

import base64

import pytest
from policy_support import docker_rules, make_args, policy_violations
from pulumi_policy import EnforcementLevel

from planning import harness
from planning.harness import plan_stack
from tests.program_fixtures import plan_prod

DEV_OUTPUTS = {
    "imageRef": "registry.example.com/django-docker/web@sha256:" + "a" * 64,
    "imagePushed": True,
    "gitSha": "0" * 40,
}


def _plan(stack, **overrides):
    references = {"organization/django-docker/dev": DEV_OUTPUTS} if stack == "prod" else None
    return plan_stack(stack, stack_references=references, overrides=overrides or None)


@pytest.fixture(scope="module", params=["dev", "prod"])
def plan(request):
    return _plan(request.param)


@pytest.fixture(scope="module")
def swarm_plan():
    # The harness keeps a registration's options but not its additionalSecretOutputs, the one
    # secret marker a Python policy receives (pulumi_policy hands validations the plain value
    # of a secret input). Keep them too, from the very request the SDK sent.
    register = harness._RecordingMonitor.RegisterResource

    def register_keeping_secret_outputs(monitor, request):
        response = register(monitor, request)
        if monitor.requests and monitor.requests[-1]["urn"] == response.urn:
            monitor.requests[-1]["options"]["additional_secret_outputs"] = list(request.additionalSecretOutputs)
        return response

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(harness._RecordingMonitor, "RegisterResource", register_keeping_secret_outputs)
        return plan_prod(overrides={"target": "swarm"})


def _args(resource, inputs=None, **options):
    return make_args(
        resource.type,
        resource.inputs if inputs is None else inputs,
        name=resource.name,
        urn=resource.urn,
        protect=bool(resource.options.get("protect")),
        additional_secret_outputs=options.get(
            "additional_secret_outputs", resource.options.get("additional_secret_outputs", ())
        ),
    )


def _violations(plan, level):
    found = {}
    for resource in plan.resources:
        if resource.custom:
            for policy, messages in policy_violations(_args(resource), level).items():
                found.setdefault(policy, []).extend(messages)
    return found


def test_committed_stack_passes_every_mandatory_rule(plan):
    assert _violations(plan, EnforcementLevel.MANDATORY) == {}


def test_the_rules_had_something_to_check(plan):
    # A pass over a plan without the resources the rules select would prove nothing.
    runs = [r for r in plan.resources if r.type in docker_rules.RUNS_A_CONTAINER]
    assert {r.type for r in runs} == {docker_rules.CONTAINER, docker_rules.JOB}
    roles = {r.label("django-docker.role") for r in runs}
    assert roles == {"app", "accessory"}
    services = {r.label("django-docker.service") for r in runs}
    assert {"web", "migrate", "collectstatic", "nginx", "postgres"} <= services
    assert {r.label("django-docker.service") for r in plan.of_type(docker_rules.JOB)} - {"backup"} == {
        "migration-gate",
        "migrate",
        "collectstatic",
    }
    networks = {r.label("django-docker.network") for r in plan.of_type(docker_rules.NETWORK)}
    assert "backend" in networks
    volumes = {r.label("django-docker.volume") for r in plan.of_type(docker_rules.VOLUME)}
    assert {"postgres-data", "redis-data"} <= volumes


def test_prod_promotes_and_protects():
    plan = _plan("prod")
    assert plan.of_type(docker_rules.IMAGE) == []
    for web in plan.containers("web"):
        assert web.inputs["image"] == DEV_OUTPUTS["imageRef"]
    data = [
        v for v in plan.of_type(docker_rules.VOLUME) if v.label("django-docker.volume") in docker_rules.DATA_VOLUMES
    ]
    assert data and all(v.options["protect"] for v in data)


def test_an_unprotected_prod_would_be_refused():
    # The same check on a prod whose config turns protection off must fail.
    plan = _plan("prod", protectData=False)
    found = _violations(plan, EnforcementLevel.MANDATORY)
    assert set(found) == {"prod-data-volumes-protected"}
    assert len(found["prod-data-volumes-protected"]) == 2


def test_a_release_job_is_held_to_the_container_rules():
    # The jobs are not docker.Containers; a rule that skipped them would let a root or
    # unpinned one-shot through. Break the committed migrate job and see it refused.
    plan = _plan("dev")
    (migrate,) = [r for r in plan.of_type(docker_rules.JOB) if r.label("django-docker.service") == "migrate"]
    broken = {**migrate.inputs, "user": "0:0", "image": "django-docker/web:latest", "readOnly": False}
    found = policy_violations(
        make_args(migrate.type, broken, name=migrate.name, urn=migrate.urn), EnforcementLevel.MANDATORY
    )
    assert {"app-non-root", "image-pinned", "app-image-by-digest"} <= set(found)


# --- prod on swarm (`target: swarm`) -------------------------------------------


def _services(plan):
    return {r.label("django-docker.service"): r for r in plan.of_type(docker_rules.SERVICE)}


def test_swarm_prod_passes_every_mandatory_rule(swarm_plan):
    assert _violations(swarm_plan, EnforcementLevel.MANDATORY) == {}


def test_no_swarm_rule_even_warns_on_swarm_prod(swarm_plan):
    found = _violations(swarm_plan, None)
    assert {policy: messages for policy, messages in found.items() if policy.startswith("swarm-")} == {}


def test_the_swarm_rules_had_something_to_check(swarm_plan):
    assert swarm_plan.of_type(docker_rules.CONTAINER) == []
    services = _services(swarm_plan)
    assert set(services) == {"web", "celery-worker", "nginx", "postgres", "redis"}
    roles = {name: service.label("django-docker.role") for name, service in services.items()}
    assert {name for name, role in roles.items() if role == "app"} == {"web", "celery-worker"}
    assert docker_rules.STATEFUL_SERVICES <= set(services)
    secrets = swarm_plan.of_type(docker_rules.SECRET)
    assert secrets and all(s.options["additional_secret_outputs"] == ["data"] for s in secrets)
    # The release jobs are still jobs on swarm, and still held to the container rules.
    assert {r.label("django-docker.service") for r in swarm_plan.of_type(docker_rules.JOB)} >= {
        "migrate",
        "collectstatic",
    }


def test_a_broken_swarm_prod_would_be_refused(swarm_plan):
    services = _services(swarm_plan)
    web = services["web"]
    (database_url,) = [s for s in swarm_plan.of_type(docker_rules.SECRET) if s.name == "django-docker-web-database-url"]
    spec = web.inputs["taskSpec"]["containerSpec"]
    # The database URL back in the environment, as root, without rollback.
    leaky_web = {
        **web.inputs,
        "taskSpec": {
            **web.inputs["taskSpec"],
            "containerSpec": {
                **spec,
                "user": "0",
                "env": {**spec["env"], "DATABASE_URL": base64.b64decode(database_url.inputs["data"]).decode()},
            },
        },
        "updateConfig": {**web.inputs["updateConfig"], "failureAction": "pause"},
    }
    found = policy_violations(_args(web, leaky_web), EnforcementLevel.MANDATORY)
    assert set(found) == {"swarm-app-non-root", "swarm-no-secret-in-env", "swarm-app-rollout"}
    assert "DATABASE_URL" in found["swarm-no-secret-in-env"][0]

    postgres = services["postgres"]
    exposed_db = {
        **postgres.inputs,
        "mode": {"replicated": {"replicas": 2}},
        "endpointSpec": {"mode": "vip", "ports": [{"targetPort": 5432, "publishedPort": 5432}]},
    }
    found = policy_violations(_args(postgres, exposed_db), EnforcementLevel.MANDATORY)
    assert set(found) == {"swarm-stateful-singleton", "swarm-only-nginx-publishes-ports"}

    unmarked = policy_violations(_args(database_url, additional_secret_outputs=()), EnforcementLevel.MANDATORY)
    assert set(unmarked) == {"swarm-secret-data-secret"}
