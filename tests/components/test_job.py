"""components.job: the provider's diff and serialization (pure), the resource's wire props (SDK
mocks), and real runs on the local engine (`docker` marker; skipped without an engine or the
`python:3.11.14-slim-bookworm` image): hardening inside the container, failure, timeout, cleanup."""

from __future__ import annotations

import base64
import ipaddress
import os
import subprocess
import sys
import time
import uuid
from datetime import datetime
from pathlib import Path

import pulumi_docker as docker
import pytest
from pulumi.dynamic.dynamic import serialize_provider
from pulumi.output import Unknown
from pulumi.runtime import rpc

from components.job import (
    OUTPUT_KEYS,
    RUN_LABEL,
    Job,
    JobArgs,
    JobError,
    JobFailed,
    JobProvider,
    docker_settings,
)
from planning.harness import plan_stack
from tests.conftest import PYTHON_BASE_IMAGE as BASE_IMAGE

ROOT = Path(__file__).resolve().parents[2]
TEST_LABEL = "django-docker.test"
SECRET_VALUE = "s3cr3t-Value-that-must-never-show"


def wire_props(image: str = "sha256:" + "a" * 64, **overrides) -> dict:
    """Props as the engine hands them to the provider: wire names, numbers as float."""
    props = {
        "image": image,
        "command": ["python", "manage.py", "migrate", "--noinput"],
        "envs": ["DJANGO_SETTINGS_MODULE=config.settings.production", f"SECRET_KEY={SECRET_VALUE}"],
        "user": "10001:10001",
        "readOnly": True,
        "tmpfs": {"/tmp": "rw,noexec,nosuid,size=64m"},
        "capabilities": {"drops": ["ALL"]},
        "securityOpts": ["no-new-privileges:true"],
        "init": True,
        "memory": 256.0,
        "memorySwap": 256.0,
        "labels": [{"label": "django-docker.service", "value": "migrate"}],
        "logDriver": "json-file",
        "logOpts": {"max-size": "10m", "max-file": "3"},
        "namePrefix": "migrate",
        "timeoutSeconds": 20.0,
        "dockerHost": "",
    }
    props.update(overrides)
    return {key: value for key, value in props.items() if value is not None}


def recorded(props: dict) -> dict:
    """What the state holds after a successful create (olds of the next diff)."""
    outs = {key: value for key, value in props.items() if key != "dockerHost"}
    return {
        **outs,
        "runId": "f" * 32,
        "exitCode": 0.0,
        "logTail": "ok",
        "startedAt": "t0",
        "finishedAt": "t1",
        "__provider": "serialized",
    }


def one_line(message: str) -> None:
    assert "\n" not in message and message.strip() == message


# --- pure: diff, update, check, translation -------------------------------------------------------


def test_unchanged_inputs_are_no_change():
    news = {**wire_props(), "__provider": "serialized"}
    result = JobProvider().diff("f" * 32, recorded(wire_props()), news)
    assert result.changes is False
    assert not result.replaces


@pytest.mark.parametrize(
    "changes",
    [
        {"image": "sha256:" + "b" * 64},
        {"envs": ["SECRET_KEY=rotated"]},
        {"command": ["python", "manage.py", "collectstatic", "--noinput"]},
        {"image": "sha256:" + "b" * 64, "envs": ["A=1"], "command": ["true"]},
        {"user": None},  # a removed input is a change too
    ],
)
def test_a_changed_input_replaces_the_job_beside_the_old_one(changes):
    news = {**wire_props(**changes), "__provider": "serialized"}
    result = JobProvider().diff("f" * 32, recorded(wire_props()), news)
    assert result.changes is True
    assert result.replaces == sorted(changes)
    assert result.delete_before_replace is False


def test_where_the_docker_host_is_reached_from_and_the_provider_code_are_not_compared():
    moved = dict(
        dockerHost="tcp://app-host:2376",
        certPath="/certs",
        caMaterial="CA",
        certMaterial="CERT",
        keyMaterial="KEY",
        sshOpts=["-i", "k"],
    )
    news = {**wire_props(**moved), "__provider": "a newer serialization"}
    assert JobProvider().diff("f" * 32, recorded(wire_props()), news).changes is False


