"""The day-2 commands on a real Docker engine, against a small stack labelled as the program
labels one: two hardened web replicas of a test image (non-root, read-only root, no
capabilities, a secret in their environment), an accessory, a backend and a frontend network.

The stack is found only through its labels, as on a real host; commands run in-process (and
as a process where a terminal or a pipe matters). The full stack is exercised by the
rehearsal (`make rehearse`: its ops phase).
"""

from __future__ import annotations

import io
import os
import pty
import re
import secrets
import select
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest

from ops import run as ops_run
from ops.__main__ import main
from ops.stack import GIT_SHA, NETWORK, RELEASE, REPLICA, ROLE, SERVICE, STACK, URL, OpsError, StackOnHost
from tests.conftest import PYTHON_BASE_IMAGE

pytestmark = pytest.mark.docker
ROOT = Path(__file__).resolve().parents[2]
SHA = "5eed" * 10
SECRET = "s3cret-" + secrets.token_hex(16)
# The test image's manage.py: just enough to show what a one-off container gets.
MANAGE_PY = r"""
import os, sys
args = sys.argv[1:]
if args[0] == "exit":
    sys.exit(int(args[1]))
if args[0] == "whoami":
    try:
        open("/app/written", "w")
        root = "writable"
    except OSError:
        root = "read-only"
    print(os.getuid(), root, "secret-ok" if os.environ.get("SECRET_KEY") == os.environ.get("EXPECTED") else "secret-missing")
if args[0] == "upper":
    print(sys.stdin.read().upper(), end="")
if args[0] == "ask":
    print("hello", input("name? ").upper(), "tty" if sys.stdin.isatty() else "no-tty")
"""
SERVE = "import os, sys, time; print('serving', os.environ['REPLICA'], flush=True); time.sleep(3600)"


def _image(client) -> str:
    dockerfile = (
        f"FROM {PYTHON_BASE_IMAGE}\nWORKDIR /app\nCOPY manage.py /app/manage.py\n"
        "RUN useradd --uid 10001 app\nUSER 10001:10001\n"
    )
    context = io.BytesIO()
    with tarfile.open(fileobj=context, mode="w") as tar:
        for name, text in (("Dockerfile", dockerfile), ("manage.py", MANAGE_PY)):
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    context.seek(0)
    image, _ = client.images.build(fileobj=context, custom_context=True, tag="ops-test-app:1", rm=True)
    return image.id


