"""End to end with the real Pulumi CLI and providers: python -m tools.e2e [--require-cli] [--keep-logs DIR]

What the rehearsal cannot prove, because it stands in for the engine: that the program deploys
with the real Pulumi engine and pulumi-docker/pulumi-random, that a second `pulumi up` of the same
commit has nothing to do (no perpetual diff), and that a release through the real engine keeps
nginx answering. On a machine with the Pulumi CLI, its plugins and a Docker engine (CI's
`.github/workflows/e2e.yml`), in the project directory:

1. a throwaway file backend (PULUMI_BACKEND_URL=file://<temp dir>: the login for these commands
   only, the user's own `pulumi login` is left alone) and a throwaway PULUMI_CONFIG_PASSPHRASE;
2. a throwaway stack `e2e-<commit>-<random>` whose Pulumi.<stack>.yaml is dev's config with a free
   loopback httpPort, bindAddress 127.0.0.1, serverName localhost and a frontendSubnet no network
   on this engine uses;
3. `pulumi up --yes --skip-preview` with GIT_SHA = the commit, then the rehearsal's smoke checks
   through nginx against what was deployed (see `run_smoke`);
4. `pulumi preview --expect-no-changes` with the same commit: the program is idempotent against
   the real providers;
5. a second `pulumi up` with GIT_SHA = a second commit id while `rehearsal.checks.load.Load` sends
   `GET /health/` through nginx, printing the release rehearsal's line
   `release <stack> new-commit: <N> requests, <F> failed, longest gap <S>s`; as in the
   rehearsal's new-commit scenario no request may fail, /health/ must then report the new
   commit, and the smoke checks run again. The second commit is synthetic (40 hex derived from
   the first): the program tags and builds the image with GIT_SHA (build arg and tag), so it is
   a new image and every app container is replaced, exactly the release a real next commit
   makes; no second checkout is needed;
6. always (also after a failure, Ctrl-C or SIGTERM): `pulumi destroy --yes --skip-preview`,
   `pulumi stack rm --yes --force`, the stack file and the temp dir removed; anything still
   labelled `django-docker.stack=<stack>` afterwards is removed by label and fails the run.
   After a failure, and before the teardown, --keep-logs DIR receives every CLI command's
   output, the engine's verbose log files (`-v=3 --logflow`, written to the temp dir) and
   `docker logs` (last lines) and `docker inspect` of every container of the stack. These hold
   the throwaway stack's generated secrets (container environments); the stack is gone by then.

Without a Pulumi CLI on PATH it prints `e2e: skipped: no Pulumi CLI on PATH (...)` and exits 0,
or exits 1 with --require-cli (CI passes it: there, a missing CLI is a broken job, not a skip).
"""

from __future__ import annotations

import argparse
import hashlib
import ipaddress
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Optional

import yaml

from components.settings import SettingsError, resolve_git_sha
from planning.harness import CONTAINER, IMAGE, JOB, NETWORK, VOLUME, Plan, PlanError, plan_stack
from rehearsal.checks.load import Load
from rehearsal.checks.smoke import Check, Smoke, front_door, http_session, run_checks
from rehearsal.emulation.engine import live
from rehearsal.emulation.model import Entry, State
from rehearsal.runners.release import LOAD_MAX_SECONDS, LOAD_RATE, LOAD_WORKERS, SETTLE_SECONDS
from rehearsal.runners.stacks import commit
from rehearsal.scenarios.new_commit import SCENARIO as NEW_COMMIT

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SOURCE_STACK = "dev"  # the throwaway stack's config is a copy of this stack's
STACK_LABEL = "django-docker.stack"  # what every container, network and volume of a stack carries
PROBE_LABEL = "django-docker.e2e"  # the smoke's probe containers, so a leftover one is found
# Pulumi's marker for a secret value in a state file (pulumi/pulumi sdk/go/common/resource/sig).
SECRET_SIG = "4dabf18193072939515e22adb298388d"
LOG_TAIL = 300  # lines of `docker logs` kept per container after a failure

