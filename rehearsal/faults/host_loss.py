"""host-loss: the stack's host is lost with everything on it (rehearsal only): every container
and volume of the stack removed, the database and its backups volume with them; only the
off-host storage is left. The stack is brought back as on a new host (`pulumi up` from an empty
state: a new, empty database) and its database restored from the off-host WAL archive to its
end (`make restore AT=latest`):

    fault <stack> host-loss: rows before N, rows after N, L lost, restored in S s

Rows written before the loss count only once the archive reached past them: a commit is
archived at the latest `backupArchiveTimeout` after it (the run's 10 s), which is what a host
loss can cost, and the rehearsal waits that out before it removes the host."""

import time

from rehearsal.emulation.model import State
from rehearsal.errors import RehearsalError
from rehearsal.faults.actions import archived_past, offsite, ops, post_visits, serves, unhealthy, wait_for
from rehearsal.faults.fault import READS, Fault, parse_rows, rows_difference
from rehearsal.faults.restore import ROWS
from rehearsal.scenarios import ScenarioFailed

WRITES = 10
ARCHIVE_SECONDS = 90
TARGET_SECONDS = 600  # a new host: the first `pulumi up`, then the restore


def inject(ctx, trial) -> None:
    store = offsite(ctx)
    session = ctx.session
    if not hasattr(session, "engine"):
        raise RehearsalError("host-loss needs the emulation (it removes the stack under the engine's feet)")
    ids = post_visits(ctx, WRITES)
    last_write = ctx.psql("select max(created_at) from visits_visit")
    waited = archived_past(ctx, last_write, ARCHIVE_SECONDS)
    before = parse_rows(ctx.psql(ROWS))
    trial.note(
        f"{WRITES} more visits ({ids[0]}-{ids[-1]}); the WAL archive reached past the last write {waited:.1f}s later; "
        f"{len(before)} rows"
    )
    lost_at = time.monotonic()
    run = session.run_labels.get("rehearsal.run")
    removed = session.teardown(run)
    trial.note(
        f"host lost: {removed[0]} containers, {removed[1]} networks, {removed[2]} volumes of the stack removed "
        f"(the database, its backups volume and WAL spool with them); off-host: {store.server.endpoint}"
    )
    session.state = State()
    rp = ctx.current_plan()
    result = session.up(rp)  # `pulumi up` on the new host: everything created, a new empty database
    if not result.ok:
        raise ScenarioFailed(f"`pulumi up` on the new host failed: {result.error}")
    trial.note(f"`pulumi up` on the new host: {len(result.reports)} steps in {result.seconds:.1f}s; an empty database")
    started = time.monotonic()
    code, out, err = ops(ctx, "restore", "--at", "latest")
    if code != 0:
        raise ScenarioFailed(f"`ops restore --at latest` exit {code}: {(out + err).strip().splitlines()[-2:]}")
    done = next((x for x in out.splitlines() if x.startswith("restored: ")), "")
    trial.note(f"`ops restore {ctx.stack} --at latest` exit 0 in {time.monotonic() - started:.1f}s: {done[:180]}")
    wait_for("every container healthy and /health/ 200", lambda: not unhealthy(ctx) and serves(ctx), 180, 0.5)
    trial.recovery_seconds = time.monotonic() - lost_at
    after = parse_rows(ctx.psql(ROWS))
    diff = rows_difference(before, after)
    trial.lost = len(diff.missing)
    if diff.extra:
        trial.problems.append(f"rows that were not there before the loss: {diff.describe()}")
    trial.data["line"] = (
        f"fault {ctx.stack} host-loss: rows before {len(before)}, rows after {len(after)}, {len(diff.missing)} lost, "
        f"restored in {trial.recovery_seconds:.0f} s"
    )
    trial.note(
        f"restore: {time.monotonic() - started:.1f}s; from the loss to serving the restored data: "
        f"{trial.recovery_seconds:.1f}s (the new host's `pulumi up` {result.seconds:.1f}s of it)"
    )


FAULT = Fault(
    "host-loss",
    "remove every container and volume of the stack (the host lost), bring it up anew, restore from off-host",
    "every row archived before the loss is back (0 lost, none extra); the site serves within "
    f"{TARGET_SECONDS} s of the loss; requests fail meanwhile (there is no host)",
    inject,
    traffic=READS,
    max_failed_seconds=None,
    recovery_target=TARGET_SECONDS,
    summary=lambda stack, trial: trial.data.get("line"),
)