@pytest.fixture(scope="module")
def stack(python_engine, tmp_path_factory):
    """A running stack `opstest<hex>` and a project root that has its stack file."""
    client = python_engine
    name = "opstest" + secrets.token_hex(3)
    root = tmp_path_factory.mktemp("project")
    (root / f"Pulumi.{name}.yaml").write_text("config:\n  django-docker:webReplicas: 2\n")
    (root / "Pulumi.other.yaml").write_text("config: {}\n")
    image = _image(client)
    created = []
    try:
        networks = {
            kind: client.networks.create(
                f"{name}-{kind}", internal=(kind == "backend"), labels={STACK: name, NETWORK: kind}
            )
            for kind in ("frontend", "backend")
        }
        health = {"test": ["CMD", "python", "-c", "pass"], "interval": 500_000_000, "retries": 2}
        for replica in ("1", "2"):
            container = client.containers.run(
                image,
                ["python", "-c", SERVE],
                name=f"{name}-web-{replica}",
                detach=True,
                environment={"SECRET_KEY": SECRET, "EXPECTED": SECRET, "REPLICA": replica},
                labels={
                    STACK: name,
                    SERVICE: "web",
                    ROLE: "app",
                    REPLICA: replica,
                    GIT_SHA: SHA,
                    RELEASE: "r1",
                    URL: "http://example.test/",
                },
                network=networks["backend"].name,
                read_only=True,
                tmpfs={"/tmp": "rw,size=8m"},
                cap_drop=["ALL"],
                security_opt=["no-new-privileges:true"],
                init=True,
                mem_limit="128m",
                healthcheck=health,
            )
            networks["frontend"].connect(container)
            created.append(container)
        created.append(
            client.containers.run(
                PYTHON_BASE_IMAGE,
                ["python", "-c", SERVE],
                name=f"{name}-redis",
                detach=True,
                environment={"REPLICA": "redis"},
                labels={STACK: name, SERVICE: "redis", ROLE: "accessory"},
                network=networks["backend"].name,
                healthcheck=health,
            )
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            states = [client.api.inspect_container(c.id)["State"].get("Health", {}).get("Status") for c in created]
            if all(s == "healthy" for s in states):
                break
            time.sleep(0.3)
        else:
            pytest.fail(f"the test stack never turned healthy: {states}")
        yield name, root, client
    finally:
        for container in client.containers.list(all=True, filters={"label": f"{STACK}={name}"}):
            container.remove(force=True)
        for network in client.networks.list(filters={"label": f"{STACK}={name}"}):
            network.remove()


@pytest.fixture
def project(stack, monkeypatch):
    name, root, client = stack
    monkeypatch.setattr("ops.stack.PROJECT_ROOT", root)
    return name


def ids(client, name) -> set[str]:
    return {c.id for c in client.containers.list(all=True, filters={"label": f"{STACK}={name}"})}


# `python -m ops ARGS` as a process, for a test's project root: python -c CLI ROOT ARGS...
CLI = (
    "import sys; from pathlib import Path; import ops.stack; ops.stack.PROJECT_ROOT = Path(sys.argv[1]); "
    "from ops.__main__ import main; sys.exit(main(sys.argv[2:]))"
)


def cli(root: Path, *args: str, stdin: bytes = b"", timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", CLI, str(root), *args], cwd=ROOT, input=stdin, capture_output=True, timeout=timeout
    )


def test_status_finds_the_stack_by_its_labels_alone(project, capsys):
    assert main(["status", project]) == 0
    out = capsys.readouterr().out
    assert f"release: {SHA} deployed" in out and "on web-1, web-2" in out
    assert "url: http://example.test/" in out
    assert out.rstrip().endswith(f"{project}: all 3 containers healthy")
    assert SECRET not in out


def test_status_fails_and_names_the_container_that_is_down(project, stack, capsys):
    name, _, client = stack
    beat = client.containers.run(
        PYTHON_BASE_IMAGE,
        ["python", "-c", "raise SystemExit(4)"],
        detach=True,
        name=f"{name}-beat",
        labels={STACK: name, SERVICE: "celery-beat", ROLE: "app"},
    )
    try:
        client.api.wait(beat.id)
        assert main(["status", project]) == 1
        assert capsys.readouterr().out.rstrip().endswith("1 of 4 containers not healthy: celery-beat (exited 4)")
    finally:
        beat.remove(force=True)


def test_unknown_stack_service_and_replica_get_one_line(project, capsys):
    assert main(["status", "nosuch"]) == 2
    assert (
        capsys.readouterr().err
        == f"ops status: unknown stack 'nosuch'; stacks: {project}, other (from Pulumi.<stack>.yaml)\n"
    )
    assert main(["ps", "other"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("ops ps: stack other is not running on ") and "(stacks there: " in err and project in err
    assert main(["logs", project, "--service", "wbe"]) == 2
    assert capsys.readouterr().err == f"ops logs: stack {project} has no service 'wbe'; services: web, redis\n"
    assert main(["exec", project, "--service", "web", "--replica", "7", "--", "true"]) == 2
    assert capsys.readouterr().err == f"ops exec: service web of stack {project} has no replica 7; replicas: 1, 2\n"


def test_ps_lists_every_container(project, stack, capsys):
    name, _, client = stack
    assert main(["ps", project]) == 0
    rows = capsys.readouterr().out.splitlines()[1:]
    assert [row.split()[:3] for row in rows] == [
        ["web-1", f"{name}-web-1", "healthy"],
        ["web-2", f"{name}-web-2", "healthy"],
        ["redis", f"{name}-redis", "healthy"],
    ]


def test_logs_interleave_every_replica_with_its_prefix(project, capfd):
    assert main(["logs", project, "--service", "web"]) == 0
    lines = capfd.readouterr().out.splitlines()
    assert sorted(lines) == ["web-1 | serving 1", "web-2 | serving 2"]
    assert main(["logs", project, "--tail", "1", "-t"]) == 0
    lines = capfd.readouterr().out.splitlines()
    # One line of each container, each with Docker's timestamp after the prefix.
    assert sorted(line.split(" | ")[0].strip() for line in lines) == ["redis", "web-1", "web-2"]
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT[\d:.]+Z serving \S+", line.split(" | ")[1]) for line in lines), lines


def test_logs_follow_picks_up_a_replica_that_appears(stack):
    name, root, client = stack
    args = [sys.executable, "-c", CLI, str(root), "logs", name, "--service", "web", "-f"]
    follower = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    late = None
    try:
        time.sleep(1.0)
        late = client.containers.run(
            PYTHON_BASE_IMAGE,
            ["python", "-c", SERVE],
            name=f"{name}-web-3",
            detach=True,
            environment={"REPLICA": "3"},
            labels={STACK: name, SERVICE: "web", ROLE: "app", REPLICA: "3", GIT_SHA: SHA},
        )
        seen, deadline = b"", time.monotonic() + 15
        os.set_blocking(follower.stdout.fileno(), False)
        while b"web-3 | serving 3" not in seen and time.monotonic() < deadline:
            select.select([follower.stdout], [], [], 0.5)
            seen += follower.stdout.read() or b""
        assert b"web-1 | serving 1" in seen and b"web-2 | serving 2" in seen
        assert b"web-3 | serving 3" in seen, seen
    finally:
        follower.terminate()
        follower.wait(10)
        if late is not None:
            late.remove(force=True)


def test_manage_runs_a_one_off_of_the_running_release_and_removes_it(project, stack, capfd):
    name, _, client = stack
    before = ids(client, name)
    assert main(["manage", project, "-T", "--", "whoami"]) == 0
    out = capfd.readouterr().out
    # Same user, same read-only root, the release's environment (secret included, never printed).
    assert out == "10001 read-only secret-ok\n"
    assert ids(client, name) == before


def test_manage_passes_the_exit_code_through(project, stack, capfd):
    name, _, client = stack
    before = ids(client, name)
    assert main(["manage", project, "-T", "--", "exit", "3"]) == 3
    assert ids(client, name) == before


def test_one_off_runs_on_the_backend_network_with_the_template_hardening(project, stack):
    name, root, client = stack
    target = StackOnHost(name)
    template = client.api.inspect_container(ops_run.release_template(target).id)
    kwargs = ops_run.one_off_config(
        target, template, ["python", "manage.py", "check"], tty=False, network=target.network("backend")
    )
    host = kwargs["host_config"]
    assert host["NetworkMode"] == f"{name}-backend"
    assert (host["ReadonlyRootfs"], host["CapDrop"], host["Init"], host["Memory"]) == (True, ["ALL"], True, 128 * 2**20)
    assert host["SecurityOpt"] == ["no-new-privileges:true"] and "/tmp" in host["Tmpfs"]
    assert kwargs["image"] == template["Image"] and kwargs["labels"][ROLE] == "one-off"
    assert kwargs["labels"][GIT_SHA] == SHA


def test_manage_forwards_a_pipe_and_ends_it(stack):
    name, root, client = stack
    done = cli(root, "manage", name, "--", "upper", stdin=b"hello\nworld\n")
    assert (done.returncode, done.stdout) == (0, b"HELLO\nWORLD\n"), done.stderr


def test_manage_on_a_terminal_is_interactive(stack):
    name, root, _ = stack
    pid, fd = pty.fork()
    if pid == 0:  # the child: `python -m ops manage` on a terminal
        os.chdir(ROOT)
        os.execv(sys.executable, [sys.executable, "-c", CLI, str(root), "manage", name, "--", "ask"])
    seen, sent, deadline = b"", False, time.monotonic() + 30
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.5)
        if ready:
            try:
                data = os.read(fd, 4096)
            except OSError:
                break
            if not data:
                break
            seen += data
        if not sent and b"name? " in seen:
            os.write(fd, b"bob\r")
            sent = True
    _, status = os.waitpid(pid, 0)
    assert b"hello BOB tty" in seen, seen
    assert os.waitstatus_to_exitcode(status) == 0


def test_exec_runs_in_the_chosen_replica_and_passes_its_exit_code(project, stack, capfd):
    name, _, client = stack
    assert (
        main(
            [
                "exec",
                project,
                "--service",
                "web",
                "--replica",
                "2",
                "-T",
                "--",
                "sh",
                "-c",
                "echo $REPLICA; echo to-stderr >&2; exit 5",
            ]
        )
        == 5
    )
    captured = capfd.readouterr()
    assert (captured.out, captured.err) == ("2\n", "to-stderr\n")
    assert main(["exec", project, "--service", "web", "-T", "--", "sh", "-c", "echo $REPLICA"]) == 0
    assert capfd.readouterr().out == "1\n"  # the first healthy replica


def test_exec_without_a_command_is_refused(project, capsys):
    assert main(["exec", project, "--service", "web"]) == 2
    assert "no command to run" in capsys.readouterr().err


def test_no_engine_is_one_line(project, monkeypatch, capsys):
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    assert main(["status", project]) == 2
    err = capsys.readouterr().err
    assert err == (
        f"ops status: no Docker engine answers for stack {project}: "
        "DOCKER_HOST: unix:///nonexistent/docker.sock: no socket there; start one here (`make docker`, as root), "
        f"or point the stack at its host with docker:host in Pulumi.{project}.yaml or DOCKER_HOST\n"
    )


def test_the_stack_file_docker_host_is_used(project, stack, monkeypatch, capsys):
    name, root, _ = stack
    (root / "Pulumi.remote.yaml").write_text("config:\n  docker:host: tcp://127.0.0.1:1\n")
    try:
        assert main(["status", "remote"]) == 2
        assert capsys.readouterr().err == (
            "ops status: no Docker engine answers for stack remote: docker:host: tcp://127.0.0.1:1: connection refused; "
            "check that the host is up and that `docker -H tcp://127.0.0.1:1 info` works from here\n"
        )
    finally:
        (root / "Pulumi.remote.yaml").unlink()


def test_nothing_printed_holds_the_secret(stack):
    name, root, _ = stack
    outputs = [
        cli(root, *args) for args in (("status", name), ("ps", name), ("logs", name), ("manage", name, "--", "whoami"))
    ]
    assert all(SECRET.encode() not in o.stdout + o.stderr for o in outputs)
    assert [o.returncode for o in outputs] == [0, 0, 0, 0]


def test_an_encrypted_docker_host_is_refused_with_a_hint(tmp_path, monkeypatch):
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    (tmp_path / "Pulumi.sec.yaml").write_text("config:\n  docker:host:\n    secure: AAAA\n")
    with pytest.raises(OpsError, match="docker:host is encrypted and ops decrypts nothing; export DOCKER_HOST for ops"):
        StackOnHost("sec", root=tmp_path)
