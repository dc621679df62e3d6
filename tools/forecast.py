"""`make forecast STACK=<name>`: what the next `pulumi up` will do to the running site, before it
runs, in a few lines.

    python -m tools.forecast STACK [--preview FILE] [--markdown FILE] [--no-gate]

The steps are the real engine's: `pulumi preview` against the stack's state (the Pulumi CLI on
PATH; `make forecast` puts the pinned one there), its events (`--event-log`; a saved file with
`--preview FILE`) read into the update model's words by planning/events.py (the reader the
calibration uses for `pulumi up`'s events) and told by planning/forecast.py (the function the
release rehearsal holds against what each release then did): which containers are replaced and
how (create-before-delete or delete first), which release jobs run, whether nginx reloads or a
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

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Optional

import docker.errors
import requests

from ops.forecast import gate_lines
from ops.stack import OpsError, StackOnHost
from planning.events import EventLogError, read_events
from planning.forecast import Forecast, PreviewError, read_preview, tell
from planning.harness import SERVICE as SWARM_SERVICE

PROJECT_ROOT = Path(__file__).resolve().parent.parent
PREVIEW_TIMEOUT = 900


def run_preview(stack: str, work: Path, cli: Optional[str] = None) -> list[dict]:
    """The events of `pulumi preview` on the stack, run from the project's directory."""
    cli = cli or shutil.which("pulumi")
    if cli is None:
        raise PreviewError("no pulumi on PATH (make forecast fetches the pinned CLI; or pass --preview FILE)")
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
        raise PreviewError(f"pulumi preview of {stack} did not end within {PREVIEW_TIMEOUT}s") from None
    if not log.exists():
        last = (done.stderr.strip().splitlines() or done.stdout.strip().splitlines() or ["no output"])[-1]
        raise PreviewError(f"pulumi preview of {stack} failed (exit {done.returncode}): {last[:300]}")
    return load_events(log)


def load_events(path: Path) -> list[dict]:
    try:
        events = read_events(path.read_text().splitlines())
        if not any(k in e for e in events for k in ("preludeEvent", "resourcePreEvent", "summaryEvent")):
            raise EventLogError("no engine event in it")
        return events
    except OSError as error:
        raise PreviewError(f"{path}: cannot be read ({error.strerror})") from None
    except EventLogError as error:
        raise PreviewError(f"{path}: not a `pulumi preview --event-log` file: {error}") from None


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
    if any(step.type == SWARM_SERVICE for step in preview.steps):
        raise PreviewError(
            "target swarm: its services roll in place (docs/swarm.md); the forecast covers the containers target"
        )
    told = tell(preview)
    extra: list[str] = []
    if gate and preview.gate_command and "migration-gate" in told.jobs:
        try:
            extra = gate_lines(stack_factory(stack_name), preview.gate_image, list(preview.gate_command))
        # A host that stops answering after the client was made says so with requests'
        # exceptions, not docker's (docker/api/client.py: only the version probe wraps them).
        except (OpsError, docker.errors.DockerException, requests.exceptions.RequestException) as error:
            extra = [f"gate: not run: {' '.join(str(error).split())[:240]}"]
    elif gate:
        extra = ["gate: no release job runs (nothing to migrate)"]
    lines = render(stack_name, told, extra)
    for line in lines:
        say(line)
    if markdown_file is not None:
        markdown_file.write_text(markdown(stack_name, lines))
    return 1 if any(line.startswith("gate: refuses") for line in lines) else 0


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.forecast", description=__doc__.split("\n\n")[0])
    parser.add_argument("stack")
    parser.add_argument("--preview", type=Path, help="a saved `pulumi preview --event-log` file (default: run one)")
    parser.add_argument(
        "--markdown", type=Path, help="also write the forecast here as Markdown (a pull-request comment)"
    )
    parser.add_argument(
        "--no-gate", action="store_true", help="leave out the migration gate's run on the stack's engine"
    )
    args = parser.parse_args(argv)
    try:
        return forecast_command(
            args.stack, preview_file=args.preview, markdown_file=args.markdown, gate=not args.no_gate
        )
    except (PreviewError, OpsError) as error:
        print(f"forecast {args.stack}: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
