"""python -m rehearsal up STACK [--keep] | down STACK

Boot what `pulumi up` would create for STACK on the local Docker engine, smoke-test
it through nginx, and tear it down (unless --keep). One line per phase with its
duration; a final `rehearsal STACK: N checks passed, M failed`; exit 1 on any failure.
"""

from __future__ import annotations

import argparse
import os
import secrets
import signal
import sys
import time
from contextlib import contextmanager

import docker
import docker.errors

from rehearsal.apply import RUN_LABEL, STACK_LABEL, Applier, build_app_image, planned_id, teardown, translate_plan
from rehearsal.apply import pulumi_like_name
from rehearsal.errors import RehearsalError
from rehearsal.plan import CONTAINER, PROJECT_ROOT, REMOTE_IMAGE
from rehearsal.smoke import Smoke, front_door
from rehearsal.standins import dockerfile_base_images, ensure_images
from rehearsal.stacks import plan_for_rehearsal
from rehearsal.translate import substitute

START_HINT = (
    "start one with `sudo scripts/start-docker.sh` (installs Debian's docker.io if needed and starts dockerd), "
    "or point DOCKER_HOST at a running engine"
)


def say(line: str = "") -> None:
    print(line, flush=True)


class PhaseFailed(Exception):
    def __init__(self, phase: str, error: BaseException):
        super().__init__(f"{phase}: {error}")
        self.phase, self.error = phase, error


@contextmanager
def phase(name: str, summary: dict):
    """Times a phase; its one line is printed when it ends (summary['text'] set by the body)."""
    summary.clear()
    started = time.monotonic()
    try:
        yield summary
    except (RehearsalError, docker.errors.DockerException) as error:
        say(f"[{name}] FAILED after {time.monotonic() - started:.1f}s: {error}")
        raise PhaseFailed(name, error) from None
    say(f"[{name}] {summary.get('text', 'done')} ({time.monotonic() - started:.1f}s)")


def connect() -> docker.DockerClient:
    where = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    try:
        client = docker.from_env(timeout=300)
        client.ping()
        return client
    except docker.errors.DockerException as error:
        text = str(error)
        reasons = {"No such file": "no socket there", "Connection refused": "connection refused",
                   "Permission denied": "permission denied on the socket; run as root or join the docker group",
                   "timed out": "timed out"}
        reason = next((r for k, r in reasons.items() if k in text), text[:120])
        raise RehearsalError(f"no Docker engine answers at {where} ({reason}); {START_HINT}") from None


