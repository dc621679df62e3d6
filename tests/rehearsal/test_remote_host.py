"""The remote host of `make rehearse-remote`: a private engine with a TLS listener and a real sshd
in front of it, reached through components.dockerhost the way the provider reaches a host.

The naming is pure; the rest needs root, dockerd and sshd (installed when missing) and skips
with the reason without them. Nothing here touches the main engine."""

from __future__ import annotations

from pathlib import Path

import pytest

from components import dockerhost
from rehearsal.hosts.private_engine import EngineUnavailable, links, why_unavailable
from rehearsal.hosts.remote_host import layout_for, start_remote_host
from rehearsal.hosts.ssh_host import SshUnavailable


def test_each_checkout_gets_its_own_engine_names_and_addresses():
    one, other = layout_for(Path("/work/wt/a")), layout_for(Path("/work/wt/b"))
    assert one.name != other.name and one.device != other.device
    assert one.name.startswith("django-docker-remote-") and len(one.bridge) <= 15
    assert 216 <= one.octet <= 247  # never a swarm engine's 10.150-213
    assert layout_for(Path("/work/wt/a")) == one


def test_a_tcp_listener_without_tls_is_refused():
    with pytest.raises(ValueError, match="without TLS"):
        layout_for(tcp="127.0.0.1:2376").daemon_args()


@pytest.fixture(scope="module")
def host():
    reason = why_unavailable()
    if reason:
        pytest.skip(reason)
    lines: list[str] = []
    before = links()
    try:
        remote = start_remote_host(lines.append)
    except (EngineUnavailable, SshUnavailable) as error:
        pytest.skip(str(error))
    try:
        yield remote
    finally:
        remote.close()
        print("\n".join(lines))
    assert not remote.engine.leftovers
    assert {link for link in links() - before if link.startswith(remote.layout.device)} == set()


def reach(settings: dict, secrets: dict) -> str:
    config = {k.removeprefix("docker:"): v for k, v in {**settings, **secrets}.items()}
    return dockerhost.probe(dockerhost.resolve(config, {}))


@pytest.mark.docker
@pytest.mark.parametrize("transport", ["ssh", "tls"])
def test_the_host_answers_over_each_transport_as_the_provider_reaches_it(host, transport):
    line = reach(*host.settings(transport))
    assert line.startswith("Docker ") and (" at ssh://root@127.0.0.1:" in line or " at tcp://127.0.0.1:" in line)


@pytest.mark.docker
@pytest.mark.parametrize("transport", ["ssh", "tls"])
def test_every_wrong_setting_is_one_line_naming_it(host, transport):
    for refusal in host.refusals(transport):
        with pytest.raises(dockerhost.HostError) as error:
            reach(refusal.settings, refusal.secrets)
        message = str(error.value)
        assert "\n" not in message and message.startswith(f"{refusal.names}:"), (refusal.what, message)
        assert "PRIVATE KEY" not in message


@pytest.mark.docker
def test_the_day2_environment_reaches_the_same_engine(host):
    for transport in ("ssh", "tls"):
        env = host.environment(transport)
        assert not {k for k in env if k.startswith("DOCKER_")} - {
            "DOCKER_HOST",
            "DOCKER_SSH_OPTS",
            "DOCKER_CERT_PATH",
            "DOCKER_TLS_VERIFY",
        }
        found = dockerhost.resolve({}, env)
        dockerhost.check(found)
        client = dockerhost.connect(found)
        try:
            assert client.info()["ID"] == host.engine.client.info()["ID"]
        finally:
            client.close()


@pytest.mark.docker
def test_the_engine_restarts_and_answers_again_over_both_transports(host):
    before = links()
    stopped, answered = host.engine.restart()
    # moby daemon_unix.go:879-887 would delete the host's docker0 (the main engine's bridge)
    assert ("docker0" in before) <= ("docker0" in links())
    assert "--default-address-pool" not in " ".join(host.layout.daemon_args(restart=True))
    assert stopped < 60 and answered < 60
    for transport in ("ssh", "tls"):
        assert reach(*host.settings(transport)).startswith("Docker ")


def test_the_restart_fault_refuses_the_main_engine():
    from types import SimpleNamespace

    from rehearsal.faults import restart_engine
    from rehearsal.faults.fault import Trial
    from rehearsal.scenarios import ScenarioFailed

    with pytest.raises(ScenarioFailed, match="only on a private engine"):
        restart_engine.FAULT.inject(SimpleNamespace(engine_restart=None), Trial(print))
