"""Where the app image comes from (a build, another stack's digest, a pin) and the pinned
accessory images (postgres, redis, nginx)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import pulumi

from components.settings.identity import resolve_git_sha
from components.settings.reader import Reader
from components.settings.values import (
    COMPONENT,
    DIGEST_REF_RE,
    REFERENCE_NAME_MAX,
    REGISTRY_RE,
    STACK_REF_RE,
    ImageRef,
    SettingsError,
    parse_image_ref,
)

REPOSITORY_RE = re.compile(rf"^{COMPONENT}(?:/{COMPONENT})*$")

IMAGE_SOURCES = ("build", "stack", "pin")


@dataclass(frozen=True, kw_only=True)
class ImageSettings:
    source: str
    """build, stack or pin."""
    repository: str
    """Repository without registry or tag."""
    registry: str
    """Registry server; empty: no push."""
    registry_username: str
    registry_password: Optional[pulumi.Output[str]]
    source_stack: str
    pin: str
    git_sha: str
    """Full git SHA of the checkout, with `-dirty` when the work tree has uncommitted changes."""

    @property
    def tag(self) -> str:
        """The image tag: 12 characters of the SHA, plus the dirty marker. Never `latest`."""
        return self.git_sha[:12] + ("-dirty" if self.git_sha.endswith("-dirty") else "")

    @property
    def push(self) -> bool:
        return bool(self.registry)


def read_image(read: Reader, git_sha: Optional[str], context: Path) -> ImageSettings:
    """The image's source; a build's tag is the commit of `context` (the app's checkout)."""
    source = read.string("imageSource", allowed=IMAGE_SOURCES)
    repository = read.string(
        "imageRepository",
        pattern=REPOSITORY_RE,
        expected="a repository name like acme/web (lowercase, no registry, no tag)",
        required=True,
    )
    registry = read.string("imageRegistry", pattern=REGISTRY_RE, expected="a registry server, e.g. ghcr.io/acme")
    name = f"{registry}/{repository}" if registry else repository
    if read.ok("imageRegistry", "imageRepository") and len(name) > REFERENCE_NAME_MAX:
        # distribution/reference NameTotalLengthMax: Docker refuses a longer name.
        keys = "imageRegistry, imageRepository" if registry else "imageRepository"
        read.refuse(
            f"{keys}: the image name is {len(name)} characters; Docker takes at most {REFERENCE_NAME_MAX}",
            "imageRepository",
        )
    username = read.string("imageRegistryUsername")
    password = read.secret("imageRegistryPassword", token=True)
    has_password = not read.is_default("imageRegistryPassword")
    if source == "build" and registry and read.ok("imageRegistryPassword") and (not username or password is None):
        read.refuse(
            "imageRegistryUsername, imageRegistryPassword: required (the password as a secret) to push to imageRegistry",
            "imageRegistryUsername",
        )
    if not registry and read.ok("imageRegistry") and (username or has_password):
        read.refuse(
            f"{'imageRegistryUsername' if username else 'imageRegistryPassword'}: set without imageRegistry; "
            "set imageRegistry (the server to push to) too, or remove it",
            "imageRegistryUsername",
        )
    if source != "build" and read.ok("imageSource") and registry:
        # Only a build pushes; a promoted or pinned image is pulled with the provider's registryAuth.
        read.refuse(
            f"imageRegistry: set, but imageSource is {source}, which pushes nothing; remove it (pulls "
            "from a private registry authenticate with docker:registryAuth)",
            "imageRegistry",
        )
    source_stack = read.string(
        "imageSourceStack",
        pattern=STACK_REF_RE,
        expected="org/project/stack, e.g. organization/django-docker/dev",
    )
    pin = read.string("imagePin", pattern=DIGEST_REF_RE, expected="repo@sha256:<64 hex>")
    if read.ok("imageSource", "imageSourceStack"):
        if source == "stack" and not source_stack:
            read.refuse(
                "imageSourceStack: empty, but imageSource is stack; expected org/project/stack, e.g. organization/django-docker/dev",
                "imageSourceStack",
            )
        if source == "build" and source_stack:
            read.refuse(
                "imageSourceStack: set, but imageSource is build, which ignores it; set imageSource: stack to "
                "promote that stack's image, or remove imageSourceStack",
                "imageSourceStack",
            )
    if read.ok("imageSource", "imagePin"):
        if source == "pin" and not pin:
            read.refuse("imagePin: empty, but imageSource is pin; expected repo@sha256:<64 hex>", "imagePin")
        if source != "pin" and pin:
            # A rollback pin that is not followed would look like a rollback and run something else.
            read.refuse(
                f"imagePin: set, but imageSource is {source}, so the pin is ignored; set imageSource: pin to "
                "run it (make rollback does both), or remove imagePin",
                "imagePin",
            )
    return ImageSettings(
        source=source,
        repository=repository,
        registry=registry,
        registry_username=username,
        registry_password=password,
        source_stack=source_stack,
        pin=pin,
        # Only a build needs the checkout's SHA; promoted images carry the SHA they were built from.
        git_sha=git_sha or (_git_sha(read, context) if source == "build" else ""),
    )


def _git_sha(read: Reader, context: Path) -> str:
    sha = read.attempt(lambda: resolve_git_sha(context), "appContext")
    return sha if sha is not None else "0" * 40


def accessory_image(read: Reader, key: str, repository: str, major: str, parts: int) -> ImageRef:
    """A pinned accessory image: the right repository, the expected major, a full release tag.

    `parts` is how many numbers a release tag has for this image (postgres 15.14, redis 7.4.5).
    """

    def parse(raw: str) -> ImageRef:
        ref = parse_image_ref(key, raw.strip())
        if ref.repository.rsplit("/", 1)[-1] != repository:
            raise SettingsError(f"{key}: '{ref.text}' is not a {repository} image")
        if ref.digest is None:
            # A leading `v` is part of some projects' tags (goacme/lego:v4.35.2).
            version = re.match(r"^v?([0-9]+(?:\.[0-9]+)*)", ref.tag or "")
            numbers = version.group(1).split(".") if version else []
            example = ".".join([major or "1"] + ["x"] * (parts - 1))
            if len(numbers) < parts:
                raise SettingsError(f"{key}: '{ref.tag}' is not a pinned release; expected {repository}:{example}")
            if major and numbers[0] != major:
                raise SettingsError(
                    f"{key}: '{ref.tag}' is not {major}.x; this stack's data needs {repository} {major} (a major upgrade is a migration)"
                )
        return ref

    return read._typed(key, parse)
