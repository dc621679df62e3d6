"""`make forecast STACK=<name>`: what the next `pulumi up` will do to the running site, before it
runs, in a few lines.

    python -m ops forecast STACK [--preview FILE] [--markdown FILE] [--no-gate]

The steps are the real engine's: `pulumi preview` against the stack's state (the Pulumi CLI on
PATH; `make forecast` puts the pinned one there), its events read (`--event-log`; a saved one
with `--preview FILE`) into the update model's words by rehearsal/drivers/events.py, the reader
the calibration uses for `pulumi up`'s events, and told as the
rehearsal's forecast does (rehearsal/emulation/forecast.py, the same function the release
rehearsal checks against what each release then did): which containers are replaced and how
(create-before-delete or delete first), which release jobs run, whether nginx reloads or a
maintenance window opens, and the expected disruption.

Then the migrations and the gate's verdict, when the new image is on the stack's Docker engine:
the release's gate command (components/render.migration_gate_command) in a one-off container of
that image with the running release's environment, on the backend network (as `make manage`
runs one): the migrations the database has not applied and what the gate says of each. When
the image is not there yet (a stack that builds it in `pulumi up`), one line says so: `pulumi up`
runs the same gate first and refuses before anything else changes.

A preview reads; nothing is created, replaced or migrated by this command.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import docker.errors

from ops.stack import ONE_OFF, ROLE, SERVICE, STACK, OpsError, StackOnHost
from rehearsal.drivers.events import EventLogError, RealStep, read_events, steps_of
from rehearsal.emulation.forecast import Forecast, forecast_steps

PROJECT_ROOT = Path(__file__).resolve().parent.parent
PREVIEW_TIMEOUT = 900
GATE_TIMEOUT = 300
CONTAINER = "docker:index/container:Container"
IMAGE_TYPES = ("docker:index/image:Image", "docker:index/remoteImage:RemoteImage")


@dataclass(frozen=True)
class Preview:
    steps: list[RealStep]
    labels: dict[str, dict[str, str]]
    """Logical name -> the container's Docker labels (its new inputs, else its old)."""
    image: str
    """The app image the new release runs (the Image's imageName or the RemoteImage's name); '' unknown."""


def _labels(inputs: dict) -> dict[str, str]:
    raw = inputs.get("labels") or []
    if isinstance(raw, dict):
        return {str(k): str(v) for k, v in raw.items()}
    return {str(i.get("label")): str(i.get("value")) for i in raw if isinstance(i, dict)}


def read_preview(events: list[dict]) -> Preview:
    """A preview's engine events (`pulumi preview --event-log FILE`, one JSON EngineEvent a line)
    in the update model's words. `preview --json` will not do: its digest keeps one `replace`
    per resource and drops the create-replacement and delete-replaced steps whose order says
    whether the old container goes first (pulumi/pulumi pkg/backend/display/json.go)."""
    labels: dict[str, dict[str, str]] = {}
    image = ""
    errors = []
    for event in events:
        if "diagnosticEvent" in event and event["diagnosticEvent"].get("severity") == "error":
            errors.append(event["diagnosticEvent"].get("message") or "")
        pre = event.get("resourcePreEvent")
        if not pre:
            continue
        metadata = pre.get("metadata") or {}
        name = (metadata.get("urn") or "").split("::", 3)[-1]
        new = metadata.get("new") or {}
        for state in (new, metadata.get("old") or {}):
            found = _labels(state.get("inputs") or {})
            if metadata.get("type") == CONTAINER and found:
                labels.setdefault(name, found)
        if metadata.get("type") in IMAGE_TYPES and not name.endswith("-runtime") and new.get("inputs"):
            image = str(new["inputs"].get("imageName") or new["inputs"].get("name") or image)
    if errors:
        raise OpsError("the preview failed: " + " ".join(errors[0].split())[:300])
    return Preview(steps_of(events).steps, labels, image)


def tell(preview: Preview) -> Forecast:
    def service_of(step) -> str:
        return preview.labels.get(step.name, {}).get(SERVICE) or _job(step.name) or step.name

    return forecast_steps(preview.steps, service_of)


def _job(name: str) -> str:
    # The release jobs are named `<prefix>-release-<job>` (components/release.py).
    return name.split("-release-", 1)[1] if "-release-" in name else ""


