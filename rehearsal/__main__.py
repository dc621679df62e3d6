"""python -m rehearsal up STACK [--keep] | release STACK [--keep] [--scenario NAME ...] [--faults]
  | faults STACK [--keep] [--fault NAME ...] | tls STACK | acme STACK | swarm STACK | remote STACK | down STACK

up:      boot what `pulumi up` would create for STACK on the local Docker engine, check that a
         second `pulumi up` would change nothing, smoke-test it through nginx, tear it down.
release: the same boot, then every release scenario (rehearsal/scenarios/) on the running
         stack under steady load through nginx, one line per scenario:
         `release <stack> <scenario>: <N> requests, <F> failed, longest gap <S>s`.
tls:     the same boot with HTTPS on (a certificate generated for the run, as secret config),
         then the TLS checks (rehearsal/checks/tls.py): `tls <stack>: <K> checks passed, <M> failed`.
acme:    the same boot with tlsMode acme against Pebble (Let's Encrypt's test CA, on this machine),
         then the ACME checks (rehearsal/checks/acme.py): `acme <stack>: <K> checks passed, <M> failed`.
faults:  the same boot, then every fault (rehearsal/faults/) under steady load through nginx, one
         line per fault: `fault <stack> <fault>: <N> requests, <F> failed, <L> lost`
         (`release STACK --faults` runs them after the release scenarios, on the same stack).
swarm:   STACK with `target: swarm` on a single-node swarm of a private second engine (the main
         engine is never put into swarm mode), its accessories served by a private registry, its
         smoke checks, then new-commit, unhealthy-release, nginx-config and backend-network under
         load: `release <stack>-swarm <scenario>: ...` (rehearsal/runners/swarm.py); without swarm
         support it says why and passes. `--engine pulumi`: each `pulumi up` by the real CLI.
remote:  STACK on a Docker host reached over ssh (a real sshd on loopback) and over TCP with TLS
         verification (a private engine with certificates made for the run): wrong settings
         refused in one line, the boot, the day-2 commands and new-commit under load over each
         (rehearsal/runners/remote.py): `remote <stack> <ssh|tls>: <K> checks passed, <M> failed`.
down:    remove what a kept rehearsal of STACK left.
One line per phase with its duration; a final summary line; exit 1 on any failure.
"""

from __future__ import annotations

import argparse
import os
import secrets
import signal
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import docker
import docker.errors

from rehearsal.checks.smoke import front_door
from rehearsal.emulation.engine import RUN_LABEL, STACK_LABEL
from rehearsal.errors import RehearsalError
from rehearsal.runners.real_session import RealSession
from rehearsal.runners.release import Context, boot, run_scenarios
from rehearsal.runners.session import Session
from rehearsal.scenarios import ScenarioFailed

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
    except (RehearsalError, ScenarioFailed, docker.errors.DockerException) as error:
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
        reasons = {
            "No such file": "no socket there",
            "Connection refused": "connection refused",
            "Permission denied": "permission denied on the socket; run as root or join the docker group",
            "timed out": "timed out",
        }
        reason = next((r for k, r in reasons.items() if k in text), text[:120])
        raise RehearsalError(f"no Docker engine answers at {where} ({reason}); {START_HINT}") from None


