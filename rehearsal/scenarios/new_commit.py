"""new-commit: dev builds the next commit, prod promotes it; every app container is replaced
create-before-delete and the old ones go only once the new ones are healthy."""

from rehearsal.scenarios.scenario import Scenario, Up, expect


def check(ctx, result) -> str:
    image = ctx.image_of("next-commit")
    web = ctx.session.containers_of("web")
    expect(len(web) == ctx.replicas(), f"{len(web)} web replicas, expected {ctx.replicas()}")
    stale = sorted(n for n, c in {**web, **ctx.session.containers_of("celery-worker")}.items() if c["Image"] != image)
    expect(not stale, f"not running the new image: {stale}")
    sha = ctx.serving_sha()
    expect(sha == ctx.sha_of("next-commit"), f"/health/ reports {sha}, not the new commit")
    return f"{len(web)} web replicas and the worker run the new image; /health/ reports {sha[:12]}"


SCENARIO = Scenario(
    "new-commit", (Up("the next commit, promoted from dev", image="next-commit", check=check),), timed=True
)
