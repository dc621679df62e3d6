"""rehearsal.emulation.readback for services, networks, configs and secrets (pure): what the
provider's Read stores, and which inputs it would read back differently."""

from __future__ import annotations

import base64

import pytest

from rehearsal.emulation.readback import (
    config_view,
    configured_drift,
    network_view,
    resource_drift,
    secret_view,
    short_duration,
)

S = 10**9


@pytest.mark.parametrize(
    "ns, text",
    [
        (0, "0s"),
        (5 * S, "5s"),
        (60 * S, "1m"),
        (90 * S, "1m30s"),
        (130 * S, "2m10s"),
        (3600 * S, "1h"),
        (3660 * S, "1h1m"),
    ],
)
def test_short_durations_are_the_providers(ns, text):
    assert short_duration(ns) == text


def inspect_service(**container) -> dict:
    """A service as `docker service inspect` (API 1.41) gives it."""
    return {
        "ID": "svc1",
        "Spec": {
            "Name": "web-abc1234",
            "Labels": {"django-docker.service": "web"},
            "TaskTemplate": {
                "ContainerSpec": {
                    "Image": "acme/web@sha256:" + "a" * 64,
                    "Args": ["gunicorn"],
                    "Env": ["A=1", "B=x=y"],
                    "User": "10001:10001",
                    "ReadOnly": True,
                    "Mounts": [{"Type": "tmpfs", "Target": "/tmp", "TmpfsOptions": {"SizeBytes": 64 << 20}}],
                    "StopGracePeriod": 60 * S,
                    "Healthcheck": {
                        "Test": ["CMD", "true"],
                        "Interval": 5 * S,
                        "Timeout": 5 * S,
                        "StartPeriod": 20 * S,
                        "Retries": 3,
                    },
                    "Init": True,
                    "CapabilityDrop": ["ALL"],
                    "Secrets": [
                        {
                            "File": {"Name": "key", "UID": "10001", "GID": "0", "Mode": 0o400},
                            "SecretID": "sec1",
                            "SecretName": "key-abc",
                        }
                    ],
                    **container,
                },
                "Resources": {"Limits": {"MemoryBytes": 512 << 20}},
                "RestartPolicy": {"Condition": "any", "Delay": 5 * S, "MaxAttempts": 0, "Window": 0},
                "Placement": {"Constraints": ["node.labels.data==true"]},
                "Networks": [{"Target": "net1", "Aliases": ["web"]}],
                "LogDriver": {"Name": "json-file", "Options": {"max-size": "10m"}},
            },
            "Mode": {"Replicated": {"Replicas": 2}},
            "UpdateConfig": {
                "Parallelism": 1,
                "FailureAction": "rollback",
                "Monitor": 130 * S,
                "MaxFailureRatio": 0,
                "Order": "start-first",
            },
            "EndpointSpec": {"Mode": "dnsrr"},
        },
        "Endpoint": {"Spec": {"Mode": "dnsrr"}},
    }


def service_inputs(**container) -> dict:
    """What the program would set for that service (wire names, numbers as floats)."""
    return {
        "name": "web-abc1234",
        "labels": [{"label": "django-docker.service", "value": "web"}],
        "taskSpec": {
            "containerSpec": {
                "image": "acme/web@sha256:" + "a" * 64,
                "args": ["gunicorn"],
                "env": {"A": "1", "B": "x=y"},
                "user": "10001:10001",
                "readOnly": True,
                "mounts": [{"type": "tmpfs", "target": "/tmp", "tmpfsOptions": {"sizeBytes": float(64 << 20)}}],
                "stopGracePeriod": "1m",
                "healthcheck": {
                    "tests": ["CMD", "true"],
                    "interval": "5s",
                    "timeout": "5s",
                    "startPeriod": "20s",
                    "retries": 3.0,
                },
                "init": True,
                "capDrops": ["ALL"],
                "secrets": [
                    {
                        "secretId": "sec1",
                        "secretName": "key-abc",
                        "fileName": "key",
                        "fileUid": "10001",
                        "fileGid": "0",
                        "fileMode": 256.0,
                    }
                ],
                **container,
            },
            "resources": {"limits": {"memoryBytes": float(512 << 20)}},
            "restartPolicy": {"condition": "any", "delay": "5s", "maxAttempts": 0.0, "window": "0s"},
            "placement": {"constraints": ["node.labels.data==true"]},
            "networksAdvanceds": [{"id": "net1", "aliases": ["web"]}],
            "logDriver": {"name": "json-file", "options": {"max-size": "10m"}},
        },
        "mode": {"replicated": {"replicas": 2.0}},
        "updateConfig": {
            "parallelism": 1.0,
            "delay": "0s",
            "failureAction": "rollback",
            "monitor": "2m10s",
            "maxFailureRatio": "0",
            "order": "start-first",
        },
        "endpointSpec": {"mode": "dnsrr"},
        "convergeConfig": {"delay": "2s", "timeout": "80s"},  # never read back: not compared
    }


