"""Run the fault scenarios (rehearsal/faults/) on a booted stack, each under steady load.

The same Context, boot() and Load as the release rehearsal (rehearsal.runners.release): for each fault
a bounded load generator sends requests through nginx on 127.0.0.1 (reads, or writes whose
acknowledged ids are kept), the fault is injected and waited out, what was lost is counted,
the stack must be healthy again for the next one, and exactly one line is printed:

    fault <stack> <fault>: <N> requests, <F> failed, <L> lost

What the faults do to the engine (crash a container, wait for health, ask Redis) is in
rehearsal/faults/actions.py, below both this runner and the faults.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Optional

import docker.errors
import requests

from rehearsal.checks.load import Load, Report
from rehearsal.errors import RehearsalError
from rehearsal.faults import BACKUP_FAULTS, Fault, Trial, all_faults, fault_line, summary_line, verdict
from rehearsal.faults.actions import serves, unhealthy, wait_for
from rehearsal.runners.release import LOAD_RATE, LOAD_WORKERS, SETTLE_SECONDS, Context, selected
from rehearsal.scenarios import ScenarioFailed

FAULT_LOAD_MAX_SECONDS = 400  # a fault's load stops by itself after this, whatever happens
HEALTHY_AGAIN_SECONDS = 120  # after each fault, for every container of the stack to be healthy


@dataclass
class FaultOutcome:
    fault: Fault
    report: Report
    trial: Trial
    problems: list[str]

    @property
    def ok(self) -> bool:
        return not self.problems


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
        own = fault.summary(ctx.stack, outcome.trial) if fault.summary is not None else None
        if own:
            ctx.say(own)
        if not outcome.ok and unhealthy(ctx):
            break  # the stack is not in the state the next fault starts from
    return outcomes


# What the backup faults run the stack with, on top of its own config: the schedule short enough
# to fire during the run, off-host copies to the run's S3 server, encrypted, and the WAL archive.
BACKUP_OVERRIDES = {
    "backupSchedule": "every 30s",
    "backupPitr": True,
    "backupArchiveTimeout": "10s",
    "backupRetention": 3,
    "backupRetentionDays": 1,
}


class FaultRehearsal:
    """The hook `python -m rehearsal faults` (and `release --faults`) gives rehearse(): after the
    boot (and the release scenarios, if any) the faults run on the same stack.

    When a backup fault is among them, the stack is booted with backups on (BACKUP_OVERRIDES)
    and off-host storage: a real S3 server this run starts (rehearsal/hosts/s3.py), its
    credentials and a fresh age identity as secret config, as an operator sets them."""

    def __init__(self, stack: str, names: Optional[list[str]] = None):
        self.stack = stack
        self.names = list(names or [])
        self.outcomes: list[FaultOutcome] = []
        self.ran = False
        self.server: Any = None
        """The backups' S3 server (rehearsal.hosts.s3.S3Server) when a backup fault runs."""
        self.scratch: Optional[str] = None

    def before_boot(self, ctx: Context) -> None:
        if self.names:  # refuse an unknown name before booting anything
            unknown = sorted(set(self.names) - {f.name for f in all_faults()})
            if unknown:
                raise RehearsalError(
                    f"unknown faults {unknown}; the faults are: {', '.join(f.name for f in all_faults())}"
                )
        if set(self.names or BACKUP_FAULTS) & set(BACKUP_FAULTS):
            self.start_offsite(ctx)

    def start_offsite(self, ctx: Context) -> None:
        import os
        import tempfile

        import pyrage

        from rehearsal.emulation.engine import RUN_LABEL
        from rehearsal.faults.actions import Offsite
        from rehearsal.hosts.s3 import S3Server

        run = ctx.session.run_labels.get(RUN_LABEL, "run")
        started = time.monotonic()
        self.server = S3Server(ctx.session.client, run, {"rehearsal.s3": run}).open()
        identity = str(pyrage.x25519.Identity.generate())
        self.scratch = tempfile.mkdtemp(prefix=f"rehearsal-backups-{run}-")
        identity_file = os.path.join(self.scratch, "backup-key.txt")
        with open(os.open(identity_file, os.O_WRONLY | os.O_CREAT, 0o600), "w") as handle:
            handle.write(f"# the run's backupEncryptionKey (age)\n{identity}\n")
        prefix = f"rehearsal/{run}/{self.stack}"
        ctx.overrides.update({**BACKUP_OVERRIDES, **self.server.stack_config(prefix)})
        ctx.secrets.update({**self.server.secrets(), "backupEncryptionKey": identity})
        ctx.offsite = Offsite(server=self.server, identity=identity, identity_file=identity_file, prefix=prefix)
        ctx.say(
            f"  backups: S3 server (SeaweedFS {self.server.version()}) at {self.server.endpoint} = {self.server.address} "
            f"(a network of this run), bucket {self.server.bucket}/{prefix}, up in {time.monotonic() - started:.1f}s; "
            f"the stack gets {', '.join(f'{k}={v}' for k, v in BACKUP_OVERRIDES.items())}, a fresh age key"
        )

    def close(self, keep: bool) -> None:
        import shutil

        if self.server is not None and not keep:
            self.server.close()
        if self.scratch and not keep:
            shutil.rmtree(self.scratch, ignore_errors=True)

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
