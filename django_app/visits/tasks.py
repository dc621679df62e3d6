import logging
import socket
import time
from datetime import timedelta

from celery import shared_task
from django.db import InterfaceError, OperationalError
from django.utils import timezone

from visits.models import Visit

logger = logging.getLogger(__name__)


# The longest `work_seconds` a task may be given: well below CELERY_TASK_SOFT_TIME_LIMIT (50 s).
WORK_SECONDS_MAX = 20.0


# A database that restarts or fails over refuses connections for a few seconds: retry then,
# (1, 2, 4, ... 30 s apart, about 1.5 minutes in all) rather than fail the task for good (the fault
# rehearsal's restart-postgres found visits whose task ran in that window never processed).
@shared_task(autoretry_for=(OperationalError, InterfaceError), retry_backoff=1, retry_backoff_max=30, max_retries=6)
def process_visit(visit_id: int, work_seconds: float = 0.0) -> None:
    """Write the worker's result back to the visit. Idempotent: with late acknowledgement a
    task can be delivered twice, and the second run only rewrites the same facts.

    `work_seconds` (capped at WORK_SECONDS_MAX) makes the task take that long before it writes:
    the fault rehearsal's kill-worker needs a task that is mid-run when its worker dies. No HTTP
    request can set it; only code that enqueues the task (a `manage shell`) can."""
    work_seconds = min(max(float(work_seconds), 0.0), WORK_SECONDS_MAX)
    if work_seconds:
        logger.info("visit %s: working %.0fs before writing back", visit_id, work_seconds)
        time.sleep(work_seconds)
    updated = Visit.objects.filter(pk=visit_id).update(
        processed_at=timezone.now(),
        processed_by=socket.gethostname(),
        visits_so_far=Visit.objects.filter(pk__lte=visit_id).count(),
    )
    if not updated:
        logger.warning("visit %s does not exist", visit_id)


@shared_task
def enqueue_unprocessed_visits(older_than_seconds: int = 300, limit: int = 500) -> int:
    """Celery beat's job: enqueue again the visits whose task was lost (a broker restarted
    without its data, say). A duplicate of a task still queued is harmless: see above."""
    cutoff = timezone.now() - timedelta(seconds=older_than_seconds)
    stale = Visit.objects.filter(processed_at__isnull=True, created_at__lt=cutoff).order_by("pk")
    visit_ids = list(stale.values_list("pk", flat=True)[:limit])
    for visit_id in visit_ids:
        process_visit.delay(visit_id)
    if visit_ids:
        logger.info("enqueued %d unprocessed visits again", len(visit_ids))
    return len(visit_ids)
