"""The update model against the upstream rules it cites (rehearsal/emulation/model.py), on hand-built plans."""

import pytest

from planning.harness import CONTAINER, JOB, NETWORK, VOLUME, Plan, PlannedResource
from rehearsal.emulation.model import (
    AT_END,
    CREATE,
    DELETE,
    DELETE_FIRST,
    DELETE_REPLACED,
    REGISTER,
    REPLACE,
    SAME,
    UPDATE,
    Entry,
    ModelError,
    State,
    next_state,
    plan_update,
)

WEB = {"image": "app@1", "memory": 512, "labels": [{"label": "x", "value": "1"}]}


def res(name, type_=CONTAINER, inputs=None, *, deps=(), prop=None, dbr=None, roc=(), parent="", custom=True, **options):
    return PlannedResource(
        type=type_,
        name=name,
        urn=f"urn:{name}",
        inputs=dict(inputs if inputs is not None else WEB),
        outputs={},
        # Like the SDK: every resource an input came from is also a dependency.
        options={
            "parent": parent,
            "property_dependencies": prop or {},
            "dependencies": sorted({*deps, *(u for urns in (prop or {}).values() for u in urns)}),
            "delete_before_replace": dbr,
            "replace_on_changes": list(roc),
            **options,
        },
        custom=custom,
        id=f"{name}-id",
    )


def plan(*resources):
    return Plan(stack="t", config={}, resources=list(resources))


def applied(old_plan, *, fail=(), partial=()):
    """The state after every step of an update from nothing succeeded (or failed as told)."""
    state = State()
    update = plan_update(state, old_plan)
    return next_state(state, old_plan, update, outcome(update, fail=fail, partial=partial))


def outcome(update, *, fail=(), partial=()):
    result, failed = {}, False
    for i, step in enumerate(update.steps):
        if failed:
            break
        if step.name in partial and step.op in (CREATE, REPLACE):
            result[i] = {"ok": False, "real": {"id": f"{step.name}-{i}"}, "init_error": "never healthy"}
            failed = True
        elif step.name in fail:
            result[i] = {"ok": False}
            failed = True
        else:
            result[i] = {"ok": True, "real": {"id": f"{step.name}-{i}"}}
    return result


def ops(update):
    return [(s.op, s.name) + ((s.mode,) if s.mode else ()) for s in update.steps]


def index_of(update, op, name):
    return next(i for i, s in enumerate(update.steps) if s.op == op and s.name == name)


def test_a_new_stack_is_created_in_dependency_order_with_nothing_to_delete():
    p = plan(res("web", deps=["urn:net"]), res("net", NETWORK, {"name": "n"}))
    update = plan_update(State(), p)
    assert ops(update) == [(CREATE, "net"), (CREATE, "web")]
    assert update.steps[1].after == {0}


def test_the_same_plan_again_changes_nothing():
    p = plan(res("net", NETWORK, {"name": "n"}), res("web", deps=["urn:net"]))
    update = plan_update(applied(p), p)
    assert update.changes == []
    assert ops(update) == [(SAME, "net"), (SAME, "web")]


def test_container_replacement_follows_the_provider_unless_the_program_says():
    # pulumi-docker provider/resources.go:112-114 marks Container delete-before-replace;
    # step_generator.go:2043-2046: the program's explicit option wins.
    old = plan(res("a"), res("b", dbr=False))
    new = plan(res("a", inputs={**WEB, "image": "app@2"}), res("b", inputs={**WEB, "image": "app@2"}, dbr=False))
    update = plan_update(applied(old), new)
    assert ops(update) == [
        (DELETE_FIRST, "a"),
        (REPLACE, "a", "delete-before-replace"),
        (REPLACE, "b", "create-before-delete"),
        (DELETE_REPLACED, "b"),
    ]
    # The old b goes only at the end, after every create.
    end = update.steps[3]
    assert end.phase == AT_END and {0, 1, 2} <= end.after


def test_a_delete_before_replace_takes_its_replaced_dependents_down_first():
    # step_generator.go:3268ff: dependents whose inputs come from the replaced resource and
    # would be replaced by a change there are deleted first; a plain depends_on edge is not.
    root = res("net", NETWORK, {"name": "n", "labels": ["1"]}, dbr=True)
    via_forcenew = res(
        "web", inputs={**WEB, "networksAdvanced": [{"name": "n"}]}, prop={"networksAdvanced": ["urn:net"]}, dbr=False
    )
    via_updatable = res("limits", inputs={**WEB, "memory": 5}, prop={"memory": ["urn:net"]})
    via_depends_on = res("nginx", deps=["urn:net"])
    old = plan(root, via_forcenew, via_updatable, via_depends_on)
    new = plan(
        res("net", NETWORK, {"name": "n", "labels": ["2"]}, dbr=True), via_forcenew, via_updatable, via_depends_on
    )
    update = plan_update(applied(old), new)
    assert ops(update)[:3] == [(DELETE_FIRST, "web"), (DELETE_FIRST, "net"), (REPLACE, "net", "delete-before-replace")]
    # web was deleted by the cascade: it is created again once net exists; the others stay.
    web = update.steps[index_of(update, REPLACE, "web")]
    assert web.mode == "delete-before-replace" and index_of(update, REPLACE, "net") in web.after
    assert (UPDATE, "limits") in ops(update) and (SAME, "nginx") in ops(update)
    assert not update.of(DELETE_REPLACED)


