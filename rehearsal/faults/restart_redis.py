"""restart-redis: Redis, the Celery broker, restarts with tasks queued (the worker stopped, so
they wait). Its append-only file brings them back; the worker processes every one."""

import time

from rehearsal.faults.actions import healthy, one, post_visits, processed, redis_cli, serves, wait_for
from rehearsal.faults.fault import READS, Fault
from rehearsal.scenarios import ScenarioFailed

TASKS = 20
# appendfsync everysec (components.render.redis_command): a write reaches the AOF on disk within
# about a second (Redis may postpone it up to 2 s while an earlier fsync is slow). Waiting longer
# than that before the restart tests what the AOF promises, not a lucky shutdown.
AOF_SECONDS = 2.5
PROCESSED_SECONDS = 60
TARGET_SECONDS = 30


def inject(ctx, trial) -> None:
    api = ctx.session.client.api
    worker_name, worker = one(ctx, "celery-worker")
    redis_name, redis = one(ctx, "redis")
    api.stop(worker["Id"])  # a stopped container stays stopped whatever its restart policy
    trial.note(f"stopped {worker_name}, so tasks queue")
    try:
        ids = post_visits(ctx, TASKS)
        trial.data["ids"] = ids
        before = int(redis_cli(ctx, "llen", "celery"))
        trial.note(f"{TASKS} visits posted and acknowledged (ids {ids[0]}-{ids[-1]}); {before} tasks queued in Redis")
        time.sleep(AOF_SECONDS)
        started = time.monotonic()
        api.restart(redis["Id"])
        wait_for("redis healthy and /health/ 200 again", lambda: healthy(ctx, redis["Id"]) and serves(ctx), 90, 0.2)
        trial.recovery_seconds = time.monotonic() - started
        after = int(redis_cli(ctx, "llen", "celery"))
        trial.note(
            f"restarted {redis_name} {AOF_SECONDS}s after the last enqueue; healthy again after "
            f"{trial.recovery_seconds:.1f}s; {after} tasks queued after the restart"
        )
    finally:
        api.start(worker["Id"])
    try:
        took = f"{wait_for('the queued visits to be processed', lambda: processed(ctx, ids) == TASKS, PROCESSED_SECONDS, 0.5):.1f}s"
    except ScenarioFailed:
        took = f"{PROCESSED_SECONDS}s"
    done = processed(ctx, ids)
    trial.lost = TASKS - done
    trial.note(f"started {worker_name}: {done} of {TASKS} queued visits processed {took} later")


FAULT = Fault(
    "restart-redis",
    f"restart Redis with {TASKS} tasks queued (worker stopped)",
    f"0 of the {TASKS} queued tasks lost (AOF, fsync every second): all processed within {PROCESSED_SECONDS} s "
    "of the worker's start; healthy again within 30 s; /health/ (which pings Redis) fails in at most 30 seconds",
    inject,
    traffic=READS,
    max_failed_seconds=TARGET_SECONDS,
    recovery_target=TARGET_SECONDS,
)
