"""Reading a real `pulumi up`'s event log into steps (planning/events.py)."""

from __future__ import annotations

import json

import pytest

from planning.events import EventLogError, read_events, steps_of

STACK = "urn:pulumi:prod::django-docker::"
WEB = STACK + "django-docker:components:Web$docker:index/container:Container::django-docker-web-1"
NGINX = STACK + "django-docker:components:Nginx$docker:index/container:Container::django-docker-nginx"
NET = STACK + "django-docker:components:Networks$docker:index/network:Network::django-docker-net-frontend"
COMPONENT = STACK + "django-docker:components:Web::django-docker-web"
PROVIDER = STACK + "pulumi:providers:docker::default_5_2_0"


class Log:
    """Events as the engine writes them, numbered in order."""

    def __init__(self):
        self.events: list[dict] = []

    def add(self, kind: str, op: str, urn: str, *, custom=True, keys=(), diffs=(), status=None, **extra) -> "Log":
        type_ = urn.split("::")[2].split("$")[-1]
        state = {"type": type_, "urn": urn, **({"custom": True} if custom else {})}
        metadata = {"op": op, "urn": urn, "type": type_, "old": state, "new": state, "keys": list(keys)}
        if diffs:
            metadata["diffs"] = list(diffs)
        body: dict = {"metadata": metadata}
        if status is not None:
            body["status"] = status
        self.events.append({"sequence": len(self.events) + 1, "timestamp": 100 + len(self.events), kind: body, **extra})
        return self

    def pre(self, op, urn, **kw):
        return self.add("resourcePreEvent", op, urn, **kw)

    def done(self, op, urn, **kw):
        return self.add("resOutputsEvent", op, urn, **kw)

    def failed(self, op, urn, status=0, **kw):
        return self.add("resOpFailedEvent", op, urn, status=status, **kw)

    def error(self, urn, message):
        self.events.append(
            {"sequence": len(self.events) + 1, "diagnosticEvent": {"urn": urn, "severity": "error", "message": message}}
        )
        return self


def test_a_create_before_delete_replacement_is_one_replace_and_a_delete_at_the_end():
    log = (
        Log()
        .pre("create-replacement", WEB, keys=["image", "labels"])
        .done("create-replacement", WEB)
        .pre("replace", WEB)
        .done("replace", WEB)
        .pre("same", NGINX)
        .done("same", NGINX)
        .pre("delete-replaced", WEB)
        .done("delete-replaced", WEB)
    )
    update = steps_of(log.events)
    assert [s.describe() for s in update.steps] == [
        "replace django-docker-web-1 (create-before-delete) [image, labels]",
        "same django-docker-nginx",
        "delete-replaced django-docker-web-1",
    ]
    assert update.ok and update.error is None
    web, _, delete = update.steps
    assert web.end is not None and web.end < delete.start


def test_a_delete_before_replace_and_the_dependent_it_takes_down_first():
    log = (
        Log()
        .pre("delete-replaced", NGINX)  # a dependent: deleted first, replaced when it registers again
        .done("delete-replaced", NGINX)
        .pre("delete-replaced", NET)
        .done("delete-replaced", NET)
        .pre("replace", NET)
        .done("replace", NET)
        .pre("create-replacement", NET, keys=["ipamConfigs"])
        .done("create-replacement", NET)
        .pre("create-replacement", NGINX, keys=["networksAdvanced"])
        .done("create-replacement", NGINX)
    )
    update = steps_of(log.events)
    assert [(s.op, s.name, s.mode) for s in update.steps] == [
        ("delete-before-replace", "django-docker-nginx", ""),
        ("delete-before-replace", "django-docker-net-frontend", ""),
        ("replace", "django-docker-net-frontend", "delete-before-replace"),
        ("replace", "django-docker-nginx", "delete-before-replace"),
    ]


def test_components_providers_and_reads_are_not_steps():
    log = (
        Log()
        .pre("create", COMPONENT, custom=False)
        .pre("create", PROVIDER)
        .done("create", PROVIDER)
        .pre("read", STACK + "pulumi:pulumi:StackReference::source")
        .done("read", STACK + "pulumi:pulumi:StackReference::source")
        .pre("update", WEB, diffs=["memory"])
        .done("update", WEB)
    )
    assert [s.describe() for s in steps_of(log.events).steps] == ["update django-docker-web-1 [memory]"]


def test_a_failed_step_carries_the_engine_s_error_and_whether_the_resource_exists():
    log = (
        Log()
        .pre("create-replacement", WEB, keys=["image"])
        .error(WEB, "1 error occurred:\n\t* container failed to be in healthy state\n")
        .failed("create-replacement", WEB, status=1)
        .pre("create", NGINX)  # another step that was in flight: it finishes
        .done("create", NGINX)
    )
    update = steps_of(log.events)
    web = update.steps[0]
    assert (web.ok, web.partial, web.mode) == (False, True, "create-before-delete")
    assert update.error == "django-docker-web-1: container failed to be in healthy state"
    assert not update.ok and update.steps[1].ok


def test_a_step_the_engine_never_finished_has_no_end():
    update = steps_of(Log().pre("create", WEB).events)
    assert update.steps[0].end is None


def test_the_fixture_form_keeps_names_and_order_not_values_or_times():
    log = Log().pre("create", WEB).done("create", WEB)
    (step,) = steps_of(log.events).steps
    assert step.fixture() == {
        "op": "create",
        "name": "django-docker-web-1",
        "type": "docker:index/container:Container",
        "start": 1,
        "end": 2,
        "ok": True,
    }


def test_an_unreadable_line_is_refused_with_its_number():
    with pytest.raises(EventLogError, match="line 2"):
        read_events([json.dumps({"sequence": 1}), "not json"])


def test_a_dynamic_provider_s_traceback_is_read_as_its_exception():
    traceback = (
        "Traceback (most recent call last):\n"
        '  File "/x/pulumi/dynamic/__main__.py", line 84, in wrapper\n'
        "    return fn(self, request, context)\n"
        '  File "/x/components/job.py", line 354, in create\n'
        "    outs = run_job(props)\n"
        "components.job.JobFailed: django-docker-release-migrate exited 1 after 2.0s; nothing after it was changed\n"
        "django.db.utils.IntegrityError: check constraint\n"
    )
    job = (
        STACK
        + "django-docker:components:Release$pulumi-python:dynamic/django-docker:Job::django-docker-release-migrate"
    )
    log = Log().pre("create-replacement", job, keys=["image"]).error(job, traceback).failed("create-replacement", job)
    assert steps_of(log.events).error == (
        "django-docker-release-migrate: components.job.JobFailed: django-docker-release-migrate exited 1 after "
        "2.0s; nothing after it was changed django.db.utils.IntegrityError: check constraint"
    )


def test_a_leftover_of_a_failed_update_is_deleted_at_the_end_not_first():
    # The old run of a job a failed update replaced: deleted by the next update, after the rest.
    job = (
        STACK
        + "django-docker:components:Release$pulumi-python:dynamic/django-docker:Job::django-docker-release-collectstatic"
    )
    log = Log().pre("same", job).done("same", job).pre("delete-replaced", job).done("delete-replaced", job)
    assert [(s.op, s.name) for s in steps_of(log.events).steps] == [
        ("same", "django-docker-release-collectstatic"),
        ("delete-replaced", "django-docker-release-collectstatic"),
    ]
