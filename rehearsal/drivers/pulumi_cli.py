"""The real Pulumi CLI, run for a rehearsal: a private backend, project copies, every command logged.

`PulumiCLI` runs `pulumi` commands the way a user does, in a copy of the project (one per app
variant: the program builds django_app/ from its own directory, so another commit of it is
another directory; `.venv` is the checkout's), against a file backend and a passphrase private
to the run (the user's own login is left alone), each with the engine's event log
(`--event-log`), read into steps by `planning.events`. `state_from_export` reads
`pulumi stack export` into the rehearsal's State. `rehearsal.runners.real_session` drives a
stack through its updates with it; `tools/e2e.py` reads the state with it.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Optional

import yaml

from planning.events import RealUpdate, read_events, steps_of
from planning.harness import CONTAINER, IMAGE, JOB, NETWORK, PROJECT_ROOT, VOLUME
from rehearsal.emulation.engine import brief
from rehearsal.emulation.model import Entry, State
from rehearsal.errors import RehearsalError

STACK_LABEL = "django-docker.stack"
# Pulumi's marker for a secret value in a state file (pulumi/pulumi sdk/go/common/resource/sig).
SECRET_SIG = "4dabf18193072939515e22adb298388d"
TIMEOUTS = {"up": 900, "preview": 300, "refresh": 300, "destroy": 600, "short": 120}
CANCEL_GRACE = 120
# Files of the checkout a project copy leaves out (state, virtualenvs, caches).
COPY_IGNORE = shutil.ignore_patterns(
    ".git",
    ".venv",
    "venv",
    ".pulumi-state",
    ".tools",
    "__pycache__",
    "*.pyc",
    ".mypy_cache",
    ".ruff_cache",
    ".pytest_cache",
)
# --event-log is a debug flag of the CLI (pulumi/pulumi pkg/cmd/pulumi/operations/up.go: registered
# only when PULUMI_DEBUG_COMMANDS is set).
EVENT_LOG_ENV = {"PULUMI_DEBUG_COMMANDS": "true"}


class CLIError(RehearsalError):
    """A `pulumi` command failed for a reason the scenario does not expect; one line."""


def cli_version() -> Optional[str]:
    """`pulumi version`, or None when no Pulumi CLI is on PATH."""
    path = shutil.which("pulumi")
    if path is None:
        return None
    result = subprocess.run([path, "version"], capture_output=True, text=True, timeout=TIMEOUTS["short"])
    if result.returncode != 0:
        raise CLIError(f"`pulumi version` failed: {(result.stderr or result.stdout).strip()[:200]}")
    return result.stdout.strip()


def checkout_sha() -> str:
    """The app checkout's commit (what `pulumi up` would tag without GIT_SHA), less `-dirty`: a
    project copy is no git checkout, so each command gets it as GIT_SHA."""
    from components.settings import SettingsError, resolve_git_sha

    try:
        return resolve_git_sha().removesuffix("-dirty")
    except SettingsError as error:
        raise RehearsalError(str(error)) from None


# --------------------------------------------------------------------------- the state


def _plain(value: Any) -> Any:
    """A state value, or None when the state holds it as a secret (ciphertext)."""
    return None if isinstance(value, dict) and SECRET_SIG in value else value


def logical_name(urn: str) -> str:
    return urn.split("::", 3)[3]


def state_from_export(export: Mapping[str, Any]) -> State:
    """`pulumi stack export` (a v3 deployment) -> the rehearsal's State.

    One Entry per resource that exists on the Docker host (custom, not a provider), named by its
    logical name, with its inputs and outputs as the state holds them (secrets stay ciphertext)
    and `real` as the emulation's engine would have recorded it: a container's or network's id
    and name, a volume's name, a release job's run id. A resource left for deletion by a failed
    update (`delete: true`) is kept but marked, so `live()` skips it; so is one with an
    initialization error (`init_error`) or one deleted for a delete-before-replace whose
    create has not succeeded (`pending_replacement`).
    """
    if export.get("version") != 3:
        raise RehearsalError(f"pulumi stack export: deployment version {export.get('version')!r}, expected 3")
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
                    # A read (a StackReference) is `external` in the state: not the stack's to delete.
                    **({"read": True} if resource.get("external") else {}),
                },
                real=real,
                init_error="; ".join(resource.get("initErrors") or []),
                delete=bool(resource.get("delete")),
                pending_replacement=bool(resource.get("pendingReplacement")),
            )
        )
    return State(entries)


def state_summary(state: State) -> list[dict]:
    """What the calibration keeps of a state: each resource, and how the engine holds it."""
    return [
        {
            "name": e.name,
            "type": e.type,
            **({"delete": True} if e.delete else {}),
            **({"pending_replacement": True} if e.pending_replacement else {}),
            **({"init_error": True} if e.init_error else {}),
        }
        for e in state.entries
        if not e.options.get("read")
    ]


# --------------------------------------------------------------------------- the CLI


@dataclass
class Command:
    what: str
    code: int
    seconds: float
    update: RealUpdate
    output: str
    events: list = field(default_factory=list)
    """The engine's events as read (with --event-log): what `make forecast` reads of a preview."""


