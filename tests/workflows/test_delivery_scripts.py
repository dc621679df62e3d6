"""scripts/promote.sh and scripts/rollback.sh, run against a stand-in Pulumi CLI.

The stand-in (fake_pulumi.py) keeps each stack's outputs and config and records
every call, so these tests check what the scripts refuse, which commands they
run in which order, and what prod runs afterwards.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PROMOTE = ROOT / "scripts" / "promote.sh"
ROLLBACK = ROOT / "scripts" / "rollback.sh"
FAKE = Path(__file__).resolve().parent / "fake_pulumi.py"

REGISTRY = "registry.example.com/django-docker/web"
DEV_DIGEST = f"{REGISTRY}@sha256:" + "a" * 64
OLD_DIGEST = f"{REGISTRY}@sha256:" + "b" * 64
GIT_SHA = "1" * 40


class World:
    def __init__(self, tmp_path: Path):
        self.dir = tmp_path
        self.state_file = tmp_path / "state.json"
        bin_dir = tmp_path / "bin"
        bin_dir.mkdir()
        wrapper = bin_dir / "pulumi"
        wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{FAKE}" "$@"\n')
        wrapper.chmod(0o755)
        self.env = {
            **os.environ,
            "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
            "FAKE_PULUMI_STATE": str(self.state_file),
            "POLICY_PACK": str(tmp_path / "no-policy-pack"),
        }
        self.write(
            {
                "outputs": {
                    "dev": {"imageRef": DEV_DIGEST, "imagePushed": True, "gitSha": GIT_SHA},
                    "prod": {"imageRef": OLD_DIGEST},
                },
                "config": {
                    "prod": {
                        "django-docker:imageSource": "stack",
                        "django-docker:imageSourceStack": "organization/django-docker/dev",
                    }
                },
            }
        )

    def read(self) -> dict:
        return json.loads(self.state_file.read_text())

    def write(self, state: dict) -> None:
        self.state_file.write_text(json.dumps(state))

    def update(self, fn) -> None:
        state = self.read()
        fn(state)
        self.write(state)

    def run(self, script: Path, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            ["bash", str(script), *args],
            env=self.env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=60,
        )

    @property
    def calls(self) -> list[list[str]]:
        return self.read().get("calls", [])

    def commands(self) -> list[str]:
        """Each call as 'verb stack', e.g. 'preview prod', 'stack output dev'."""
        result = []
        for call in self.calls:
            stack = call[call.index("--stack") + 1]
            verb = call[0] if call[0] in ("preview", "up") else " ".join(call[:2])
            result.append(f"{verb} {stack}")
        return result

    def prod_config(self) -> dict:
        return self.read()["config"]["prod"]


@pytest.fixture
def world(tmp_path):
    return World(tmp_path)


def _error_line(result: subprocess.CompletedProcess) -> str:
    lines = [line for line in result.stderr.splitlines() if "ERROR" in line]
    assert len(lines) == 1, result.stderr
    return lines[0]


# --- promote -----------------------------------------------------------------


def test_promote_previews_then_applies_devs_digest(world):
    result = world.run(PROMOTE, "--yes")
    assert result.returncode == 0, result.stderr
    assert world.commands() == [
        "stack output dev",
        "config get prod",
        "config get prod",
        "preview prod",
        "stack output dev",
        "up prod",
        "stack output prod",
    ]
    preview = next(c for c in world.calls if c[0] == "preview")
    up = next(c for c in world.calls if c[0] == "up")
    assert "--diff" in preview and "--yes" in up
    assert f"promote {DEV_DIGEST} (dev git {GIT_SHA})" in up
    assert world.read()["outputs"]["prod"]["imageRef"] == DEV_DIGEST
    assert world.prod_config()["django-docker:imageSource"] == "stack"


def test_promote_refuses_a_local_only_image_and_says_why(world):
    world.update(lambda s: s["outputs"]["dev"].update(imageRef="sha256:" + "c" * 64, imagePushed=False))
    result = world.run(PROMOTE, "--yes")
    assert result.returncode == 1
    line = _error_line(result)
    assert "not pushed to a registry" in line and "cannot pull" in line and "imageRegistry" in line
    assert world.commands() == ["stack output dev"]


@pytest.mark.parametrize(
    "dev_outputs, why",
    [
        ({"imagePushed": True}, "has no imageRef output"),
        ({"imageRef": "registry.example.com/web:abc", "imagePushed": True}, "not repo@sha256"),
        ({"imageRef": DEV_DIGEST}, "imagePushed=null"),
    ],
)
def test_promote_refuses_missing_or_malformed_outputs(world, dev_outputs, why):
    world.update(lambda s: s["outputs"].__setitem__("dev", dev_outputs))
    result = world.run(PROMOTE, "--yes")
    assert result.returncode == 1 and why in _error_line(result)
    assert "preview prod" not in world.commands()


def test_promote_refuses_when_dev_was_never_deployed(world):
    world.update(lambda s: s["outputs"].pop("dev"))
    result = world.run(PROMOTE, "--yes")
    assert result.returncode == 1 and "cannot read the outputs of stack dev" in _error_line(result)


def test_promote_without_yes_or_terminal_previews_but_does_not_apply(world):
    result = world.run(PROMOTE)
    assert result.returncode == 1 and "--yes" in _error_line(result)
    assert "preview prod" in world.commands() and "up prod" not in world.commands()


def test_promote_refuses_a_pinned_prod_unless_unpinned(world):
    world.update(
        lambda s: s["config"]["prod"].update({"django-docker:imageSource": "pin", "django-docker:imagePin": OLD_DIGEST})
    )
    refused = world.run(PROMOTE, "--yes")
    assert refused.returncode == 1 and "--unpin" in _error_line(refused) and OLD_DIGEST in refused.stderr
    assert "preview prod" not in world.commands()

    result = world.run(PROMOTE, "--yes", "--unpin")
    assert result.returncode == 0, result.stderr
    assert world.prod_config()["django-docker:imageSource"] == "stack"
    assert "django-docker:imagePin" not in world.prod_config()
    assert world.read()["outputs"]["prod"]["imageRef"] == DEV_DIGEST


@pytest.mark.parametrize(
    "config, why",
    [
        ({"django-docker:imageSource": "build"}, "prod must not build"),
        (
            {
                "django-docker:imageSource": "stack",
                "django-docker:imageSourceStack": "organization/django-docker/staging",
            },
            "not from stack dev",
        ),
    ],
)
def test_promote_refuses_a_prod_that_does_not_follow_dev(world, config, why):
    world.update(lambda s: s["config"].__setitem__("prod", config))
    result = world.run(PROMOTE, "--yes")
    assert result.returncode == 1 and why in _error_line(result)


def test_promote_checks_the_expected_commit(world):
    result = world.run(PROMOTE, "--yes", "--expect-git-sha", "2" * 40)
    assert result.returncode == 1 and GIT_SHA in _error_line(result)
    assert "preview prod" not in world.commands()
    assert world.run(PROMOTE, "--yes", "--expect-git-sha", GIT_SHA).returncode == 0


def test_promote_does_not_apply_a_digest_other_than_the_one_previewed(world):
    newer = f"{REGISTRY}@sha256:" + "e" * 64
    world.update(lambda s: s.__setitem__("DEV_AFTER_PREVIEW", newer))
    result = world.run(PROMOTE, "--yes")
    assert result.returncode == 1 and newer in _error_line(result)
    assert "up prod" not in world.commands()


def test_promote_attaches_the_policy_pack_when_its_venv_exists(world, tmp_path):
    pack = tmp_path / "pack"
    (pack / "venv").mkdir(parents=True)
    world.env["POLICY_PACK"] = str(pack)
    assert world.run(PROMOTE, "--yes").returncode == 0
    for call in world.calls:
        if call[0] in ("preview", "up"):
            assert call[call.index("--policy-pack") + 1] == str(pack)


# --- rollback ----------------------------------------------------------------


def test_rollback_pins_previews_and_applies(world):
    result = world.run(ROLLBACK, OLD_DIGEST, "--yes")
    assert result.returncode == 0, result.stderr
    assert world.prod_config()["django-docker:imageSource"] == "pin"
    assert world.prod_config()["django-docker:imagePin"] == OLD_DIGEST
    verbs = world.commands()
    assert verbs.index("preview prod") < verbs.index("up prod")
    assert world.read()["outputs"]["prod"]["imageRef"] == OLD_DIGEST
    assert "Commit Pulumi.prod.yaml" in result.stderr


@pytest.mark.parametrize(
    "digest",
    [
        "registry.example.com/django-docker/web:abc123",  # a tag
        "sha256:" + "b" * 64,  # a local image id
        f"{REGISTRY}:v1@sha256:" + "b" * 64,  # tag and digest
        f"{REGISTRY}@sha256:" + "B" * 64,  # uppercase hex
        f"{REGISTRY}@sha256:" + "b" * 63,  # short
        "",
    ],
)
def test_rollback_refuses_anything_but_repo_at_digest(world, digest):
    result = world.run(ROLLBACK, digest, "--yes")
    assert result.returncode == 1
    assert "repo@sha256" in _error_line(result)
    assert world.calls == []


def test_rollback_puts_config_back_when_the_preview_fails(world):
    world.update(lambda s: s.__setitem__("FAIL", "preview"))
    result = world.run(ROLLBACK, OLD_DIGEST, "--yes")
    assert result.returncode != 0
    assert world.prod_config() == {
        "django-docker:imageSource": "stack",
        "django-docker:imageSourceStack": "organization/django-docker/dev",
    }
    assert "up prod" not in world.commands()


def test_rollback_without_confirmation_changes_nothing(world):
    world.update(
        lambda s: s["config"]["prod"].update({"django-docker:imageSource": "pin", "django-docker:imagePin": DEV_DIGEST})
    )
    result = world.run(ROLLBACK, OLD_DIGEST)
    assert result.returncode == 1 and "--yes" in _error_line(result)
    assert world.prod_config()["django-docker:imagePin"] == DEV_DIGEST
    assert world.prod_config()["django-docker:imageSource"] == "pin"


# --- the scripts themselves --------------------------------------------------


@pytest.mark.parametrize("script", [PROMOTE, ROLLBACK])
def test_scripts_are_shellcheck_clean_and_strict(script):
    shellcheck = shutil.which("shellcheck") or str(Path(sys.executable).parent / "shellcheck")
    # --external-sources: follow the sourced scripts/prod-lib.sh, as bash does (run from the root).
    result = subprocess.run(
        [shellcheck, "--severity=style", "--external-sources", str(script.relative_to(ROOT))],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stdout
    assert "set -o errexit -o nounset -o pipefail" in script.read_text()
    assert os.access(script, os.X_OK)


@pytest.mark.parametrize("script", [PROMOTE, ROLLBACK])
def test_scripts_help_is_their_header(script):
    result = subprocess.run(["bash", str(script), "--help"], capture_output=True, text=True)
    assert result.returncode == 0 and "Usage: scripts/" in result.stdout
    assert "set -o" not in result.stdout
