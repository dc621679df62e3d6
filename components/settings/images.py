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
    REGISTRY_RE,
    STACK_REF_RE,
    ImageRef,
    SettingsError,
    is_digest_ref,
    parse_image_ref,
)

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
    repository = read.string("imageRepository")
    if not re.fullmatch(rf"{COMPONENT}(?:/{COMPONENT})*", repository):
        raise SettingsError(
            f"imageRepository: '{repository}' is not a repository name; expected e.g. acme/web (no registry, no tag)"
        )
    registry = read.string("imageRegistry", pattern=REGISTRY_RE, expected="a registry server, e.g. ghcr.io/acme")
    username = read.string("imageRegistryUsername")
    password = read.secret("imageRegistryPassword")
    if registry and source == "build" and (not username or password is None):
        raise SettingsError(
            "imageRegistryUsername, imageRegistryPassword: required (the password as a secret) to push to imageRegistry"
        )
    source_stack = read.string("imageSourceStack")
    pin = read.string("imagePin")
    if source == "stack" and not STACK_REF_RE.match(source_stack):
        raise SettingsError(
            f"imageSourceStack: '{source_stack}' is not a stack; expected org/project/stack, e.g. organization/django-docker/dev"
        )
    if source == "pin" and not is_digest_ref(pin):
        raise SettingsError(f"imagePin: '{pin}' is not a digest reference; expected repo@sha256:<64 hex>")
    return ImageSettings(
        source=source,
        repository=repository,
        registry=registry,
        registry_username=username,
        registry_password=password,
        source_stack=source_stack,
        pin=pin,
        # Only a build needs the checkout's SHA; promoted images carry the SHA they were built from.
        git_sha=git_sha or (resolve_git_sha(context) if source == "build" else ""),
    )


def accessory_image(read: Reader, key: str, repository: str, major: str, parts: int) -> ImageRef:
    """A pinned accessory image: the right repository, the expected major, a full release tag.

    `parts` is how many numbers a release tag has for this image (postgres 15.14, redis 7.4.5).
    """
    ref = parse_image_ref(key, read.string(key))
    if ref.repository.rsplit("/", 1)[-1] != repository:
        raise SettingsError(f"{key}: '{ref.text}' is not a {repository} image")
    if ref.digest is None:
        version = re.match(r"^[0-9]+(?:\.[0-9]+)*", ref.tag or "")
        numbers = version.group(0).split(".") if version else []
        example = ".".join([major or "1"] + ["x"] * (parts - 1))
        if len(numbers) < parts:
            raise SettingsError(f"{key}: '{ref.tag}' is not a pinned release; expected {repository}:{example}")
        if major and numbers[0] != major:
            raise SettingsError(
                f"{key}: '{ref.tag}' is not {major}.x; this stack's data needs {repository} {major} (a major upgrade is a migration)"
            )
    return ref
