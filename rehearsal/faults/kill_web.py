"""kill-web: one web replica dies (SIGKILL, as an OOM kill would). nginx retries its GETs on the
other replicas, so no client sees a failure; the restart policy brings the replica back."""

import time

from rehearsal.faults.actions import back_after_crash, crash, inspect, wait_for
from rehearsal.faults.fault import READS, Fault

BACK_SECONDS = 60


def inject(ctx, trial) -> None:
    web = ctx.session.containers_of("web")
    name, victim = sorted(web.items())[len(web) // 2]
    before = victim["RestartCount"]
    crashed = time.monotonic()
    policy = crash(ctx, victim["Id"])
    trial.note(f"SIGKILL {name}'s processes from the host")
    how = back_after_crash(ctx, victim["Id"], policy, before, BACK_SECONDS)
    trial.recovery_seconds = time.monotonic() - crashed
    trial.note(
        f"{name}: {how}; healthy again after {trial.recovery_seconds:.1f}s "
        f"(restart count {inspect(ctx, victim['Id'])['RestartCount']})"
    )
    # nginx re-resolves the replicas every second: the one that came back must answer again.
    answered: dict[str, str] = {}
    wait_for(
        f"{name} to answer through nginx again",
        lambda: answered.update(spread=ctx.replicas_answering(ctx.session.containers_of("web"), 30)) or True,
        20,
        1,
    )
    trial.note(f"every replica answers through nginx again ({answered['spread']})")
    trial.lost = 0  # the load only reads: nothing to lose, everything to retry


FAULT = Fault(
    "kill-web",
    "SIGKILL one web replica under GET load",
    "0 failed requests (nginx retries GETs on the other replicas); the replica comes back healthy within 60 s "
    "and answers through nginx again",
    inject,
    traffic=READS,
    max_failed_seconds=0,
    recovery_target=BACK_SECONDS,
)
