"""promote: prod pinned to an exact digest (imageSource pin), here the first release's."""

from rehearsal.scenarios.scenario import Scenario, Up, expect


def pin(ctx) -> dict:
    return {"imageSource": "pin", "imagePin": ctx.ref_of("current")}


def check(ctx, result) -> str:
    image = ctx.image_of("current")
    app = {**ctx.session.containers_of("web"), **ctx.session.containers_of("celery-worker")}
    stale = sorted(n for n, c in app.items() if c["Image"] != image)
    expect(not stale, f"not running the pinned image: {stale}")
    return f"every app container runs the pinned digest {ctx.ref_of('current').split('@')[1][:19]}"


SCENARIO = Scenario(
    "promote", (Up("imageSource=pin, imagePin=<the first release's digest>", overrides=pin, check=check),)
)
