"""The provider's read-back, replayed on `docker inspect` output (rehearsal/emulation/readback.py)."""

from rehearsal.emulation.readback import drift, provider_view

MIB = 1024 * 1024


def inspect(**host_overrides):
    """An inspect document shaped like Docker 20.10's for a web replica of the program."""
    host = {
        "RestartPolicy": {"Name": "always", "MaximumRetryCount": 0},
        "Init": True,
        "Tmpfs": {"/tmp": "rw,noexec,nosuid,size=64m"},
        "ReadonlyRootfs": True,
        "Memory": 512 * MIB,
        "MemorySwap": -1,
        "ShmSize": 64 * MIB,
        "LogConfig": {"Type": "json-file", "Config": {"max-size": "10m", "max-file": "3"}},
        "SecurityOpt": ["no-new-privileges:true"],
        "CapAdd": None,
        "CapDrop": ["ALL"],
    }
    host.update(host_overrides)
    return {
        "Image": "sha256:" + "a" * 64,
        "Config": {
            "Image": "sha256:" + "a" * 64,
            "Cmd": ["gunicorn"],
            "User": "10001:10001",
            "StopTimeout": 35,
            "Healthcheck": {
                "Test": ["CMD", "python"],
                "Interval": 10 * 10**9,
                "Timeout": 10 * 10**9,
                "StartPeriod": 90 * 10**9,
                "Retries": 3,
            },
        },
        "HostConfig": host,
    }


INPUTS = {
    "image": "sha256:" + "a" * 64,
    "command": ["gunicorn"],
    "user": "10001:10001",
    "restart": "always",
    "init": True,
    "tmpfs": {"/tmp": "rw,noexec,nosuid,size=64m"},
    "readOnly": True,
    "memory": 512.0,
    "memorySwap": -1.0,
    "logDriver": "json-file",
    "logOpts": {"max-size": "10m", "max-file": "3"},
    "securityOpts": ["no-new-privileges:true"],
    "capabilities": {"drops": ["ALL"]},
    "stopTimeout": 35.0,
    "healthcheck": {
        "tests": ["CMD", "python"],
        "interval": "10s",
        "timeout": "10s",
        "startPeriod": "1m30s",
        "retries": 3.0,
    },
}


def test_the_programs_inputs_read_back_unchanged():
    assert drift(INPUTS, inspect()) == {}


def test_a_duration_not_in_gos_spelling_drifts():
    found = drift({**INPUTS, "healthcheck": {**INPUTS["healthcheck"], "startPeriod": "90s"}}, inspect())
    assert set(found) == {"healthcheck"}
    assert found["healthcheck"][1]["startPeriod"] == "1m30s"


def test_swap_left_to_docker_or_refused_by_the_host_drifts():
    # Unset, Docker stores 2 x memory; a host without swap accounting stores -1 for any value.
    assert drift({**INPUTS, "memorySwap": 512.0}, inspect(MemorySwap=-1)) == {"memorySwap": (512.0, -1)}
    assert drift(INPUTS, inspect(MemorySwap=1024 * MIB)) == {"memorySwap": (-1.0, 1024)}


def test_only_what_the_program_sets_is_compared():
    # shm_size is computed by the provider: the program leaves it unset, so 64 MiB is no change.
    view = provider_view(inspect(), INPUTS["image"])
    assert view["shmSize"] == 64 and "shmSize" not in drift(INPUTS, inspect())


def test_an_image_given_by_reference_is_read_back_as_given():
    ref = "ghcr.io/acme/web@sha256:" + "b" * 64
    doc = inspect()
    doc["Config"]["Image"] = ref
    assert provider_view(doc, ref)["image"] == ref
    assert provider_view(doc, "sha256:" + "a" * 64)["image"] == "sha256:" + "a" * 64
