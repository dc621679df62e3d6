"""The migration gate of a release that has not run yet, on the running stack: the release's own
gate command (components/render.migration_gate_command) in a one-off container of the new image,
with the running release's environment, on the backend network (as `make manage` runs one).
What `make forecast` (tools/forecast.py) says of the migrations; the release rehearsal's
migration scenarios hold its verdict against the gate job's."""

from __future__ import annotations

import secrets

import docker.errors

from ops.run import TIMED_OUT, one_off_config, release_template, run_to_end
from ops.stack import ONE_OFF, ROLE, SERVICE, STACK, StackOnHost

GATE_TIMEOUT = 300
# How the gate starts each of its lines (django_docker_runtime.migration_gate PREFIX).
GATE_PREFIX = "migration-gate:"


def gate_lines(stack: StackOnHost, image: str, command: list[str]) -> list[str]:
    """The gate's own lines from a one-off of the new image, or why it did not run."""
    if not image:
        return ["gate: not run: the new image is built by `pulumi up` (not known before it), which runs the gate first"]
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
    container = api.create_container(**kwargs, name=f"{stack.stack}-forecast-gate-{secrets.token_hex(3)}")["Id"]
    try:
        code, output = run_to_end(api, container, GATE_TIMEOUT)
    finally:
        try:
            api.remove_container(container, force=True)
        except docker.errors.NotFound:
            pass
    lines = [line for line in output.splitlines() if line.strip()]
    exit_code = "" if code == TIMED_OUT else f"its exit {code}, "
    return [*lines, f"gate: {verdict(code, lines)} ({exit_code}run on {image})"]


def verdict(code: int, lines: list[str]) -> str:
    """The gate's exit codes (django_docker_runtime.migration_gate: 0 passes, 1 refused, 2 could
    not check), believed only with its own words: Python exits 1 too, for an image without the
    gate ("No module named ..."). TIMED_OUT: it was stopped, unfinished, after GATE_TIMEOUT."""
    if code == TIMED_OUT:
        return f"could not check: it had not ended after {GATE_TIMEOUT}s (stopped)"
    said = [line for line in lines if line.startswith(GATE_PREFIX)]
    if code == 0 and said:
        return "passes"
    if code == 1 and any(line.startswith(f"{GATE_PREFIX} refused") for line in said):
        return "refuses this release"
    last = lines[-1] if lines else "no output"
    return f"could not check: {last[:200]}"
