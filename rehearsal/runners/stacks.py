"""Plan a stack for its rehearsal, including a stack that promotes another's image.

A stack that builds (dev) plans as it is. A stack that promotes (prod, `imageSource:
stack`) runs the digest its source stack exported; the rehearsal plans the source stack too,
builds the image that plan describes, and gives the promoting stack a digest reference
standing for that build (`imagePushed: true`, pushing skipped). A stack pinned to a digest
(`imageSource: pin`) runs an image the rehearsal built earlier. The engine maps those
references to the real image ids.

`git_sha` stands for the commit being deployed (the program reads GIT_SHA, as CI sets it);
`overrides` for `pulumi config set` on the stack, `secrets` for `pulumi config set --secret`
(the promoting stack's own; the source stack is planned as committed).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from dataclasses import dataclass, field
from typing import Any, Mapping, Optional

from components.settings.app import RUNTIME_REPOSITORY
from components.settings.backups import BACKUP_REPOSITORY
from planning.harness import IMAGE, Plan, PlanError, PlannedResource, plan_stack, stack_config
from rehearsal.errors import RehearsalError


@dataclass
class RehearsalPlan:
    stack: str
    plan: Plan
    build: Optional[PlannedResource]
    """The app's docker.Image to build (from this or the source stack); None when the stack is pinned."""
    build_stack: str
    promoted_refs: list[str] = field(default_factory=list)
    """Digest references in the plan that stand for `build`."""
    runtime: Optional[PlannedResource] = None
    """The runtime's docker.Image, built before `build` (whose Dockerfile copies from it)."""
    accessories: list[PlannedResource] = field(default_factory=list)
    """Other docker.Images the plan builds for its own accessories (the backup image)."""
    overrides: dict[str, Any] = field(default_factory=dict)
    """The config it was planned with on top of Pulumi.<stack>.yaml (`pulumi config set`)."""
    secrets: dict[str, Any] = field(default_factory=dict)
    """The secret config it was planned with (`pulumi config set --secret`)."""
    git_sha: Optional[str] = None
    """The commit it was planned for (GIT_SHA); None: the checkout's."""


def promoted_ref(image_name: str) -> str:
    """A digest reference standing for the build of `image_name` (repo@sha256:<64 hex>)."""
    last = image_name.rsplit("/", 1)[-1]
    repository = image_name.rsplit(":", 1)[0] if ":" in last else image_name
    return f"{repository}@sha256:{hashlib.sha256(('rehearsal:' + image_name).encode()).hexdigest()}"


def plan_options(
    stack: str, *, app_ref: str, git_sha: str = "rehearsal", overrides: Optional[Mapping[str, Any]] = None
) -> dict:
    """Keyword arguments for plan_stack: the source stack's outputs when `stack` promotes."""
    config, ns = stack_config(stack)
    source = (overrides or {}).get("imageSource", config.get(f"{ns}:imageSource"))
    if source != "stack":
        return {}
    stack_ref = (overrides or {}).get("imageSourceStack", config.get(f"{ns}:imageSourceStack", ""))
    return {"stack_references": {stack_ref: {"imageRef": app_ref, "imagePushed": True, "gitSha": git_sha}}}


@contextlib.contextmanager
def commit(git_sha: Optional[str]):
    """Plan as CI would for `git_sha`: the program takes the commit from GIT_SHA."""
    if git_sha is None:
        yield
        return
    before = os.environ.get("GIT_SHA")
    os.environ["GIT_SHA"] = git_sha
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("GIT_SHA", None)
        else:
            os.environ["GIT_SHA"] = before


def plan_for_rehearsal(
    stack: str,
    *,
    overrides: Optional[Mapping[str, Any]] = None,
    secrets: Optional[Mapping[str, Any]] = None,
    git_sha: Optional[str] = None,
    probe_host: bool = False,
    registry_digests: Optional[Mapping[str, str]] = None,
) -> RehearsalPlan:
    """probe_host: the program connects to its Docker host before registering anything, as
    under a real `pulumi up` (planning.harness.plan_stack). registry_digests: what a registry
    gave for the images the program pulls by name (plan_stack)."""
    overrides = dict(overrides or {})
    planned_with: dict[str, Any] = {"overrides": overrides, "secrets": dict(secrets or {}), "git_sha": git_sha}
    try:
        config, ns = stack_config(stack)
        source = overrides.get("imageSource", config.get(f"{ns}:imageSource", "build"))
        with commit(git_sha):
            if source == "build":
                plan = plan_stack(
                    stack,
                    overrides=overrides,
                    secrets=secrets,
                    probe_host=probe_host,
                    registry_digests=registry_digests,
                )
                build, runtime = _the_builds(plan, stack)
                return RehearsalPlan(
                    stack, plan, build, stack, runtime=runtime, accessories=_accessory_builds(plan), **planned_with
                )
            if source == "pin":
                plan = plan_stack(
                    stack,
                    overrides=overrides,
                    secrets=secrets,
                    probe_host=probe_host,
                    registry_digests=registry_digests,
                )
                return RehearsalPlan(
                    stack,
                    plan,
                    None,
                    stack,
                    [overrides.get("imagePin") or config.get(f"{ns}:imagePin", "")],
                    accessories=_accessory_builds(plan),
                    **planned_with,
                )
            if source == "stack":
                source_stack = str(overrides.get("imageSourceStack", config.get(f"{ns}:imageSourceStack", ""))).rsplit(
                    "/", 1
                )[-1]
                if not source_stack:
                    raise RehearsalError(f"{stack}: imageSource is stack but imageSourceStack is empty")
                source_plan = plan_stack(source_stack)
                build, runtime = _the_builds(source_plan, source_stack)
                ref = promoted_ref(build.inputs["imageName"])
                sha = source_plan.outputs.get("gitSha") or "rehearsal"
                plan = plan_stack(
                    stack,
                    overrides=overrides,
                    secrets=secrets,
                    probe_host=probe_host,
                    registry_digests=registry_digests,
                    **plan_options(stack, app_ref=ref, git_sha=sha, overrides=overrides),
                )
                return RehearsalPlan(
                    stack,
                    plan,
                    build,
                    source_stack,
                    [ref],
                    runtime=runtime,
                    accessories=_accessory_builds(plan),
                    **planned_with,
                )
        raise RehearsalError(f"{stack}: imageSource={source} is not one the rehearsal knows (build, stack, pin)")
    except PlanError as error:
        raise RehearsalError(f"plan {stack}: {error}") from None


def _accessory_builds(plan: Plan) -> list[PlannedResource]:
    """The docker.Images the program builds for an accessory (the backup image, FROM postgresImage)."""
    return [i for i in plan.of_type(IMAGE) if str(i.inputs["imageName"]).startswith(f"{BACKUP_REPOSITORY}:")]


def _the_builds(plan: Plan, stack: str) -> tuple[PlannedResource, PlannedResource]:
    """(the app's image, the runtime's image): the two docker.Images a building stack plans
    for the app (besides its accessories' own: _accessory_builds)."""
    images = [i for i in plan.of_type(IMAGE) if i not in _accessory_builds(plan)]
    runtime = [i for i in images if str(i.inputs["imageName"]).startswith(f"{RUNTIME_REPOSITORY}:")]
    apps = [i for i in images if i not in runtime]
    if len(apps) != 1 or len(runtime) != 1:
        raise RehearsalError(
            f"plan {stack}: expected the app's and the runtime's docker.Image, found {[i.name for i in images]}"
        )
    return apps[0], runtime[0]