class PulumiCLI:
    """`pulumi` in a private backend, one project copy per app variant, every command logged."""

    def __init__(self, work: Path, say: Callable[[str], None], project_root: Path = PROJECT_ROOT):
        self.work = work
        self.say = say
        self.project_root = project_root
        self.backend = work / "backend"
        self.logs = work / "logs"
        for d in (self.backend, self.logs, work / "projects", work / "tmp"):
            d.mkdir(parents=True, exist_ok=True)
        self.env = {
            **{k: v for k, v in os.environ.items() if k not in ("PULUMI_CONFIG_PASSPHRASE_FILE", "GIT_SHA")},
            **EVENT_LOG_ENV,
            "PULUMI_BACKEND_URL": self.backend.as_uri(),
            "PULUMI_CONFIG_PASSPHRASE": secrets.token_urlsafe(24),
            "PULUMI_SKIP_UPDATE_CHECK": "true",
            "TMPDIR": str(work / "tmp"),
        }
        self.commands = 0
        self.stacks: dict[str, Path] = {}
        """Stack -> the project directory its config was last written in."""
        self.salts: dict[str, str] = {}
        """Stack -> the passphrase's salt `stack init` wrote into its config file."""

    def project(self, variant: str, files: tuple[tuple[str, str], ...] = ()) -> Path:
        """The project copy for one app variant (files: paths under django_app/ with content)."""
        target = self.work / "projects" / variant
        if not target.exists():
            shutil.copytree(self.project_root, target, ignore=COPY_IGNORE, symlinks=True)
            for path, content in files:
                (target / "django_app" / path).write_text(content)
            venv = self.project_root / ".venv"
            if venv.exists():
                (target / ".venv").symlink_to(venv)
        return target

    def write_config(self, project: Path, stack: str, config: Mapping[str, Any], secret: Mapping[str, str]) -> None:
        """Pulumi.<stack>.yaml in `project`: `config` as plain values (the CLI stores strings), and
        each `secret` set with `pulumi config set --secret` (encrypted with the run's passphrase)."""
        path = project / f"Pulumi.{stack}.yaml"
        plain = {k: (v if isinstance(v, (list, dict)) else _config_string(v)) for k, v in config.items()}
        document: dict[str, Any] = {"config": plain}
        if stack in self.salts:  # the stack's key, made by `stack init` (in whichever project copy)
            document["encryptionsalt"] = self.salts[stack]
        path.write_text(yaml.safe_dump(document, sort_keys=False))
        for key, value in secret.items():
            self.run(
                project,
                stack,
                "config set",
                "config",
                "set",
                "--secret",
                "--path",
                key,
                timeout=TIMEOUTS["short"],
                stdin=value,
                event_log=False,
            )

    def ensure_stack(self, project: Path, stack: str) -> None:
        if stack in self.stacks:
            self.stacks[stack] = project
            return
        self.run(
            project,
            stack,
            "stack init",
            "stack",
            "init",
            stack,
            timeout=TIMEOUTS["short"],
            event_log=False,
            with_stack=False,
        )
        self.stacks[stack] = project
        written = yaml.safe_load((project / f"Pulumi.{stack}.yaml").read_text()) or {}
        if written.get("encryptionsalt"):
            self.salts[stack] = written["encryptionsalt"]

    def run(
        self,
        project: Path,
        stack: str,
        what: str,
        *args: str,
        timeout: int,
        git_sha: Optional[str] = None,
        event_log: bool = True,
        stdin: Optional[str] = None,
        with_stack: bool = True,
        check: bool = True,
    ) -> Command:
        """One `pulumi` command in `project`, its output kept in the run's logs; with the event log
        read into steps. check: a non-zero exit raises CLIError."""
        self.commands += 1
        slug = f"{self.commands:03d}-{stack}-{what.replace(' ', '-')}"
        events_path = self.logs / f"{slug}.events.jsonl"
        argv = ["pulumi", *args]
        if with_stack:
            argv += ["--stack", stack]
        argv.append("--non-interactive")
        if event_log:
            argv += ["--event-log", str(events_path)]
        env = dict(self.env, **({"GIT_SHA": git_sha} if git_sha else {}))
        started = time.monotonic()
        process = subprocess.Popen(
            argv,
            cwd=project,
            env=env,
            stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,  # a Ctrl-C reaches it once, from here
        )
        captured: list[str] = []
        reader = threading.Thread(target=lambda: captured.extend(process.stdout or []), daemon=True)
        reader.start()
        if stdin is not None and process.stdin is not None:
            process.stdin.write(stdin)
            process.stdin.close()
        try:
            code = process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.cancel(process)
            raise CLIError(f"`pulumi {what}` on {stack} did not finish within {timeout}s; cancelled") from None
        except BaseException:
            self.cancel(process)
            raise
        finally:
            reader.join(10)
        output = "".join(captured)
        (self.logs / f"{slug}.log").write_text(f"$ {' '.join(argv)}\n{output}")
        update, events = RealUpdate(), []
        if event_log and events_path.exists():
            events = read_events(events_path.read_text().splitlines())
            update = steps_of(events)
        if check and code != 0:
            raise CLIError(
                f"`pulumi {what}` on {stack} exited {code}: {last_error(output)} (log: {self.logs / slug}.log)"
            )
        return Command(what, code, time.monotonic() - started, update, output, events)

    def cancel(self, process: subprocess.Popen) -> None:
        """SIGINT, as Ctrl-C: the engine finishes in-flight steps and unlocks the stack."""
        if process.poll() is not None:
            return
        import signal

        process.send_signal(signal.SIGINT)
        try:
            process.wait(CANCEL_GRACE)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def export(self, project: Path, stack: str) -> dict:
        command = self.run(
            project, stack, "stack export", "stack", "export", timeout=TIMEOUTS["short"], event_log=False
        )
        try:
            return json.loads(command.output)
        except ValueError as error:
            raise CLIError(f"pulumi stack export on {stack}: unreadable ({error})") from None

    def outputs(self, project: Path, stack: str) -> dict:
        command = self.run(
            project, stack, "stack output", "stack", "output", "--json", timeout=TIMEOUTS["short"], event_log=False
        )
        return json.loads(command.output or "{}")


def _config_string(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def last_error(output: str) -> str:
    lines = [line.strip() for line in output.splitlines() if "error:" in line]
    return brief(lines[-1] if lines else (output.strip().splitlines() or [""])[-1], 240)
