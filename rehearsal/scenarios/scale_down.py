"""scale-down: 5 -> 2 web replicas; the three go at the end, gracefully, nginx stops asking them."""

from rehearsal.scenarios.scenario import Scenario, Up, expect


def check(ctx, result) -> str:
    deleted = sorted(r.step.name for r in result.reports if r.step.op == "delete")
    expect(deleted == [f"django-docker-web-{i}" for i in (3, 4, 5)], f"deleted {deleted}")
    web = ctx.session.containers_of("web")
    expect(sorted(web) == ["django-docker-web-1", "django-docker-web-2"], f"web replicas now {sorted(web)}")
    answered = ctx.replicas_answering(web)
    return f"web-3..5 stopped and removed; 2 replicas answer ({answered})"


SCENARIO = Scenario("scale-down", (Up("webReplicas 5 -> 2", overrides={"webReplicas": 2}, check=check),))