def run_preview(stack: str, work: Path, cli: Optional[str] = None) -> list[dict]:
    """The events of `pulumi preview` on the stack, run from the project's directory."""
    cli = cli or shutil.which("pulumi")
    if cli is None:
        raise OpsError("no pulumi on PATH (make forecast fetches the pinned CLI; or pass --preview FILE)")
    log = work / "preview.events.jsonl"
    command = [cli, "preview", "--stack", stack, "--non-interactive", "--suppress-progress", "--event-log", str(log)]
    # --event-log is registered only with PULUMI_DEBUG_COMMANDS (pulumi/pulumi
    # pkg/cmd/pulumi/operations/preview.go); the release rehearsal's real-engine runs read it too.
    env = dict(os.environ, PULUMI_DEBUG_COMMANDS="true")
    try:
        done = subprocess.run(
            command, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=PREVIEW_TIMEOUT, env=env
        )
    except subprocess.TimeoutExpired:
        raise OpsError(f"pulumi preview of {stack} did not end within {PREVIEW_TIMEOUT}s") from None
    if not log.exists():
        last = (done.stderr.strip().splitlines() or done.stdout.strip().splitlines() or ["no output"])[-1]
        raise OpsError(f"pulumi preview of {stack} failed (exit {done.returncode}): {last[:300]}")
    return load_events(log)


def load_events(path: Path) -> list[dict]:
    try:
        return read_events(path.read_text().splitlines())
    except OSError as error:
        raise OpsError(f"{path}: cannot be read ({error.strerror})") from None
    except EventLogError as error:
        raise OpsError(f"{path}: not a `pulumi preview --event-log` file: {error}") from None


def gate_lines(stack: StackOnHost, image: str, command: list[str]) -> list[str]:
    """The gate's own lines from a one-off of the new image, or why it did not run."""
    from ops.run import one_off_config, release_template

    if not image:
        return ["gate: not run: the preview names no new app image"]
    api = stack.client.api
    try:
        api.inspect_image(image)
    except docker.errors.ImageNotFound:
        return [
            f"gate: not run: {image} is not on {stack.where} yet (built or pulled by `pulumi up`, "
            "which runs the gate first and refuses before anything else changes)"
        ]
    template = api.inspect_container(release_template(stack).id)
    kwargs = one_off_config(stack, template, command, tty=False, network=stack.network("backend"), stdin=False)
    kwargs["image"] = image
    kwargs["labels"] = {**kwargs["labels"], SERVICE: "forecast-gate", ROLE: ONE_OFF, STACK: stack.stack}
    container = api.create_container(**kwargs, name=f"{stack.stack}-forecast-gate-{os.urandom(3).hex()}")["Id"]
    try:
        api.start(container)
        code = int(api.wait(container, timeout=GATE_TIMEOUT)["StatusCode"])
        output = api.logs(container, stdout=True, stderr=True).decode(errors="replace")
    finally:
        try:
            api.remove_container(container, force=True)
        except docker.errors.NotFound:
            pass
    verdict = {0: "passes", 1: "refuses this release", 2: "could not check"}.get(code, f"exited {code}")
    lines = [line for line in output.splitlines() if line.strip()]
    return [*lines, f"gate: {verdict} (its exit {code}, run on {image})"]


def render(stack_name: str, told: Forecast, gate: Iterable[str]) -> list[str]:
    return [f"forecast {stack_name}: " + told.lines[0], *told.lines[1:], *gate]


def markdown(stack_name: str, lines: list[str]) -> str:
    body = "\n".join(f"- {line}" for line in lines)
    return f"### Release forecast: `{stack_name}`\n\n{body}\n"


def forecast_command(
    stack_name: str,
    *,
    preview_file: Optional[Path],
    markdown_file: Optional[Path],
    gate: bool,
    stack_factory: Callable[[str], StackOnHost] = StackOnHost,
    say: Callable[[str], None] = print,
) -> int:
    if preview_file is not None:
        events = load_events(preview_file)
    else:
        with tempfile.TemporaryDirectory(prefix="forecast-") as work:
            events = run_preview(stack_name, Path(work))
    preview = read_preview(events)
    told = tell(preview)
    extra: list[str] = []
    if gate and told.jobs and told.jobs[0] == "migration-gate":
        from components import render as program_render

        mode = "maintenance" if told.maintenance else "gate"
        try:
            extra = gate_lines(stack_factory(stack_name), preview.image, program_render.migration_gate_command(mode))
        except (OpsError, docker.errors.DockerException) as error:
            extra = [f"gate: not run: {' '.join(str(error).split())[:240]}"]
    elif gate:
        extra = ["gate: no release job runs (nothing to migrate)"]
    lines = render(stack_name, told, extra)
    for line in lines:
        say(line)
    if markdown_file is not None:
        markdown_file.write_text(markdown(stack_name, lines))
    return 1 if any(line.startswith("gate: refuses") for line in lines) else 0