def test_an_input_from_a_replaced_resource_is_a_change_even_with_the_same_placeholder():
    # The mock gives a replaced job the same id; the engine sees the new one.
    job = res("migrate", JOB, {"image": "app@1", "command": ["migrate"]}, dbr=False)
    web = res(
        "web",
        inputs={**WEB, "labels": [{"label": "release", "value": "migrate-id"}]},
        prop={"labels": ["urn:migrate"]},
        dbr=False,
        roc=["*"],
    )
    old = plan(job, web)
    new = plan(res("migrate", JOB, {"image": "app@1", "command": ["migrate", "--plan"]}, dbr=False), web)
    update = plan_update(applied(old), new)
    assert (REPLACE, "migrate", "create-before-delete") in ops(update)
    assert update.steps[index_of(update, REPLACE, "web")].keys == ("labels",)


def test_the_job_ignores_where_the_docker_host_is():
    old = plan(res("migrate", JOB, {"image": "app@1", "dockerHost": ""}))
    new = plan(res("migrate", JOB, {"image": "app@1", "dockerHost": "ssh://deploy@host"}))
    assert plan_update(applied(old), new).changes == []


def test_updates_apply_only_what_the_provider_sends():
    # resource_docker_container_funcs.go:1016-1019: limits and restart go to the engine; a
    # healthcheck change is recorded and not applied.
    old = plan(res("pg", inputs={**WEB, "healthcheck": {"interval": "5s"}}))
    new = plan(res("pg", inputs={**WEB, "memory": 1024, "healthcheck": {"interval": "10s"}}))
    (step,) = plan_update(applied(old), new).steps
    assert (step.op, step.keys, step.applied) == (UPDATE, ("healthcheck", "memory"), ("memory",))
    assert "recorded only: healthcheck" in step.describe()


def test_replace_on_any_change_turns_those_updates_into_replacements():
    old = plan(res("web", dbr=False, roc=["*"]))
    new = plan(res("web", inputs={**WEB, "memory": 2048}, dbr=False, roc=["*"]))
    (step, end) = plan_update(applied(old), new).steps
    assert (step.op, step.mode, step.keys) == (REPLACE, "create-before-delete", ("memory",))
    assert end.op == DELETE_REPLACED


def test_init_errors_replace_only_with_star():
    # step_generator_test.go TestApplyReplaceOnChanges: an empty diff with init errors is a
    # replacement with ["*"], an empty update otherwise (step_generator.go:2182-2198). A volume's
    # diff is empty; a container's is not (below).
    for roc, expected in ((["*"], REPLACE), ([], UPDATE)):
        p = plan(res("data", type_=VOLUME, inputs={"name": "data"}, dbr=False, roc=roc))
        state = applied(p, partial={"data"})
        first = plan_update(state, p).steps[0]
        assert first.op == expected
        if expected == REPLACE:
            assert first.keys == ("#initerror",)


def test_a_container_that_failed_its_health_wait_is_replaced_with_what_its_state_never_read():
    # Its partial state never had the provider's last Read (model.UNREAD_AFTER_FAILED_CREATE): the
    # diff reports entrypoint and network_data, as the real engine did (tests/calibration); the
    # entrypoint is ForceNew, so the provider replaces it even without "*" (the model's reading
    # of SDKv2's diff; the program always sets "*", which is what was run).
    for roc in (["*"], []):
        p = plan(res("web", dbr=False, roc=roc))
        state = applied(p, partial={"web"})
        (entry,) = [e for e in state.entries if e.name == "web"]
        assert entry.init_error == "never healthy"
        first = plan_update(state, p).steps[0]
        assert (first.op, first.mode) == (REPLACE, "create-before-delete")
        assert "entrypoints" in first.keys  # ForceNew (resource_docker_container.go:172); networkDatas too with "*"


