"""restart-redis: Redis, the Celery broker and the cache, restarts with tasks queued (the worker
stopped, so they wait) while pages are read and visits posted. Pages that do not need the broker
never notice (a replica's readiness is the database's: django_docker_runtime.health, and nginx
does not count /health/'s 503 against a replica: render.nginx_conf); /health/ reports the broker
down meanwhile; a visit posted meanwhile waits for its task's send (Celery's publish retry) and is
acknowledged; the append-only file brings the queue back and the worker processes every task."""

import time

from rehearsal.faults.actions import (
    HealthWatch,
    Writer,
    healthy,
    one,
    post_visits,
    processed,
    redis_cli,
    serves,
    wait_for,
)
from rehearsal.faults.fault import PAGES, Fault
from rehearsal.scenarios import ScenarioFailed

TASKS = 20
# appendfsync everysec (components.render.redis_command): a write reaches the AOF on disk within
# about a second (Redis may postpone it up to 2 s while an earlier fsync is slow). Waiting longer
# than that before the restart tests what the AOF promises, not a lucky shutdown.
AOF_SECONDS = 2.5
PROCESSED_SECONDS = 60
TARGET_SECONDS = 30
DOWN_SECONDS = 3.0  # Redis stopped this long before it starts again


def inject(ctx, trial) -> None:
    api = ctx.session.client.api
    worker_name, worker = one(ctx, "celery-worker")
    redis_name, redis = one(ctx, "redis")
    api.stop(worker["Id"])  # a stopped container stays stopped whatever its restart policy
    trial.note(f"stopped {worker_name}, so tasks queue")
    writer, watch = Writer(ctx), HealthWatch(ctx)
    try:
        ids = post_visits(ctx, TASKS)
        before = int(redis_cli(ctx, "llen", "celery"))
        trial.note(f"{TASKS} visits posted and acknowledged (ids {ids[0]}-{ids[-1]}); {before} tasks queued in Redis")
        time.sleep(AOF_SECONDS)
        watch.start()
        writer.start()
        started = time.monotonic()
        # A restart that takes a few seconds, as an upgrade or a big append-only file's load does
        # (`docker restart` of this Redis is back before /health/'s broker check even retries).
        api.stop(redis["Id"], timeout=30)
        time.sleep(DOWN_SECONDS)
        api.start(redis["Id"])
        wait_for("redis healthy and /health/ 200 again", lambda: healthy(ctx, redis["Id"]) and serves(ctx), 90, 0.2)
        trial.recovery_seconds = time.monotonic() - started
        during = writer.finish()
        seen = watch.finish()
        after = int(redis_cli(ctx, "llen", "celery"))
        trial.note(
            f"restarted {redis_name} {AOF_SECONDS}s after the last enqueue (stopped, {DOWN_SECONDS:.0f}s down, "
            f"started); healthy again after "
            f"{trial.recovery_seconds:.1f}s; {after} tasks queued after the restart"
        )
        trial.note(f"/health/ meanwhile: {' -> '.join(seen.seen)}")
        if not any("broker=error" in answer for answer in seen.seen):
            trial.problems.append("/health/ never reported the broker down while Redis restarted")
        trial.note(
            f"{len(during.acknowledged)} visits posted during the restart acknowledged, {len(during.failed)} failed"
            + (f" ({', '.join(sorted(set(during.failed)))})" if during.failed else "")
            + f"; the slowest answer took {during.slowest:.1f}s (its task's send waited for the broker)"
        )
        if during.failed:
            trial.problems.append(f"{len(during.failed)} visits posted during the restart failed")
        ids = ids + during.acknowledged
    finally:
        writer.finish()
        watch.finish()
        api.start(worker["Id"])
    total = len(ids)
    try:
        took = f"{wait_for('the queued visits to be processed', lambda: processed(ctx, ids) == total, PROCESSED_SECONDS, 0.5):.1f}s"
    except ScenarioFailed:
        took = f"{PROCESSED_SECONDS}s"
    done = processed(ctx, ids)
    trial.lost = total - done
    trial.note(f"started {worker_name}: {done} of {total} visits' tasks processed {took} later")


FAULT = Fault(
    "restart-redis",
    f"restart Redis ({DOWN_SECONDS:.0f} s down) with {TASKS} tasks queued (worker stopped) while pages are read "
    "and visits posted",
    "0 failed page reads (GET /visits/ needs no broker); /health/ reports the broker down meanwhile; every "
    f"visit posted during the restart acknowledged; 0 tasks lost (AOF, publish retry): all processed within "
    f"{PROCESSED_SECONDS} s of the worker's start; healthy again within {TARGET_SECONDS} s",
    inject,
    traffic=PAGES,
    max_failed_seconds=0,
    recovery_target=TARGET_SECONDS,
)
