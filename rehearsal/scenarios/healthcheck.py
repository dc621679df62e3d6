"""healthcheck: a new healthcheck interval reaches the running containers (the provider cannot
update it in place, so they are replaced)."""

from rehearsal.scenarios.scenario import Scenario, Up, expect

INTERVAL = "15s"


def check(ctx, result) -> str:
    app = {
        **ctx.session.containers_of("web"),
        **ctx.session.containers_of("celery-worker"),
        **ctx.session.containers_of("celery-beat"),
    }
    wrong = {
        n: c["Config"]["Healthcheck"]["Interval"] / 1e9
        for n, c in app.items()
        if c["Config"]["Healthcheck"]["Interval"] != 15 * 10**9
    }
    expect(not wrong, f"healthcheck intervals {wrong}, expected 15s")
    jobs = [r.step.name for r in result.reports if r.step.type.endswith(":Job") and r.step.op != "same"]
    expect(not jobs, f"the release jobs ran again for a healthcheck change: {jobs}")
    return f"{len(app)} app containers probe every {INTERVAL}; the release jobs did not run again"


SCENARIO = Scenario(
    "healthcheck", (Up(f"healthcheckInterval -> {INTERVAL}", overrides={"healthcheckInterval": INTERVAL}, check=check),)
)
