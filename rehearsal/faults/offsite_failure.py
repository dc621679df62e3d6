"""offsite-failure: the off-host storage fails, twice, and it is reported as a failure, never as
a success (coolify#7779 reported a failing S3 backup as a success):

1. the S3 server is stopped: `make backup` takes the backup into the volume, then says
   `off-host: FAILED: ...` and exits 1; `make status` warns and exits 1; the bucket has no copy;
2. the server comes back with other credentials (the stack's key revoked): the same, S3 saying
   the key is refused.
After each, the server is set right and the accessory's retry copies the backup, verified: it
is then off-host and `make status` is quiet again. Pages never fail meanwhile."""

import time

from rehearsal.faults.actions import agent_status, offsite, ops, wait_for
from rehearsal.faults.fault import PAGES, Fault
from rehearsal.scenarios import ScenarioFailed

RETRY_SECONDS = 120  # the accessory's first retries: 15 s, then 30 s


def failing_backup(ctx, trial, why: str) -> str:
    """`ops backup` must take the backup and fail the off-host copy, in its own words."""
    started = time.monotonic()
    code, out, err = ops(ctx, "backup")
    lines = (out + err).strip().splitlines()
    failed = [line for line in lines if line.startswith("off-host: FAILED: ")]
    taken = [line for line in lines if line.startswith("backup: ")]
    if code != 1 or not failed or not taken:
        raise ScenarioFailed(f"{why}: `ops backup` exit {code}, expected 1 with `off-host: FAILED` ({lines[-2:]})")
    name = taken[0].split()[1]
    trial.note(f"{why}: `ops backup` exit 1 in {time.monotonic() - started:.1f}s: {failed[0][:150]}")
    status_code, status_out, _ = ops(ctx, "status")
    warned = [line.strip() for line in status_out.splitlines() if "WARNING" in line and name in line]
    if status_code != 1 or not warned:
        raise ScenarioFailed(f"{why}: `ops status` exit {status_code}, and no WARNING names {name}")
    trial.note(f"`ops status` exit 1: {warned[0][:150]}")
    store = offsite(ctx)
    if store.server.process is None or store.server.process.poll() is not None:
        return name  # the server is down: there is no bucket to look in
    return name if not any(name in key for key in store.dump_keys()) else ""


def recovered(ctx, trial, name: str, how: str) -> float:
    started = time.monotonic()

    def verified() -> bool:
        status = agent_status(ctx)
        return name not in (status.get("offsite") or {}).get("pending", [name])

    wait_for(f"{name} copied off-host after {how}", verified, RETRY_SECONDS, 1)
    took = time.monotonic() - started
    if not any(name in key for key in offsite(ctx).dump_keys()):
        raise ScenarioFailed(f"{name} is said verified but is not in the bucket")
    # Quiet again (exit 0) once the WAL waiting meanwhile is pushed and the bucket listed again.
    quiet = wait_for("`ops status` exit 0 again", lambda: ops(ctx, "status")[0] == 0, 90, 2)
    trial.note(
        f"{how}: the accessory's retry copied {name}, verified, {took:.1f}s later; `ops status` exit 0 "
        f"{quiet:.0f}s after that"
    )
    return took


def inject(ctx, trial) -> None:
    store = offsite(ctx)
    server = store.server
    started = time.monotonic()
    # 1. the server down
    server.stop()
    try:
        name = failing_backup(ctx, trial, "S3 server stopped")
        if not name:
            raise ScenarioFailed("a copy reached the bucket while its server was stopped")
    finally:
        server.start()
    recovered(ctx, trial, name, "server started again")
    # 2. credentials refused (the stack's key no longer valid there)
    from rehearsal.hosts.s3 import Keys

    server.stop()
    server.start(Keys("REVOKEDKEY0000000000", "not-the-stacks-secret"))
    try:
        second = failing_backup(ctx, trial, "credentials refused")
        if not second:
            raise ScenarioFailed("a copy reached the bucket with refused credentials")
    finally:
        server.stop()
        server.start()
    recovered(ctx, trial, second, "the stack's key valid again")
    trial.recovery_seconds = time.monotonic() - started
    pending = (agent_status(ctx).get("offsite") or {}).get("pending") or []
    trial.lost = len(pending)
    trial.data["line"] = (
        f"backup {ctx.stack} offsite-failure: server stopped and credentials refused: both reported FAILED "
        f"(exit 1, status WARNING), never a success; both copied and verified once S3 was right; {len(pending)} pending"
    )


FAULT = Fault(
    "offsite-failure",
    "stop the S3 server, then refuse the stack's credentials, each during `make backup`",
    "each: `make backup` exits 1 with `off-host: FAILED`, `make status` warns and exits 1, nothing reaches the "
    "bucket; once S3 is right the accessory's retry copies and verifies it (0 pending); 0 failed page reads",
    inject,
    traffic=PAGES,
    max_failed_seconds=0,
    recovery_target=2 * RETRY_SECONDS + 60,
    summary=lambda stack, trial: trial.data.get("line"),
)
