"""ops.run.run_to_end, the one-offs' wait (the forecast's gate, the drill's migrate --check, the
point-in-time restore's copies), on a real engine: the exit code passed through, and a one-off
that does not end in time stopped and told apart, never a traceback (docker-py says a wait ran
out with requests' ReadTimeout, not with an exit code)."""

from __future__ import annotations

import time

import pytest

from ops.run import TIMED_OUT, run_to_end
from tests.nginx_check import docker_client, ensure_image

pytestmark = pytest.mark.docker

PYTHON_IMAGE = "python:3.11.14-slim-bookworm"  # django_app/Dockerfile's FROM
LABEL = "tests.run-to-end"


@pytest.fixture(scope="module")
def api():
    client = docker_client(timeout=60)
    ensure_image(client, PYTHON_IMAGE)
    try:
        yield client.api
    finally:
        for container in client.api.containers(all=True, filters={"label": LABEL}):
            client.api.remove_container(container["Id"], force=True)
        client.close()


def one_off(api, script: str) -> str:
    return api.create_container(PYTHON_IMAGE, ["python", "-u", "-c", script], labels={LABEL: "1"})["Id"]


def test_the_exit_code_and_the_output_pass_through(api):
    cid = one_off(api, "import sys; print('migrated'); sys.exit(3)")

    assert run_to_end(api, cid, 60) == (3, "migrated\n")


def test_a_one_off_that_does_not_end_in_time_is_stopped_and_told_apart(api):
    cid = one_off(api, "import time; print('started', flush=True); time.sleep(120)")
    began = time.monotonic()

    code, output = run_to_end(api, cid, 2)

    assert (code, output) == (TIMED_OUT, "started\n")
    assert time.monotonic() - began < 30  # stopped, not waited out
    assert api.inspect_container(cid)["State"]["Running"] is False
