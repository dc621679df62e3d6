"""unhealthy-release: a release whose web cannot start. `pulumi up` fails waiting for the new
replicas, and so does the next one (the failed replicas are replaced, not waved through); the
old replicas serve throughout; a good release then cleans everything up."""

from rehearsal.scenarios.scenario import Scenario, Up, expect

UNHEALTHY = ("not healthy within wait_timeout", "container failed to be in healthy state")


def failed(ctx, result) -> str:
    expect((result.error or "").startswith("django-docker-web-"), f"failed elsewhere: {result.error}")
    # The emulation's words, or the provider's (terraform-provider-docker v4.5.0
    # resource_docker_container_funcs.go:40, errContainerFailedToBeInHealthyState).
    expect(any(p in (result.error or "") for p in UNHEALTHY), result.error or "")
    sha = ctx.serving_sha()
    expect(sha == ctx.serving_before, f"/health/ reports {sha}, not the release that ran before")
    return f"`pulumi up` failed: {result.error.splitlines()[0][:90]}...; {sha[:12]} still serves"


def failed_again(ctx, result) -> str:
    replaced = [
        r.step for r in result.reports if r.step.name.startswith("django-docker-web-") and r.step.op == "replace"
    ]
    expect(
        replaced and all("#initerror" in s.keys for s in replaced),
        f"the failed replicas were not replaced for their initialization error: {[s.describe() for s in replaced]}",
    )
    return failed(ctx, result)


def recovered(ctx, result) -> str:
    broken = ctx.image_of("broken-wsgi")
    left = [c["Name"] for c in ctx.engine_containers() if c["Image"] == broken]
    expect(not left, f"containers of the broken release remain: {left}")
    sha = ctx.serving_sha()
    expect(sha == ctx.sha_of("next-commit"), f"/health/ reports {sha}")
    return f"a good release replaced them; no container of the broken release remains; {sha[:12]} serves"


SCENARIO = Scenario(
    "unhealthy-release",
    (
        Up("a release whose WSGI module cannot be imported", image="broken-wsgi", succeeds=False, check=failed),
        Up("the same release again", succeeds=False, check=failed_again),
        Up("a good release", image="next-commit", check=recovered),
    ),
)
