import pytest

from tests.program_fixtures import GIT_SHA


@pytest.fixture(autouse=True)
def _fixed_git_sha(monkeypatch):
    """The program tags images with the checkout's SHA; tests pin it (as CI does with GIT_SHA)."""
    monkeypatch.setenv("GIT_SHA", GIT_SHA)
    monkeypatch.delenv("GITHUB_SHA", raising=False)
