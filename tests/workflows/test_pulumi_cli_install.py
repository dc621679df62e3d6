"""scripts/pulumi-cli.sh, what `make up` runs first: the CLI on PATH, else the pinned version
fetched into .tools/ and checked against the release's checksums file; offline, one line.

The network is a stand-in `curl` on PATH that serves files from a directory (or fails like an
offline machine), so these tests never download anything.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "pulumi-cli.sh"


def _pinned_pulumi_version() -> str:
    match = re.search(r"^pulumi==([0-9.]+)$", (ROOT / "requirements.txt").read_text(), re.M)
    assert match, "requirements.txt pins no pulumi==<version>"
    return match.group(1)


VERSION = _pinned_pulumi_version()
FAKE_CURL = """#!/usr/bin/env bash
# Serves $ASSETS/<basename of the URL>, or fails like curl does without a network.
out=""; url=""
while [ $# -gt 0 ]; do
  case "$1" in --output) out="$2"; shift 2 ;; --connect-timeout|--max-time|--retry|--retry-max-time) shift 2 ;; -*) shift ;; *) url="$1"; shift ;; esac
done
echo "$url" >> "$ASSETS/requests.log"
if [ -n "${OFFLINE:-}" ]; then echo "curl: (6) Could not resolve host: github.com" >&2; exit 6; fi
name="${url##*/}"
[ -f "$ASSETS/$name" ] || { echo "curl: (22) The requested URL returned error: 404" >&2; exit 22; }
cp "$ASSETS/$name" "$out"
"""


@pytest.fixture
def project(tmp_path):
    """A copy of the script and requirements.txt, so .tools/ is created in tmp, and a PATH without pulumi."""
    root = tmp_path / "project"
    (root / "scripts").mkdir(parents=True)
    shutil.copy(SCRIPT, root / "scripts" / SCRIPT.name)
    shutil.copy(ROOT / "requirements.txt", root / "requirements.txt")
    assets, bin_dir = tmp_path / "assets", tmp_path / "bin"
    assets.mkdir()
    bin_dir.mkdir()
    (bin_dir / "curl").write_text(FAKE_CURL)
    (bin_dir / "curl").chmod(0o755)
    system = [d for d in os.environ["PATH"].split(os.pathsep) if d and not (Path(d) / "pulumi").exists()]
    env = {"PATH": os.pathsep.join([str(bin_dir), *system]), "ASSETS": str(assets), "HOME": str(tmp_path)}
    return root, assets, env


def publish(assets: Path, *, tamper: bool = False) -> str:
    """A release as pulumi/pulumi publishes it: the archive and the checksums file."""
    archive = f"pulumi-v{VERSION}-linux-x64.tar.gz"
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w:gz") as tar:
        body = f"#!/bin/sh\necho v{VERSION}\n".encode()
        info = tarfile.TarInfo("pulumi/pulumi")
        info.size, info.mode = len(body), 0o755
        tar.addfile(info, io.BytesIO(body))
    (assets / archive).write_bytes(data.getvalue())
    digest = hashlib.sha256(data.getvalue() + (b"x" if tamper else b"")).hexdigest()
    (assets / f"pulumi-{VERSION}-checksums.txt").write_text(
        f"{'0' * 64}  pulumi-v{VERSION}-darwin-arm64.tar.gz\n{digest}  {archive}\n"
    )
    return archive


def run(root: Path, env: dict, **extra) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", str(root / "scripts" / SCRIPT.name)],
        capture_output=True,
        text=True,
        env={**env, **extra},
        cwd=root,
        timeout=60,
    )


needs_linux_x64 = pytest.mark.skipif(
    not (sys.platform.startswith("linux") and os.uname().machine == "x86_64"),
    reason="the stand-in release publishes linux-x64 only",
)


@needs_linux_x64
def test_fetches_verifies_and_installs_the_pinned_cli_once(project):
    root, assets, env = project
    publish(assets)
    first = run(root, env)
    assert first.returncode == 0, first.stderr
    cli = Path(first.stdout.strip())
    assert cli == root / ".tools" / f"pulumi-v{VERSION}" / "pulumi" / "pulumi"
    assert subprocess.run([cli], capture_output=True, text=True).stdout.strip() == f"v{VERSION}"
    assert (assets / "requests.log").read_text().splitlines() == [
        f"https://github.com/pulumi/pulumi/releases/download/v{VERSION}/pulumi-{VERSION}-checksums.txt",
        f"https://github.com/pulumi/pulumi/releases/download/v{VERSION}/pulumi-v{VERSION}-linux-x64.tar.gz",
    ]
    again = run(root, env)
    assert again.stdout == first.stdout and len((assets / "requests.log").read_text().splitlines()) == 2


@needs_linux_x64
def test_an_archive_that_does_not_match_its_checksum_is_not_installed(project):
    root, assets, env = project
    archive = publish(assets, tamper=True)
    result = run(root, env)
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith(f"make up: {archive} does not match its SHA-256 in pulumi-{VERSION}-checksums.txt")
    assert not (root / ".tools" / f"pulumi-v{VERSION}").exists()


def test_offline_it_stops_fast_with_one_line_saying_what_it_tried(project):
    root, _, env = project
    started = time.monotonic()
    result = run(root, env, OFFLINE="1")
    assert time.monotonic() - started < 30
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith(
        f"make up: could not download https://github.com/pulumi/pulumi/releases/download/v{VERSION}/"
    )
    assert "Could not resolve host" in result.stderr and "https://www.pulumi.com/docs/install/" in result.stderr


def test_a_cli_on_path_is_used_as_it_is(project, tmp_path):
    root, assets, env = project
    own = tmp_path / "own-bin"
    own.mkdir()
    (own / "pulumi").write_text("#!/bin/sh\necho mine\n")
    (own / "pulumi").chmod(0o755)
    result = run(root, {**env, "PATH": f"{own}{os.pathsep}{env['PATH']}"})
    assert (result.returncode, result.stdout.strip()) == (0, str(own / "pulumi"))
    assert not (assets / "requests.log").exists()


def test_the_script_is_shellcheck_clean_and_strict():
    shellcheck = shutil.which("shellcheck") or str(Path(sys.executable).parent / "shellcheck")
    result = subprocess.run(
        [shellcheck, "--severity=style", str(SCRIPT.relative_to(ROOT))], capture_output=True, text=True, cwd=ROOT
    )
    assert result.returncode == 0, result.stdout
    assert "set -o errexit -o nounset -o pipefail" in SCRIPT.read_text() and os.access(SCRIPT, os.X_OK)
