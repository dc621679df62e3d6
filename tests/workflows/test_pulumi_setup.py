"""One setup of the Pulumi CLI, the backend and the passphrase (scripts/with-pulumi.sh) for
make up, preview, destroy, promote and rollback; and make check, help, the day-2 -T, the engine.

A fresh copy of the project, no pulumi on PATH: `make up` fetches the pinned CLI into .tools/
through a stand-in `curl` (the release is the repo's fake CLI, tests/workflows/fake_pulumi.py,
packed as pulumi/pulumi publishes it), then `make preview`, `make destroy` and `make promote` use
that same CLI. What could not run here: the real CLI (its download is not reachable from this
machine) and so a real `pulumi up`; the fake records what each command was asked, with which
backend and passphrase.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from tests.workflows.test_pulumi_cli_install import FAKE_CURL, VERSION, needs_linux_x64

ROOT = Path(__file__).resolve().parents[2]
FAKE = Path(__file__).resolve().parent / "fake_pulumi.py"
DEV_DIGEST = "registry.example.com/django-docker/web@sha256:" + "a" * 64
IGNORED = (".git", ".venv", ".tools", ".pulumi-state", "policy/venv", "__pycache__", ".mypy_cache", ".ruff_cache")


def _engine_answers() -> bool:
    try:
        import docker

        docker.from_env(timeout=5).ping()
        return True
    except Exception:  # no engine here
        return False


def copy_project(dest: Path) -> Path:
    """The project as a fresh clone has it (no .venv, .tools, state), with a stand-in .venv whose
    python is this one (installing requirements.txt is not what these tests are about)."""

    def ignore(directory: str, names: list[str]) -> set[str]:
        rel = Path(directory).relative_to(ROOT)
        return {
            n
            for n in names
            if n in IGNORED or str(rel / n) in IGNORED or n.startswith("Pulumi.") and n.endswith(".yaml.bak")
        }

    shutil.copytree(ROOT, dest, ignore=ignore)
    venv, real = dest / ".venv", Path(sys.prefix)
    (venv / "bin").mkdir(parents=True)
    shutil.copy(real / "pyvenv.cfg", venv / "pyvenv.cfg")
    (venv / "lib").symlink_to(real / "lib")
    for name in ("python", "python3"):
        (venv / "bin" / name).symlink_to(real / "bin" / name)
    (dest / "policy" / "venv").mkdir()
    for stamp in (venv / ".runtime", venv / ".installed", dest / "policy" / "venv" / ".installed"):
        stamp.touch()
    return dest


def publish_fake_cli(assets: Path) -> None:
    """A release of the fake CLI, as pulumi/pulumi publishes one (archive + checksums)."""
    archive = f"pulumi-v{VERSION}-linux-x64.tar.gz"
    body = f'#!/bin/sh\nexec "{sys.executable}" "{FAKE}" "$@"\n'.encode()
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w:gz") as tar:
        info = tarfile.TarInfo("pulumi/pulumi")
        info.size, info.mode = len(body), 0o755
        tar.addfile(info, io.BytesIO(body))
    (assets / archive).write_bytes(data.getvalue())
    digest = hashlib.sha256(data.getvalue()).hexdigest()
    (assets / f"pulumi-{VERSION}-checksums.txt").write_text(f"{digest}  {archive}\n")


class Clone:
    def __init__(self, tmp_path: Path):
        self.root = copy_project(tmp_path / "clone")
        self.assets, bin_dir = tmp_path / "assets", tmp_path / "bin"
        self.assets.mkdir()
        bin_dir.mkdir()
        (bin_dir / "curl").write_text(FAKE_CURL)
        (bin_dir / "curl").chmod(0o755)
        publish_fake_cli(self.assets)
        self.state = tmp_path / "world.json"
        self.state.write_text(
            json.dumps(
                {
                    "outputs": {"dev": {"imageRef": DEV_DIGEST, "imagePushed": True, "gitSha": "1" * 40}},
                    "config": {
                        "prod": {
                            "django-docker:imageSource": "stack",
                            "django-docker:imageSourceStack": "organization/django-docker/dev",
                        }
                    },
                }
            )
        )
        system = [d for d in os.environ["PATH"].split(os.pathsep) if d and not (Path(d) / "pulumi").exists()]
        self.env = {
            "PATH": os.pathsep.join([str(bin_dir), *system]),
            "HOME": str(tmp_path),
            "ASSETS": str(self.assets),
            "FAKE_PULUMI_STATE": str(self.state),
            "GIT_SHA": "0" * 40,
        }

    def make(self, *args: str, **env: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            ["make", "--no-print-directory", *args],
            cwd=self.root,
            env={**self.env, **env},
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
            timeout=300,
        )

    def world(self) -> dict:
        return json.loads(self.state.read_text())


@pytest.fixture
def clone(tmp_path) -> Clone:
    return Clone(tmp_path)


@needs_linux_x64
@pytest.mark.skipif(not _engine_answers(), reason="make up checks that a Docker engine answers first")
def test_make_up_then_preview_on_a_fresh_clone_with_the_fetched_cli(clone):
    up = clone.make("up")
    assert up.returncode == 0, up.stdout + up.stderr
    assert "Docker engine" in up.stdout and "answers at" in up.stdout
    cli_dir = str(clone.root / ".tools" / f"pulumi-v{VERSION}" / "pulumi")
    preview = clone.make("preview")
    assert preview.returncode == 0, preview.stdout + preview.stderr
    world = clone.world()
    assert world["calls"] == [
        ["stack", "select", "--create", "--stack", "dev"],
        ["up", "--stack", "dev"],
        ["preview", "--stack", "dev", "--diff", "--policy-pack", "policy"],
    ]
    backend = f"file://{clone.root}/.pulumi-state"
    # Every call: the local backend for this invocation only (no `pulumi login`), the dev passphrase.
    assert {(e["PULUMI_BACKEND_URL"], e["PULUMI_CONFIG_PASSPHRASE"]) for e in world["envs"]} == {
        (backend, "dev-only-passphrase")
    }
    assert (clone.root / ".pulumi-state").is_dir()
    # The CLI was fetched once, by make up; preview used the same one.
    assert len((clone.assets / "requests.log").read_text().splitlines()) == 2
    assert (Path(cli_dir) / "pulumi").exists()
    assert not (Path(clone.env["HOME"]) / ".pulumi" / "credentials.json").exists()


@needs_linux_x64
def test_destroy_promote_and_rollback_share_the_setup(clone):
    shared = {"PULUMI_BACKEND_URL": "s3://team-state/django-docker", "PULUMI_CONFIG_PASSPHRASE": "team-passphrase"}
    destroy = clone.make("destroy", "STACK=prod", "ARGS=--yes", **shared)
    assert destroy.returncode == 0, destroy.stderr
    assert clone.world()["calls"] == [["destroy", "--stack", "prod", "--yes"]]
    promote = clone.make("promote", "ARGS=--yes", **shared)
    assert promote.returncode == 0, promote.stderr
    assert clone.world()["outputs"]["prod"]["imageRef"] == DEV_DIGEST
    earlier = DEV_DIGEST.replace("a" * 64, "b" * 64)
    rollback = clone.make("rollback", f"DIGEST={earlier}", "ARGS=--yes", **shared)
    assert rollback.returncode == 0, rollback.stderr
    world = clone.world()
    assert world["outputs"]["prod"]["imageRef"] == earlier
    assert {(e["PULUMI_BACKEND_URL"], e["PULUMI_CONFIG_PASSPHRASE"]) for e in world["envs"]} == {
        ("s3://team-state/django-docker", "team-passphrase")
    }
    assert {e["PATH0"] for e in world["envs"]} == {str(clone.root / ".venv" / "bin")}
    assert len((clone.assets / "requests.log").read_text().splitlines()) == 2  # fetched once


def test_a_shared_backend_without_a_passphrase_is_refused_in_one_line(clone):
    result = clone.make("preview", "STACK=prod", PULUMI_BACKEND_URL="s3://team-state/django-docker")
    assert result.returncode != 0
    refusal = [line for line in result.stderr.splitlines() if line.startswith("with-pulumi:")]
    assert refusal == [
        "with-pulumi: PULUMI_BACKEND_URL is a shared backend whose stacks use the passphrase provider: set "
        "PULUMI_CONFIG_PASSPHRASE or PULUMI_CONFIG_PASSPHRASE_FILE to their passphrase (from your team's secret "
        "store; docs/operations.md)"
    ]
    assert "calls" not in clone.world()
    assert not (clone.assets / "requests.log").exists()  # refused before any download


@needs_linux_x64
def test_backend_credentials_are_never_printed(clone):
    result = subprocess.run(
        ["bash", "scripts/with-pulumi.sh", "true"],
        cwd=clone.root,
        env={
            **clone.env,
            "PULUMI_BACKEND_URL": "postgres://state:s3cr3t-pw@db.internal/pulumi",
            "PULUMI_CONFIG_PASSPHRASE": "x",
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert (
        result.stderr
        == "with-pulumi: backend postgres://***@db.internal/pulumi; passphrase: PULUMI_CONFIG_PASSPHRASE\n"
    )


def test_make_check_needs_no_cli_and_names_a_typo(clone):
    ok = clone.make("check", "STACK=prod")
    assert (ok.returncode, ok.stderr) == (0, "")
    assert ok.stdout.startswith("Pulumi.prod.yaml: ok, ") and ok.stdout.count("\n") == 1
    stack_file = clone.root / "Pulumi.dev.yaml"
    stack_file.write_text(stack_file.read_text() + "  django-docker:celeryBeats: false\n")
    bad = clone.make("check")
    assert bad.returncode != 0
    assert bad.stdout == (
        "Pulumi.dev.yaml: django-docker:celeryBeats: unknown key; did you mean django-docker:celeryBeat? "
        "(docs/configuration.md lists every key)\n"
    )
    assert not (clone.root / ".tools").exists() and not (clone.assets / "requests.log").exists()


def test_make_help_lists_every_target_aligned():
    result = subprocess.run(["make", "--no-print-directory", "help"], cwd=ROOT, capture_output=True, text=True)
    lines = result.stdout.splitlines()
    targets = sorted(set(re.findall(r"^([a-z][a-z0-9-]*):", (ROOT / "Makefile").read_text(), re.M)))
    listed = sorted(line.split()[1] for line in lines)
    assert listed == targets
    columns = {line.index(line.split()[2], len("  make ") + len(line.split()[1])) for line in lines}
    assert len(columns) == 1, "the descriptions start in one column"


@pytest.mark.parametrize(
    "target, args, expected",
    [
        ("manage", "-T check --deploy", ["manage", "dev", "-T", "--", "check", "--deploy"]),
        ("manage", "createsuperuser", ["manage", "dev", "--", "createsuperuser"]),
        ("shell", "-T", ["shell", "dev", "-T", "--"]),
        ("exec", "-T sh -c true", ["exec", "dev", "--service", "web", "-T", "--", "sh", "-c", "true"]),
    ],
)
def test_a_leading_T_reaches_the_day2_command(tmp_path, target, args, expected):
    """make's ARGS="-T ..." goes to ops (no TTY), not to manage.py or the command."""
    result = subprocess.run(
        ["make", "--no-print-directory", "-n", target, f"ARGS={args}"], cwd=ROOT, capture_output=True, text=True
    )
    command = result.stdout.strip().splitlines()[-1]
    assert command.split()[1:3] == ["-m", "ops"]
    assert command.split()[3:] == expected


def test_ops_takes_T_before_the_command():
    from ops.__main__ import parser

    args, rest = parser().parse_known_args(["manage", "prod", "-T"])
    assert args.no_tty is True and rest == []
