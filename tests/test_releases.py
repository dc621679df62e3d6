"""What a second `pulumi up` does to the committed stacks, by the update model (rehearsal/emulation/model.py).

The plans are the program's, under mocks; the model applies the engine's and the providers'
rules to them (cited there). The same model drives the release rehearsal on a real engine;
these tests pin the decisions themselves: nothing that serves is deleted before its
replacement is healthy, a failed job runs again, an unhealthy replica is replaced, nginx is
left alone by releases and scaling.
"""

from __future__ import annotations

import pytest

from planning.harness import plan_stack
from rehearsal.emulation.model import (
    CREATE,
    DELETE,
    DELETE_FIRST,
    DELETE_REPLACED,
    REPLACE,
    SAME,
    UPDATE,
    State,
    next_state,
    plan_update,
)
from rehearsal.runners.stacks import commit, plan_options
from tests.program_fixtures import PROD_SECRETS

SHA_1, SHA_2 = "1" * 40, "2" * 40
SERVING = ("web", "celery-worker")


def plan(stack: str, sha: str = SHA_1, **overrides):
    with commit(sha):
        options = plan_options(stack, app_ref=f"ghcr.io/acme/web@sha256:{sha[0] * 64}", git_sha=sha)
        return plan_stack(
            stack, overrides=overrides or None, secrets=PROD_SECRETS if stack == "prod" else None, **options
        )


def applied(p, state=None, fail=(), partial=()):
    """The state after carrying out an update: every step succeeds, except as told."""
    state = state or State()
    update = plan_update(state, p)
    outcome, stopped = {}, False
    for i, step in enumerate(update.steps):
        if stopped or any(a in outcome and not outcome[a]["ok"] for a in step.after):
            break
        if step.name in fail:
            outcome[i], stopped = {"ok": False}, True
        elif step.name in partial and step.op in (CREATE, REPLACE):
            outcome[i], stopped = {"ok": False, "real": {"id": f"{step.name}-{i}"}, "init_error": "never healthy"}, True
        else:
            outcome[i] = {"ok": True, "real": {"id": f"{step.name}-{i}"}}
    return next_state(state, p, update, outcome), update, outcome


def service(step) -> str:
    return (step.new or step.old).label("django-docker.service") or ""


@pytest.fixture(scope="module", params=["dev", "prod"])
def running(request):
    first = plan(request.param)
    state, _, _ = applied(first)
    return request.param, first, state


def test_a_second_up_with_nothing_changed_changes_nothing(running):
    stack, first, state = running
    assert plan_update(state, first).changes == []
    assert plan_update(state, plan(stack)).changes == []  # planned again from scratch: same values


def test_a_new_commit_replaces_every_app_container_beside_the_old_one(running):
    stack, _, state = running
    update = plan_update(state, plan(stack, SHA_2))
    # Nothing that serves (replicas, worker) or gates them (the jobs) goes before its successor.
    first_deletes = [s for s in update.steps if s.op == DELETE_FIRST]
    assert {service(s) for s in first_deletes} <= {"celery-beat"}  # a singleton, on purpose
    replaced = {s.name: s for s in update.steps if s.op == REPLACE}
    for name, step in replaced.items():
        if service(step) in (*SERVING, "migrate", "collectstatic"):
            assert step.mode == "create-before-delete", name
    assert sum(service(s) == "web" for s in replaced.values()) == len(
        [e for e in state.entries if e.label("django-docker.service") == "web"]
    )
    # The old ones go at the end, after every create (and only if all of them succeeded).
    creates = {i for i, s in enumerate(update.steps) if s.op in (REPLACE, CREATE, UPDATE, SAME)}
    for s in update.steps:
        if s.op == DELETE_REPLACED:
            assert creates <= s.after
    # nginx, postgres and redis are not touched by a release.
    untouched = {service(s) for s in update.steps if s.op == SAME}
    assert {"nginx", "postgres", "redis"} <= untouched


def test_replicas_wait_for_both_release_jobs(running):
    stack, _, state = running
    update = plan_update(state, plan(stack, SHA_2))
    jobs = {i for i, s in enumerate(update.steps) if s.op == REPLACE and service(s) in ("migrate", "collectstatic")}
    assert len(jobs) == 2
    for s in update.steps:
        if s.op == REPLACE and service(s) in (*SERVING, "celery-beat"):
            assert jobs <= s.after, s.name


def test_prod_backs_up_before_every_new_image_is_migrated(running):
    stack, _, state = running
    update = plan_update(state, plan(stack, SHA_2))
    backups = [i for i, s in enumerate(update.steps) if service(s) == "backup" and s.op == REPLACE]
    (migrate,) = [i for i, s in enumerate(update.steps) if service(s) == "migrate" and s.op == REPLACE]
    if stack == "dev":  # backupBeforeMigrate is off in dev
        assert backups == []
        return
    assert len(backups) == 1 and set(backups) <= update.steps[migrate].after
    # Settings that bring no new image re-run migrate (a no-op) without a new backup.
    assert not any(
        service(s) == "backup" for s in plan_update(state, plan(stack, SHA_1, djangoLogLevel="DEBUG")).changes
    )


