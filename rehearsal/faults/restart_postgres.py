"""restart-postgres: the database restarts (`docker restart`: a fast shutdown, then start) while
pages are read and visits written. A page read (GET) never fails: the replica waits for the
database and serves it (django_docker_runtime.retry); a write may fail (it is never repeated for
the client) but every acknowledged one is in PostgreSQL afterwards, and processed."""

import time

from rehearsal.faults.actions import Writer, healthy, one, processed, serves, wait_for
from rehearsal.faults.fault import PAGES, Fault, difference, parse_ids
from rehearsal.scenarios import ScenarioFailed

FLOW_SECONDS = 3.0  # reads and writes before and after the restart
TARGET_SECONDS = 30
# For every acknowledged visit to be processed too: a task that ran while the database was down
# retries (visits.tasks.process_visit: 1, 2, 4 ... s apart) rather than failing for good.
PROCESSED_SECONDS = 60


def inject(ctx, trial) -> None:
    name, postgres = one(ctx, "postgres")
    writer = Writer(ctx)
    writer.start()
    try:
        time.sleep(FLOW_SECONDS)
        started = time.monotonic()
        ctx.session.client.api.restart(postgres["Id"])
        trial.note(f"`docker restart` {name} took {time.monotonic() - started:.1f}s")
        wait_for(
            "postgres healthy and /health/ 200 again", lambda: healthy(ctx, postgres["Id"]) and serves(ctx), 90, 0.2
        )
        trial.recovery_seconds = time.monotonic() - started
        trial.note(
            f"healthy again (Docker's healthcheck and /health/ through nginx) {trial.recovery_seconds:.1f}s "
            "after the restart began"
        )
        time.sleep(FLOW_SECONDS)
    finally:
        trial.data["writes"] = writer.finish()


def wait_processed(ctx, ids: list[int], seconds: float = PROCESSED_SECONDS) -> int:
    """How many of the visits are still unprocessed after at most `seconds`."""
    try:
        wait_for("the acknowledged visits to be processed", lambda: processed(ctx, ids) == len(ids), seconds, 1)
    except ScenarioFailed:
        pass
    return len(ids) - processed(ctx, ids)


def count(ctx, trial, report, processed_seconds: float = PROCESSED_SECONDS) -> int:
    """The acknowledged writes missing from PostgreSQL: those of the writer beside the page load
    (here), or of a writing load (restart-engine's, which counts with this too)."""
    writes = trial.data.get("writes")
    acknowledged = list(writes.acknowledged) if writes is not None else [int(i) for i in report.collected]
    failed = len(writes.failed) if writes is not None else report.failed
    if not acknowledged:
        raise ScenarioFailed("no write was acknowledged")
    # Every row from the first acknowledged write on (only the writer and the load's reads run).
    present = parse_ids(ctx.psql(f"select id from visits_visit where id >= {min(acknowledged)}"))
    diff = difference(acknowledged, present)
    trial.note(
        f"writes: {len(acknowledged)} acknowledged (201 with an id), {failed} failed "
        f"(a write is never repeated for the client); {len(set(present))} rows from the first acknowledged on; "
        f"acknowledged and missing: {len(diff.missing)}" + (f" {list(diff.missing[:8])}" if diff.missing else "")
    )
    waiting = wait_processed(ctx, acknowledged, processed_seconds)
    trial.note(
        f"{len(acknowledged) - waiting} of the {len(acknowledged)} acknowledged visits processed by the worker"
        + (f"; {waiting} not within {processed_seconds:.0f}s" if waiting else "")
    )
    if waiting:
        trial.problems.append(
            f"{waiting} acknowledged visits never processed (their task failed while the database was down)"
        )
    if diff.extra:
        trial.note(f"{len(diff.extra)} rows committed whose answer never arrived (the client saw a failure; not lost)")
    return len(diff.missing)


FAULT = Fault(
    "restart-postgres",
    "restart PostgreSQL while pages are read (GET /visits/) and visits written (POST /visits/)",
    f"0 failed page reads (a GET waits for the database in the replica); healthy again within {TARGET_SECONDS} s; "
    "0 acknowledged writes missing from PostgreSQL; every acknowledged visit processed by the worker within "
    f"{PROCESSED_SECONDS} s",
    inject,
    count=count,
    traffic=PAGES,
    max_failed_seconds=0,
    recovery_target=TARGET_SECONDS,
)