def _terminate(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def rehearse(
    stack: str, keep: bool, scenarios: list[str] | None, hook=None, engine: str = "emulation", record=None
) -> int:
    """`up` (scenarios is None) or `release` (scenarios: [] for all, or the names to run).

    hook: runs with the boot (`tls`, `faults`, `release --faults`): `before_boot(ctx)` sets config,
    `after_boot(ctx, phase)` its checks on the booted stack, `after_scenarios(ctx, phase)` (when
    it has one) what runs on the stack the scenarios left, `summary(phase_failed)` its final
    line and failure count.

    engine: "emulation" (the model plans each `pulumi up`, rehearsal/emulation carries it out) or
    "pulumi" (the real Pulumi CLI on PATH runs it: rehearsal/runners/real_session.py); record: a
    file that receives, with the real engine, every `pulumi up`'s calibration record (JSON).
    """
    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGINT, _terminate)  # also when started in the background with SIGINT ignored
    run = secrets.token_hex(4)
    checks, outcomes, failed_phase, session = [], [], None, None
    info: dict = {}
    try:
        with phase("engine", info):
            client = connect()
            version = client.version()
            info["text"] = f"Docker {version.get('Version')} (API {version.get('ApiVersion')}), run {run}"
            if engine == "pulumi":
                session = real_session(client, stack, {STACK_LABEL: stack, RUN_LABEL: run})
                info["text"] += f"; the real engine: Pulumi CLI {session.version}"
            else:
                session = Session(client, stack, {STACK_LABEL: stack, RUN_LABEL: run}, say)
            leftovers = session.teardown()
            if any(leftovers):
                say(
                    "  removed an earlier rehearsal of %s: %d containers, %d networks, %d volumes" % (stack, *leftovers)
                )
        ctx = Context(session, stack, say)
        if hook is not None:
            hook.before_boot(ctx)
        checks = boot(ctx, phase)
        if hook is not None:
            hook.after_boot(ctx, phase)
        if scenarios is not None and all(c.ok for c in checks):
            outcomes = run_scenarios(ctx, phase, scenarios)
        if (
            isinstance(session, RealSession)
            and scenarios is not None
            and all(c.ok for c in checks)
            and all(o.ok for o in outcomes)
        ):
            with phase("refresh", info):  # the provider's Read of every resource against the state
                info["text"] = session.refresh_then_preview(ctx.current_plan())
        if getattr(hook, "after_scenarios", None) and all(c.ok for c in checks) and all(o.ok for o in outcomes):
            hook.after_scenarios(ctx, phase)  # the faults, on the stack the scenarios left
        if keep:
            base, host, _ = front_door(ctx.current_plan().plan)
            say(
                f"  kept running: {ctx.current_plan().plan.outputs.get('url')} (try: curl -H 'Host: {host}' {base}/health/); "
                f"tear down with `make rehearse-down STACK={stack}`"
            )
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
        if record is not None and isinstance(session, RealSession):
            say(session.write_record(record, stack, [o.scenario.name for o in outcomes]))
        if session is not None:
            if not keep:
                with phase("teardown", info):
                    removed = session.teardown(run)
                    session.engine.join()
                    late = session.teardown(run)  # whatever an interrupted step created meanwhile
                    info["text"] = "removed %d containers, %d networks, %d volumes" % tuple(
                        a + b for a, b in zip(removed, late)
                    )
            elif failed_phase is not None:
                say(f"  --keep: left the failed rehearsal running; `make rehearse-down STACK={stack}` removes it")
        if hook is not None and hasattr(hook, "close"):
            hook.close(keep)  # what the hook started beside the stack (the backups' S3 server)

    passed = sum(c.ok for c in checks)
    failed = sum(not c.ok for c in checks) + (1 if failed_phase else 0)
    note = ""
    if failed_phase:
        note = " (interrupted)" if failed_phase.phase == "interrupted" else f" ({failed_phase.phase} failed)"
    say(f"rehearsal {stack}: {passed} checks passed, {failed} failed{note}")
    if scenarios is not None:
        good = sum(o.ok for o in outcomes)
        wanted = len(scenarios) if scenarios else None
        say(
            f"release {stack}: {len(outcomes)} scenarios run, {good} as expected, {len(outcomes) - good} not"
            + ("" if wanted is None or wanted == len(outcomes) else f", {wanted - len(outcomes)} not reached")
        )
        failed += len(outcomes) - good
        if not failed_phase and not scenarios and len(outcomes) < _scenario_count():
            failed += 1
    if hook is not None:
        line, hook_failed = hook.summary(failed_phase is not None)
        say(line)
        failed += hook_failed
    return 1 if failed else 0


def real_session(client, stack: str, labels: dict[str, str]):
    """The real engine's session, or a one-line refusal when no Pulumi CLI is on PATH."""
    from rehearsal.drivers.pulumi_cli import cli_version

    version = cli_version()
    if version is None:
        raise RehearsalError(
            "ENGINE=pulumi needs the Pulumi CLI and its plugins (pulumi-language-python, pulumi-resource-docker, "
            "pulumi-resource-random) on PATH; none found"
        )
    session = RealSession(client, stack, labels, say)
    session.version = version
    return session


def _scenario_count() -> int:
    from rehearsal.scenarios import all_scenarios

    return len(all_scenarios())


def down(stack: str) -> int:
    info: dict = {}
    try:
        with phase("teardown", info):
            client = connect()
            session = Session(client, stack, {}, say)
            info["text"] = "removed %d containers, %d networks, %d volumes" % session.teardown()
    except PhaseFailed:
        return 1
    return 0


