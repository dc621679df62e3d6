"""tools/e2e.py, the end-to-end runner CI's e2e.yml runs with the real Pulumi CLI.

The real CLI cannot be installed here: a stand-in (fake_pulumi_e2e.py) on PATH records every
call and fails or hangs at a step when told to; a small Docker stand-in answers what the runner
asks the engine (subnets in use, the stack's containers and their logs, what is left); a loopback
HTTP server stands for nginx and reports the commit of the last `pulumi up`, so the release's
load (rehearsal.checks.load.Load, unchanged) counts real requests. The smoke checks themselves are
rehearsal/checks/smoke.py's (tested with the rehearsal); here they are replaced by a recorder, and what
is tested is what the runner gives them: the State built from `pulumi stack export`.
"""

from __future__ import annotations

import inspect
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from planning.harness import CONTAINER, IMAGE, JOB, NETWORK, VOLUME, Plan, plan_stack
from rehearsal.checks.load import Report
from rehearsal.checks.smoke import Check, CheckFailed, Smoke
from rehearsal.emulation.engine import live
from tests.program_fixtures import GIT_SHA
from tools import e2e

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
FAKE = HERE / "fake_pulumi_e2e.py"
EXPORT = HERE / "e2e_stack_export.json"
RELEASE_LINE = re.compile(
    r"^release (e2e-[0-9a-f]{7}-[0-9a-f]{6}) new-commit: (\d+) requests, (\d+) failed, "
    r"longest gap \d+\.\ds$"
)


# --------------------------------------------------------------------------- stand-ins


class FakeAPI:
    """The few Docker API calls the runner makes (not the smoke checks'). The stack's containers
    exist from the first `pulumi up` (the stand-in CLI's record) until a `destroy` succeeds."""

    def __init__(self, state_file: Path):
        self.state_file = state_file
        self.removed: list[str] = []

    def _deployed(self) -> bool:
        state = json.loads(self.state_file.read_text())
        steps = [c["step"] for c in state.get("calls", [])]
        ups = [i for i, s in enumerate(steps) if s == "up" and state.get("FAIL") != "up"]
        destroyed = [i for i, s in enumerate(steps) if s == "destroy" and state.get("FAIL") != "destroy"]
        return bool(ups) and not destroyed

    def networks(self, filters=None):
        if filters:
            return [
                n
                for n in [{"Id": "n1", "Name": "django-docker-net-frontend-1234567"}]
                if self._deployed() and n["Id"] not in self.removed
            ]
        return [
            {"Name": "bridge", "IPAM": {"Config": [{"Subnet": "172.17.0.0/16", "Gateway": "172.17.0.1"}]}},
            {"Name": "none", "IPAM": {"Config": []}},
        ]

    def containers(self, all=False, filters=None):
        (label,) = filters["label"]
        if not label.startswith(f"{e2e.STACK_LABEL}=e2e-") or not self._deployed():
            return []
        return [
            {"Id": f"{name}-id", "Names": [f"/{name}"]}
            for name in ("django-docker-web-1-4b8e2d1", "django-docker-nginx-77aa001")
            if f"{name}-id" not in self.removed
        ]

    def volumes(self, filters=None):
        left = [v for v in [{"Name": "django-docker-vol-media-5c5c5c5"}] if v["Name"] not in self.removed]
        return {"Volumes": left if self._deployed() else None}

    def logs(self, cid, tail=None, timestamps=False):
        return f"2025-11-25T22:42:00Z {cid}: last words\n".encode()

    def inspect_container(self, cid):
        return {"Id": cid, "State": {"Status": "running", "Health": {"Status": "healthy"}}}

    def remove_container(self, cid, force=False, v=False):
        self.removed.append(cid)

    def remove_network(self, nid):
        self.removed.append(nid)

    def remove_volume(self, name, force=False):
        self.removed.append(name)


class FakeDocker:
    def __init__(self, state_file: Path):
        self.api = FakeAPI(state_file)


