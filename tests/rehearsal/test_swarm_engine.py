"""A 2-replica service on the private swarm engine: created, rolled out start-first, rolled back.

Carried out the way the provider would (rehearsal.emulation.engine over rehearsal.emulation.model), on the private
dockerd of rehearsal.hosts.swarm_engine, never on the main engine. Skips (with the reason) when this
machine cannot run it.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import docker
import pulumi_docker as pd
import pytest

from planning.harness import SERVICE, plan_stack
from rehearsal.emulation.engine import Engine
from rehearsal.emulation.model import UPDATE, State, plan_update
from rehearsal.hosts.swarm_engine import (
    BesideProbe,
    SwarmUnavailable,
    copy_images,
    layout_for,
    private_engine,
    why_unavailable,
)

pytestmark = pytest.mark.docker
IMAGE = "python:3.11.14-slim-bookworm"
SERVE = ["python3", "-m", "http.server", "8000"]
HEALTHY = ["CMD", "python3", "-c", "import urllib.request as u; u.urlopen('http://127.0.0.1:8000/', timeout=1)"]


def _program(version: str, health: list[str]):
    def program():
        net = pd.Network("ov", driver="overlay", attachable=True, internal=True)
        pd.Service(
            "web",
            task_spec=pd.ServiceTaskSpecArgs(
                container_spec=pd.ServiceTaskSpecContainerSpecArgs(
                    image=IMAGE,
                    commands=SERVE,
                    dir="/tmp",
                    env={"VERSION": version},
                    healthcheck=pd.ServiceTaskSpecContainerSpecHealthcheckArgs(
                        tests=health, interval="1s", timeout="1s", start_period="0s", retries=2
                    ),
                    stop_grace_period="1s",
                ),
                networks_advanceds=[pd.ServiceTaskSpecNetworksAdvancedArgs(id=net.id, aliases=["web"])],
            ),
            mode=pd.ServiceModeArgs(replicated=pd.ServiceModeReplicatedArgs(replicas=2)),
            endpoint_spec=pd.ServiceEndpointSpecArgs(mode="dnsrr"),
            update_config=pd.ServiceUpdateConfigArgs(
                parallelism=1, order="start-first", failure_action="rollback", monitor="3s"
            ),
            rollback_config=pd.ServiceRollbackConfigArgs(parallelism=2, order="start-first"),
            converge_config=pd.ServiceConvergeConfigArgs(delay="1s", timeout="60s"),
        )

    return program


def test_each_checkout_gets_its_own_swarm_engine():
    one, other = layout_for(Path("/work/wt/a")), layout_for(Path("/work/wt/b"))
    assert one.engine.name != other.engine.name and one.engine.device != other.engine.device
    assert (one.listen, one.data_path_port) != (other.listen, other.data_path_port)
    assert one.engine.name.startswith("django-docker-swarm-") and len(one.gw_device) <= 15
    # its local pool and its overlay pool, never a remote-host engine's 10.216-247
    assert 150 <= one.engine.octet <= 212 and one.pool == f"10.{one.engine.octet + 1}.0.0/16"
    assert one.gw_subnet.startswith(f"10.{one.engine.octet}.") and layout_for(Path("/work/wt/a")) == one


@pytest.fixture(scope="module")
def swarm():
    reason = why_unavailable()
    if reason:
        pytest.skip(reason)
    try:
        main = docker.from_env(timeout=120)
        main.ping()
        main.images.get(IMAGE)
    except docker.errors.ImageNotFound:
        pytest.skip(f"{IMAGE} is not on the main engine (build the stand-ins first)")
    except docker.errors.DockerException as error:
        pytest.skip(f"no main Docker engine: {error}")
    lines: list[str] = []
    probe = BesideProbe(main).start()
    try:
        with private_engine(lines.append) as engine:
            copy_images(main, engine.client, [IMAGE], lines.append)
            yield engine, probe, lines
        lines.append(probe.check())  # and after the private engine is gone
    except SwarmUnavailable as error:
        pytest.skip(str(error))
    finally:
        probe.close()
        print("\n".join(lines))


def _running(client, version: str) -> int:
    count = 0
    for c in client.containers.list(filters={"label": "com.docker.swarm.service.name"}):
        env = c.attrs["Config"]["Env"]
        if f"VERSION={version}" in env and (c.attrs["State"].get("Health") or {}).get("Status") == "healthy":
            count += 1
    return count


def test_rollout_start_first_then_failed_rollout_rolls_back(swarm):
    engine_, probe, lines = swarm
    client = engine_.client
    engine = Engine(client, run_labels={"rehearsal.stack": "swarm-test"}, say=lines.append)
    timings = {}

    started = time.monotonic()
    plan1 = plan_stack("dev", program=_program("v1", HEALTHY))
    first = engine.up(State(), plan1)
    timings["create"] = time.monotonic() - started
    assert first.ok, first.error
    assert _running(client, "v1") == 2
    lines.append(probe.check())

    # v2, start-first: at every moment at least 2 healthy tasks (old until new are healthy).
    plan2 = plan_stack("dev", program=_program("v2", HEALTHY))
    update = plan_update(first.state, plan2)
    assert [s.op for s in update.steps if s.type == SERVICE] == [UPDATE]
    low = [2]
    stop = threading.Event()

    def watch():
        while not stop.is_set():
            low[0] = min(low[0], _running(client, "v1") + _running(client, "v2"))
            time.sleep(0.2)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    started = time.monotonic()
    second = engine.apply(first.state, plan2, update)
    timings["rollout"] = time.monotonic() - started
    stop.set()
    watcher.join()
    assert second.ok, second.error
    assert _running(client, "v2") == 2
    deadline = time.monotonic() + 10  # the last old task may still be stopping (stop_grace_period)
    while _running(client, "v1") and time.monotonic() < deadline:
        time.sleep(0.3)
    assert _running(client, "v1") == 0
    assert low[0] >= 2, f"fewer than 2 healthy tasks during the rollout: {low[0]}"

    # v3 never turns healthy: swarm rolls back, the step fails, v2 serves throughout.
    plan3 = plan_stack("dev", program=_program("v3", ["CMD", "false"]))
    started = time.monotonic()
    third = engine.up(second.state, plan3)
    timings["failed rollout"] = time.monotonic() - started
    assert not third.ok
    assert "rollback completed" in (third.error or ""), third.error
    assert _running(client, "v2") == 2
    lines.append(probe.check())

    service = client.services.list()[0]
    lines.append(f"after the rollback: UpdateStatus {service.attrs.get('UpdateStatus')}")
    lines.append("times: " + ", ".join(f"{k} {v:.1f}s" for k, v in timings.items()))
