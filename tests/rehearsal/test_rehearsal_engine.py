"""The rehearsal against a real engine: teardown touches only what carries its labels."""

import docker
import pytest

from rehearsal.emulation.engine import RUN_LABEL, STACK_LABEL, teardown

pytestmark = pytest.mark.docker
BASE = "rehearsal-standin-base:bookworm"  # any local image will do; the stand-ins' base is small


@pytest.fixture
def client():
    try:
        engine = docker.from_env(timeout=60)
        engine.ping()
    except docker.errors.DockerException:
        pytest.skip("no Docker engine (scripts/start-docker.sh starts one)")
    images = [t for i in engine.images.list() for t in i.tags]
    if not images:
        pytest.skip("no local image to create containers from")
    engine.test_image = BASE if BASE in images else images[0]
    return engine


def test_teardown_removes_only_this_stacks_labelled_resources(client):
    mine = {STACK_LABEL: "test-teardown", RUN_LABEL: "r1"}
    other_stack = {STACK_LABEL: "test-teardown-other", RUN_LABEL: "r1"}
    created = []
    try:
        network = client.networks.create("rehearsal-test-net", labels=mine)
        volume = client.volumes.create("rehearsal-test-vol", labels=mine)
        ours = client.containers.create(
            client.test_image,
            ["true"],
            labels=mine,
            network=network.name,
            volumes={volume.name: {"bind": "/v", "mode": "rw"}},
        )
        users = client.containers.create(client.test_image, ["true"], name="rehearsal-test-users-own")
        neighbour = client.containers.create(client.test_image, ["true"], labels=other_stack)
        created += [users, neighbour]
        assert teardown(client, "test-teardown") == (1, 1, 1)
        for gone in (
            lambda: client.containers.get(ours.id),
            lambda: client.networks.get(network.id),
            lambda: client.volumes.get(volume.name),
        ):
            with pytest.raises(docker.errors.NotFound):
                gone()
        users.reload()
        neighbour.reload()
    finally:
        for container in created:
            container.remove(force=True)