def test_what_the_program_sets_reads_back_the_same():
    assert resource_drift("service", service_inputs(), inspect_service()) == {}


def test_a_duration_in_another_spelling_is_a_change_every_time():
    found = resource_drift("service", service_inputs(stopGracePeriod="60s"), inspect_service())
    assert found == {"taskSpec.containerSpec.stopGracePeriod": ("60s", "1m")}


def test_a_sticky_tmpfs_mode_is_read_back_without_it():
    mounts = [{"Type": "tmpfs", "Target": "/tmp", "TmpfsOptions": {"SizeBytes": 64 << 20, "Mode": 0o1777}}]
    inputs = service_inputs(
        mounts=[
            {"type": "tmpfs", "target": "/tmp", "tmpfsOptions": {"sizeBytes": float(64 << 20), "mode": float(0o1777)}}
        ]
    )
    assert set(resource_drift("service", inputs, inspect_service(Mounts=mounts))) == {"taskSpec.containerSpec.mounts"}


def test_platforms_the_registry_filled_in_are_a_change_though_the_program_set_none():
    svc = inspect_service()
    svc["Spec"]["TaskTemplate"]["Placement"]["Platforms"] = [{"Architecture": "amd64", "OS": "linux"}]
    assert set(resource_drift("service", service_inputs(), svc)) == {"taskSpec.placement.platforms"}


def test_a_tag_the_client_pinned_on_create_is_a_change():
    svc = inspect_service(Image="postgres:15.14-bookworm@sha256:" + "b" * 64)
    found = resource_drift("service", service_inputs(image="postgres:15.14-bookworm"), svc)
    assert set(found) == {"taskSpec.containerSpec.image"}


def test_an_env_key_docker_added_is_a_change_the_map_is_whole():
    svc = inspect_service(Env=["A=1", "B=x=y", "C=2"])
    assert set(resource_drift("service", service_inputs(), svc)) == {"taskSpec.containerSpec.env"}


def test_a_network_gateway_read_into_ipam_config_is_a_change_of_a_set_element():
    inspect = {
        "Name": "front",
        "Driver": "overlay",
        "Attachable": True,
        "Options": {"com.docker.network.driver.overlay.vxlanid_list": "4097"},
        "IPAM": {"Driver": "default", "Config": [{"Subnet": "10.0.9.0/24", "Gateway": "10.0.9.1"}]},
    }
    view = network_view(inspect)
    assert view["ipamConfigs"] == [{"subnet": "10.0.9.0/24", "gateway": "10.0.9.1"}]
    without = {"name": "front", "driver": "overlay", "attachable": True, "ipamConfigs": [{"subnet": "10.0.9.0/24"}]}
    assert set(resource_drift("network", without, inspect)) == {"ipamConfigs"}
    # Stated, it matches; options the program leaves unset are the provider's (Computed)
    stated = {**without, "ipamConfigs": [{"subnet": "10.0.9.0/24", "gateway": "10.0.9.1"}]}
    assert resource_drift("network", stated, inspect) == {}


def test_configured_network_options_compare_whole():
    inspect = {
        "Name": "back",
        "Driver": "bridge",
        "Internal": True,
        "Options": {"a": "1", "b": "2"},
        "IPAM": {"Config": []},
    }
    assert set(resource_drift("network", {"options": {"a": "1"}}, inspect)) == {"options"}


