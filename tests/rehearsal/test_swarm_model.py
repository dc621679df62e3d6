"""Swarm resource types in the update model and the translation (pure, no engine)."""

from __future__ import annotations

import pytest

from planning.harness import SECRET, SERVICE, SERVICE_CONFIG, Plan, PlannedResource
from rehearsal.emulation.engine import _running_slots
from rehearsal.emulation.model import (
    DELETE_FIRST,
    DELETE_REPLACED,
    REPLACE,
    UPDATE,
    Entry,
    State,
    plan_update,
    schema_of,
)
from rehearsal.emulation.translate import UnsupportedInput, service_spec, swarm_object_data

URN = "urn:pulumi:dev::p::{}::{}"


def svc_inputs(**over) -> dict:
    inputs = {
        "taskSpec": {
            "containerSpec": {"image": "img", "env": {"A": "1"}},
            "networksAdvanceds": [{"id": "net-id", "aliases": ["web"]}],
        },
        "mode": {"replicated": {"replicas": 2.0}},
        "endpointSpec": {"mode": "dnsrr"},
    }
    inputs.update(over)
    return inputs


def res(name, type_, inputs, deps=None):
    return PlannedResource(
        type_,
        name,
        URN.format(type_, name),
        inputs,
        {},
        {"dependencies": [], "property_dependencies": deps or {}, "delete_before_replace": None},
        id=f"{name}-id",
    )


def state_of(*resources) -> State:
    return State([Entry.of(r, real={"id": r.id, "name": r.name}) for r in resources])


def ops(update):
    return [(s.op, s.name, s.mode) for s in update.steps if s.op != "same"]


def test_service_env_and_replicas_update_in_place():
    old = res("web", SERVICE, svc_inputs())
    for inputs in (
        svc_inputs(mode={"replicated": {"replicas": 5.0}}),
        svc_inputs(taskSpec={**svc_inputs()["taskSpec"], "containerSpec": {"image": "img", "env": {"A": "2"}}}),
    ):
        update = plan_update(state_of(old), Plan("dev", {}, [res("web", SERVICE, inputs)]))
        assert ops(update) == [(UPDATE, "web", "")]


def test_service_network_alias_change_replaces_create_before_delete_when_auto_named():
    old = res("web", SERVICE, svc_inputs())
    task = {**svc_inputs()["taskSpec"], "networksAdvanceds": [{"id": "net-id", "aliases": ["web", "app"]}]}
    update = plan_update(state_of(old), Plan("dev", {}, [res("web", SERVICE, svc_inputs(taskSpec=task))]))
    assert ops(update) == [(REPLACE, "web", "create-before-delete"), (DELETE_REPLACED, "web", "")]


def test_a_task_label_change_replaces_the_service_but_a_service_label_updates_it():
    # container_spec.labels' elements are ForceNew (tf v4.5.0 helpers.go labelSchema), the
    # service's own labels are not (labelSchemaUpdatable): found by the real engine, whose
    # releases replaced web while the model updated it.
    task = svc_inputs()["taskSpec"]
    old = res("web", SERVICE, svc_inputs(labels=[{"label": "release", "value": "1"}]))
    relabelled = {**task, "containerSpec": {**task["containerSpec"], "labels": [{"label": "release", "value": "2"}]}}
    update = plan_update(state_of(old), Plan("dev", {}, [res("web", SERVICE, svc_inputs(taskSpec=relabelled))]))
    assert ops(update)[0] == (REPLACE, "web", "create-before-delete")
    service_label = svc_inputs(labels=[{"label": "release", "value": "2"}])
    assert ops(plan_update(state_of(old), Plan("dev", {}, [res("web", SERVICE, service_label)]))) == [
        (UPDATE, "web", "")
    ]


def test_service_with_explicit_name_is_replaced_delete_before_replace():
    old = res("web", SERVICE, svc_inputs(name="web"))
    task = {**svc_inputs()["taskSpec"], "networksAdvanceds": []}
    update = plan_update(state_of(old), Plan("dev", {}, [res("web", SERVICE, svc_inputs(name="web", taskSpec=task))]))
    assert ops(update)[0] == (DELETE_FIRST, "web", "")
    assert ops(update)[1] == (REPLACE, "web", "delete-before-replace")


