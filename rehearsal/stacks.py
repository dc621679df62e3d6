"""Plan a stack for its rehearsal, including a stack that promotes another's image.

A stack that builds (dev) plans as it is. A stack that promotes (prod,
`imageSource: stack`) runs the digest its source stack exported; the rehearsal
plans the source stack too, builds the image that plan describes, and gives the
promoting stack a digest reference standing for that build (`imagePushed: true`,
pushing skipped). The apply step maps that reference to the real image id.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from rehearsal.errors import RehearsalError
from rehearsal.plan import IMAGE, Plan, PlanError, plan_stack, stack_config


@dataclass
class RehearsalPlan:
    stack: str
    plan: Plan
    build: object  # the PlannedResource of the docker.Image to build (from this or the source stack)
    build_stack: str
    promoted_refs: list[str] = field(default_factory=list)  # refs standing for the build


def promoted_ref(image_name: str) -> str:
    """A digest reference standing for the build of `image_name` (repo@sha256:<64 hex>)."""
    last = image_name.rsplit("/", 1)[-1]
    repository = image_name.rsplit(":", 1)[0] if ":" in last else image_name
    return f"{repository}@sha256:{hashlib.sha256(('rehearsal:' + image_name).encode()).hexdigest()}"


def plan_options(stack: str, *, app_ref: str, git_sha: str = "rehearsal") -> dict:
    """Keyword arguments for plan_stack: the source stack's outputs when `stack` promotes."""
    config, ns = stack_config(stack)
    if config.get(f"{ns}:imageSource") != "stack":
        return {}
    source = config.get(f"{ns}:imageSourceStack", "")
    return {"stack_references": {source: {"imageRef": app_ref, "imagePushed": True, "gitSha": git_sha}}}


def plan_for_rehearsal(stack: str) -> RehearsalPlan:
    try:
        config, ns = stack_config(stack)
        source = config.get(f"{ns}:imageSource", "build")
        if source == "build":
            plan = plan_stack(stack)
            return RehearsalPlan(stack, plan, _the_build(plan, stack), stack)
        if source == "stack":
            source_stack = config.get(f"{ns}:imageSourceStack", "").rsplit("/", 1)[-1]
            if not source_stack:
                raise RehearsalError(f"{stack}: imageSource is stack but imageSourceStack is empty")
            source_plan = plan_stack(source_stack)
            build = _the_build(source_plan, source_stack)
            ref = promoted_ref(build.inputs["imageName"])
            git_sha = source_plan.outputs.get("gitSha") or "rehearsal"
            plan = plan_stack(stack, **plan_options(stack, app_ref=ref, git_sha=git_sha))
            return RehearsalPlan(stack, plan, build, source_stack, [ref])
        raise RehearsalError(
            f"{stack}: imageSource={source}: the rehearsal runs only an image it builds "
            "(imageSource build, or stack promoting a stack that builds)"
        )
    except PlanError as error:
        raise RehearsalError(f"plan {stack}: {error}") from None


def _the_build(plan: Plan, stack: str):
    images = plan.of_type(IMAGE)
    if len(images) != 1:
        raise RehearsalError(f"plan {stack}: expected one docker.Image to build, found {len(images)}")
    return images[0]
