"""kill-worker: the Celery worker dies (SIGKILL) while tasks run. With late acknowledgement the
tasks stay unacknowledged in Redis; once older than the broker's visibility timeout a worker's
sweep puts them back on the queue (django_app/config/settings/base.py says where in kombu), and
the restarted worker runs them to completion."""

import json
import re
import time

from rehearsal.faults.actions import back_after_crash, crash, logs_since, one, ops, processed, redis_cli, wait_for
from rehearsal.faults.fault import READS, Fault
from rehearsal.scenarios import ScenarioFailed

WORK_SECONDS = 10  # each task's run (process_visit's work_seconds, capped at 20 there): long enough to be mid-run
BACK_SECONDS = 60
SWEEP_SECONDS = 10  # kombu's unacked_restore_interval (the app sets the throttle to 1)
MARGIN_SECONDS = 30

ENQUEUE = """
import json
from django.conf import settings
from visits.models import Visit
from visits.tasks import process_visit
ids = []
for _ in range({count}):
    visit = Visit.objects.create(path="/rehearsal/kill-worker/", served_by="ops manage")
    process_visit.delay(visit.pk, work_seconds={work})
    ids.append(visit.pk)
options = settings.CELERY_BROKER_TRANSPORT_OPTIONS
print("ENQUEUED " + json.dumps({{"ids": ids, "visibility_timeout": options.get("visibility_timeout", 3600)}}))
"""


def concurrency(worker: dict) -> int:
    argv = worker["Config"]["Cmd"] or []
    return int(argv[argv.index("--concurrency") + 1]) if "--concurrency" in argv else 1


def working(ctx, cid: str, since: float, ids: list[int]) -> int:
    text = logs_since(ctx, cid, since)
    return sum(len(re.findall(rf"visit {i}: working", text)) for i in ids)


def inject(ctx, trial) -> None:
    name, worker = one(ctx, "celery-worker")
    count = concurrency(worker)  # one task per pool process: every process is mid-task
    since = time.time() - 1
    code, out, err = ops(ctx, "manage", "--", "shell", "--command", ENQUEUE.format(count=count, work=WORK_SECONDS))
    found = re.search(r"^ENQUEUED (.*)$", out, re.MULTILINE)
    if code != 0 or not found:
        raise ScenarioFailed(f"`ops manage shell` exit {code}: {(out + err).strip().splitlines()[-3:]}")
    enqueued = json.loads(found.group(1))
    ids, visibility = enqueued["ids"], int(enqueued["visibility_timeout"])
    trial.note(
        f"`python -m ops manage {ctx.stack} -- shell` enqueued {count} visits' tasks ({ids}), "
        f"{WORK_SECONDS}s of work each; the broker's visibility timeout is {visibility}s"
    )
    wait_for("every task to be running", lambda: working(ctx, worker["Id"], since, ids) >= count, 60, 0.5)
    killed_at = ctx.psql("select now()")
    before = worker["RestartCount"]
    crashed = time.monotonic()
    policy = crash(ctx, worker["Id"])
    unacked = redis_cli(ctx, "hlen", "unacked")
    trial.note(
        f"SIGKILL {name}'s processes from the host with {count} tasks mid-run; "
        f"{unacked} deliveries unacknowledged in Redis"
    )
    how = back_after_crash(ctx, worker["Id"], policy, before, BACK_SECONDS)
    trial.recovery_seconds = time.monotonic() - crashed
    trial.note(f"{name}: {how}; healthy again after {trial.recovery_seconds:.1f}s")
    restarted = time.time() - 1
    bound = visibility + SWEEP_SECONDS + WORK_SECONDS + MARGIN_SECONDS
    try:
        took = f"{wait_for('the tasks to be redelivered and completed', lambda: processed(ctx, ids, killed_at) == count, bound, 1):.0f}s"
    except ScenarioFailed:
        took = f"{bound}s"
    done = processed(ctx, ids, killed_at)
    trial.lost = count - done
    runs = working(ctx, worker["Id"], restarted, ids)
    trial.note(
        f"{done} of {count} tasks redelivered and completed {time.monotonic() - crashed:.0f}s after the kill "
        f"(bound: visibility timeout + sweep + work + {MARGIN_SECONDS}s = {bound}s; waited {took}); "
        f"{runs} runs after the restart"
    )
    if runs > count:
        trial.problems.append(f"{runs} runs for {count} tasks after the restart: a task was delivered twice")


FAULT = Fault(
    "kill-worker",
    "SIGKILL the Celery worker with every pool process mid-task",
    "the worker comes back healthy within 60 s; every task is redelivered after the visibility timeout and "
    "completes (acks_late), once; 0 lost; no request fails",
    inject,
    traffic=READS,
    max_failed_seconds=0,
    recovery_target=BACK_SECONDS,
)
