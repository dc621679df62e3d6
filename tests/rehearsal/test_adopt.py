"""Deploy your own project, end to end on the real Docker engine: each sample project (made the
way a team has one: rehearsal/images/samples.py) is adopted with `make adopt` and booted with
`make rehearse-release ... --scenario new-commit`, as a user runs them: the generic smoke checks,
the project's own (a page from the database, an item written and its Celery task done, an
upload), the day-2 commands (make status among them) and a release of a new commit under load
with no failed request. Minutes each: the first build installs the project's dependencies."""

from __future__ import annotations

import subprocess

import pytest

from components.settings import PROJECT_ROOT
from rehearsal.images.samples import generate

pytestmark = pytest.mark.docker


def make(*args: str, timeout: float = 1500) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["make", "--no-print-directory", *args], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=timeout
    )


@pytest.fixture(scope="module")
def engine():
    docker = pytest.importorskip("docker")
    try:
        docker.from_env().ping()
    except Exception as error:  # no engine here: nothing to prove
        pytest.skip(f"no Docker engine: {error}")


@pytest.mark.parametrize("kind", ["split", "single"])
def test_a_sample_project_is_adopted_and_deployed_end_to_end(engine, tmp_path, kind):
    app = generate(kind, tmp_path / kind)
    stack = f"sample-{kind}"
    stack_file = PROJECT_ROOT / f"Pulumi.{stack}.yaml"
    assert not stack_file.exists(), f"{stack_file.name} is left from an earlier run"
    try:
        adopted = make("adopt", f"APP={app}", f"STACK={stack}")
        assert adopted.returncode == 0, adopted.stdout + adopted.stderr
        assert "probe: " in adopted.stdout and "imports with the stack's environment" in adopted.stdout
        subprocess.run(["git", "-C", str(app), "add", "."], check=True)
        subprocess.run(
            ["git", "-C", str(app), "-c", "user.email=t@example.com", "-c", "user.name=t", "commit", "-qm", "deploy"],
            check=True,
        )

        result = make("rehearse-release", f"STACK={stack}", "ARGS=--scenario new-commit")
        output = result.stdout + result.stderr
        assert result.returncode == 0, output[-4000:]
    finally:
        stack_file.unlink(missing_ok=True)

    lines = output.splitlines()
    passed = {
        line.split(":")[0].strip().removeprefix("PASS").strip() for line in lines if line.strip().startswith("PASS")
    }
    assert {"health", "replicas", "page", "write", "upload", "static", "media", "celery", "migrate"} <= passed
    assert {"ops status", "ops manage", "ops logs"} <= passed
    assert not any(line.strip().startswith("FAIL") for line in lines), output[-4000:]
    (release,) = [line for line in lines if line.startswith(f"release {stack} new-commit:") and "requests" in line]
    assert ", 0 failed," in release, release
    assert any(line.startswith(f"rehearsal {stack}: ") and line.endswith(", 0 failed") for line in lines)
