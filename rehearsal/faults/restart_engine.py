"""restart-engine: the Docker engine itself restarts (a host reboot, `systemctl restart docker`,
an engine upgrade) while requests that write flow. Only on a private engine of the rehearsal's
own (`make rehearse-remote`), never the main one: the Context must carry `engine_restart`.

The daemon stops every container (SIGTERM, their stop timeouts), exits, starts again, and starts
again every container whose restart policy says so (`unless-stopped`: not stopped by hand). The
stack serves again once postgres, redis, the web replicas and nginx are up and healthy; every
acknowledged write must be in PostgreSQL (a clean shutdown), and processed by the worker.
Not in `all_faults()`: `make rehearse-faults` runs on the main engine.
"""

import functools
import time

from rehearsal.faults import restart_postgres
from rehearsal.faults.actions import serves, unhealthy, wait_for
from rehearsal.faults.fault import WRITES, Fault
from rehearsal.scenarios import ScenarioFailed

FLOW_SECONDS = 3.0  # writes before and after the restart
TARGET_SECONDS = 90  # the engine's stop (containers' grace periods) and start, then health
# A task the worker held when the engine stopped it stays unacknowledged in Redis (acks_late)
# and is delivered again once older than the broker's visibility timeout, at the next sweep
# (django_app settings: CELERY_TASK_TIME_LIMIT 60 + 30; sweeps every 10 s; see kill-worker).
PROCESSED_SECONDS = 60 + 30 + 10 + 20


def inject(ctx, trial) -> None:
    restart = getattr(ctx, "engine_restart", None)
    if restart is None:
        raise ScenarioFailed("restart-engine runs only on a private engine (make rehearse-remote)")
    time.sleep(FLOW_SECONDS)
    started = time.monotonic()
    stopped, answered = restart()
    trial.note(
        f"dockerd stopped in {stopped:.1f}s (its containers with it), answered again {answered:.1f}s after its start"
    )
    wait_for("every container healthy and /health/ 200 again", lambda: not unhealthy(ctx) and serves(ctx), 180, 0.5)
    trial.recovery_seconds = time.monotonic() - started
    trial.note(
        f"the stack serves again, every container healthy, {trial.recovery_seconds:.1f}s after the restart began"
    )
    time.sleep(FLOW_SECONDS)


FAULT = Fault(
    "restart-engine",
    "restart the Docker engine while POST /visits/ writes flow",
    f"serving again within {TARGET_SECONDS} s; requests fail only while it is down; 0 acknowledged writes "
    f"missing from PostgreSQL; every acknowledged visit processed within {PROCESSED_SECONDS} s (a task the "
    "worker held comes again after the broker's visibility timeout); then a refresh and a plan change nothing",
    inject,
    count=functools.partial(restart_postgres.count, processed_seconds=PROCESSED_SECONDS),
    traffic=WRITES,
    max_failed_seconds=None,  # every request fails while the engine is down: that is the fault
    recovery_target=TARGET_SECONDS,
)