# Seconds each command may take before it is cancelled (SIGINT: the engine stops cleanly).
TIMEOUTS = {"up": 900, "preview": 300, "destroy": 600, "short": 120}  # within e2e.yml's timeout-minutes
CANCEL_GRACE = 120  # seconds a cancelled command gets to stop before it is killed
ENGINE_VERBOSITY = ["--verbose=3", "--logflow"]  # log files in TMPDIR, kept after a failure


class E2EError(Exception):
    """A step failed; one line."""


class Interrupted(BaseException):
    """SIGINT or SIGTERM: stop the current command, then tear down (not an Exception: nothing
    on the way may swallow it)."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


# --------------------------------------------------------------------------- pure helpers


def stack_name(sha: str, token: str) -> str:
    return f"e2e-{sha[:7]}-{token}"


def next_commit(sha: str) -> str:
    """A second, valid commit id (40 hex) for the release: see the module's docstring."""
    return hashlib.sha1(f"e2e-next-commit:{sha}".encode()).hexdigest()


def free_loopback_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def frontend_subnet(token: str, taken: Iterable[str]) -> str:
    """A /24 in 172.30.100-249.x, starting where the random token points, that overlaps no
    subnet on the engine (the frontend network's subnet is fixed, Docker refuses an overlap)."""
    used = [ipaddress.ip_network(t, strict=False) for t in taken]
    start = int(token, 16)
    for step in range(150):
        candidate = ipaddress.ip_network(f"172.30.{100 + (start + step) % 150}.0/24")
        if not any(candidate.overlaps(u) for u in used if u.version == 4):
            return str(candidate)
    raise E2EError("no /24 in 172.30.100.0-172.30.249.255 is free for the frontend network")


def stack_config(project_dir: Path, *, http_port: int, subnet: str) -> dict:
    """Pulumi.<throwaway>.yaml: the source stack's config, and what keeps it off everything else."""
    namespace = yaml.safe_load((project_dir / "Pulumi.yaml").read_text())["name"]
    source = yaml.safe_load((project_dir / f"Pulumi.{SOURCE_STACK}.yaml").read_text()) or {}
    config = dict(source.get("config") or {})
    config.update(
        {
            f"{namespace}:httpPort": http_port,
            f"{namespace}:bindAddress": "127.0.0.1",
            f"{namespace}:serverName": "localhost",
            f"{namespace}:frontendSubnet": subnet,
        }
    )
    return {"config": config}


def _plain(value: Any) -> Any:
    """A state value, or None when the state holds it as a secret (ciphertext)."""
    return None if isinstance(value, dict) and SECRET_SIG in value else value


def logical_name(urn: str) -> str:
    # urn:pulumi:<stack>::<project>::<parent types$type>::<name>
    return urn.split("::", 3)[3]


def state_from_export(export: Mapping[str, Any]) -> State:
    """`pulumi stack export` (a v3 deployment) -> the rehearsal's State, for the smoke checks.

    One Entry per resource that exists on the Docker host (custom, not a provider), named by its
    logical name, with its inputs and outputs as the state holds them (secrets stay ciphertext)
    and `real` as the rehearsal's engine would have recorded it: a container's or network's id
    and name, a volume's name, a release job's run id. A resource left for deletion by a failed
    update (`delete: true`) is kept but marked, so `live()` skips it.
    """
    if export.get("version") != 3:
        raise E2EError(f"pulumi stack export: deployment version {export.get('version')!r}, expected 3")
    entries = []
    for resource in (export.get("deployment") or {}).get("resources") or []:
        type_ = resource["type"]
        if not resource.get("custom") or type_.startswith("pulumi:providers:"):
            continue  # the stack, components and provider instances exist only in the state
        outputs = resource.get("outputs") or {}
        id_ = resource.get("id") or ""
        real: dict = {}
        if id_:
            real = {"id": id_}
            if type_ in (CONTAINER, NETWORK):
                real["name"] = _plain(outputs.get("name"))
            elif type_ == VOLUME:
                real["name"] = _plain(outputs.get("name")) or id_
            elif type_ == JOB:
                real["run_id"] = _plain(outputs.get("runId")) or id_
            elif type_ == IMAGE:
                real["name"] = _plain(outputs.get("imageName"))
        entries.append(
            Entry(
                urn=resource["urn"],
                type=type_,
                name=logical_name(resource["urn"]),
                inputs=resource.get("inputs") or {},
                outputs=outputs,
                options={
                    "parent": resource.get("parent", ""),
                    "dependencies": resource.get("dependencies") or [],
                    "property_dependencies": resource.get("propertyDependencies") or {},
                    "protect": bool(resource.get("protect")),
                },
                real=real,
                delete=bool(resource.get("delete")),
                pending_replacement=bool(resource.get("pendingReplacement")),
            )
        )
    return State(entries)


