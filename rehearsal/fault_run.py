"""Run the fault scenarios (rehearsal/faults/) on a booted stack, each under steady load.

The same Context, boot() and Load as the release rehearsal (rehearsal.release): for each fault
a bounded load generator sends requests through nginx on 127.0.0.1 (reads, or writes whose
acknowledged ids are kept), the fault is injected and waited out, what was lost is counted,
the stack must be healthy again for the next one, and exactly one line is printed:

    fault <stack> <fault>: <N> requests, <F> failed, <L> lost

This module also holds what the faults do to the engine (crash a container, wait for health,
ask Redis), so each fault's file says only what it does and expects.
"""

from __future__ import annotations

import os
import signal
import time
from dataclasses import dataclass
from typing import Callable, Optional

import docker.errors
import requests

from ops.benchmark import run_ops
from planning.harness import CONTAINER
from rehearsal.engine import live
from rehearsal.errors import RehearsalError
from rehearsal.faults import Fault, Trial, all_faults, fault_line, summary_line, verdict
from rehearsal.load import Load, Report
from rehearsal.release import LOAD_RATE, LOAD_WORKERS, SETTLE_SECONDS, Context, selected
from rehearsal.scenarios import ScenarioFailed

FAULT_LOAD_MAX_SECONDS = 400  # a fault's load stops by itself after this, whatever happens
HEALTHY_AGAIN_SECONDS = 120  # after each fault, for every container of the stack to be healthy
OPS_SECONDS = 240  # one `python -m ops` command (a restore stops and starts the app)


@dataclass
class FaultOutcome:
    fault: Fault
    report: Report
    trial: Trial
    problems: list[str]

    @property
    def ok(self) -> bool:
        return not self.problems


# --------------------------------------------------------------------------- what faults use


def wait_for(what: str, ready: Callable[[], bool], timeout: float, interval: float = 0.25) -> float:
    """Poll until ready() (exceptions count as not yet); the seconds it took. Bounded."""
    started = time.monotonic()
    while True:
        try:
            if ready():
                return time.monotonic() - started
        except (requests.RequestException, docker.errors.APIError, RehearsalError, ScenarioFailed, ValueError):
            pass
        if time.monotonic() - started > timeout:
            raise ScenarioFailed(f"{what}: not within {timeout:.0f}s")
        time.sleep(interval)


def inspect(ctx: Context, cid: str) -> dict:
    return ctx.session.client.api.inspect_container(cid)


def healthy(ctx: Context, cid: str) -> bool:
    state = inspect(ctx, cid)["State"]
    return state["Running"] and (state.get("Health") or {}).get("Status", "healthy") == "healthy"


def one(ctx: Context, service: str) -> tuple[str, dict]:
    found = ctx.session.containers_of(service)
    if len(found) != 1:
        raise ScenarioFailed(f"expected one {service} container, found {len(found)}")
    return next(iter(found.items()))


def serves(ctx: Context) -> bool:
    return ctx.get("/health/").status_code == 200


def unhealthy(ctx: Context) -> list[str]:
    """The stack's containers that are not running and healthy, as `name (status/health)`."""
    bad = []
    for name, real in sorted(live(ctx.session.state, CONTAINER).items()):
        state = inspect(ctx, real["id"])["State"]
        health = (state.get("Health") or {}).get("Status")
        if not state["Running"] or health not in (None, "healthy"):
            bad.append(f"{name} ({state['Status']}/{health})")
    return bad


def crash(ctx: Context, cid: str) -> str:
    """SIGKILL the container's whole process tree from this host, as the kernel's OOM killer or
    a crash would: Docker's restart policy then applies. (`docker kill` would not do: the engine
    records it as a manual stop and skips the restart policy: moby daemon/kill.go,
    killWithSignal sets HasBeenManuallyStopped; checked on this engine.) Needs the engine on
    this host (the rehearsal's is) and root."""
    info = inspect(ctx, cid)
    pid = info["State"]["Pid"]
    if not pid:
        raise ScenarioFailed(f"{info['Name'].lstrip('/')} is not running")
    try:
        os.kill(pid, signal.SIGKILL)  # its init (tini): the kernel then kills every process in its PID namespace
    except PermissionError:
        raise RehearsalError(
            "cannot SIGKILL a container's processes: run the fault rehearsal as root, on the engine's host"
        ) from None
    except ProcessLookupError:
        raise RehearsalError(
            f"pid {pid} of {info['Name']} is not on this host: the fault rehearsal needs a local engine"
        ) from None
    return info["HostConfig"]["RestartPolicy"]["Name"] or "no"


