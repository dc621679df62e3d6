"""The commit an image is built from: CI's (GIT_SHA, GITHUB_SHA) or the app's checkout's."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from components.settings.values import SHA_RE, SettingsError

PROJECT_ROOT = Path(__file__).resolve().parent.parent.parent

# The example app, and the runtime every app image carries (runtime/, this repository's).
EXAMPLE_APP = PROJECT_ROOT / "django_app"
RUNTIME_SOURCES = PROJECT_ROOT / "runtime"


def resolve_git_sha(context: Path = EXAMPLE_APP, runtime: Path = RUNTIME_SOURCES) -> str:
    """The SHA the image is tagged with: CI's (GIT_SHA, then GITHUB_SHA) or the commit of the
    app's checkout (`context`'s repository, which may be this one or the team's own), with
    `-dirty` when what goes into the image has uncommitted changes: the build context, or the
    runtime it copies in. A stack file that `pulumi stack init` or `pulumi config set` just wrote
    changes no byte of the image, and does not make it dirty."""
    for variable in ("GIT_SHA", "GITHUB_SHA"):
        value = os.environ.get(variable, "").strip()
        if value:
            if not SHA_RE.match(value):
                raise SettingsError(f"{variable}: '{value}' is not a 40-character git SHA")
            return value
    try:
        sha = _git(context, "rev-parse", "HEAD")
        dirty = _changes(context)
    except (OSError, subprocess.CalledProcessError):
        raise SettingsError(
            f"appContext: cannot read the commit of {context} (the image is tagged with it); "
            "make it a git checkout with a commit, or set GIT_SHA"
        ) from None
    if not dirty and runtime.is_dir():
        try:
            dirty = _changes(runtime)
        except (OSError, subprocess.CalledProcessError):
            dirty = ""  # the program's own files outside git (an unpacked copy): nothing to compare
    return sha + ("-dirty" if dirty else "")


def _changes(path: Path) -> str:
    return _git(path, "status", "--porcelain", "--untracked-files=normal", "--", ".")


def _git(where: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(where), *args], check=True, capture_output=True, text=True).stdout.strip()