def missing_from_state(plan: Plan, state: State) -> list[str]:
    """What the program plans (containers, networks) that the deployed stack lacks."""
    return sorted(
        r.name for type_ in (CONTAINER, NETWORK) for r in plan.of_type(type_) if r.name not in live(state, type_)
    )


def built_image(state: State) -> str:
    """The app image the stack built (its tag): what every app container must run."""
    names = [e.real.get("name") for e in state.entries if e.type == IMAGE and e.real and not e.delete]
    if len(names) != 1 or not names[0]:
        raise E2EError(f"expected one built app image in the stack, found {names}")
    return names[0]


# --------------------------------------------------------------------------- smoke, reused

SMOKE_CHECKS = (  # (name, Smoke method), in Smoke.run's order
    ("health", "check_health"),
    ("replicas", "check_replicas"),
    ("visit", "check_visit"),
    ("upload", "check_upload"),
    ("static", "check_static"),
    ("media", "check_media"),
    ("celery", "check_celery"),
    ("non-root", "check_non_root"),
    ("app image", "check_app_image"),
    ("backend isolation", "check_backend_isolated"),
)
REHEARSAL_ONLY = {  # Smoke method -> why it does not run against a real stack
    "check_migrate": "finds leftover job containers by the `rehearsal.run=` label",
    "check_ports": "finds the containers that publish ports by the `rehearsal.run=` label",
}


def run_smoke(smoke: Smoke, say: Callable[[str], None]) -> list[Check]:
    """The rehearsal's smoke checks (rehearsal/checks/smoke.py) that hold for a real deployment, each
    reported in one line as Smoke.run reports it; the checks are Smoke's own methods, not copies.

    Run (SMOKE_CHECKS): health, replicas (every web replica answers through nginx), visit
    (a row in PostgreSQL, its Celery task done), upload (media round trip), static (nginx serves
    the static volume's file), media (a file a replica writes, served by nginx), celery (the
    worker answers a ping), non-root, app image (every app container runs the image the stack
    built) and backend isolation (its probe containers carry PROBE_LABEL). They read only the
    program's plan (logical names, labels, nginx's port), the State (container ids, network
    names: `state_from_export`) and the engine, so they mean the same on a real stack.

    Not run (REHEARSAL_ONLY): migrate and published ports. Each lists containers by the
    `rehearsal.run=<run>` label, which only the rehearsal's engine puts on what it creates; on a
    real stack that filter matches nothing and the check would pass without looking at anything.
    What migrate proves is still covered: the visit check writes to a table only the migration
    creates. nginx's port is published on 127.0.0.1 (bindAddress), where the checks reach it.
    """
    return run_checks([(name, getattr(smoke, method)) for name, method in SMOKE_CHECKS], say)


# --------------------------------------------------------------------------- the run


@dataclass
class Options:
    require_cli: bool = False
    keep_logs: Optional[Path] = None
    project_dir: Path = PROJECT_ROOT


def cli_version() -> Optional[str]:
    """`pulumi version`, or None when no CLI is on PATH."""
    path = shutil.which("pulumi")
    if path is None:
        return None
    result = subprocess.run([path, "version"], capture_output=True, text=True, timeout=TIMEOUTS["short"])
    if result.returncode != 0:
        raise E2EError(f"`pulumi version` failed: {(result.stderr or result.stdout).strip()[:200]}")
    return result.stdout.strip()


