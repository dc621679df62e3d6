"""Plan -> Docker SDK translation (pure; no engine needed)."""

from pathlib import Path

import pytest

from rehearsal.emulation.translate import (
    MIB,
    UnsupportedInput,
    container_spec,
    duration_ns,
    image_build_kwargs,
    network_kwargs,
    substitute,
    volume_kwargs,
)

RUN = {"rehearsal.stack": "dev", "rehearsal.run": "r1"}

WEB = {
    "image": "sha256:" + "a" * 64,
    "command": ["gunicorn", "--config", "gunicorn.conf.py", "config.wsgi:application"],
    "envs": ["DJANGO_SETTINGS_MODULE=config.settings.production", "REDIS_URL=redis://redis:6379/0"],
    "user": "10001:10001",
    "networksAdvanced": [{"name": "front-real", "aliases": ["web-1"]}, {"name": "back-real"}],
    "volumes": [{"volumeName": "media-real", "containerPath": "/app/media"}],
    "healthcheck": {
        "tests": ["CMD", "python", "-m", "django_docker_runtime.healthcheck", "web"],
        "interval": "5s",
        "timeout": "10s",
        "startPeriod": "20s",
        "retries": 3.0,
    },
    "wait": True,
    "waitTimeout": 300.0,
    "memory": 512.0,
    "restart": "unless-stopped",
    "stopTimeout": 35.0,
    "destroyGraceSeconds": 35.0,
    "labels": [{"label": "django-docker.service", "value": "web"}],
    "readOnly": True,
    "tmpfs": {"/tmp": "rw,noexec,nosuid,size=64m"},
    "capabilities": {"drops": ["ALL"]},
    "securityOpts": ["no-new-privileges:true"],
    "init": True,
    "logDriver": "json-file",
    "logOpts": {"max-size": "10m", "max-file": "3"},
}


def test_web_container_translates_field_by_field():
    spec = container_spec("web-1", WEB, real_name="web-1-0123abc", extra_labels=RUN)
    assert spec.name == "web-1-0123abc"
    assert spec.create == {
        "image": WEB["image"],
        "name": "web-1-0123abc",
        "command": WEB["command"],
        "environment": WEB["envs"],
        "user": "10001:10001",
        "stop_timeout": 35,
        "labels": {"django-docker.service": "web", **RUN},
        "healthcheck": {
            "test": ["CMD", "python", "-m", "django_docker_runtime.healthcheck", "web"],
            "interval": 5 * 10**9,
            "timeout": 10 * 10**9,
            "start_period": 20 * 10**9,
            "retries": 3,
        },
        "volumes": ["/app/media"],
    }
    assert spec.host_config == {
        "binds": ["media-real:/app/media:rw"],
        "tmpfs": {"/tmp": "rw,noexec,nosuid,size=64m"},
        "mem_limit": 512 * MIB,
        "restart_policy": {"Name": "unless-stopped", "MaximumRetryCount": 0},
        "read_only": True,
        "cap_drop": ["ALL"],
        "security_opt": ["no-new-privileges:true"],
        "init": True,
        "log_config": {"type": "json-file", "config": {"max-size": "10m", "max-file": "3"}},
        "network_mode": "front-real",
    }
    assert [(n.name, n.aliases) for n in spec.networks] == [("front-real", ["web-1"]), ("back-real", [])]
    assert spec.lifecycle.wait and spec.lifecycle.wait_timeout == 300 and spec.lifecycle.must_run
    assert spec.lifecycle.destroy_grace_seconds == 35


def test_unknown_container_field_is_an_error_that_names_it():
    with pytest.raises(UnsupportedInput, match=r"container web-1: input field gpus not understood"):
        container_spec("web-1", {**WEB, "gpus": "all"}, real_name="x", extra_labels={})


def test_unknown_nested_field_is_named_with_its_path():
    inputs = {**WEB, "networksAdvanced": [{"name": "n", "macAddress": "02:42:ac:11:00:02"}]}
    with pytest.raises(UnsupportedInput, match=r"networksAdvanced\[0\]\.macAddress"):
        container_spec("web-1", inputs, real_name="x", extra_labels={})
    with pytest.raises(UnsupportedInput, match=r"healthcheck\.startInterval"):
        container_spec(
            "web-1",
            {**WEB, "healthcheck": {**WEB["healthcheck"], "startInterval": "1s"}},
            real_name="x",
            extra_labels={},
        )


def test_empty_unknown_fields_are_not_errors():
    # The SDK sends unset optional lists/maps as empty values.
    container_spec("web-1", {**WEB, "gpus": None, "devices": []}, real_name="x", extra_labels={})


def test_nginx_ports_uploads_and_read_only_volumes():
    nginx = {
        "image": "nginx:1.28.0-bookworm",
        "ports": [{"internal": 80.0, "external": 8080.0, "ip": "127.0.0.1", "protocol": "tcp"}],
        "uploads": [
            {"file": "/etc/nginx/nginx.conf", "content": "events {}\n"},
            {"file": "/etc/nginx/tls/server.key", "content": "KEY", "permissions": "0600"},
            {"file": "/usr/local/bin/x", "contentBase64": "ZWNobw==", "executable": True},
        ],
        "volumes": [{"volumeName": "static-real", "containerPath": "/var/www/static", "readOnly": True}],
        "networksAdvanced": [{"name": "front-real"}],
    }
    spec = container_spec("nginx", nginx, real_name="nginx-1", extra_labels={})
    assert spec.create["ports"] == [80]
    assert spec.host_config["port_bindings"] == {"80/tcp": [("127.0.0.1", 8080)]}
    assert spec.host_config["binds"] == ["static-real:/var/www/static:ro"]
    assert spec.host_config["restart_policy"] == {"Name": "no", "MaximumRetryCount": 0}  # provider default
    assert [(u.path, u.content, oct(u.mode)) for u in spec.uploads] == [
        ("/etc/nginx/nginx.conf", b"events {}\n", "0o644"),
        ("/etc/nginx/tls/server.key", b"KEY", "0o600"),
        ("/usr/local/bin/x", b"echo", "0o744"),
    ]


