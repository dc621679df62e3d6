"""scale-up: 3 -> 5 web replicas; only the new ones are created, nginx finds them by DNS."""

from rehearsal.scenarios.scenario import Scenario, Up, expect


def check(ctx, result) -> str:
    changed = [r.step.describe() for r in result.reports if r.step.op != "same"]
    expect(
        all(c.startswith("create django-docker-web-") for c in changed), f"more than new replicas changed: {changed}"
    )
    web = ctx.session.containers_of("web")
    expect(len(web) == 5, f"{len(web)} web replicas, expected 5")
    answered = ctx.replicas_answering(web)
    return f"5 replicas, {len(changed)} created; all answered through nginx ({answered}); nginx not touched"


SCENARIO = Scenario("scale-up", (Up("webReplicas 3 -> 5", overrides={"webReplicas": 5}, check=check),))
