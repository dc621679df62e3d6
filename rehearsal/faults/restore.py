"""restore: the operator backs up, more rows are written, and the backup is restored with the
app stopped (`python -m ops backup` / `python -m ops restore --stop-app`). Afterwards the
database holds exactly the backed-up rows, and the site serves. Requests fail while the app is
stopped: that is the restore's price, and `--stop-app` says so."""

import re
import time

from rehearsal.faults.actions import ops, post_visits, serves, unhealthy, wait_for
from rehearsal.faults.fault import READS, Fault, parse_backup, parse_rows, rows_difference
from rehearsal.scenarios import ScenarioFailed

MORE_ROWS = 10
ROUND_TRIP_TARGET_SECONDS = 10
REPLAYED = re.compile(r"replayed in (\d+(?:\.\d+)?)s")
TARGET_SECONDS = 180  # ops restore's own bound for the app to be healthy again
# The columns a visit is written with (the worker's columns change as it processes).
ROWS = "select id, md5(concat_ws('|', created_at, path, served_by)) from visits_visit"


def inject(ctx, trial) -> None:
    backed_up = parse_rows(ctx.psql(ROWS))
    backup_started = time.monotonic()
    code, out, err = ops(ctx, "backup")
    backup_seconds = time.monotonic() - backup_started
    if code != 0:
        raise ScenarioFailed(f"`ops backup` exit {code}: {(out + err).strip().splitlines()[-2:]}")
    name, size = parse_backup(out)
    if parse_rows(ctx.psql(ROWS)) != backed_up:
        raise ScenarioFailed("rows were written while the backup ran: the backed-up set is not known")
    trial.note(f"`python -m ops backup {ctx.stack}`: {name} ({size} bytes), {len(backed_up)} rows")
    ids = post_visits(ctx, MORE_ROWS)
    trial.note(f"{MORE_ROWS} more visits written after the backup (ids {ids[0]}-{ids[-1]})")
    started = time.monotonic()
    code, out, err = ops(ctx, "restore", name, "--stop-app")
    if code != 0:
        raise ScenarioFailed(f"`ops restore --stop-app` exit {code}: {(out + err).strip().splitlines()[-2:]}")
    restore_seconds = time.monotonic() - started
    trial.note(
        f"`python -m ops restore {ctx.stack} {name} --stop-app` exit 0 in {restore_seconds:.1f}s: "
        + (out.strip().splitlines() or ["(no output)"])[-1][:140]
    )
    replay = REPLAYED.search(out)
    if replay:
        # The database's round trip: the dump, then the replay (stopping and starting the app is not in it).
        trial.note(
            f"backup + restore round trip of the database: {backup_seconds:.1f}s + {float(replay.group(1)):.1f}s "
            f"= {backup_seconds + float(replay.group(1)):.1f}s (target < {ROUND_TRIP_TARGET_SECONDS} s; "
            f"the whole restore with the app stopped and healthy again: {restore_seconds:.1f}s)"
        )
    serves_restored(ctx, trial, backed_up, started)
    # The site serves: it reads, and it writes with ids that follow the restored sequence.
    new = post_visits(ctx, 1)[0]
    ok = ctx.get(f"/visits/{new}/").status_code == 200 and ctx.get("/").status_code == 200
    if not ok:
        raise ScenarioFailed("the site does not serve after the restore")
    trial.note(f"the site serves: GET / 200, a new visit {new} recorded and readable")


def serves_restored(ctx, trial, backed_up, started: float):
    """After a restore: every container healthy and /health/ 200 again (the recovery time from
    `started`), then the rows compared with the backed-up ones (what differs counts as lost)."""
    wait_for(
        "every container healthy and /health/ 200", lambda: not unhealthy(ctx) and serves(ctx), TARGET_SECONDS, 0.5
    )
    trial.recovery_seconds = time.monotonic() - started
    restored = parse_rows(ctx.psql(ROWS))
    diff = rows_difference(backed_up, restored)
    trial.lost = diff.count
    trial.note(
        f"{len(restored)} rows after the restore, {len(backed_up)} backed up: "
        + ("exactly the backed-up rows" if not diff.count else diff.describe())
    )
    return restored, diff


FAULT = Fault(
    "restore",
    f"back up, write {MORE_ROWS} more rows, restore the backup with the app stopped",
    "exactly the backed-up rows afterwards (lost: rows missing, extra or changed); the site serves again within "
    f"{TARGET_SECONDS} s; requests may fail while `--stop-app` has the app stopped",
    inject,
    traffic=READS,
    max_failed_seconds=None,
    recovery_target=TARGET_SECONDS,
)
