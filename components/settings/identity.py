"""The commit an image is built from: CI's (GIT_SHA, GITHUB_SHA) or the checkout's."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from components.settings.values import SHA_RE, SettingsError

PROJECT_ROOT = Path(__file__).resolve().parent.parent.parent

# What goes into the image: only changes here make a checkout's image `-dirty`. A stack file
# that `pulumi stack init` or `pulumi config set` just wrote (the passphrase provider's
# encryptionsalt, a registry) changes no byte of the image, and must not change its tag.
IMAGE_SOURCES_DIR = "django_app"


def resolve_git_sha(root: Path = PROJECT_ROOT) -> str:
    """The SHA the image is tagged with: CI's (GIT_SHA, then GITHUB_SHA) or the checkout's, with
    `-dirty` when the image's build context has uncommitted changes."""
    for variable in ("GIT_SHA", "GITHUB_SHA"):
        value = os.environ.get(variable, "").strip()
        if value:
            if not SHA_RE.match(value):
                raise SettingsError(f"{variable}: '{value}' is not a 40-character git SHA")
            return value
    try:
        sha = _git(root, "rev-parse", "HEAD")
        dirty = _git(root, "status", "--porcelain", "--untracked-files=normal", "--", IMAGE_SOURCES_DIR)
    except (OSError, subprocess.CalledProcessError):
        raise SettingsError("git: cannot read the checkout's commit; run from a git clone or set GIT_SHA") from None
    return sha + ("-dirty" if dirty else "")


def _git(root: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(root), *args], check=True, capture_output=True, text=True).stdout.strip()
