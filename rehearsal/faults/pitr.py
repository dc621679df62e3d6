"""pitr: point-in-time recovery. Rows are written, a moment is noted, more rows are written,
and once the WAL archive covers them `make restore AT=<the moment>` brings the database back to
that second: exactly the rows before it, none of those after. Bad AT= values are refused first
in one line each, changing nothing (not a time; after the archive; before it)."""

import time

from ops.offsite import pitr_copy_prefix
from rehearsal.faults.actions import archived_past, ops, post_visits, serves, unhealthy, wait_for
from rehearsal.faults.fault import READS, Fault, parse_rows, rows_difference
from rehearsal.faults.restore import ROWS, TARGET_SECONDS
from rehearsal.scenarios import ScenarioFailed

BEFORE, AFTER = 10, 10
ARCHIVE_SECONDS = 90  # archive_timeout (the run's 10 s) + the push, with room


def refused(ctx, trial, at: str, expected: str) -> None:
    code, out, err = ops(ctx, "restore", "--at", at)
    line = (err or out).strip().splitlines()[-1] if (err or out).strip() else ""
    if code != 2 or expected not in line:
        raise ScenarioFailed(f"AT={at}: exit {code}, {line!r}; expected exit 2 and {expected!r}")
    trial.note(f"AT={at}: refused, exit 2: {line[:170]}")


def inject(ctx, trial) -> None:
    first = post_visits(ctx, BEFORE)
    time.sleep(1.0)
    moment = ctx.psql("select to_char(clock_timestamp() at time zone 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')")
    at_moment = parse_rows(ctx.psql(ROWS))
    time.sleep(1.0)
    later = post_visits(ctx, AFTER)
    last_write = ctx.psql("select max(created_at) from visits_visit")
    trial.note(
        f"{BEFORE} visits ({first[0]}-{first[-1]}), then the moment {moment} ({len(at_moment)} rows), then {AFTER} "
        f"more ({later[0]}-{later[-1]})"
    )
    waited = archived_past(ctx, last_write, ARCHIVE_SECONDS)
    trial.note(f"the WAL archive reached past the last write {waited:.1f}s later (archive_timeout)")
    unchanged = parse_rows(ctx.psql(ROWS))
    refused(ctx, trial, "yesterday-ish", "not a time")
    refused(ctx, trial, "2099-01-01T00:00:00Z", "after the newest archived commit")
    refused(ctx, trial, "2000-01-01T00:00:00Z", "before the oldest base backup")
    if parse_rows(ctx.psql(ROWS)) != unchanged:
        raise ScenarioFailed("a refused AT= changed the database")
    started = time.monotonic()
    code, out, err = ops(ctx, "restore", "--at", moment)
    if code != 0:
        raise ScenarioFailed(f"`ops restore --at {moment}` exit {code}: {(out + err).strip().splitlines()[-2:]}")
    done = next((x for x in out.splitlines() if x.startswith("restored: ")), "")
    trial.note(f"`ops restore {ctx.stack} --at {moment}` exit 0 in {time.monotonic() - started:.1f}s: {done[:200]}")
    wait_for(
        "every container healthy and /health/ 200", lambda: not unhealthy(ctx) and serves(ctx), TARGET_SECONDS, 0.5
    )
    trial.recovery_seconds = time.monotonic() - started
    restored = parse_rows(ctx.psql(ROWS))
    diff = rows_difference(at_moment, restored)
    gone = [i for i in later if i not in restored]
    trial.lost = diff.count
    trial.note(
        f"{len(restored)} rows after the restore, {len(at_moment)} at the moment: "
        + ("exactly those" if not diff.count else diff.describe())
        + f"; {len(gone)} of the {AFTER} written after it gone"
    )
    if len(gone) != AFTER:
        raise ScenarioFailed(f"{AFTER - len(gone)} rows written after the moment survived the restore")
    # The copy of the data directory the restore kept meanwhile (ops.offsite.keep_pitr_copy).
    copies = [v.name for v in ctx.session.client.volumes.list(filters={"name": pitr_copy_prefix(ctx.stack)})]
    if copies:
        raise ScenarioFailed(f"the restore succeeded and left its copy of the data directory: {copies}")
    trial.note("the restore's copy of the data directory removed")
    trial.data["line"] = (
        f"backup {ctx.stack} pitr: restored to {moment}: {len(restored)} rows, exactly those before the moment "
        f"({diff.count} differ), the {AFTER} after it gone, in {trial.recovery_seconds:.1f}s"
    )


FAULT = Fault(
    "pitr",
    f"{BEFORE} rows, a moment, {AFTER} rows; restore AT=<the moment> from the WAL archive",
    "AT= that is not a time, after the archive or before it: refused in one line, nothing changed; then exactly "
    f"the rows before the moment, none after; the site serves again within {TARGET_SECONDS} s (the restore stops it)",
    inject,
    traffic=READS,
    max_failed_seconds=None,
    recovery_target=TARGET_SECONDS,
    summary=lambda stack, trial: trial.data.get("line"),
)