def back_after_crash(ctx: Context, cid: str, policy: str, restarts_before: int, timeout: float) -> str:
    """Wait until a crashed container runs healthy again. The restart policy brings it back; a
    stack without one (dev may have none) has it started by hand, and says so."""
    if policy in ("no", ""):
        wait_for("the crashed container to stop", lambda: not inspect(ctx, cid)["State"]["Running"], 30)
        ctx.session.client.api.start(cid)
        how = "no restart policy: started again by hand"
    else:
        wait_for("Docker to restart it", lambda: inspect(ctx, cid)["RestartCount"] > restarts_before, timeout)
        how = f"restart policy `{policy}` restarted it"
    wait_for("the restarted container to be healthy", lambda: healthy(ctx, cid), timeout)
    return how


def exec_out(ctx: Context, cid: str, argv: list[str]) -> str:
    api = ctx.session.client.api
    exec_id = api.exec_create(cid, argv)["Id"]
    output = api.exec_start(exec_id).decode(errors="replace").strip()
    if api.exec_inspect(exec_id)["ExitCode"] != 0:
        raise ScenarioFailed(f"{' '.join(argv)}: {output[:200]}")
    return output


def redis_cli(ctx: Context, *args: str) -> str:
    _, redis = one(ctx, "redis")
    return exec_out(ctx, redis["Id"], ["redis-cli", *args])


def logs_since(ctx: Context, cid: str, since: float) -> str:
    return ctx.session.client.api.logs(cid, since=int(since), stdout=True, stderr=True).decode(errors="replace")


def ops(ctx: Context, *args: str) -> tuple[int, str, str]:
    """`python -m ops COMMAND STACK ARGS...` as an operator runs it."""
    code, out, err, _ = run_ops([args[0], ctx.stack, *args[1:]], timeout=OPS_SECONDS)
    return code, out, err


def post_visits(ctx: Context, count: int) -> list[int]:
    """`count` POST /visits/ through nginx, each must be acknowledged (201); their ids."""
    base, host = ctx.front()
    ids = []
    with requests.Session() as http:
        http.trust_env = False
        http.headers["Host"] = host
        for _ in range(count):
            response = http.post(base + "/visits/", timeout=10, allow_redirects=False)
            if response.status_code != 201:
                raise ScenarioFailed(f"POST /visits/ -> {response.status_code}")
            ids.append(int(response.json()["id"]))
    return ids


def processed(ctx: Context, ids: list[int], after: Optional[str] = None) -> int:
    """How many of the visits have been processed (after a moment, as a PostgreSQL timestamp)."""
    if not ids:
        return 0
    when = f" and processed_at > '{after}'" if after else ""
    return int(
        ctx.psql(
            f"select count(*) from visits_visit where id in ({','.join(map(str, ids))}) "
            f"and processed_at is not null{when}"
        )
    )


# --------------------------------------------------------------------------- the runner


