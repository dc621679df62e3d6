"""The program's `docker:` host settings (components/settings/provider.py), through the whole
program under the SDK's mocks: refused in one line before anything is registered, and what the
release jobs get of them (the PEM texts secret)."""

from __future__ import annotations

import socket

import pytest

from planning.harness import JOB, PlanError, plan_stack
from rehearsal.hosts import tls_material


@pytest.fixture(scope="module")
def tls():
    return tls_material.docker_tls()


def refused(**kwargs) -> str:
    with pytest.raises(PlanError) as error:
        plan_stack("dev", **kwargs)
    message = str(error.value)
    assert "\n" not in message
    return message


def test_a_bad_address_stops_the_program_before_anything_is_registered():
    assert refused(overrides={"docker:host": "docker.example.com"}).startswith(
        "docker:host: 'docker.example.com' is not a Docker host address"
    )


def test_docker_host_from_the_environment_is_checked_and_named_so(monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", "http://10.0.0.1:2375")
    assert refused().startswith("DOCKER_HOST: http://10.0.0.1:2375: write tcp://HOST:PORT")


def test_the_private_key_in_plain_text_is_refused_and_never_quoted(tls):
    material = {"docker:caMaterial": tls.ca_pem, "docker:certMaterial": tls.client.cert_pem}
    message = refused(
        overrides={"docker:host": "tcp://10.0.0.1:2376", **material, "docker:keyMaterial": tls.client.key_pem}
    )
    assert message == (
        "docker:keyMaterial: stored in plain text; set it with "
        "`pulumi config set --secret docker:keyMaterial < key.pem`"
    )


def test_half_the_tls_settings_are_refused(tls):
    message = refused(overrides={"docker:host": "tcp://10.0.0.1:2376", "docker:certMaterial": tls.client.cert_pem})
    assert message.startswith("docker:caMaterial, docker:keyMaterial: not set, while docker:certMaterial is")


def test_the_jobs_reach_the_host_as_the_provider_does_with_the_pems_secret(tls):
    plan = plan_stack(
        "dev",
        overrides={
            "docker:host": "tcp://10.0.0.1:2376",
            "docker:caMaterial": tls.ca_pem,
            "docker:certMaterial": tls.client.cert_pem,
        },
        secrets={"docker:keyMaterial": tls.client.key_pem},
    )
    jobs = plan.of_type(JOB)
    assert jobs
    for job in jobs:
        assert job.inputs["dockerHost"] == "tcp://10.0.0.1:2376"
        assert job.inputs["keyMaterial"] == tls.client.key_pem.strip()
        assert {"caMaterial", "certMaterial", "keyMaterial"} <= set(job.secret_paths), job.name
        assert "sshOpts" not in job.inputs and "certPath" not in job.inputs


def test_ssh_options_reach_the_jobs():
    plan = plan_stack(
        "dev", overrides={"docker:host": "ssh://deploy@app:2222", "docker:sshOpts": ["-i", "/keys/deploy"]}
    )
    for job in plan.of_type(JOB):
        assert (job.inputs["dockerHost"], job.inputs["sshOpts"]) == ("ssh://deploy@app:2222", ["-i", "/keys/deploy"])


def test_without_docker_host_the_jobs_get_what_the_provider_falls_back_to(monkeypatch):
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    assert {j.inputs["dockerHost"] for j in plan_stack("dev").of_type(JOB)} == {"unix:///var/run/docker.sock"}
    monkeypatch.setenv("DOCKER_HOST", "tcp://127.0.0.1:2375")
    assert {j.inputs["dockerHost"] for j in plan_stack("dev").of_type(JOB)} == {"tcp://127.0.0.1:2375"}


def test_an_unreachable_host_stops_the_program_when_it_probes():
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    host = f"tcp://127.0.0.1:{port}"
    # A plan needs no engine: the probe is off unless asked for (the program itself probes).
    assert plan_stack("dev", overrides={"docker:host": host}).of_type(JOB)
    assert refused(overrides={"docker:host": host}, probe_host=True) == f"docker:host: {host}: connection refused"
