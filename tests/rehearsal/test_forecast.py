"""The release forecast (rehearsal/emulation/forecast.py) of the committed stacks' updates, as
the model plans them (the plans of tests/test_releases.py)."""

from __future__ import annotations

from rehearsal.emulation.forecast import forecast
from rehearsal.emulation.model import plan_update
from tests.test_releases import SHA_1, SHA_2, applied, plan


def test_a_new_commit_replaces_the_app_beside_the_old_one_and_disrupts_nothing():
    state, _, _ = applied(plan("prod"))
    f = forecast(plan_update(state, plan("prod", SHA_2)))
    assert f.lines == (
        "replaced: celery-worker x1 (create-before-delete), web x3 (create-before-delete)",
        "jobs: migration-gate, backup, migrate, collectstatic",
        "disruption: none",
    )
    assert "jobs: migration-gate, backup, migrate, collectstatic" in f.lines
    assert (f.disruption, f.maintenance) == ("none", False)
    assert f.lines[-1] == "disruption: none"


def test_nothing_changed_is_said_so():
    state, _, _ = applied(plan("dev"))
    assert forecast(plan_update(state, plan("dev"))).lines == ("nothing changes", "disruption: none")


def test_an_nginx_setting_is_a_reload():
    state, _, _ = applied(plan("dev"))
    f = forecast(plan_update(state, plan("dev", clientMaxBodySize="20m")))
    assert f.disruption == "nginx reload"
    assert "nginx: its configuration written again and reloaded (never replaced)" in f.lines
    assert "jobs: none" in f.lines


def test_a_release_in_maintenance_mode_is_a_window_and_the_old_replicas_go_first():
    mode = {"migrationMode": "maintenance"}
    state, _, _ = applied(plan("prod", SHA_1, **mode))
    f = forecast(plan_update(state, plan("prod", SHA_2, **mode)))
    assert (f.disruption, f.maintenance) == ("maintenance window", True)
    assert any("web x3 (delete first)" in line for line in f.lines)


def test_a_new_nginx_image_is_a_delete_first_of_nginx():
    state, _, _ = applied(plan("dev"))
    f = forecast(plan_update(state, plan("dev", nginxImage="nginx:1.28.1-bookworm")))
    assert f.disruption == "delete-first of django-docker-nginx"


def test_what_the_engine_shows_is_held_against_the_forecast():
    from rehearsal.checks.forecast import differences

    state, _, _ = applied(plan("prod"))
    told = forecast(plan_update(state, plan("prod", SHA_2)))
    assert (told.replaced, told.created, told.deleted) == ({"web": 3, "celery-worker": 1}, {}, {})
    before = {"web": {"w1", "w2", "w3"}, "celery-worker": {"c1"}, "nginx": {"n1"}, "postgres": {"p1"}}
    as_forecast = {"web": {"w4", "w5", "w6"}, "celery-worker": {"c2"}, "nginx": {"n1"}, "postgres": {"p1"}}
    assert differences(told, before, as_forecast) == []
    # One old replica left behind, and an nginx the forecast kept that was replaced.
    wrong = {**as_forecast, "web": {"w3", "w4", "w5", "w6"}, "nginx": {"n2"}}
    assert differences(told, before, wrong) == [
        "nginx: 1 container(s) gone and 1 new; the forecast said 0 and 0",
        "web: 2 container(s) gone and 3 new; the forecast said 3 and 3",
    ]


def test_a_scale_up_is_only_new_replicas():
    from rehearsal.checks.forecast import differences

    state, _, _ = applied(plan("dev"))
    told = forecast(plan_update(state, plan("dev", webReplicas=3)))
    before = {"web": {"w1", "w2"}}
    assert differences(told, before, {"web": {"w1", "w2", "w3"}}) == [], told
    assert differences(told, before, {"web": {"w1", "w2"}}) != []
