import pytest

from tests.program_fixtures import GIT_SHA

# The app image's base, pinned by the Dockerfile: the real image, or the rehearsal's stand-in.
PYTHON_BASE_IMAGE = "python:3.11.14-slim-bookworm"


@pytest.fixture(autouse=True)
def _fixed_git_sha(monkeypatch):
    """The program tags images with the checkout's SHA; tests pin it (as CI does with GIT_SHA)."""
    monkeypatch.setenv("GIT_SHA", GIT_SHA)
    monkeypatch.delenv("GITHUB_SHA", raising=False)


@pytest.fixture(scope="session")
def python_engine():
    """A Docker client that has the app image's base image; skips the test without them."""
    docker = pytest.importorskip("docker")
    try:
        client = docker.from_env(timeout=600)
        client.ping()
    except Exception as exc:  # no engine here: nothing to prove
        pytest.skip(f"no Docker engine: {exc}")
    try:
        client.images.get(PYTHON_BASE_IMAGE)
    except docker.errors.ImageNotFound:
        pytest.skip(f"base image {PYTHON_BASE_IMAGE} is not present (no registry: build the stand-in first)")
    yield client
    client.close()


@pytest.fixture(scope="session")
def runtime_image(python_engine) -> str:
    """The runtime's image, built (the app's Dockerfile copies from it): its tag."""
    from tools.runtime_image import build_runtime_image

    return build_runtime_image(python_engine)
