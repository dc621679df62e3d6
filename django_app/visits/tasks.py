import logging
import socket

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