def _terminate(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def up(stack: str, keep: bool) -> int:
    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGINT, _terminate)  # also when started in the background with SIGINT ignored
    run = secrets.token_hex(4)
    labels = {STACK_LABEL: stack, RUN_LABEL: run}
    checks, failed_phase, applier, client = [], None, None, None
    info: dict = {}
    try:
        with phase("engine", info):
            client = connect()
            version = client.version()
            info["text"] = f"Docker {version.get('Version')} (API {version.get('ApiVersion')}), run {run}"
            leftovers = teardown(client, stack)
            if any(leftovers):
                say("  removed an earlier rehearsal of %s: %d containers, %d networks, %d volumes" % (stack, *leftovers))

        with phase("plan", info):
            rp = plan_for_rehearsal(stack)
            plan = rp.plan
            steps = translate_plan(plan, run_labels=labels, names=pulumi_like_name, project_root=PROJECT_ROOT)
            kinds: dict[str, int] = {}
            for step in steps:
                kind = "planned value" if step.kind == "value" else step.kind
                kinds[kind] = kinds.get(kind, 0) + 1
            info["text"] = f"{stack}: {len(plan.resources)} resources, " + ", ".join(
                f"{n} {k}{'s' if n > 1 else ''}" for k, n in sorted(kinds.items(), key=lambda kv: -kv[1]))
            if rp.build_stack != stack:
                info["text"] += (f"; promotes {rp.build_stack}'s image: rehearsed with the image {rp.build_stack}'s "
                                 "plan builds (pushing skipped)")

        with phase("images", info):
            app_planned = {rp.build.outputs.get("repoDigest"), planned_id(rp.build), *rp.promoted_refs}
            refs = []
            dockerfile = rp.build.inputs["build"].get("dockerfile") or os.path.join(rp.build.inputs["build"]["context"], "Dockerfile")
            with open(dockerfile) as handle:
                refs += dockerfile_base_images(handle.read(), rp.build.inputs["build"].get("args"))
            remote_outputs = set()
            for r in plan.of_type(REMOTE_IMAGE):
                remote_outputs |= {r.outputs.get("repoDigest"), r.outputs.get("imageId"), planned_id(r)}
                if r.inputs["name"] not in app_planned:
                    refs.append(r.inputs["name"])
            for r in plan.of_type(CONTAINER):
                image = r.inputs["image"]
                if image not in app_planned and image not in remote_outputs:
                    refs.append(image)
            refs = list(dict.fromkeys(refs))
            outcomes = ensure_images(client, refs, say)
            standins = [o.ref for o in outcomes if o.source.startswith("stand-in")]
            info["text"] = "; ".join(f"{o.ref} {o.source}" for o in outcomes)
            if standins:
                say("  NOTE: STAND-INS IN USE for " + ", ".join(standins) + ": no registry answered, so these are "
                    "Debian bookworm builds that honour the official images' contracts, not the official images")

        with phase("build", info):
            image_id = build_app_image(client, rp.build, PROJECT_ROOT, say)
            mapping = {ref: image_id for ref in app_planned if ref}
            info["text"] = f"{rp.build.inputs['imageName']} = {image_id[:19]} (from {rp.build_stack}'s plan)"

        with phase("apply", info):
            # Everything the plan names by a mock value that is really this image.
            planned_images = {r.inputs["image"] for r in plan.of_type(CONTAINER)}
            applier = Applier(client, plan, run_labels=labels, mapping=mapping, say=say)
            created = applier.apply(steps)
            info["text"] = (f"{len(created.networks)} networks, {len(created.volumes)} volumes, "
                            f"{len(created.containers)} containers; " +
                            ", ".join(f"{n} exited {c}" for n, c in created.exit_codes.items()))
            unresolved = {substitute(i, applier.mapping) for i in planned_images} - {image_id} - set(refs)
            if unresolved:
                raise RehearsalError(f"containers run images the rehearsal did not provide: {sorted(unresolved)}")

        with phase("smoke", info):
            smoke = Smoke(client, plan, created, app_image=image_id, run_labels=labels, say=say)
            checks = smoke.run()
            passed = sum(c.ok for c in checks)
            info["text"] = f"{passed} of {len(checks)} checks passed through {smoke.base} (Host: {smoke.host})"
            if keep:
                base, host, _ = front_door(plan)
                say(f"  kept running: {plan.outputs.get('url')} (try: curl -H 'Host: {host}' {base}/health/); "
                    f"tear down with `python -m rehearsal down {stack}` (make rehearse-down STACK={stack})")
    except PhaseFailed as failure:
        failed_phase = failure
    except KeyboardInterrupt:
        say("interrupted: tearing down")
        keep = False
        failed_phase = PhaseFailed("interrupted", RehearsalError("interrupted"))
    finally:
        # A second Ctrl-C must not leave half a teardown behind.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if applier is not None:
            applier.cancel()
        if client is not None and not keep:
            with phase("teardown", info):
                removed = teardown(client, stack, run)
                if applier is not None:
                    applier.join()
                    late = teardown(client, stack, run)  # whatever a cancelled worker created meanwhile
                    removed = tuple(a + b for a, b in zip(removed, late))
                info["text"] = "removed %d containers, %d networks, %d volumes" % removed
        elif keep and failed_phase is not None and client is not None:
            say(f"  --keep: left the failed rehearsal running; `python -m rehearsal down {stack}` removes it")

    passed = sum(c.ok for c in checks)
    failed = sum(not c.ok for c in checks) + (1 if failed_phase else 0)
    note = ""
    if failed_phase:
        note = " (interrupted)" if failed_phase.phase == "interrupted" else f" ({failed_phase.phase} failed)"
    say(f"rehearsal {stack}: {passed} checks passed, {failed} failed{note}")
    return 1 if failed else 0


def down(stack: str) -> int:
    info: dict = {}
    try:
        with phase("teardown", info):
            client = connect()
            info["text"] = "removed %d containers, %d networks, %d volumes" % teardown(client, stack)
    except PhaseFailed:
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rehearsal", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p_up = sub.add_parser("up", help="plan, boot, smoke-test and tear down a stack")
    p_up.add_argument("stack")
    p_up.add_argument("--keep", action="store_true", help="leave the stack running and print its URL")
    p_down = sub.add_parser("down", help="remove everything a rehearsal of STACK created")
    p_down.add_argument("stack")
    args = parser.parse_args(argv)
    try:
        if args.command == "up":
            return up(args.stack, args.keep)
        return down(args.stack)
    except RehearsalError as error:
        say(f"rehearsal: {error}")
        return 1


if __name__ == "__main__":
    sys.exit(main())