@pytest.mark.parametrize("type_", [SERVICE_CONFIG, SECRET])
def test_config_rotation_creates_first_updates_the_service_then_deletes(type_):
    deps = {"taskSpec": [URN.format(type_, "conf")]}
    conf1 = res("conf", type_, {"data": "djE="})
    web = res("web", SERVICE, svc_inputs(), deps)
    conf2 = res("conf", type_, {"data": "djI="})
    update = plan_update(state_of(conf1, web), Plan("dev", {}, [conf2, web]))
    assert ops(update) == [
        (REPLACE, "conf", "create-before-delete"),
        (UPDATE, "web", ""),
        (DELETE_REPLACED, "conf", ""),
    ]
    assert schema_of(type_).replaces("labels")


def test_config_with_explicit_name_is_deleted_first():
    update = plan_update(
        state_of(res("conf", SERVICE_CONFIG, {"name": "c", "data": "djE="})),
        Plan("dev", {}, [res("conf", SERVICE_CONFIG, {"name": "c", "data": "djI="})]),
    )
    assert ops(update)[0] == (DELETE_FIRST, "conf", "")


def test_service_translation():
    inputs = svc_inputs(
        updateConfig={"order": "start-first", "failureAction": "rollback", "monitor": "5s"},
        endpointSpec={"mode": "dnsrr", "ports": [{"targetPort": 80.0, "publishedPort": 8080.0, "publishMode": "host"}]},
        convergeConfig={"timeout": "1m"},
    )
    inputs["taskSpec"]["containerSpec"].update(
        healthcheck={"tests": ["CMD", "true"], "interval": "2s", "retries": 3.0},
        secrets=[{"secretId": "s-id", "secretName": "s", "fileName": "/run/secrets/s", "fileMode": 256.0}],
        mounts=[{"type": "tmpfs", "target": "/t", "tmpfsOptions": {"sizeBytes": 1000.0, "mode": 1023.0}}],
        stopGracePeriod="10s",
    )
    inputs["taskSpec"]["resources"] = {"limits": {"memoryBytes": 268435456.0, "nanoCpus": 5e8}}
    spec = service_spec("web", inputs, "web-1234567", {"rehearsal.stack": "t"})
    create = spec.create
    cs = create["task_template"]["ContainerSpec"]
    assert cs["Env"] == ["A=1"] and cs["Healthcheck"]["Interval"] == 2_000_000_000
    assert cs["Secrets"][0]["File"] == {"Name": "/run/secrets/s", "UID": "0", "GID": "0", "Mode": 256}
    assert cs["Mounts"][0]["TmpfsOptions"] == {"SizeBytes": 1000, "Mode": 1023}
    assert create["task_template"]["Networks"] == [{"Target": "net-id", "Aliases": ["web"]}]
    assert create["task_template"]["Resources"]["Limits"] == {"NanoCPUs": 500000000, "MemoryBytes": 268435456}
    assert create["mode"] == {"replicated": {"Replicas": 2}}
    assert create["endpoint_spec"]["Ports"][0]["PublishMode"] == "host"
    assert create["update_config"]["Order"] == "start-first"
    assert create["labels"] == {"rehearsal.stack": "t"}
    assert (spec.converge_delay_s, spec.converge_timeout_s, spec.stop_grace_s) == (7.0, 60.0, 10.0)


def test_unknown_service_fields_are_refused_by_path():
    inputs = svc_inputs()
    inputs["taskSpec"]["containerSpec"]["privileges"] = {"seLinuxContext": {}}
    with pytest.raises(UnsupportedInput, match=r"taskSpec\.containerSpec\.privileges"):
        service_spec("web", inputs, "web-1", {})
    with pytest.raises(UnsupportedInput, match="auth"):
        service_spec("web", svc_inputs(auth={"serverAddress": "x"}), "web-1", {})


def test_config_data_is_base64():
    assert swarm_object_data("config", "c", {"data": "aGVsbG8="}) == b"hello"
    with pytest.raises(UnsupportedInput, match="base64"):
        swarm_object_data("config", "c", {"data": "not base64!"})


def test_running_slots_counts_like_the_provider():
    def task(slot, desired, state):
        return {"Slot": slot, "DesiredState": desired, "Status": {"State": state}}

    # start-first: the old task still runs beside a starting new one in the same slot.
    tasks = [task(1, "running", "running"), task(1, "running", "starting"), task(2, "running", "running")]
    assert _running_slots(tasks) == 1
    assert _running_slots([task(1, "running", "running"), task(2, "running", "running")]) == 2
