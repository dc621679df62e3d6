"""The Docker provider's own settings (`docker:` namespace): where the engine is. Read here so
that every setting still has one reader (its registryAuth: registry.py)."""

from __future__ import annotations

import pulumi


def docker_host() -> str:
    """`docker:host`; empty: DOCKER_HOST or the local socket (as the provider itself falls back)."""
    return (pulumi.Config("docker").get("host") or "").strip()