def test_a_failed_create_before_delete_keeps_the_old_one_until_a_later_update_succeeds():
    old = plan(res("web", dbr=False, roc=["*"]))
    new = plan(res("web", inputs={**WEB, "image": "app@bad"}, dbr=False, roc=["*"]))
    state = applied(old)
    first = plan_update(state, new)
    state2 = next_state(state, new, first, outcome(first, partial={"web"}))
    # step.go:466-472: the new one is recorded (with its init error), the old one left for deletion.
    webs = [e for e in state2.entries if e.name == "web"]
    assert [(e.init_error, e.delete) for e in webs] == [("", True), ("never healthy", False)]
    # The next update replaces the failed one again and, once that worked, deletes both.
    fixed = plan(res("web", inputs={**WEB, "image": "app@good"}, dbr=False, roc=["*"]))
    again = plan_update(state2, fixed)
    assert [s.op for s in again.steps] == [REPLACE, DELETE_REPLACED, DELETE_REPLACED]
    state3 = next_state(state2, fixed, again, outcome(again))
    assert [(e.inputs["image"], e.delete) for e in state3.entries if e.name == "web"] == [("app@good", False)]


def test_a_failed_step_stops_the_update_before_any_delete():
    old = plan(res("job", JOB, {"image": "1"}, dbr=False), res("web", deps=["urn:job"], dbr=False, roc=["*"]))
    new = plan(
        res("job", JOB, {"image": "2"}, dbr=False),
        res("web", inputs={**WEB, "image": "app@2"}, deps=["urn:job"], dbr=False, roc=["*"]),
    )
    state = applied(old)
    update = plan_update(state, new)
    result = outcome(update, fail={"job"})
    assert list(result) == [0]  # nothing after the failed job ran
    after = next_state(state, new, update, result)
    # A failed job records nothing: the old run stays current, and the next update runs it again.
    assert [(e.name, e.inputs.get("image"), e.delete) for e in after.entries] == [
        ("job", "1", False),
        ("web", "app@1", False),
    ]
    assert plan_update(after, new).steps[0].op == REPLACE


def test_a_failed_delete_before_replace_create_is_replaced_next_time_without_a_delete():
    old = plan(res("nginx"))
    new = plan(res("nginx", inputs={**WEB, "image": "nginx@2"}))
    state = applied(old)
    update = plan_update(state, new)
    assert ops(update) == [(DELETE_FIRST, "nginx"), (REPLACE, "nginx", "delete-before-replace")]
    after = next_state(state, new, update, {0: {"ok": True}, 1: {"ok": False}})
    (entry,) = after.entries
    assert entry.pending_replacement and not entry.real
    assert ops(plan_update(after, new)) == [(REPLACE, "nginx", "delete-before-replace")]


def test_removed_resources_go_at_the_end_dependents_first():
    # step_generator.go:2747-2796: deletes run in antichains, dependents before what they use.
    old = plan(res("net", NETWORK, {"name": "n"}), res("web", deps=["urn:net"]), res("web2", deps=["urn:net"]))
    update = plan_update(applied(old), plan())
    assert ops(update) == [(DELETE, "web"), (DELETE, "web2"), (DELETE, "net")]
    assert update.steps[2].after == {0, 1}
    assert update.steps[0].after == frozenset() and update.steps[1].after == frozenset()


def test_protected_resources_are_never_replaced_or_deleted():
    old = plan(res("data", NETWORK, {"name": "v"}, protect=True))
    state = applied(old)
    with pytest.raises(ModelError, match="cannot be replaced while protected"):
        plan_update(state, plan(res("data", NETWORK, {"name": "w"}, protect=True)))
    with pytest.raises(ModelError, match="protected"):
        plan_update(state, plan())


def test_a_changed_replacement_trigger_replaces():
    old = plan(res("web", dbr=False, replacement_trigger="a"))
    new = plan(res("web", dbr=False, replacement_trigger="b"))
    assert plan_update(applied(old), new).steps[0].keys == ("#trigger",)


def test_components_stand_for_their_children():
    comp = res("Web", "django-docker:components:Web", {}, custom=False)
    child = res("web-1", parent="urn:Web")
    nginx = res("nginx", deps=["urn:Web"])
    update = plan_update(State(), plan(nginx, comp, child))
    assert ops(update) == [(CREATE, "web-1"), (CREATE, "nginx")]
    assert update.steps[1].after == {0}
    assert update.steps[0].phase == REGISTER


def test_unknown_types_are_refused_by_name():
    with pytest.raises(ModelError, match="docker:index/plugin:Plugin"):
        plan_update(State(), plan(res("svc", "docker:index/plugin:Plugin")))


def test_entries_keep_what_the_engine_created():
    p = plan(res("web"))
    state = applied(p)
    (entry,) = state.entries
    assert isinstance(entry, Entry) and entry.real == {"id": "web-0"}
