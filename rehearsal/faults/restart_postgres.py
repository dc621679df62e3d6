"""restart-postgres: the database restarts (`docker restart`: a fast shutdown, then start) while
requests that write flow. Writes fail for a few seconds; every acknowledged one is in PostgreSQL
afterwards."""

import time

from rehearsal.faults.actions import healthy, one, processed, serves, wait_for
from rehearsal.faults.fault import WRITES, Fault, difference, parse_ids
from rehearsal.scenarios import ScenarioFailed

FLOW_SECONDS = 3.0  # writes before and after the restart
TARGET_SECONDS = 30
# For every acknowledged visit to be processed too: a task that ran while the database was down
# retries (visits.tasks.process_visit: 1, 2, 4 ... s apart) rather than failing for good.
PROCESSED_SECONDS = 60


def inject(ctx, trial) -> None:
    name, postgres = one(ctx, "postgres")
    time.sleep(FLOW_SECONDS)
    started = time.monotonic()
    ctx.session.client.api.restart(postgres["Id"])
    trial.note(f"`docker restart` {name} took {time.monotonic() - started:.1f}s")
    wait_for("postgres healthy and /health/ 200 again", lambda: healthy(ctx, postgres["Id"]) and serves(ctx), 90, 0.2)
    trial.recovery_seconds = time.monotonic() - started
    trial.note(
        f"healthy again (Docker's healthcheck and /health/ through nginx) {trial.recovery_seconds:.1f}s "
        "after the restart began"
    )
    time.sleep(FLOW_SECONDS)


def wait_processed(ctx, ids: list[int], seconds: float = PROCESSED_SECONDS) -> int:
    """How many of the visits are still unprocessed after at most `seconds`."""
    try:
        wait_for("the acknowledged visits to be processed", lambda: processed(ctx, ids) == len(ids), seconds, 1)
    except ScenarioFailed:
        pass
    return len(ids) - processed(ctx, ids)


def count(ctx, trial, report, processed_seconds: float = PROCESSED_SECONDS) -> int:
    acknowledged = [int(i) for i in report.collected]
    if not acknowledged:
        raise ScenarioFailed("no write was acknowledged")
    # Every row from the load's first acknowledged write on (nothing else writes meanwhile).
    present = parse_ids(ctx.psql(f"select id from visits_visit where id >= {min(acknowledged)}"))
    diff = difference(acknowledged, present)
    trial.note(
        f"{len(acknowledged)} writes acknowledged (201 with an id), {len(set(present))} rows from the first "
        f"of them on; acknowledged and missing: {len(diff.missing)}"
        + (f" {list(diff.missing[:8])}" if diff.missing else "")
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
    "restart PostgreSQL while POST /visits/ writes flow",
    "healthy again within 30 s; requests fail in at most 30 distinct seconds; 0 acknowledged writes missing "
    f"from PostgreSQL; every acknowledged visit processed by the worker within {PROCESSED_SECONDS} s",
    inject,
    count=count,
    traffic=WRITES,
    max_failed_seconds=TARGET_SECONDS,
    recovery_target=TARGET_SECONDS,
)