def test_a_failed_backup_stops_the_release_before_migrate(running):
    stack, _, state = running
    if stack == "dev":
        pytest.skip("dev takes no backup before migrating")
    release = plan(stack, SHA_2)
    after, update, outcome = applied(release, state, fail={"django-docker-release-backup"})
    ran = {service(update.steps[i]) for i in outcome}
    assert "migrate" not in ran and not ran & {*SERVING, "celery-beat"}, ran
    # Not recorded: the next `pulumi up` takes the backup again, then migrates.
    again = plan_update(after, release)
    assert [s.op for s in again.steps if service(s) == "backup" and s.op != DELETE_REPLACED] == [REPLACE]


def test_a_failed_migration_changes_nothing_that_serves_and_runs_again_next_time(running):
    stack, _, state = running
    release = plan(stack, SHA_2)
    after, update, outcome = applied(release, state, fail={"django-docker-release-migrate"})
    ran = {update.steps[i].name for i in outcome}
    assert not any(service(update.steps[i]) in (*SERVING, "celery-beat") for i in outcome), ran
    # Nothing was recorded for the failed job: the same `pulumi up` runs it again.
    again = plan_update(after, release)
    (migrate,) = [s for s in again.steps if s.name == "django-docker-release-migrate" and s.op != DELETE_REPLACED]
    assert migrate.op == REPLACE
    # And once it succeeds, the release goes out as usual.
    done, _, _ = applied(release, after)
    assert plan_update(done, release).changes == []


def test_an_unhealthy_release_fails_every_up_not_only_the_first(running):
    stack, _, state = running
    release = plan(stack, SHA_2)
    after, _, _ = applied(release, state, partial={"django-docker-web-1"})
    retry = plan_update(after, release)
    (web1,) = [s for s in retry.steps if s.name == "django-docker-web-1" and s.op != DELETE_REPLACED]
    # The keys the real engine reported (tests/calibration/prod-scenarios.json, unhealthy-release up 2).
    assert (web1.op, web1.mode, web1.keys) == (
        REPLACE,
        "create-before-delete",
        ("entrypoints", "networkDatas", "#initerror"),
    )
    # The old replica is still there (left for deletion), serving until a later update succeeds.
    olds = [e for e in after.entries if e.name == "django-docker-web-1" and e.delete]
    assert len(olds) == 1 and not olds[0].init_error


def test_scaling_creates_or_deletes_replicas_and_nothing_else(running):
    stack, first, state = running
    n = len(first.containers("web"))
    up = plan_update(state, plan(stack, webReplicas=n + 2)).changes
    assert [(s.op, s.name) for s in up] == [(CREATE, f"django-docker-web-{i}") for i in (n + 1, n + 2)]
    down = plan_update(state, plan(stack, webReplicas=1)).changes
    assert sorted((s.op, s.name) for s in down) == [(DELETE, f"django-docker-web-{i}") for i in range(2, n + 1)]


@pytest.mark.parametrize("key, value", [("webMemory", "2G"), ("healthcheckInterval", "15s"), ("webTimeout", "45")])
def test_web_settings_roll_the_replicas(running, key, value):
    stack, _, state = running
    update = plan_update(state, plan(stack, **{key: value}))
    web = [s for s in update.changes if service(s) == "web" and s.op == REPLACE]
    assert web and all(s.mode == "create-before-delete" for s in web)
    assert not [s for s in update.changes if s.op == UPDATE], "an in-place update the provider would only record"


def test_an_nginx_setting_updates_its_site_in_place_and_leaves_nginx(running):
    stack, _, state = running
    update = plan_update(state, plan(stack, clientMaxBodySize="20m"))
    assert [(s.op, s.name, s.keys) for s in update.changes] == [(UPDATE, "django-docker-nginx-site", ("files",))]


def test_a_new_nginx_image_replaces_nginx_first_deleted_and_leaves_its_site(running):
    stack, _, state = running
    update = plan_update(state, plan(stack, nginxImage="nginx:1.28.1-bookworm"))
    assert [(s.op, s.name) for s in update.changes] == [
        (UPDATE, "django-docker-nginx-site"),  # the helper's image: recorded, nothing to reload
        (DELETE_FIRST, "django-docker-nginx"),
        (REPLACE, "django-docker-nginx"),
    ]


def test_a_new_database_image_takes_nothing_else_down_with_it(running):
    stack, _, state = running
    update = plan_update(state, plan(stack, postgresImage="postgres:15.15-bookworm"))
    firsts = [s.name for s in update.steps if s.op == DELETE_FIRST]
    assert firsts == ["django-docker-postgres"]  # no property dependents: no cascade