def _engine_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--engine",
        choices=("emulation", "pulumi"),
        default=os.environ.get("ENGINE") or "emulation",
        help="who carries out each `pulumi up`: the emulation (default) or the real Pulumi CLI on PATH",
    )
    parser.add_argument(
        "--record", type=Path, metavar="FILE", help="with --engine pulumi: write every `pulumi up`'s steps here (JSON)"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rehearsal", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p_up = sub.add_parser("up", help="plan, boot, smoke-test and tear down a stack")
    p_up.add_argument("stack")
    p_up.add_argument("--keep", action="store_true", help="leave the stack running and print its URL")
    for p in (p_up,):
        _engine_arguments(p)
    p_release = sub.add_parser("release", help="boot a stack, then rehearse every release scenario under load")
    p_release.add_argument("stack")
    p_release.add_argument("--keep", action="store_true", help="leave the stack running afterwards")
    p_release.add_argument(
        "--scenario",
        action="append",
        default=[],
        metavar="NAME",
        help="run only this scenario (repeatable; they run in their fixed order)",
    )
    p_release.add_argument("--faults", action="store_true", help="then every fault, on the same stack")
    _engine_arguments(p_release)
    p_faults = sub.add_parser("faults", help="boot a stack, then rehearse every fault under load")
    p_faults.add_argument("stack")
    p_faults.add_argument("--keep", action="store_true", help="leave the stack running afterwards")
    p_faults.add_argument(
        "--fault",
        action="append",
        default=[],
        metavar="NAME",
        help="run only this fault (repeatable; they run in their fixed order)",
    )
    p_tls = sub.add_parser("tls", help="boot a stack with HTTPS on (a certificate made for the run) and prove it")
    p_tls.add_argument("stack")
    p_acme = sub.add_parser("acme", help="boot a stack with tlsMode acme against Pebble, renew under load, a refusal")
    p_acme.add_argument("stack")
    p_bench = sub.add_parser("benchmark-http", help="boot a stack, then measure nginx's front door (req/s, p99)")
    p_bench.add_argument("stack")
    p_swarm = sub.add_parser(
        "swarm", help="STACK as swarm services on a private single-node swarm, releases under load"
    )
    p_swarm.add_argument("stack")
    p_swarm.add_argument(
        "--scenario", action="append", default=[], metavar="NAME", help="run only this scenario (repeatable)"
    )
    _engine_arguments(p_swarm)
    p_remote = sub.add_parser("remote", help="STACK on a Docker host reached over ssh and over TCP with TLS")
    p_remote.add_argument("stack")
    p_remote.add_argument(
        "--transport", action="append", choices=["ssh", "tls"], default=[], help="only this one (repeatable)"
    )
    p_down = sub.add_parser("down", help="remove everything a rehearsal of STACK created")
    p_down.add_argument("stack")
    p_sample = sub.add_parser("sample", help="make a sample Django project (split or single) in DIR, to adopt")
    p_sample.add_argument("kind")
    p_sample.add_argument("dir", type=Path)
    args = parser.parse_args(argv)
    try:
        if args.command == "up":
            return rehearse(args.stack, args.keep, None, engine=args.engine, record=args.record)
        if args.command in ("release", "faults"):
            from rehearsal.runners.faults import FaultRehearsal

            faults = (
                FaultRehearsal(args.stack, getattr(args, "fault", []))
                if args.command == "faults" or args.faults
                else None
            )
            return rehearse(
                args.stack,
                args.keep,
                args.scenario if args.command == "release" else None,
                hook=faults,
                **({"engine": args.engine, "record": args.record} if args.command == "release" else {}),
            )
        if args.command == "tls":
            from rehearsal.checks.tls import TlsRehearsal

            return rehearse(args.stack, False, None, hook=TlsRehearsal(args.stack))
        if args.command == "benchmark-http":
            from rehearsal.checks.http_bench import HttpBenchmark

            return rehearse(args.stack, False, None, hook=HttpBenchmark(args.stack))
        if args.command == "acme":
            from rehearsal.checks.acme import AcmeRehearsal

            return rehearse(args.stack, False, None, hook=AcmeRehearsal(args.stack))
        if args.command == "swarm":
            from rehearsal.runners.swarm import rehearse_swarm

            return rehearse_swarm(
                args.stack,
                say,
                phase,
                connect,
                PhaseFailed,
                engine=args.engine,
                record=args.record,
                scenarios=args.scenario or None,
            )
        if args.command == "sample":
            from rehearsal.images.samples import generate

            say(f"sample {args.kind}: {generate(args.kind, args.dir)}")
            return 0
        if args.command == "remote":
            from rehearsal.hosts.remote_host import TRANSPORTS
            from rehearsal.runners.remote import rehearse_remote

            chosen = tuple(t for t in TRANSPORTS if t in args.transport) or TRANSPORTS
            return rehearse_remote(args.stack, say, phase, connect, PhaseFailed, chosen)
        return down(args.stack)
    except RehearsalError as error:
        say(f"rehearsal: {error}")
        return 1


if __name__ == "__main__":
    sys.exit(main())
