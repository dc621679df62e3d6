"""The migration gate and maintenance mode in the plan and in what a release does (the update
model, as tests/test_releases.py): the gate runs before the backup and migrate and gates
everything else; in maintenance mode the release switches nginx to the maintenance page after
the backup and before migrate, and back once the new web replicas are healthy; in gate mode a
release never touches nginx's configuration."""

from __future__ import annotations

import pytest

from components import render
from planning.harness import NGINX_SITE
from rehearsal.emulation.model import DELETE_REPLACED, REPLACE, SAME, UPDATE, plan_update
from tests.test_releases import SHA_1, SHA_2, applied, plan, service

GATE = "django-docker-release-migration-gate"


def labels(resource) -> dict:
    return {item["label"]: item["value"] for item in resource.inputs.get("labels") or []}


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_the_gate_runs_first_in_the_new_image_and_everything_of_the_release_waits_for_it(stack):
    p = plan(stack)
    gate = p.container(GATE)
    assert gate.inputs["command"] == ["python", "-m", "django_docker_runtime.migration_gate", "--mode", "gate"]
    assert gate.inputs["image"] == p.container("django-docker-release-migrate").inputs["image"]
    assert "backendNetwork" not in gate.inputs and gate.inputs["networksAdvanced"]  # reaches the database
    later = ["django-docker-release-migrate", "django-docker-release-collectstatic"]
    if stack == "prod":
        later.append("django-docker-release-backup")
    for name in later:
        assert gate.urn in p.container(name).options["dependencies"], name
    # No maintenance switch in gate mode, and nginx's site is not keyed on the release.
    assert [r.name for r in p.of_type(NGINX_SITE)] == ["django-docker-nginx-site"]
    assert render.RELEASE_IMAGE_LABEL not in labels(p.by_name("django-docker-nginx-site"))


def test_no_migrate_command_no_gate():
    assert GATE not in {
        r.name for r in plan("dev", migrateCommand="").of_type("pulumi-python:dynamic/django-docker:Job")
    }


def test_maintenance_mode_switches_after_the_backup_and_before_migrate():
    p = plan("prod", migrationMode="maintenance", maintenanceRetryAfter="120")
    assert p.container(GATE).inputs["command"][-1] == "maintenance"
    switch = p.by_name("django-docker-release-maintenance")
    files = switch.inputs["files"]
    assert files["nginx.conf"] == files[render.MAINTENANCE_CONF_FILE] != files[render.SITE_CONF_FILE]
    assert "add_header Retry-After 120 always;" in files["nginx.conf"]
    assert labels(switch)[render.RELEASE_IMAGE_LABEL] == p.container("django-docker-release-migrate").inputs["image"]
    assert p.container("django-docker-release-backup").urn in switch.options["dependencies"]
    assert switch.urn in p.container("django-docker-release-migrate").options["dependencies"]
    # The site's own configuration is the same files but nginx.conf; keyed on the release too,
    # so a new image writes it again after the replicas: the window closes.
    site = p.by_name("django-docker-nginx-site")
    assert site.inputs["files"]["nginx.conf"] == files[render.SITE_CONF_FILE]
    assert {k: v for k, v in site.inputs["files"].items() if k != "nginx.conf"} == {
        k: v for k, v in files.items() if k != "nginx.conf"
    }
    assert labels(site)[render.RELEASE_IMAGE_LABEL] == labels(switch)[render.RELEASE_IMAGE_LABEL]


def test_a_release_in_gate_mode_leaves_nginx_alone_in_maintenance_mode_it_opens_and_closes_the_window():
    state, _, _ = applied(plan("prod"))
    update = plan_update(state, plan("prod", SHA_2))
    (site,) = [s for s in update.steps if s.name == "django-docker-nginx-site"]
    assert site.op == SAME

    mode = {"migrationMode": "maintenance"}
    state, _, _ = applied(plan("prod", SHA_1, **mode))
    assert plan_update(state, plan("prod", SHA_1, **mode)).changes == []
    update = plan_update(state, plan("prod", SHA_2, **mode))
    index = {s.name: i for i, s in enumerate(update.steps) if s.op != DELETE_REPLACED}
    steps = update.steps
    on, off = steps[index["django-docker-release-maintenance"]], steps[index["django-docker-nginx-site"]]
    assert (on.op, off.op) == (UPDATE, UPDATE)
    assert index[GATE] in on.after or index["django-docker-release-backup"] in on.after
    assert index["django-docker-release-backup"] in on.after
    assert index["django-docker-release-maintenance"] in steps[index["django-docker-release-migrate"]].after
    web = [i for i, s in enumerate(steps) if service(s) == "web" and s.op == REPLACE]
    assert web and set(web) <= off.after  # closed only once every new replica is healthy
    # ... and the old ones are gone: in maintenance mode they go first (a create-before-delete's
    # old replica would be deleted only at the end of the update, after the window closed, and
    # serve the new schema meanwhile).
    assert {steps[i].mode for i in web} == {"delete-before-replace"}
    (worker,) = [s for s in steps if service(s) == "celery-worker" and s.op == REPLACE]
    assert worker.mode == "delete-before-replace"
    assert not [s for s in steps if s.op == DELETE_REPLACED and service(s) in ("web", "celery-worker")]


def test_a_refused_release_changes_nothing_and_is_checked_again_next_time():
    state, _, _ = applied(plan("prod"))
    release = plan("prod", SHA_2)
    after, update, outcome = applied(release, state, fail={GATE})
    ran = {service(update.steps[i]) for i in outcome if outcome[i]["ok"] and update.steps[i].op != SAME}
    assert not ran & {"backup", "migrate", "collectstatic", "web", "celery-worker", "celery-beat"}, ran
    again = plan_update(after, release)
    assert [s.op for s in again.steps if s.name == GATE and s.op != DELETE_REPLACED] == [REPLACE]


def test_without_a_backup_the_switch_waits_for_the_gate():
    p = plan("dev", migrationMode="maintenance")
    switch = p.by_name("django-docker-release-maintenance")
    assert p.container(GATE).urn in switch.options["dependencies"]
    assert switch.urn in p.container("django-docker-release-migrate").options["dependencies"]
    # collectstatic does not wait for the window (hashed names: old and new coexist).
    assert switch.urn not in p.container("django-docker-release-collectstatic").options["dependencies"]


def test_a_new_gate_run_alone_replaces_nothing_that_serves():
    state, _, _ = applied(plan("prod", SHA_2, migrationMode="maintenance"))
    update = plan_update(state, plan("prod", SHA_2))  # back to gate mode: only the gate's command changes
    changed = {s.name: s.op for s in update.steps if s.op not in (SAME, DELETE_REPLACED)}
    assert changed == {
        GATE: REPLACE,
        "django-docker-nginx-site": UPDATE,  # no longer keyed on the release (the same files: no reload)
        "django-docker-release-maintenance": "delete",
    }
