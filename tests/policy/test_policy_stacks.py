"""Both committed stacks pass every mandatory rule of the policy pack.

The program runs under the SDK's mocks (planning.harness) with each stack's
committed config; every resource it registers is handed to every policy, as
the engine would hand it: its type, inputs (wire names), URN and `protect`.
"""

from __future__ import annotations

import pytest
from policy_support import docker_rules, make_args, policy_violations
from pulumi_policy import EnforcementLevel

from planning.harness import plan_stack

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


def _args(resource):
    return make_args(
        resource.type,
        resource.inputs,
        name=resource.name,
        urn=resource.urn,
        protect=bool(resource.options.get("protect")),
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
