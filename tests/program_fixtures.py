"""Shared helpers for the whole-program tests: run a stack's program under mocks."""

from __future__ import annotations

from components.settings.app import RUNTIME_REPOSITORY
from planning.harness import IMAGE, Plan, PlannedResource, plan_stack

GIT_SHA = "0123456789abcdef0123456789abcdef01234567"
DEV_DIGEST = "registry.example.com/acme/web@sha256:" + "d" * 64
DEV_STACK = "organization/django-docker/dev"
PROD_SECRETS = {"djangoSecretKey": "prod-secret-key-value-0123456789", "postgresPassword": "prod-db-password-value"}


def dev_outputs(ref: str = DEV_DIGEST, pushed: bool = True) -> dict:
    return {DEV_STACK: {"imageRef": ref, "imagePushed": pushed, "gitSha": GIT_SHA}}


def plan_dev(**kwargs) -> Plan:
    return plan_stack("dev", **kwargs)


def plan_prod(**kwargs) -> Plan:
    kwargs.setdefault("stack_references", dev_outputs())
    kwargs.setdefault("secrets", PROD_SECRETS)
    return plan_stack("prod", **kwargs)


def builds(plan: Plan) -> tuple[PlannedResource, PlannedResource]:
    """(the app's docker.Image, the runtime's) of a stack that builds."""
    (runtime,) = [i for i in plan.of_type(IMAGE) if i.inputs["imageName"].startswith(f"{RUNTIME_REPOSITORY}:")]
    (app,) = [i for i in plan.of_type(IMAGE) if i is not runtime]
    return app, runtime


def env_of(container) -> dict[str, str]:
    return dict(item.split("=", 1) for item in container.inputs.get("envs", []))