def test_a_config_reads_back_its_data_and_labels_a_secret_only_its_name():
    data = base64.b64encode(b"server { }").decode()
    config = {"Spec": {"Name": "conf-1", "Data": data, "Labels": {"k": "v"}}}
    assert config_view(config) == {"name": "conf-1", "data": data, "labels": [{"label": "k", "value": "v"}]}
    assert (
        resource_drift("config", {"name": "conf-1", "data": data, "labels": [{"label": "k", "value": "v"}]}, config)
        == {}
    )
    secret = {"Spec": {"Name": "sec-1", "Labels": {"other": "x"}}}
    assert secret_view(secret) == {"name": "sec-1"}
    assert (
        resource_drift(
            "secret", {"name": "sec-1", "data": "c2VjcmV0", "labels": [{"label": "k", "value": "v"}]}, secret
        )
        == {}
    )


def test_blocks_compare_only_what_the_program_sets():
    assert configured_drift({"a": {"b": 1.0}}, {"a": {"b": 1, "c": "computed"}}) == {}
    assert configured_drift({"a": {"b": 2}}, {"a": {"b": 1}}) == {"a.b": (2, 1)}


def test_a_raw_config_is_read_back_raw_and_the_rehearsals_own_labels_are_not_the_programs():
    config = {
        "Spec": {
            "Name": "conf-1",
            "Data": base64.b64encode(b"user nginx;").decode(),
            "Labels": {"k": "v", "rehearsal.run": "x"},
        }
    }
    inputs = {"name": "conf-1", "dataRaw": "user nginx;", "labels": [{"label": "k", "value": "v"}]}
    assert set(resource_drift("config", inputs, config)) == {"labels"}
    assert resource_drift("config", inputs, config, ignore_labels=frozenset({"rehearsal.run"})) == {}


def test_a_published_port_compares_with_the_schemas_defaults():
    svc = inspect_service()
    svc["Endpoint"]["Ports"] = [{"Protocol": "tcp", "TargetPort": 80, "PublishedPort": 80, "PublishMode": "host"}]
    ports = [{"targetPort": 80.0, "publishedPort": 80.0, "publishMode": "host"}]
    inputs = {**service_inputs(), "endpointSpec": {"mode": "dnsrr", "ports": ports}}
    assert resource_drift("service", inputs, svc) == {}
    ingress = [{"targetPort": 80.0, "publishedPort": 80.0}]  # publish_mode's default is ingress
    assert set(resource_drift("service", {**inputs, "endpointSpec": {"mode": "dnsrr", "ports": ingress}}, svc)) == {
        "endpointSpec.ports"
    }


def test_a_view_is_compared_with_the_read_by_what_it_holds():
    from rehearsal.emulation.readback import read_differs

    view = {
        "name": "web-1",
        "labels": [{"label": "a", "value": "1"}],
        "taskSpec": {"containerSpec": {"image": "img", "mounts": [{"target": "/tmp", "type": "tmpfs"}]}},
        "updateConfig": {"maxFailureRatio": 0.0, "delay": "0s"},
    }
    # The Read also stores what the view leaves out, and empty values as null; sets in any order.
    read = {
        "name": "web-1",
        "labels": [{"label": "a", "value": "1"}],
        "taskSpec": {
            "containerSpec": {
                "image": "img",
                "mounts": [{"target": "/tmp", "type": "tmpfs", "bindOptions": None, "source": ""}],
                "isolation": "default",
            },
            "forceUpdate": 0,
        },
        "updateConfig": {"maxFailureRatio": "0.0", "delay": "0s"},
    }
    assert read_differs(view, read) == []
    read["taskSpec"]["containerSpec"]["mounts"][0]["readOnly"] = True  # a set element differs whole
    read["labels"] = [{"label": "a", "value": "2"}]
    assert read_differs(view, read) == ["labels", "taskSpec.containerSpec.mounts"]


def test_the_registry_of_an_image_is_its_first_part_when_that_is_a_host():
    from rehearsal.emulation.engine import registry_of

    assert registry_of("127.0.0.1:5000/postgres:15") == "127.0.0.1:5000"
    assert registry_of("registry.example.com/team/web@sha256:" + "a" * 64) == "registry.example.com"
    assert registry_of("localhost/redis:7") == "localhost"
    assert registry_of("team/web:1") == "" and registry_of("postgres:15") == ""