def run_fault(ctx: Context, fault: Fault) -> FaultOutcome:
    say = ctx.say
    trial = Trial(say)
    say(f"  fault: {fault.what}")
    say(f"  expect: {fault.expectation}")
    base, host = ctx.front()
    traffic = fault.traffic
    load = Load(
        base,
        host=host,
        path=traffic.path,
        method=traffic.method,
        expect=traffic.expect,
        collect=traffic.collect,
        rate=LOAD_RATE,
        workers=LOAD_WORKERS,
        max_seconds=FAULT_LOAD_MAX_SECONDS,
    )
    say(f"  load: {traffic.method} {traffic.path} at {LOAD_RATE:.0f}/s through nginx")
    started_at = time.time()
    load.start()
    try:
        time.sleep(SETTLE_SECONDS)
        fault.inject(ctx, trial)
        time.sleep(SETTLE_SECONDS)
    except (ScenarioFailed, RehearsalError, docker.errors.DockerException, requests.RequestException) as failure:
        trial.problems.append(str(failure))
        say(f"    FAILED: {failure}")
    finally:
        report = load.stop()
    if fault.count is not None and not trial.problems:
        try:
            trial.lost = fault.count(ctx, trial, report)
        except (ScenarioFailed, RehearsalError, docker.errors.DockerException) as failure:
            trial.problems.append(f"counting: {failure}")
    say(report.details().replace("\n  releases: no git_sha seen", ""))
    if report.failed:
        first, last = min(f.at for f in report.failures), max(f.at for f in report.failures)
        say(
            f"  requests failed from {first:.1f}s to {last:.1f}s of the load ({last - first:.1f}s; "
            f"{report.failed_seconds} distinct seconds"
            + ("" if fault.max_failed_seconds is None else f", target <= {fault.max_failed_seconds}")
            + ")"
        )
    if trial.recovery_seconds is not None:
        met = "met" if trial.recovery_seconds <= fault.recovery_target else "MISSED"
        say(f"  recovered in {trial.recovery_seconds:.1f}s (target <= {fault.recovery_target:.0f}s: {met})")
    problems = verdict(fault, trial, report.requests, report.failed, report.failed_seconds)
    if problems and report.failed and fault.max_failed_seconds is not None:
        say(ctx.nginx_errors(since=started_at, report=report))
    # The next fault starts from a healthy stack, or not at all.
    try:
        wait_for(
            "every container healthy again", lambda: not unhealthy(ctx) and serves(ctx), HEALTHY_AGAIN_SECONDS, 0.5
        )
    except ScenarioFailed:
        problems.append(f"not healthy afterwards: {', '.join(unhealthy(ctx)) or '/health/ is not 200'}")
    return FaultOutcome(fault, report, trial, problems)


def run_faults(ctx: Context, phase, names: Optional[list[str]] = None) -> list[FaultOutcome]:
    outcomes = []
    for fault in selected(all_faults(), names, "faults"):
        info: dict = {}
        with phase(f"fault {fault.name}", info):
            outcome = run_fault(ctx, fault)
            info["text"] = "as expected" if outcome.ok else "NOT as expected: " + "; ".join(outcome.problems)
        outcomes.append(outcome)
        ctx.say(fault_line(ctx.stack, fault.name, outcome.report.requests, outcome.report.failed, outcome.trial.lost))
        if not outcome.ok and unhealthy(ctx):
            break  # the stack is not in the state the next fault starts from
    return outcomes


class FaultRehearsal:
    """The hook `python -m rehearsal faults` (and `release --faults`) gives rehearse(): after the
    boot (and the release scenarios, if any) the faults run on the same stack."""

    def __init__(self, stack: str, names: Optional[list[str]] = None):
        self.stack = stack
        self.names = list(names or [])
        self.outcomes: list[FaultOutcome] = []
        self.ran = False

    def before_boot(self, ctx: Context) -> None:
        if self.names:  # refuse an unknown name before booting anything
            unknown = sorted(set(self.names) - {f.name for f in all_faults()})
            if unknown:
                raise RehearsalError(
                    f"unknown faults {unknown}; the faults are: {', '.join(f.name for f in all_faults())}"
                )

    def after_boot(self, ctx: Context, phase) -> None:
        pass

    def after_scenarios(self, ctx: Context, phase) -> None:
        self.ran = True
        self.outcomes = run_faults(ctx, phase, self.names)

    def summary(self, phase_failed: bool) -> tuple[str, int]:
        wanted = len(self.names) if self.names else len(all_faults())
        good = sum(o.ok for o in self.outcomes)
        line = summary_line(self.stack, len(self.outcomes), good, wanted)
        return line, (len(self.outcomes) - good) + (wanted - len(self.outcomes))