class Nginx:
    """Loopback HTTP standing for nginx: GET /health/ answers with the last `pulumi up`'s commit
    (502 while the second one runs, when told BROKEN)."""

    def __init__(self, state_file: Path):
        state_file_ = state_file

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                try:
                    state = json.loads(state_file_.read_text())
                except ValueError:  # mid-write: the stand-in CLI replaces it atomically, so rare
                    state = {"calls": []}
                ups = [c for c in state.get("calls", []) if c["step"] in ("up", "up2")]
                if state.get("BROKEN") and ups and ups[-1]["step"] == "up2":
                    self.send_response(502)
                    self.end_headers()
                    return
                body = json.dumps({"status": "ok", "git_sha": ups[-1]["GIT_SHA"] if ups else ""}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class RecordingRun(e2e.Run):
    """The runner with the smoke checks replaced by a recorder, and the plan by an empty one
    whose front door is the stand-in nginx."""

    def __init__(self, *args, nginx: Nginx, fail_smoke: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self.nginx = nginx
        self.fail_smoke = fail_smoke
        self.smoked: list[tuple[str, e2e.State]] = []
        self.planned: list[str] = []

    def plan_for(self, sha):
        self.planned.append(sha)
        self.front = (self.nginx.base, "localhost")
        return Plan(stack=self.stack, config={})

    def smoke_checks(self, plan, state):
        self.smoked.append((plan.stack, state))
        return [Check("health", not self.fail_smoke, "recorded")]


class World:
    def __init__(self, tmp_path: Path, monkeypatch):
        self.project = tmp_path / "project"
        self.project.mkdir()
        for name in ("Pulumi.yaml", "Pulumi.dev.yaml"):
            shutil.copy(ROOT / name, self.project / name)
        bin_dir = tmp_path / "bin"
        bin_dir.mkdir()
        wrapper = bin_dir / "pulumi"
        wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{FAKE}" "$@"\n')
        wrapper.chmod(0o755)
        self.state_file = tmp_path / "fake-pulumi.json"
        self.write({"EXPORT": str(EXPORT), "SLEEP": {"up2": 0.5}})
        self.logs = tmp_path / "e2e-logs"
        monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
        monkeypatch.setenv("FAKE_PULUMI_STATE", str(self.state_file))
        monkeypatch.setattr(e2e, "SETTLE_SECONDS", 0.2)
        self.nginx = Nginx(self.state_file)
        self.lines: list[str] = []
        self.run_: RecordingRun | None = None

    def write(self, state: dict) -> None:
        self.state_file.write_text(json.dumps(state))

    def update(self, **changes) -> None:
        self.write({**self.read(), **changes})

    def read(self) -> dict:
        return json.loads(self.state_file.read_text())

    @property
    def calls(self) -> list[dict]:
        return self.read().get("calls", [])

    def steps(self) -> list[str]:
        return [c["step"] for c in self.calls]

    def run(self, *, fail_smoke: bool = False, keep_logs: bool = True) -> int:
        options = e2e.Options(require_cli=True, keep_logs=self.logs if keep_logs else None, project_dir=self.project)
        self.run_ = RecordingRun(
            options, client=FakeDocker(self.state_file), say=self.lines.append, nginx=self.nginx, fail_smoke=fail_smoke
        )
        return self.run_.main()

    def output(self) -> str:
        return "\n".join(self.lines)


@pytest.fixture
def world(tmp_path, monkeypatch):
    w = World(tmp_path, monkeypatch)
    yield w
    w.nginx.close()


def assert_torn_down(world: World) -> None:
    calls = world.calls
    run = world.run_
    assert run is not None, "the world has not run"
    stack = run.stack
    assert [c["step"] for c in calls[-2:]] == ["destroy", "rm"], world.steps()
    assert calls[-2]["argv"][:5] == ["destroy", "--stack", stack, "--yes", "--skip-preview"]
    assert calls[-1]["argv"][:5] == ["stack", "rm", stack, "--yes", "--force"]
    assert not list(world.project.glob("Pulumi.e2e-*.yaml")), "the throwaway stack file is left"
    assert run.work is not None, "the run made no temp dir"
    assert not run.work.exists(), "the temp dir (backend, logs) is left"
    assert f"e2e: teardown of {stack} complete" in world.lines


# --------------------------------------------------------------------------- no CLI


@pytest.mark.parametrize("require, code", [(False, 0), (True, 1)])
def test_without_a_cli_it_says_why_it_skips(tmp_path, require, code):
    empty = tmp_path / "empty-path"
    empty.mkdir()
    result = subprocess.run(
        [sys.executable, "-m", "tools.e2e", *(["--require-cli"] if require else [])],
        cwd=ROOT,
        env={**os.environ, "PATH": str(empty)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == code, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 1, result.stdout
    prefix = "e2e: FAILED: no Pulumi CLI on PATH (" if require else "e2e: skipped: no Pulumi CLI on PATH ("
    assert lines[0].startswith(prefix), lines[0]
    assert not list(ROOT.glob("Pulumi.e2e-*.yaml"))


# --------------------------------------------------------------------------- the whole run


def test_a_passing_run_goes_through_every_step_in_order_then_tears_down(world):
    assert world.run() == 0, world.output()
    stack = world.run_.stack
    assert re.fullmatch(rf"e2e-{GIT_SHA[:7]}-[0-9a-f]{{6}}", stack)
    assert world.steps() == ["version", "init", "up", "export", "preview", "up2", "export", "destroy", "rm"]
    calls = {c["step"]: c for c in world.calls}
    assert calls["init"]["argv"][:3] == ["stack", "init", stack]
    assert calls["up"]["argv"][:5] == ["up", "--stack", stack, "--yes", "--skip-preview"]
    assert calls["preview"]["argv"][:4] == ["preview", "--stack", stack, "--expect-no-changes"]
    assert calls["export"]["argv"][:4] == ["stack", "export", "--stack", stack]
    # The first up and the preview build the checkout's commit; the release a second valid one.
    nxt = e2e.next_commit(GIT_SHA)
    assert calls["up"]["GIT_SHA"] == calls["preview"]["GIT_SHA"] == GIT_SHA
    assert calls["up2"]["GIT_SHA"] == nxt and re.fullmatch(r"[0-9a-f]{40}", nxt) and nxt != GIT_SHA
    # One throwaway file backend and passphrase for every stack command; the file exists throughout.
    stack_calls = world.calls[1:]
    assert {c["backend"] for c in stack_calls} == {world.run_.env["PULUMI_BACKEND_URL"]}
    assert world.run_.env["PULUMI_BACKEND_URL"].startswith("file:///")
    assert all(c["passphrase"] for c in stack_calls)
    assert all(c["stack_file"] for c in stack_calls)
    assert all("--non-interactive" in c["argv"] for c in stack_calls)
    # Smoke ran after the first up and after the release, on the State from the export.
    assert [s for s, _ in world.run_.smoked] == [stack, stack]
    assert world.run_.planned == [GIT_SHA, nxt]
    state = world.run_.smoked[0][1]
    assert "django-docker-nginx" in live(state, CONTAINER)
    # The release line, in the release rehearsal's format, for this stack.
    [line] = [line for line in world.lines if line.startswith("release ")]
    match = RELEASE_LINE.match(line)
    assert match and match.group(1) == stack and int(match.group(2)) > 0 and match.group(3) == "0", line
    assert_torn_down(world)
    assert not world.logs.exists(), "logs are kept only after a failure"
    assert world.lines[-1].startswith(f"e2e {stack}: ") and "all passed" in world.lines[-1]


def test_the_stack_file_is_devs_config_kept_off_everything_else(world, monkeypatch):
    seen = {}
    original = e2e.Run.up

    def up(run, sha, what):
        if not seen:
            seen.update(e2e.yaml.safe_load(run.stack_file.read_text()))
        original(run, sha, what)

    monkeypatch.setattr(e2e.Run, "up", up)
    assert world.run() == 0, world.output()
    dev = e2e.yaml.safe_load((ROOT / "Pulumi.dev.yaml").read_text())["config"]
    config = seen["config"]
    assert {k: config[k] for k in dev} == dev
    assert config["django-docker:bindAddress"] == "127.0.0.1"
    assert config["django-docker:serverName"] == "localhost"
    assert 1024 < int(config["django-docker:httpPort"]) < 65536
    assert re.fullmatch(r"172\.30\.(\d+)\.0/24", config["django-docker:frontendSubnet"])
    assert "encryptionsalt" in seen, "stack init adds the salt to the file the runner wrote"


@pytest.mark.parametrize(
    "step, ran",
    [
        ("up", ["version", "init", "up"]),
        ("smoke", ["version", "init", "up", "export"]),
        ("preview", ["version", "init", "up", "export", "preview"]),
        ("up2", ["version", "init", "up", "export", "preview", "up2"]),
    ],
)
def test_a_failure_at_any_step_still_tears_down_and_keeps_the_logs(world, step, ran):
    if step != "smoke":
        world.update(FAIL=step)
    assert world.run(fail_smoke=step == "smoke") == 1, world.output()
    assert world.steps() == ran + ["destroy", "rm"]
    assert_torn_down(world)
    assert any(line.startswith("e2e: FAILED: ") for line in world.lines), world.output()
    # Kept before the teardown: every command's output, and the containers while they existed.
    transcripts = sorted(p.name for p in (world.logs / "cli").iterdir())
    assert transcripts[0] == "01-stack-init.log" and len(transcripts) == len(ran) - 1
    assert (world.logs / "engine").is_dir()
    kept = sorted(p.name for p in world.logs.glob("django-docker-*"))
    if step == "up":
        assert kept == []  # the first up failed: nothing was deployed
    else:
        assert kept == [
            "django-docker-nginx-77aa001.inspect.json",
            "django-docker-nginx-77aa001.log",
            "django-docker-web-1-4b8e2d1.inspect.json",
            "django-docker-web-1-4b8e2d1.log",
        ]
        assert b"last words" in (world.logs / "django-docker-web-1-4b8e2d1.log").read_bytes()
    if step == "up2":
        assert any(RELEASE_LINE.match(line) for line in world.lines), "the release line is printed on failure too"


def test_failed_requests_during_the_release_fail_the_run(world):
    world.update(BROKEN=True, SLEEP={"up2": 1.0})
    assert world.run() == 1, world.output()
    [line] = [line for line in world.lines if line.startswith("release ")]
    match = RELEASE_LINE.match(line)
    assert match and int(match.group(3)) > 0, line
    assert any("requests failed through nginx during the release" in line for line in world.lines)
    assert world.steps()[-2:] == ["destroy", "rm"]


def test_a_failed_stack_init_removes_the_file_and_destroys_nothing(world):
    world.update(FAIL="init")
    assert world.run() == 1
    assert world.steps() == ["version", "init"]
    assert not list(world.project.glob("Pulumi.e2e-*.yaml"))


def test_a_failed_destroy_still_removes_the_stack_and_sweeps_by_label(world):
    world.update(FAIL="destroy")
    assert world.run() == 1, world.output()
    assert world.steps()[-2:] == ["destroy", "rm"]
    removed = world.run_.client.api.removed
    assert sorted(removed) == [
        "django-docker-nginx-77aa001-id",
        "django-docker-vol-media-5c5c5c5",
        "django-docker-web-1-4b8e2d1-id",
        "n1",
    ]
    assert any("removed by label what `pulumi destroy` left" in line for line in world.lines)
    assert any(line.endswith("INCOMPLETE (see above)") for line in world.lines)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_cancels_the_running_command_then_tears_down(world, signum):
    world.update(HANG="up")
    before = signal.getsignal(signum)

    def send_when_up_runs():
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if "up" in world.steps():
                time.sleep(0.3)  # the stand-in is now waiting in its sleep
                os.kill(os.getpid(), signum)
                return
            time.sleep(0.05)

    threading.Thread(target=send_when_up_runs, daemon=True).start()
    assert world.run() == 128 + signum, world.output()
    assert world.read().get("cancelled") == "up", "the running `pulumi up` got SIGINT and cancelled"
    assert world.steps() == ["version", "init", "up", "destroy", "rm"]
    assert_torn_down(world)
    assert signal.getsignal(signum) is before, "the previous handler is back"


# --------------------------------------------------------------------------- pieces


def export() -> dict:
    return json.loads(EXPORT.read_text())


def test_the_export_becomes_the_state_the_smoke_checks_read():
    state = e2e.state_from_export(export())
    by_name = {(e.type, e.name): e for e in state.entries}
    # Only what exists on the Docker host: no stack, component or provider entries.
    assert {e.type for e in state.entries} == {
        CONTAINER,
        NETWORK,
        VOLUME,
        IMAGE,
        JOB,
        "random:index/randomPassword:RandomPassword",
    }
    containers = live(state, CONTAINER)
    assert sorted(containers) == [
        "django-docker-celery-beat",
        "django-docker-celery-worker",
        "django-docker-nginx",
        "django-docker-postgres",
        "django-docker-redis",
        "django-docker-web-1",
        "django-docker-web-2",
    ]
    raw = {r["urn"]: r for r in export()["deployment"]["resources"]}
    web1 = by_name[(CONTAINER, "django-docker-web-1")]
    assert containers["django-docker-web-1"] == {"id": raw[web1.urn]["id"], "name": "django-docker-web-1-4b8e2d1"}
    assert re.fullmatch(r"[0-9a-f]{64}", containers["django-docker-web-1"]["id"])
    assert web1.label("django-docker.service") == "web" and web1.label("django-docker.role") == "app"
    networks = live(state, NETWORK)
    assert sorted(networks) == ["django-docker-net-backend", "django-docker-net-frontend"]
    assert networks["django-docker-net-frontend"]["name"].startswith("django-docker-net-frontend-")
    jobs = live(state, JOB)
    assert sorted(jobs) == ["django-docker-release-collectstatic", "django-docker-release-migrate"]
    assert all(real["run_id"] == real["id"] for real in jobs.values())
    assert live(state, VOLUME)["django-docker-vol-media"]["name"].startswith("django-docker-vol-media-")
    assert e2e.built_image(state) == "django-docker/web:3f1c9ab0d6e1"  # the tag: the commit's 12 hex
    # Secrets stay as the state holds them: ciphertext.
    assert e2e.SECRET_SIG in web1.inputs["envs"]


def test_resources_left_for_deletion_are_not_live_and_versions_are_checked():
    data = export()
    for r in data["deployment"]["resources"]:
        if r["urn"].endswith("::django-docker-web-2"):
            r["delete"] = True
    state = e2e.state_from_export(data)
    assert "django-docker-web-2" not in live(state, CONTAINER)
    with pytest.raises(e2e.E2EError, match="version 4, expected 3"):
        e2e.state_from_export({**data, "version": 4})


def test_the_programs_plan_names_what_the_export_holds():
    # The smoke checks look containers and networks up by the plan's logical names.
    plan = plan_stack("dev")
    state = e2e.state_from_export(export())
    assert e2e.missing_from_state(plan, state) == []
    data = export()
    data["deployment"]["resources"] = [
        r for r in data["deployment"]["resources"] if not r["urn"].endswith("::django-docker-celery-beat")
    ]
    assert e2e.missing_from_state(plan, e2e.state_from_export(data)) == ["django-docker-celery-beat"]


def test_smoke_finds_the_deployed_containers_and_networks_by_the_plans_names():
    class Client:
        api = None

    plan = plan_stack("dev", overrides={"httpPort": 41873})
    state = e2e.state_from_export(export())
    smoke = Smoke(
        Client(),
        plan,
        state,
        app_image="sha256:" + "1" * 64,
        run_labels={e2e.PROBE_LABEL: "e2e-x"},
        say=lambda line: None,
    )
    raw = {r["urn"].rsplit("::", 1)[-1]: r for r in export()["deployment"]["resources"] if r["type"] == CONTAINER}
    for r in plan.of_type(CONTAINER):
        assert smoke.cid(r.name) == raw[r.name]["id"], r.name
    assert smoke.network_named("frontend").startswith("django-docker-net-frontend-")
    assert smoke.base == "http://127.0.0.1:41873" and smoke.host == "localhost:41873"


def test_every_smoke_check_is_either_run_or_excluded_for_a_reason():
    methods = {name for name, _ in inspect.getmembers(Smoke, inspect.isfunction) if name.startswith("check_")}
    run = [method for _, method in e2e.SMOKE_CHECKS]
    assert set(run) | set(e2e.REHEARSAL_ONLY) == methods, "a new Smoke check: decide whether it holds for a real stack"
    assert not set(run) & set(e2e.REHEARSAL_ONLY)
    # The reason, checked: the excluded ones filter by the rehearsal's run label; the others do not.
    for method in e2e.REHEARSAL_ONLY:
        assert "rehearsal.run=" in inspect.getsource(getattr(Smoke, method)), method
    for method in run:
        assert "rehearsal.run=" not in inspect.getsource(getattr(Smoke, method)), method


def test_run_smoke_calls_smokes_own_checks_and_reports_each_in_one_line():
    class Recorder:
        def __init__(self):
            self.called = []

        def __getattr__(self, method):
            def check():
                self.called.append(method)
                if method == "check_visit":
                    raise CheckFailed("visit 7 is not in PostgreSQL")
                if method == "check_static":
                    raise ConnectionError("nginx went away")
                return f"{method} fine"

            return check

    smoke, lines = Recorder(), []
    checks = e2e.run_smoke(smoke, lines.append)
    assert smoke.called == [method for _, method in e2e.SMOKE_CHECKS]
    assert [c.name for c in checks if not c.ok] == ["visit", "static"]
    assert "  FAIL  visit: visit 7 is not in PostgreSQL" in lines
    assert "  FAIL  static: ConnectionError: nginx went away" in lines
    assert "  PASS  health: check_health fine" in lines


def test_names_commits_and_the_frontend_subnet():
    assert e2e.stack_name(GIT_SHA, "a1b2c3") == f"e2e-{GIT_SHA[:7]}-a1b2c3"
    assert e2e.next_commit(GIT_SHA) == e2e.next_commit(GIT_SHA) != e2e.next_commit("f" * 40)
    # From where the token points, the first /24 no network on the engine overlaps.
    assert e2e.frontend_subnet("000000", []) == "172.30.100.0/24"
    assert e2e.frontend_subnet("000000", ["172.30.100.0/24", "172.30.96.0/22", "172.17.0.0/16"]) == "172.30.101.0/24"
    assert e2e.frontend_subnet("000095", []) == "172.30.249.0/24"
    with pytest.raises(e2e.E2EError):
        e2e.frontend_subnet("000000", ["172.30.0.0/16"])
    assert (
        e2e.logical_name("urn:pulumi:s::p::a:b:C$docker:index/container:Container::django-docker-web-1")
        == "django-docker-web-1"
    )


def test_the_release_line_is_the_release_rehearsals():
    report = Report(requests=412, failed=0, failed_seconds=0, longest_gap=0.24, duration=21.0)
    line = report.line("e2e-0123456-abcdef", e2e.NEW_COMMIT.name)
    assert line == "release e2e-0123456-abcdef new-commit: 412 requests, 0 failed, longest gap 0.2s"
    assert RELEASE_LINE.match(line)
