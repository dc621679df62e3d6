"""Helpers for calling the policy pack's validation functions directly.

The Pulumi engine cannot run here, so tests build the same
`ResourceValidationArgs` pulumi_policy builds for the engine: props wrapped in
its unknown-checking proxy, a real URN (the rules read the stack from it) and
`PolicyResourceOptions`.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

from pulumi_policy import PolicyCustomTimeouts, PolicyResourceOptions, ResourceValidationArgs
from pulumi_policy.proxy import unknown_checking_proxy

POLICY_DIR = Path(__file__).resolve().parents[2] / "policy"
# The CLI runs the pack with policy/ on sys.path; do the same so that
# `import docker_rules` is the very module the pack loads.
if str(POLICY_DIR) not in sys.path:
    sys.path.insert(0, str(POLICY_DIR))

import docker_rules  # noqa: E402

PROJECT = "django-docker"


def make_args(
    resource_type: str,
    props: dict[str, Any],
    *,
    name: str = "resource",
    stack: str = "dev",
    protect: bool = False,
    config: Optional[dict[str, Any]] = None,
    urn: Optional[str] = None,
    additional_secret_outputs: Sequence[str] = (),
) -> ResourceValidationArgs:
    options = PolicyResourceOptions(
        protect=protect,
        ignore_changes=[],
        delete_before_replace=None,
        aliases=[],
        custom_timeouts=PolicyCustomTimeouts(0, 0, 0),
        additional_secret_outputs=list(additional_secret_outputs),
    )
    return ResourceValidationArgs(
        resource_type=resource_type,
        props=unknown_checking_proxy(props),
        urn=urn if urn is not None else f"urn:pulumi:{stack}::{PROJECT}::{resource_type}::{name}",
        name=name,
        opts=options,
        provider=None,
        config=config,
    )


def violations(validate: Callable, args: ResourceValidationArgs) -> list[str]:
    """Messages a validation function reports for one resource."""
    found: list[str] = []
    validate(args, lambda message, urn=None: found.append(message))
    return found


def policy_violations(args: ResourceValidationArgs, level=None) -> dict[str, list[str]]:
    """Every policy of the pack (optionally of one enforcement level) run on one resource."""
    result = {}
    for policy in docker_rules.POLICIES:
        if level is not None and policy.enforcement_level != level:
            continue
        found: list[str] = []
        policy.validate(args, lambda message, urn=None, found=found: found.append(message))
        if found:
            result[policy.name] = found
    return result


# --- compliant resources, as the program registers them (docs/contracts.md) ---

DIGEST = "registry.example.com/django-docker/web@sha256:" + "a" * 64


def _labels(**pairs: str) -> list[dict[str, str]]:
    return [{"label": f"django-docker.{key.replace('_', '-')}", "value": value} for key, value in pairs.items()]


def _hardened() -> dict[str, Any]:
    return {
        "readOnly": True,
        "capabilities": {"drops": ["ALL"]},
        "securityOpts": ["no-new-privileges:true"],
    }


def web_container(**overrides: Any) -> dict[str, Any]:
    props = {
        "image": DIGEST,
        "command": ["gunicorn", "--config", "gunicorn.conf.py", "config.wsgi:application"],
        "user": "10001:10001",
        "memory": 512,
        "restart": "unless-stopped",
        "healthcheck": {
            "tests": ["CMD", "python", "-m", "django_docker_runtime.healthcheck", "web"],
            "interval": "10s",
            "timeout": "5s",
            "retries": 3,
            "startPeriod": "20s",
        },
        "labels": _labels(service="web", role="app", stack="dev"),
        **_hardened(),
    }
    props.update(overrides)
    return props


def one_shot_container(service: str = "migrate", **overrides: Any) -> dict[str, Any]:
    props = {
        "image": DIGEST,
        "command": ["python", "manage.py", service, "--noinput"],
        "user": "10001:10001",
        "memory": 256,
        "restart": "no",
        "mustRun": False,
        "attach": True,
        "labels": _labels(service=service, role="app", stack="dev"),
        **_hardened(),
    }
    props.update(overrides)
    return props


def accessory_container(
    service: str = "postgres", image: str = "postgres:15.14-bookworm", **overrides: Any
) -> dict[str, Any]:
    props = {
        "image": image,
        "memory": 512,
        "restart": "unless-stopped",
        "healthcheck": {"tests": ["CMD", "pg_isready"], "interval": "5s", "timeout": "5s", "retries": 5},
        "labels": _labels(service=service, role="accessory", stack="dev"),
        **_hardened(),
    }
    props.update(overrides)
    return props


def nginx_container(**overrides: Any) -> dict[str, Any]:
    props = accessory_container(
        service="nginx",
        image="nginx:1.28.0-bookworm",
        ports=[{"internal": 80, "external": 80, "ip": "0.0.0.0", "protocol": "tcp"}],
    )
    props.update(overrides)
    return props


def network(kind: str, **overrides: Any) -> dict[str, Any]:
    props = {"internal": kind == "backend", "labels": _labels(network=kind, stack="dev")}
    props.update(overrides)
    return props


def volume(kind: str, stack: str = "dev", **overrides: Any) -> dict[str, Any]:
    props = {"labels": _labels(volume=kind, stack=stack)}
    props.update(overrides)
    return props


# --- swarm (`target: swarm`): services and the secrets they mount (components/swarm.py) ---

MIB = 1024 * 1024
DATA_NODE = "node.labels.django-docker.data==true"


def _service_labels(service: str, role: str) -> list[dict[str, str]]:
    return _labels(service=service, role=role, stack="prod")


def _rolling(order: str) -> dict[str, Any]:
    return {
        "updateConfig": {"parallelism": 1, "order": order, "failureAction": "rollback", "monitor": "1m30s"},
        "rollbackConfig": {"parallelism": 0, "order": order, "failureAction": "pause", "monitor": "1m30s"},
    }


def app_service(service: str = "web", **overrides: Any) -> dict[str, Any]:
    """What swarm.app_service registers (web, celery-worker): hardened, secrets as files, rolled
    start-first, awaited by `pulumi up`."""
    props = {
        "taskSpec": {
            "containerSpec": {
                "image": DIGEST,
                "args": ["gunicorn", "--config", "gunicorn.conf.py", "config.wsgi:application"],
                "user": "10001:10001",
                "readOnly": True,
                "capDrops": ["ALL"],
                "env": {
                    "DJANGO_SETTINGS_MODULE": "config.settings.production",
                    "REDIS_URL": "redis://redis:6379/0",
                    "DJANGO_SECRET_KEY_FILE": "/run/secrets/django-secret-key",
                    "DATABASE_URL_FILE": "/run/secrets/database-url",
                },
                "healthcheck": {
                    "tests": ["CMD", "python", "-m", "django_docker_runtime.healthcheck", "web"],
                    "interval": "10s",
                },
                "secrets": [{"secretId": "s1", "secretName": "web-database-url", "fileName": "database-url"}],
            },
            "resources": {"limits": {"memoryBytes": 512 * MIB}},
            "placement": {"constraints": [DATA_NODE]},
        },
        "mode": {"replicated": {"replicas": 3}},
        "endpointSpec": {"mode": "dnsrr"},
        "convergeConfig": {"delay": "2s", "timeout": "240s"},
        "labels": _service_labels(service, "app"),
        **_rolling("start-first"),
    }
    props.update(overrides)
    return props


def accessory_service(
    service: str = "postgres", image: str = "postgres:15.14-bookworm", **overrides: Any
) -> dict[str, Any]:
    """What swarm.accessory_service registers: one task, stop-first, on the data node."""
    props = {
        "taskSpec": {
            "containerSpec": {
                "image": image,
                "env": {"POSTGRES_PASSWORD_FILE": "/run/secrets/postgres-password", "POSTGRES_USER": "app"},
                "healthcheck": {"tests": ["CMD", "pg_isready"], "interval": "5s"},
            },
            "resources": {"limits": {"memoryBytes": 512 * MIB}},
            "placement": {"constraints": [DATA_NODE]},
        },
        "mode": {"replicated": {"replicas": 1}},
        "endpointSpec": {"mode": "dnsrr"},
        "convergeConfig": {"delay": "2s", "timeout": "80s"},
        "labels": _service_labels(service, "accessory"),
        **_rolling("stop-first"),
    }
    props.update(overrides)
    return props


def nginx_service(**overrides: Any) -> dict[str, Any]:
    props = accessory_service(
        service="nginx",
        image="nginx:1.28.0-bookworm",
        endpointSpec={"mode": "vip", "ports": [{"targetPort": 80, "publishedPort": 80, "publishMode": "host"}]},
    )
    props.update(overrides)
    return props


def with_container_spec(props: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """A copy of a service's props with taskSpec.containerSpec changed (None: removed)."""
    spec = {**props["taskSpec"]["containerSpec"], **changes}
    spec = {key: value for key, value in spec.items() if value is not None}
    return {**props, "taskSpec": {**props["taskSpec"], "containerSpec": spec}}


def with_task_spec(props: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """A copy of a service's props with taskSpec changed (None: removed)."""
    task = {key: value for key, value in {**props["taskSpec"], **changes}.items() if value is not None}
    return {**props, "taskSpec": task}


def swarm_secret(service: str = "web", **overrides: Any) -> dict[str, Any]:
    props = {"data": "c2VjcmV0", "labels": _labels(service=service, role="secret", stack="prod")}
    props.update(overrides)
    return props
