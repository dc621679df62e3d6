"""maintenance-migration: the other way through the gate. A release with a migration the
serving release cannot survive (expand-contract's `position` dropped), with `migrationMode: maintenance`: the
gate lets it through, nginx answers its maintenance page (503, Retry-After; static files still
served) from just before migrate until the new web replicas are healthy (the old ones stopped
first: they cannot read the new schema), then the new release.
The maintenance answers are counted apart; nothing else may fail. Then `make maintenance on`
and `off` by hand (a second window), and back to gate mode: the gate runs again (nothing new
to migrate)."""

from ops.benchmark import run_ops
from rehearsal.checks.load import is_maintenance_page
from rehearsal.scenarios.expand_contract import APPLIED
from rehearsal.scenarios.incompatible_migration import SCHEMA
from rehearsal.scenarios.scenario import Scenario, Up, expect

MIGRATION = "0005_remove_visit_position"
MAINTENANCE, SITE = "django-docker-release-maintenance", "django-docker-nginx-site"
STATIC = "/static/visits/site.css"  # the example's asset, by its unhashed name (served a minute)


def released(ctx, result) -> str:
    expect(ctx.psql(APPLIED.format(MIGRATION)) == "1", f"{MIGRATION} is not applied")
    expect("position " not in ctx.psql(SCHEMA), "position is still there")
    sha = ctx.serving_sha()  # 200: nginx serves the site again
    expect(sha == ctx.sha_of("maintenance-migration"), f"/health/ reports {sha}, not the new release")
    steps = {r.step.name: r for r in result.reports}
    # The switch is new in this up (migrationMode changed with it): created; the site's own is
    # updated (keyed on the release now). Each wrote its generation and reloaded the same nginx.
    ops = {name: steps[name].step.op if name in steps else None for name in (MAINTENANCE, SITE)}
    expect(ops == {MAINTENANCE: "create", SITE: "update"}, f"nginx was not switched and back: {ops}")
    expect(
        steps["django-docker-nginx"].step.op == "same" if "django-docker-nginx" in steps else True, "nginx was replaced"
    )
    order = [r.step.name for r in result.reports]
    expect(
        order.index(MAINTENANCE) < order.index("django-docker-release-migrate") < order.index(SITE),
        f"the window did not wrap migrate: {order}",
    )
    # The old replicas went first (delete-before-replace in maintenance mode): none of them
    # served the new schema after the window closed.
    modes = {
        r.step.name: r.step.mode
        for r in result.reports
        if r.step.name.startswith("django-docker-web-") and r.step.op == "replace"
    }
    expect(set(modes.values()) == {"delete-before-replace"}, f"web replicas not replaced stop-first: {modes}")
    return (
        f"{MIGRATION} applied behind the maintenance page; the old replicas stopped first; {sha[:12]} serves; "
        "nginx switched back by reload"
    )


def by_hand(ctx) -> str:
    """`make maintenance STACK=... on`, then `off`, as an operator runs them (python -m ops):
    the page and a static file while on; the site again after off; the same nginx throughout."""

    def ops(state: str) -> str:
        code, out, err, _ = run_ops(["maintenance", ctx.stack, state], timeout=120, env=ctx.ops_env)
        expect(code == 0, f"ops maintenance {state} exited {code}: {(err or out).strip()}")
        return out.strip()

    (nginx,) = ctx.session.containers_of("nginx").values()
    on = ops("on")
    page = ctx.get("/visits/")
    expect(is_maintenance_page(page), f"while on, GET /visits/ -> {page.status_code}, not the maintenance page")
    static = ctx.get(STATIC)
    expect(static.status_code == 200, f"while on, GET {STATIC} -> {static.status_code} (static files must be served)")
    expect(ops("status").startswith("maintenance: on"), "ops maintenance status does not say on")
    off = ops("off")
    expect(ctx.get("/health/").status_code == 200, "after off, /health/ does not answer 200")
    (after,) = ctx.session.containers_of("nginx").values()
    expect(after["Id"] == nginx["Id"], "nginx was replaced")
    return f"by hand: {on}; GET /visits/ 503 (Retry-After {page.headers['Retry-After']}), {STATIC} 200; {off}"


def gate_again(ctx, result) -> str:
    changed = {(r.step.name, r.step.op) for r in result.reports if r.step.op not in ("same", "delete-replaced")}
    expect(("django-docker-release-migration-gate", "replace") in changed, f"the gate did not run again: {changed}")
    serving = {name for name, _ in changed if name.startswith(("django-docker-web-", "django-docker-celery"))}
    expect(
        not serving and ("django-docker-release-migrate", "replace") not in changed, f"more than the gate: {changed}"
    )
    expect(ctx.get("/health/").status_code == 200, "nginx does not serve the site")
    return "the gate ran again (no new migration); migrate did not, no replica was replaced; the site serves"


SCENARIO = Scenario(
    "maintenance-migration",
    (
        Up(
            "a release that drops position, which the serving release reads and writes, in maintenance mode",
            overrides={"migrationMode": "maintenance"},
            image="maintenance-migration",
            check=released,
        ),
        Up("back to gate mode", overrides={"migrationMode": "gate"}, before=by_hand, check=gate_again),
    ),
    pages=True,
    forecast_gate=True,
    maintenance=True,
)