class Run:
    def __init__(self, options: Options, *, client=None, say: Optional[Callable[[str], None]] = None):
        self.options = options
        self.client = client
        self.say = say or (lambda line: print(line, flush=True))
        self.project_dir = options.project_dir
        self.work: Optional[Path] = None
        self.stack = ""
        self.stack_file: Optional[Path] = None
        self.sha = self.next_sha = ""
        self.env: dict[str, str] = {}
        self.created = False
        self.front: tuple[str, str] = ("", "")
        self.commands = 0
        self.signalled = 0
        self.tearing_down = False

    # ------------------------------------------------------------------ entry point

    def main(self) -> int:
        try:
            version = cli_version()
        except E2EError as error:
            self.say(f"e2e: FAILED: {error}")
            return 1
        if version is None:
            reason = (
                "no Pulumi CLI on PATH (`scripts/pulumi-cli.sh` fetches the pinned one into .tools/: put its "
                "directory on PATH; CI installs it and the plugins, .github/workflows/e2e.yml)"
            )
            if self.options.require_cli:
                self.say(f"e2e: FAILED: {reason}; --require-cli was given")
                return 1
            self.say(f"e2e: skipped: {reason}")
            return 0
        self.say(f"e2e: Pulumi CLI {version}")
        handlers = {s: signal.signal(s, self._on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
        ok = clean = False
        try:
            try:
                self.prepare()
                self.step("stack init", "stack", "init", self.stack)
                self.created = True
                self.up(self.sha, "up")
                self.smoke(self.plan_for(self.sha), "smoke")
                self.step(
                    "preview",
                    "preview",
                    "--stack",
                    self.stack,
                    "--expect-no-changes",
                    "--diff",
                    *ENGINE_VERBOSITY,
                    timeout=TIMEOUTS["preview"],
                    git_sha=self.sha,
                )
                self.release()
                ok = True
            except E2EError as error:
                self.say(f"e2e: FAILED: {error}")
            except Interrupted as interrupted:
                self.say(f"e2e: interrupted ({interrupted}); tearing down")
            except Exception:  # a bug or an engine error: still tear down
                self.say("e2e: FAILED with an unexpected error:\n" + traceback.format_exc().rstrip())
            finally:
                self.tearing_down = True
                if not ok:
                    self.keep_logs()
                clean = self.teardown()
        finally:
            for signum, handler in handlers.items():
                signal.signal(signum, handler)
        if self.signalled:
            return 128 + self.signalled
        if ok and clean:
            self.say(f"e2e {self.stack}: up, smoke, preview (no changes), release under load, destroy: all passed")
            return 0
        return 1

    def _on_signal(self, signum, _frame) -> None:
        if self.signalled or self.tearing_down:
            self.signalled = self.signalled or signum
            self.say(f"e2e: {signal.Signals(signum).name} received; finishing the teardown first")
            return
        self.signalled = signum
        raise Interrupted(signum)

    # ------------------------------------------------------------------ steps

    def prepare(self) -> None:
        if self.client is None:
            import docker

            try:
                self.client = docker.from_env(timeout=300)
                self.client.ping()
            except Exception as error:
                raise E2EError(f"no Docker engine answers ({type(error).__name__}: {error})") from None
        try:
            self.sha = resolve_git_sha(self.project_dir).removesuffix("-dirty")
        except SettingsError as error:
            raise E2EError(str(error)) from None
        self.next_sha = next_commit(self.sha)
        token = secrets.token_hex(3)
        self.stack = stack_name(self.sha, token)
        self.work = Path(tempfile.mkdtemp(prefix=f"{self.stack}-"))
        for sub in ("backend", "engine", "cli"):
            (self.work / sub).mkdir()
        self.env = {
            **{k: v for k, v in os.environ.items() if k not in ("PULUMI_CONFIG_PASSPHRASE_FILE", "GIT_SHA")},
            "PULUMI_BACKEND_URL": (self.work / "backend").as_uri(),
            "PULUMI_CONFIG_PASSPHRASE": secrets.token_urlsafe(24),
            "PULUMI_SKIP_UPDATE_CHECK": "true",
            "TMPDIR": str(self.work / "engine"),  # where the engine writes its -v log files
        }
        taken = [
            c["Subnet"]
            for n in self.client.api.networks()
            for c in ((n.get("IPAM") or {}).get("Config") or [])
            if c.get("Subnet")
        ]
        config = stack_config(self.project_dir, http_port=free_loopback_port(), subnet=frontend_subnet(token, taken))
        self.stack_file = self.project_dir / f"Pulumi.{self.stack}.yaml"
        self.stack_file.write_text(
            f"# Written by tools/e2e.py for a throwaway stack; removed when it ends.\n"
            f"{yaml.safe_dump(config, sort_keys=False)}"
        )
        ns = {k.split(":", 1)[1]: v for k, v in config["config"].items()}
        self.say(
            f"e2e: stack {self.stack} (dev's config; nginx on 127.0.0.1:{ns['httpPort']}, frontend "
            f"{ns['frontendSubnet']}), commit {self.sha[:12]}, then {self.next_sha[:12]}"
        )

    def up(self, sha: str, what: str) -> None:
        self.step(
            what,
            "up",
            "--stack",
            self.stack,
            "--yes",
            "--skip-preview",
            *ENGINE_VERBOSITY,
            timeout=TIMEOUTS["up"],
            git_sha=sha,
        )

    def plan_for(self, sha: str) -> Plan:
        """The program for the throwaway stack under the SDK's mocks (in-process, as the rehearsal
        plans): the logical names, labels and nginx's port the smoke checks read."""
        try:
            with commit(sha):
                plan = plan_stack(self.stack, root=self.project_dir)
        except PlanError as error:
            raise E2EError(f"planning {self.stack} under mocks: {error}") from None
        self.front = front_door(plan)[:2]
        return plan

    def export(self) -> State:
        text = self.step("stack export", "stack", "export", "--stack", self.stack, capture=True)
        try:
            return state_from_export(json.loads(text))
        except (ValueError, KeyError, IndexError) as error:
            raise E2EError(f"pulumi stack export: unreadable ({type(error).__name__}: {error})") from None

    def smoke(self, plan: Plan, what: str) -> None:
        state = self.export()
        missing = missing_from_state(plan, state)
        if missing:
            raise E2EError(f"{what}: the program plans {missing}, which the deployed stack does not have")
        self.say(f"e2e: {what} through nginx at {self.front[0]} (Host: {self.front[1]})")
        checks = self.smoke_checks(plan, state)
        failed = [c.name for c in checks if not c.ok]
        if failed:
            raise E2EError(f"{what}: {len(failed)} of {len(checks)} checks failed: {', '.join(failed)}")
        self.say(
            f"e2e: {what}: {len(checks)} checks passed (not run against a real stack: "
            f"{', '.join(m.removeprefix('check_') for m in REHEARSAL_ONLY)}; see tools/e2e.py)"
        )

    def smoke_checks(self, plan: Plan, state: State) -> list[Check]:
        app_image = self.client.api.inspect_image(built_image(state))["Id"]
        smoke = Smoke(self.client, plan, state, app_image=app_image, run_labels={PROBE_LABEL: self.stack}, say=self.say)
        return run_smoke(smoke, self.say)

    def release(self) -> None:
        """The second `pulumi up`, a new commit, while requests flow through nginx."""
        base, host = self.front
        load = Load(
            base, host=host, path="/health/", rate=LOAD_RATE, workers=LOAD_WORKERS, max_seconds=LOAD_MAX_SECONDS
        )
        load.start()
        try:
            time.sleep(SETTLE_SECONDS)
            self.up(self.next_sha, "up (new commit)")
            time.sleep(SETTLE_SECONDS)
        finally:
            report = load.stop()
            self.say(report.line(self.stack, NEW_COMMIT.name))
            self.say(report.details())
        problems = []
        if report.failed_seconds > NEW_COMMIT.max_failed_seconds:
            problems.append(
                f"{report.failed} requests failed through nginx during the release "
                f"(the {NEW_COMMIT.name} scenario allows failures in {NEW_COMMIT.max_failed_seconds} seconds)"
            )
        try:
            serving = self.serving_sha()
        except (E2EError, OSError, ValueError) as error:  # requests' errors are OSErrors
            problems.append(f"after the release: {error}")
        else:
            if serving != self.next_sha:
                problems.append(f"/health/ reports {serving!r}, not the new commit {self.next_sha}")
        if problems:
            raise E2EError("release: " + "; ".join(problems))
        self.smoke(self.plan_for(self.next_sha), "smoke after the release")

    def serving_sha(self) -> str:
        base, host = self.front
        with http_session(base, host) as session:
            response = session.get(base + "/health/", timeout=10, allow_redirects=False)
        if response.status_code != 200:
            raise E2EError(f"GET /health/ -> {response.status_code}")
        return str(response.json().get("git_sha") or "")

    # ------------------------------------------------------------------ teardown and logs

    def teardown(self) -> bool:
        """Destroy and remove the stack, its file and the temp dir; sweep what is left. True if clean."""
        clean = True
        if self.created:
            for what, args, timeout in (
                (
                    "destroy",
                    ("destroy", "--stack", self.stack, "--yes", "--skip-preview", *ENGINE_VERBOSITY),
                    TIMEOUTS["destroy"],
                ),
                ("stack rm", ("stack", "rm", self.stack, "--yes", "--force"), TIMEOUTS["short"]),
            ):
                try:
                    self.step(what, *args, timeout=timeout)
                except E2EError as error:
                    self.say(f"e2e: teardown: {error}")
                    clean = False
        if self.stack and self.client is not None:
            try:
                left = self.sweep()
            except Exception as error:
                self.say(f"e2e: teardown: cannot list what is left on the engine: {type(error).__name__}: {error}")
                left, clean = [], False
            if left:
                self.say(f"e2e: teardown: removed by label what `pulumi destroy` left: {', '.join(left)}")
                clean = False
        if self.stack_file is not None:
            self.stack_file.unlink(missing_ok=True)
        if self.work is not None:
            shutil.rmtree(self.work, ignore_errors=True)
        if self.stack:
            self.say(f"e2e: teardown of {self.stack} {'complete' if clean else 'INCOMPLETE (see above)'}")
        return clean

    def sweep(self) -> list[str]:
        """Remove whatever still carries this throwaway stack's labels (its name is unique)."""
        api, removed = self.client.api, []
        for label in (f"{PROBE_LABEL}={self.stack}", f"{STACK_LABEL}={self.stack}"):
            for c in api.containers(all=True, filters={"label": [label]}):
                api.remove_container(c["Id"], force=True, v=True)
                removed.append(c["Names"][0].lstrip("/"))
        for n in api.networks(filters={"label": [f"{STACK_LABEL}={self.stack}"]}):
            api.remove_network(n["Id"])
            removed.append(f"network {n['Name']}")
        for v in api.volumes(filters={"label": f"{STACK_LABEL}={self.stack}"}).get("Volumes") or []:
            api.remove_volume(v["Name"], force=True)
            removed.append(f"volume {v['Name']}")
        return removed

    def keep_logs(self) -> None:
        target = self.options.keep_logs
        if target is None:
            self.say("e2e: (--keep-logs DIR keeps the CLI's and the containers' logs of a failed run)")
            return
        target.mkdir(parents=True, exist_ok=True)
        if self.work is not None:
            shutil.copytree(self.work / "cli", target / "cli", dirs_exist_ok=True)
            (target / "engine").mkdir(exist_ok=True)
            for path in (
                self.work / "engine"
            ).iterdir():  # glog's files: <program>.<host>.<user>.log.<LEVEL>.<time>.<pid>
                if path.is_file() and not path.is_symlink() and ".log." in path.name:
                    shutil.copy2(path, target / "engine" / path.name)
        kept = 0
        if self.stack and self.client is not None:
            try:
                api = self.client.api
                for c in api.containers(all=True, filters={"label": [f"{STACK_LABEL}={self.stack}"]}):
                    name = c["Names"][0].lstrip("/")
                    (target / f"{name}.log").write_bytes(api.logs(c["Id"], tail=LOG_TAIL, timestamps=True))
                    (target / f"{name}.inspect.json").write_text(json.dumps(api.inspect_container(c["Id"]), indent=2))
                    kept += 1
            except Exception as error:
                self.say(f"e2e: keeping the containers' logs: {type(error).__name__}: {error}")
        self.say(f"e2e: logs kept in {target} (CLI output, engine logs, {kept} containers' logs and inspect)")

    # ------------------------------------------------------------------ the CLI

    def step(
        self,
        what: str,
        *args: str,
        timeout: int = TIMEOUTS["short"],
        git_sha: Optional[str] = None,
        capture: bool = False,
    ) -> str:
        """One `pulumi` command in the project directory, its output shown (or captured) and kept."""
        self.commands += 1
        log = (
            self.work / "cli" / f"{self.commands:02d}-{what.replace(' ', '-').replace('(', '').replace(')', '')}.log"
            if self.work
            else None
        )
        env = dict(self.env, **({"GIT_SHA": git_sha} if git_sha else {}))
        argv = ["pulumi", *args, "--non-interactive"]
        self.say(f"$ {' '.join(argv)}" + (f"   (GIT_SHA={git_sha[:12]})" if git_sha else ""))
        process = subprocess.Popen(
            argv,
            cwd=self.project_dir,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT if not capture else subprocess.PIPE,
            text=True,
            start_new_session=True,
        )  # a Ctrl-C reaches it once, from here
        captured: list[str] = []
        errors: list[str] = []
        readers = [
            threading.Thread(target=self._copy, args=(process.stdout, log, captured if capture else None), daemon=True)
        ]
        if capture:
            readers.append(threading.Thread(target=self._copy, args=(process.stderr, log, errors), daemon=True))
        for reader in readers:
            reader.start()
        try:
            code = process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self._cancel(process)
            raise E2EError(f"`pulumi {what}` did not finish within {timeout}s; cancelled") from None
        except BaseException:
            self._cancel(process)
            raise
        finally:
            for reader in readers:
                reader.join(10)
        if code != 0:
            detail = (errors or captured or [""])[-1].strip() if capture else "its output is above"
            raise E2EError(f"`pulumi {what}` exited {code}" + (f": {detail}" if detail else ""))
        return "".join(captured)

    def _copy(self, stream, log: Optional[Path], keep: Optional[list[str]]) -> None:
        with open(log, "a") if log else open(os.devnull, "w") as out:
            for line in stream:
                out.write(line)
                out.flush()
                if keep is None:
                    self.say(line.rstrip("\n"))
                else:
                    keep.append(line)

    def _cancel(self, process: subprocess.Popen) -> None:
        """SIGINT, as Ctrl-C: the engine finishes in-flight steps and unlocks the stack."""
        if process.poll() is not None:
            return
        self.say(f"e2e: cancelling `pulumi` (pid {process.pid})")
        process.send_signal(signal.SIGINT)
        try:
            process.wait(CANCEL_GRACE)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.e2e", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--require-cli", action="store_true", help="fail (exit 1) instead of skipping without a Pulumi CLI"
    )
    parser.add_argument(
        "--keep-logs", type=Path, metavar="DIR", help="after a failure, put the CLI's and containers' logs here"
    )
    parser.add_argument("--project-dir", type=Path, default=PROJECT_ROOT, help=argparse.SUPPRESS)  # tests
    args = parser.parse_args(argv)
    return Run(Options(require_cli=args.require_cli, keep_logs=args.keep_logs, project_dir=args.project_dir)).main()


if __name__ == "__main__":
    sys.exit(main())
