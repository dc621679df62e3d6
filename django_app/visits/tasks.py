import logging
import socket
from datetime import timedelta

from celery import shared_task
from django.utils import timezone

from visits.models import Visit

logger = logging.getLogger(__name__)


@shared_task
def process_visit(visit_id: int) -> None:
    """Write the worker's result back to the visit. Idempotent: with late acknowledgement a
    task can be delivered twice, and the second run only rewrites the same facts."""
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