def test_upload_needs_exactly_one_source():
    with pytest.raises(UnsupportedInput, match="exactly one of content"):
        container_spec(
            "n",
            {"image": "i", "uploads": [{"file": "/a", "content": "x", "contentBase64": "eA=="}]},
            real_name="n",
            extra_labels={},
        )


def test_one_shot_lifecycle():
    spec = container_spec(
        "migrate",
        {
            "image": "i",
            "command": ["python", "manage.py", "migrate"],
            "mustRun": False,
            "attach": True,
            "logs": True,
            "restart": "no",
        },
        real_name="m",
        extra_labels={},
    )
    assert (spec.lifecycle.must_run, spec.lifecycle.attach, spec.lifecycle.logs) == (False, True, True)


def test_durations_follow_go():
    assert duration_ns("1m30s", "x") == 90 * 10**9
    assert duration_ns("500ms", "x") == 5 * 10**8
    assert duration_ns("0s", "x") == 0
    with pytest.raises(UnsupportedInput, match="not a Go duration"):
        duration_ns("30 seconds", "x")


def test_network_and_volume():
    kwargs = network_kwargs(
        "backend",
        {
            "internal": True,
            "driver": "bridge",
            "ipamConfigs": [{"subnet": "172.30.10.0/24"}],
            "labels": [{"label": "django-docker.network", "value": "backend"}],
        },
        "backend-1234567",
        RUN,
    )
    assert kwargs["name"] == "backend-1234567" and kwargs["internal"] is True
    assert kwargs["ipam"]["pool_configs"] == [
        {"subnet": "172.30.10.0/24", "gateway": None, "iprange": None, "aux_addresses": None}
    ]
    assert kwargs["labels"] == {"django-docker.network": "backend", **RUN}
    with pytest.raises(UnsupportedInput, match="network backend: input field ingress"):
        network_kwargs("backend", {"ingress": True}, "b", {})
    assert volume_kwargs("media", {"labels": []}, "media-1", RUN) == {
        "name": "media-1",
        "driver": "local",
        "driver_opts": None,
        "labels": RUN,
    }


def test_image_build_kwargs(tmp_path: Path):
    (tmp_path / "django_app").mkdir()
    build = {
        "context": str(tmp_path / "django_app"),
        "dockerfile": str(tmp_path / "django_app/Dockerfile"),
        "args": {"GIT_SHA": "abc"},
        "platform": "linux/amd64",
    }
    inputs = {
        "imageName": "django-docker/web:abc",
        "skipPush": True,
        "buildOnPreview": False,
        "build": build,
    }
    assert image_build_kwargs("img", inputs, tmp_path) == {
        "path": str(tmp_path / "django_app"),
        "dockerfile": "Dockerfile",
        "tag": "django-docker/web:abc",
        "buildargs": {"GIT_SHA": "abc"},
        "platform": "linux/amd64",
    }
    with pytest.raises(UnsupportedInput, match="build.secrets"):
        image_build_kwargs("img", {**inputs, "build": {**build, "secrets": {"a": "b"}}}, tmp_path)


def test_substitute_replaces_whole_planned_values_only():
    mapping = {"net-mock": "net-real", "m-id": "0123"}
    value = {
        "networksAdvanced": [{"name": "net-mock"}],
        "labels": [{"label": "x", "value": "m-id"}],
        "envs": ["A=net-mock"],
    }
    assert substitute(value, mapping) == {
        "networksAdvanced": [{"name": "net-real"}],
        "labels": [{"label": "x", "value": "0123"}],
        "envs": ["A=net-mock"],
    }


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_every_planned_resource_of_the_committed_stacks_translates(stack):
    from planning.harness import JOB, PROJECT_ROOT, plan_stack
    from rehearsal.emulation.engine import check_understood
    from rehearsal.runners.stacks import plan_options

    plan = plan_stack(stack, **plan_options(stack, app_ref=f"django-docker/web@sha256:{'b' * 64}"))
    check_understood(plan, project_root=PROJECT_ROOT)  # raises on anything it cannot apply
    kinds = {r.type.rsplit(":", 1)[-1] for r in plan.resources if r.custom}
    assert {"Network", "Volume", "Container", "Job"} <= kinds
    assert plan.of_type(JOB)


def test_unknown_resource_type_is_an_error_that_names_it():
    from planning.harness import Plan, PlannedResource
    from rehearsal.emulation.engine import check_understood
    from rehearsal.errors import RehearsalError

    svc = PlannedResource(
        type="docker:index/plugin:Plugin",
        name="svc",
        urn="urn:svc",
        inputs={},
        outputs={},
        options={"parent": "", "dependencies": []},
    )
    with pytest.raises(RehearsalError, match="svc: type docker:index/plugin:Plugin not understood"):
        check_understood(Plan(stack="t", config={}, resources=[svc]), project_root=None)
