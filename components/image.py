"""AppImage: the app image every app container runs, by digest.

Three sources (`imageSource`): `build` builds the app's project (`appContext`, tag = its git
SHA, pushed when a registry is configured); `stack` promotes the digest another stack exported
(prod never rebuilds); `pin` runs an explicit repo@sha256 reference (a rollback). Either way,
containers get `ref`: a digest (or, for a local-only build, the image ID), never a tag
(pulumi/pulumi-docker#436).

A build first builds the runtime (runtime/: an image of its files only, FROM scratch, tagged
with its version and content hash, never pushed) on the same Docker host, and passes its tag to
the app's Dockerfile as the build argument DJANGO_DOCKER_RUNTIME, which the Dockerfile copies
the runtime from (docs/adopt.md). Checked under the real provider (pulumi-docker 5.1.0, whose
build is BuildKit's): a `FROM ${DJANGO_DOCKER_RUNTIME}` stage is found in the local image store
without a pull.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pulumi
import pulumi_docker as docker

from components.common import child_options
from components.settings import (
    RUNTIME_BUILD_ARG,
    RUNTIME_DIR,
    AppSettings,
    ImageSettings,
    is_digest_ref,
    runtime_image_tag,
)

LOCAL_ID_PREFIX = "sha256:"


@dataclass(frozen=True, kw_only=True)
class AppImageArgs:
    image: ImageSettings
    """The validated image settings of the stack."""
    app: AppSettings
    """The app's project: its build context and Dockerfile."""
    runtime: Path = RUNTIME_DIR
    """The runtime's sources (runtime/), built into the image the app's Dockerfile copies from."""
    platform: str = "linux/amd64"
    """Target platform of the build."""


class ImagePromotionError(pulumi.RunError):
    """The source stack's image cannot be promoted; one line that says why."""


def check_promotable(source: str, ref: object, pushed: object) -> str:
    """Validate another stack's image outputs; returns the digest reference to run."""
    if not ref:
        raise ImagePromotionError(f"imageSourceStack: {source} has no imageRef output; run `pulumi up` on it first")
    if not isinstance(ref, str) or not (is_digest_ref(ref) or ref.startswith(LOCAL_ID_PREFIX)):
        raise ImagePromotionError(
            f"imageSourceStack: {source} exports imageRef '{ref}', not a repo@sha256:<64 hex> digest"
        )
    if pushed is not True or not is_digest_ref(ref):
        raise ImagePromotionError(
            f"imageSourceStack: {source}'s image {ref} is local to its Docker host and cannot be pulled elsewhere; "
            "set imageRegistry on that stack so it pushes, then promote"
        )
    return ref


class AppImage(pulumi.ComponentResource):
    ref: pulumi.Output[str]
    """What app containers run: repo@sha256:... (pushed or promoted) or sha256:<id> (local build)."""
    pushed: pulumi.Output[bool]
    """Whether `ref` lives in a registry another host can pull from."""
    git_sha: pulumi.Output[str]
    """The commit the image was built from ("" when pinned and unknown)."""

    def __init__(self, name: str, args: AppImageArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("django-docker:components:AppImage", name, None, opts)
        settings = args.image
        child = child_options(self)

        if settings.source == "build":
            prefix = f"{settings.registry}/" if settings.push else ""
            runtime_tag = runtime_image_tag(args.runtime)
            runtime = docker.Image(
                f"{name}-runtime",
                image_name=runtime_tag,
                build=docker.DockerBuildArgs(
                    context=str(args.runtime),
                    dockerfile=str(args.runtime / "Dockerfile"),
                    platform=args.platform,
                ),
                # Only the app's build reads it, on this same host: never pushed.
                skip_push=True,
                opts=child,
            )
            image = docker.Image(
                f"{name}-build",
                image_name=f"{prefix}{settings.repository}:{settings.tag}",
                build=docker.DockerBuildArgs(
                    context=str(args.app.context),
                    dockerfile=str(args.app.dockerfile),
                    args={"GIT_SHA": settings.git_sha, RUNTIME_BUILD_ARG: runtime_tag},
                    platform=args.platform,
                ),
                skip_push=not settings.push,
                registry=docker.RegistryArgs(
                    server=settings.registry.split("/", 1)[0],
                    username=settings.registry_username,
                    password=settings.registry_password,
                )
                if settings.push
                else None,
                opts=child_options(self, depends_on=[runtime]),
            )
            self.ref = image.repo_digest
            self.pushed = pulumi.Output.from_input(settings.push)
            self.git_sha = pulumi.Output.from_input(settings.git_sha)
        else:
            if settings.source == "stack":
                source = pulumi.StackReference(f"{name}-source", stack_name=settings.source_stack, opts=child)
                ref = pulumi.Output.all(source.get_output("imageRef"), source.get_output("imagePushed")).apply(
                    lambda values: check_promotable(settings.source_stack, values[0], values[1])
                )
                self.git_sha = source.get_output("gitSha").apply(lambda sha: sha or "")
            else:
                ref = pulumi.Output.from_input(settings.pin)
                self.git_sha = pulumi.Output.from_input("")
            # Containers do not pull on their own: pull the exact digest onto this stack's host.
            pulled = docker.RemoteImage(f"{name}-pull", name=ref, keep_locally=True, opts=child)
            self.ref = pulled.repo_digest
            self.pushed = pulumi.Output.from_input(True)

        self.register_outputs({"ref": self.ref, "pushed": self.pushed, "git_sha": self.git_sha})