@pytest.mark.parametrize("unknown", [Unknown(), rpc.UNKNOWN, ["A=1", Unknown()]])
def test_an_unknown_value_at_preview_counts_as_a_change(unknown):
    news = {**wire_props(), "image": unknown, "__provider": rpc.UNKNOWN}
    result = JobProvider().diff("f" * 32, recorded(wire_props()), news)
    assert (result.changes, result.replaces, result.delete_before_replace) == (True, ["image"], False)


def test_update_is_never_reached_and_read_returns_the_state():
    with pytest.raises(JobError):
        JobProvider().update("f" * 32, recorded(wire_props()), wire_props())
    state = recorded(wire_props())
    read = JobProvider().read("f" * 32, state)
    assert (read.id, read.outs) == ("f" * 32, state)


def test_the_provider_is_pickled_by_reference():
    serialized = serialize_provider(JobProvider())
    raw = base64.b64decode(serialized)
    assert len(serialized) < 200
    assert b"components.job" in raw and b"JobProvider" in raw
    # The dynamic provider process (`python -m pulumi.dynamic`, cwd = the project) can load it.
    loaded = subprocess.run(
        [
            sys.executable,
            "-c",
            f"import base64, dill; print(type(dill.loads(base64.b64decode({serialized!r}))).__qualname__)",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert loaded.stdout.strip() == "JobProvider", loaded.stderr


def test_translation_to_the_docker_api_is_exact():
    props = wire_props(
        networksAdvanced=[{"name": "backend"}, {"name": "frontend"}],
        volumes=[
            {"volumeName": "static", "containerPath": "/app/staticfiles"},
            {"volumeName": "media", "containerPath": "/app/media", "readOnly": True},
        ],
        memorySwap=-1.0,
    )
    kwargs, extra_networks = docker_settings({**props, "__provider": "serialized"})
    log_config = kwargs.pop("log_config")
    assert kwargs == {
        "image": "sha256:" + "a" * 64,
        "command": ["python", "manage.py", "migrate", "--noinput"],
        "environment": props["envs"],
        "labels": {"django-docker.service": "migrate"},
        "restart_policy": {"Name": "no"},
        "auto_remove": False,
        "user": "10001:10001",
        "read_only": True,
        "tmpfs": {"/tmp": "rw,noexec,nosuid,size=64m"},
        "cap_drop": ["ALL"],
        "security_opt": ["no-new-privileges:true"],
        "init": True,
        "network": "backend",
        "mem_limit": 256 * 1024 * 1024,
        "memswap_limit": -1,
        "volumes": ["static:/app/staticfiles", "media:/app/media:ro"],
    }
    assert (log_config.type, log_config.config) == ("json-file", {"max-size": "10m", "max-file": "3"})
    assert extra_networks == ["frontend"]


@pytest.mark.parametrize(
    "extra, named",
    [
        ({"privileged": True}, "privileged"),
        (
            {"restart": "always", "mustRun": False},
            "mustRun: unknown property of a Job (it would be silently dropped); restart",
        ),
        (
            {"volumes": [{"volumeName": "v", "containerPath": "/d", "hostPath": "/etc"}]},
            "volumes[0] has unknown keys: hostPath",
        ),
        ({"networksAdvanced": [{"name": "n", "aliases": ["a"]}]}, "networksAdvanced[0] has unknown keys: aliases"),
        ({"image": None}, "image: required"),
    ],
)
def test_an_unknown_or_missing_property_is_refused_in_one_line_naming_it(extra, named):
    props = {**wire_props(dockerHost="tcp://127.0.0.1:9"), **extra}  # refused before any Docker host is reached
    props = {key: value for key, value in props.items() if value is not None}
    with pytest.raises(JobError) as error:
        JobProvider().create(props)
    assert named in str(error.value)
    one_line(str(error.value))
    assert SECRET_VALUE not in str(error.value)


def test_check_refuses_unknown_properties_at_preview():
    result = JobProvider().check({}, {**wire_props(), "privileged": Unknown(), "__provider": rpc.UNKNOWN})
    assert [(failure.property, failure.reason) for failure in result.failures] == [
        ("privileged", "unknown property of a Job (it would be silently dropped)"),
    ]
    assert JobProvider().check({}, {**wire_props(image=Unknown()), "__provider": "p"}).failures == []


def test_a_malformed_env_item_is_refused_without_its_value():
    with pytest.raises(JobError) as error:
        JobProvider().create(wire_props(envs=["A=1", SECRET_VALUE]))
    assert str(error.value) == "Job property envs[1] is not a KEY=value string"


def test_an_unreachable_docker_host_is_one_line():
    with pytest.raises(JobError) as error:
        JobProvider().create(wire_props(dockerHost="tcp://127.0.0.1:9"))
    assert str(error.value).startswith("migrate: cannot reach the Docker host: ")
    one_line(str(error.value))


def test_args_invariants():
    base = dict(image="sha256:" + "a" * 64, command=["true"])
    with pytest.raises(ValueError):
        JobArgs(name_prefix="bad name", timeout_seconds=10, **base)
    with pytest.raises(ValueError):
        JobArgs(name_prefix="migrate", timeout_seconds=0, **base)


# --- the resource's registration, under the SDK's mocks --------------------------------------------


def test_job_registers_wire_props_with_secret_envs_and_exposes_run_id():
    """What the engine receives for a Job (under the project's plan harness, as a one-resource program)."""
    run_ids: list = []

    def program():
        job = Job(
            "migrate",
            JobArgs(
                name_prefix="migrate",
                image="sha256:" + "a" * 64,
                command=["python", "manage.py", "migrate"],
                timeout_seconds=600,
                envs=["SECRET_KEY=x"],
                user="10001:10001",
                capabilities=docker.ContainerCapabilitiesArgs(drops=["ALL"]),
                memory=256,
                memory_swap=-1,
                networks_advanced=[docker.ContainerNetworksAdvancedArgs(name="backend")],
                volumes=[docker.ContainerVolumeArgs(volume_name="static", container_path="/app/staticfiles")],
                labels=[docker.ContainerLabelArgs(label="django-docker.service", value="migrate")],
            ),
        )
        job.run_id.apply(run_ids.append)

    plan = plan_stack("dev", program=program)
    [job] = plan.resources
    assert job.type == "pulumi-python:dynamic/django-docker:Job"
    assert "envs" in job.secret_paths and job.inputs["envs"] == ["SECRET_KEY=x"]  # (and the pickled provider)
    assert run_ids == [job.outputs["runId"]] == ["migrate-id"]  # the mock's run id, through the Output
    assert not set(OUTPUT_KEYS) & set(job.inputs)
    assert {key: value for key, value in job.inputs.items() if key not in ("envs", "__provider")} == {
        "image": "sha256:" + "a" * 64,
        "command": ["python", "manage.py", "migrate"],
        "user": "10001:10001",
        "capabilities": {"drops": ["ALL"]},
        "memory": 256.0,
        "memorySwap": -1.0,
        "networksAdvanced": [{"name": "backend"}],
        "volumes": [{"volumeName": "static", "containerPath": "/app/staticfiles"}],
        "labels": [{"label": "django-docker.service", "value": "migrate"}],
        "namePrefix": "migrate",
        "timeoutSeconds": 600.0,
        "dockerHost": "",
    }


# --- real runs on the local engine ------------------------------------------------------------------

docker_sdk = pytest.importorskip("docker")

PROBE = r"""
import errno, fcntl, os, socket, struct

def attempt(path):
    try:
        with open(path, "w") as handle:
            handle.write("x")
        return "ok"
    except OSError as error:
        return errno.errorcode[error.errno]

status = dict(line.split(":\t", 1) for line in open("/proc/self/status").read().splitlines() if ":\t" in line)
print("uid", os.getuid(), os.getgid())
print("rootfs", attempt("/var/tmp/probe"), attempt("/probe"))
print("tmp", attempt("/tmp/probe"))
print("greeting", os.environ["JOB_GREETING"])
with open("/data/proof.txt", "w") as handle:
    handle.write("written-by-" + os.environ["JOB_GREETING"])
print("capeff", int(status["CapEff"], 16), "capbnd", int(status["CapBnd"], 16), "nonewprivs", status["NoNewPrivs"].strip())
print("pid1", open("/proc/1/comm").read().strip())
for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
    if os.path.exists(path):
        print("memory", open(path).read().strip())
for _, name in socket.if_nameindex():
    if name != "lo":
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        print("addr", socket.inet_ntoa(fcntl.ioctl(sock.fileno(), 0x8915, struct.pack("256s", name.encode()[:15]))[20:24]))
"""


@pytest.fixture(scope="module")
def engine(python_engine):
    return python_engine


@pytest.fixture(scope="module")
def scratch(engine):
    """Two networks and a volume (writable by uid 10001), labelled, always removed."""
    tag = uuid.uuid4().hex[:8]
    labels = {TEST_LABEL: "job"}
    networks, volume = [], None
    try:
        networks = [engine.networks.create(f"jobtest-{tag}-{n}", labels=labels) for n in ("a", "b")]
        volume = engine.volumes.create(f"jobtest-{tag}-data", labels=labels)
        engine.containers.run(
            BASE_IMAGE, ["chown", "10001:10001", "/data"], volumes=[f"{volume.name}:/data"], remove=True, labels=labels
        )
        yield {"networks": networks, "volume": volume, "tag": tag}
    finally:
        for container in engine.containers.list(all=True, filters={"label": TEST_LABEL}):
            container.remove(force=True, v=True)
        for network in networks:
            network.remove()
        if volume is not None:
            volume.remove(force=True)


def run_props(engine, scratch, prefix: str, command: list[str], **overrides) -> dict:
    return wire_props(
        **{
            "image": engine.images.get(BASE_IMAGE).id,
            "command": command,
            "namePrefix": f"{prefix}-{scratch['tag']}",
            "envs": ["JOB_GREETING=hello-job"],
            "networksAdvanced": [{"name": network.name} for network in scratch["networks"]],
            "volumes": [{"volumeName": scratch["volume"].name, "containerPath": "/data"}],
            "labels": [{"label": TEST_LABEL, "value": "job"}],
            **overrides,
        }
    )


def assert_nothing_left(engine, run_id: str, prefix: str) -> None:
    assert engine.containers.list(all=True, filters={"label": f"{RUN_LABEL}={run_id}"}) == []
    assert engine.containers.list(all=True, filters={"name": prefix}) == []


def subnet(network) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    network.reload()
    return ipaddress.ip_network(network.attrs["IPAM"]["Config"][0]["Subnet"])


@pytest.mark.docker
def test_a_successful_job_runs_hardened_is_recorded_and_leaves_nothing(engine, scratch):
    props = run_props(engine, scratch, "probe", ["python", "-c", PROBE])
    result = JobProvider().create({**props, "__provider": "serialized"})
    outs = result.outs

    assert result.id == outs["runId"] and len(outs["runId"]) == 32
    assert outs["exitCode"] == 0
    # Every input is an output too (diff sees only old outputs), dockerHost included (delete
    # looks for leftovers where the job ran; diff ignores it).
    assert {key: value for key, value in outs.items() if key not in OUTPUT_KEYS} == props
    assert datetime.fromisoformat(outs["startedAt"]) <= datetime.fromisoformat(outs["finishedAt"])
    seen: dict[str, list[str]] = {}
    for line in outs["logTail"].splitlines():
        key, _, value = line.partition(" ")
        seen.setdefault(key, []).append(value)
    assert seen["uid"] == ["10001 10001"]
    assert seen["rootfs"] == ["EROFS EROFS"]  # /var/tmp is world-writable: only a read-only root refuses it
    assert seen["tmp"] == ["ok"]
    assert seen["greeting"] == ["hello-job"]
    assert seen["capeff"] == ["0 capbnd 0 nonewprivs 1"]  # CapBnd 0: every capability dropped, not only non-root
    assert seen["pid1"] == ["docker-init"]
    if "memory" in seen:
        assert seen["memory"] == [str(256 * 1024 * 1024)]
    addresses = [ipaddress.ip_address(value) for value in seen["addr"]]
    for network in scratch["networks"]:  # the first joined at create, the second before start
        assert any(address in subnet(network) for address in addresses), (network.name, addresses)
    assert_nothing_left(engine, outs["runId"], props["namePrefix"])

    # A later job reads the file back from the volume, mounted read-only this time.
    reader = run_props(
        engine,
        scratch,
        "reader",
        [
            "python",
            "-c",
            (
                "print(open('/data/proof.txt').read())\n"
                "try:\n    open('/data/other', 'w')\nexcept OSError as error:\n    print('volume', error.strerror)"
            ),
        ],
        volumes=[{"volumeName": scratch["volume"].name, "containerPath": "/data", "readOnly": True}],
    )
    read = JobProvider().create(reader).outs
    assert read["logTail"].splitlines() == ["written-by-hello-job", "volume Read-only file system"]
    assert_nothing_left(engine, read["runId"], reader["namePrefix"])


@pytest.mark.docker
def test_a_failed_job_raises_with_its_last_lines_and_leaves_nothing(engine, scratch):
    script = "import sys\nfor i in range(50):\n    print('line', i)\nsys.exit(3)"
    # An explicit base URL this time (the default socket), not the environment's.
    props = run_props(
        engine,
        scratch,
        "failing",
        ["python", "-c", script],
        dockerHost=os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock",
    )
    with pytest.raises(JobFailed) as error:
        JobProvider().create(props)
    message = str(error.value)

    one_line(message)
    assert message.startswith(f"{props['namePrefix']} exited 3 after ")
    assert (
        "s; nothing after it was changed, and the next `pulumi up` runs it again. Last lines: line 10 | line 11 | "
        in message
    )
    assert message.endswith("line 48 | line 49")
    assert error.value.exit_code == 3
    assert_nothing_left(engine, error.value.run_id, props["namePrefix"])


@pytest.mark.docker
def test_a_job_past_its_timeout_is_killed_raises_and_leaves_nothing(engine, scratch):
    props = run_props(engine, scratch, "sleeping", ["sleep", "60"], timeoutSeconds=2.0)
    started = time.monotonic()
    with pytest.raises(JobFailed) as error:
        JobProvider().create(props)

    assert time.monotonic() - started < 10
    one_line(str(error.value))
    assert str(error.value).startswith(f"{props['namePrefix']} did not finish within 2s; nothing after it was changed")
    assert error.value.exit_code is None
    assert_nothing_left(engine, error.value.run_id, props["namePrefix"])


@pytest.mark.docker
def test_an_env_value_never_appears_in_the_failure(engine, scratch):
    props = run_props(
        engine,
        scratch,
        "quiet",
        ["python", "-c", "raise SystemExit(1)"],
        envs=[f"SECRET_KEY={SECRET_VALUE}", f"DATABASE_URL=postgres://u:{SECRET_VALUE}@db/app"],
    )
    with pytest.raises(JobFailed) as error:
        JobProvider().create(props)

    assert SECRET_VALUE not in str(error.value) and SECRET_VALUE not in repr(error.value)
    assert str(error.value).endswith("Last lines: no output")
    assert_nothing_left(engine, error.value.run_id, props["namePrefix"])


@pytest.mark.docker
def test_a_missing_image_is_refused_in_one_line_and_delete_tolerates_nothing_left(engine, scratch):
    props = run_props(engine, scratch, "noimage", ["true"], image="sha256:" + "0" * 64)
    with pytest.raises(JobError) as error:
        JobProvider().create(props)
    one_line(str(error.value))
    assert str(error.value).startswith(f"{props['namePrefix']}: Docker refused or lost the job: ")
    assert engine.containers.list(all=True, filters={"name": props["namePrefix"]}) == []
    JobProvider().delete("0" * 32, recorded(props))  # nothing to remove: no error


@pytest.mark.docker
def test_delete_removes_a_leftover_container_of_its_run(engine, scratch):
    run_id = uuid.uuid4().hex
    engine.containers.create(
        BASE_IMAGE, ["true"], name=f"leftover-{scratch['tag']}", labels={RUN_LABEL: run_id, TEST_LABEL: "job"}
    )
    JobProvider().delete(run_id, {"namePrefix": "leftover"})
    assert engine.containers.list(all=True, filters={"label": f"{RUN_LABEL}={run_id}"}) == []
