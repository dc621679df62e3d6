"""The pack as the Pulumi CLI runs it: a process that serves the analyzer gRPC API.

The CLI starts a Python policy pack with `python -m pulumi.policy <engine>
<pack dir>` and reads the port it prints. This test does the same, then asks
the pack what it enforces and has it analyze resources over gRPC, so the
pack's entry point, its imports and the engine-facing wiring are exercised,
not only the rule functions.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import grpc
import pytest
from google.protobuf import empty_pb2, struct_pb2
from policy_support import app_service, docker_rules, swarm_secret, volume, web_container, with_container_spec
from pulumi.runtime.proto import analyzer_pb2, analyzer_pb2_grpc

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def analyzer():
    process = subprocess.Popen(
        # The engine address is unused by a policy pack's analyzer server.
        [sys.executable, "-u", "-m", "pulumi.policy", "127.0.0.1:1", str(ROOT / "policy")],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        port_line = process.stdout.readline().strip()
        if not port_line.isdigit():
            process.kill()
            pytest.fail(f"policy pack did not start: {port_line!r} {process.stderr.read()}")
        channel = grpc.insecure_channel(f"127.0.0.1:{port_line}")
        grpc.channel_ready_future(channel).result(timeout=10)
        yield analyzer_pb2_grpc.AnalyzerStub(channel)
        channel.close()
    finally:
        process.kill()
        process.wait(timeout=10)


def _analyze(stub, resource_type, props, *, stack="dev", protect=False, additional_secret_outputs=()):
    properties = struct_pb2.Struct()
    properties.update(props)
    request = analyzer_pb2.AnalyzeRequest(
        type=resource_type,
        properties=properties,
        urn=f"urn:pulumi:{stack}::django-docker::{resource_type}::r",
        name="r",
        options=analyzer_pb2.AnalyzerResourceOptions(
            protect=protect, additionalSecretOutputs=list(additional_secret_outputs)
        ),
    )
    return {(d.policyName, d.enforcementLevel) for d in stub.Analyze(request).diagnostics}


def test_pack_announces_every_policy_with_its_enforcement_level(analyzer):
    info = analyzer.GetAnalyzerInfo(empty_pb2.Empty())
    assert info.name == "django-docker"
    announced = {p.name: p.enforcementLevel for p in info.policies}
    expected = {
        p.name: (analyzer_pb2.MANDATORY if p.enforcement_level.value == "mandatory" else analyzer_pb2.ADVISORY)
        for p in docker_rules.POLICIES
    }
    assert announced == expected


def test_pack_reports_violations_over_grpc(analyzer):
    assert _analyze(analyzer, docker_rules.CONTAINER, web_container()) == set()
    found = _analyze(analyzer, docker_rules.CONTAINER, web_container(image="web:latest", readOnly=False))
    assert found == {
        ("image-pinned", analyzer_pb2.MANDATORY),
        ("app-image-by-digest", analyzer_pb2.MANDATORY),
        ("cis-read-only-root-filesystem", analyzer_pb2.ADVISORY),
    }


def test_pack_sees_protect_and_the_stack_from_the_engine_request(analyzer):
    data = volume("postgres-data", stack="prod")
    assert _analyze(analyzer, docker_rules.VOLUME, data, stack="prod", protect=False) == {
        ("prod-data-volumes-protected", analyzer_pb2.MANDATORY)
    }
    assert _analyze(analyzer, docker_rules.VOLUME, data, stack="prod", protect=True) == set()


# The engine's marking of a secret value inside properties (sdk/go/common/resource/properties.go).
SECRET_SIG = {"4dabf18193072939515e22adb298388d": "1b47061264138c4ac30d75fd1eb44270"}


def test_pack_reports_swarm_service_violations_over_grpc(analyzer):
    assert _analyze(analyzer, docker_rules.SERVICE, app_service(), stack="prod") == set()
    broken = with_container_spec(app_service(), user="root", env={"DJANGO_SECRET_KEY": "x"})
    assert _analyze(analyzer, docker_rules.SERVICE, broken, stack="prod") == {
        ("swarm-app-non-root", analyzer_pb2.MANDATORY),
        ("swarm-no-secret-in-env", analyzer_pb2.MANDATORY),
    }


def test_pack_sees_a_swarm_secrets_secret_marker_in_its_options(analyzer):
    # The engine sends a secret input marked as such, but pulumi_policy hands a validation its
    # plain value: what tells the pack that data is secret is additionalSecretOutputs, which
    # pulumi_docker's Secret always sends.
    marked = swarm_secret(data={**SECRET_SIG, "value": "c2VjcmV0"})
    secret = docker_rules.SECRET
    assert _analyze(analyzer, secret, marked, stack="prod", additional_secret_outputs=["data"]) == set()
    assert _analyze(analyzer, secret, marked, stack="prod") == {("swarm-secret-data-secret", analyzer_pb2.MANDATORY)}
