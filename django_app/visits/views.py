import logging
import socket
from pathlib import PurePath

from django.conf import settings
from django.core.files.storage import default_storage
from django.db import transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, render
from django.utils.text import get_valid_filename
from django.views.decorators.csrf import csrf_exempt, ensure_csrf_cookie
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from kombu.exceptions import OperationalError

from visits.models import Visit
from visits.tasks import process_visit

logger = logging.getLogger(__name__)
LATEST = 10


def enqueue(visit_id: int) -> None:
    """The visit's task, sent to the broker. Celery retries the send while the broker is away
    (CELERY_TASK_PUBLISH_RETRY_POLICY: a Redis restart is waited out); if it is away for longer,
    the visit is recorded for later instead of failing the request: its row says unprocessed,
    and `enqueue_unprocessed_visits` (beat) sends it again."""
    try:
        process_visit.delay(visit_id)
    except OperationalError as error:  # kombu's: the broker did not come back in time
        logger.warning("visit %s recorded for later: the broker is unavailable (%s)", visit_id, type(error).__name__)


def record_visit(request: HttpRequest) -> Visit:
    visit = Visit.objects.create(path=request.path[:200], served_by=socket.gethostname())
    # Enqueue only once the row is committed, or a fast worker could look for it too early.
    transaction.on_commit(lambda: enqueue(visit.pk))
    return visit


@require_GET
def index(request: HttpRequest) -> HttpResponse:
    visit = record_visit(request)
    recent = Visit.objects.all()[:10]
    return render(request, "visits/index.html", {"visit": visit, "recent": recent, "hostname": socket.gethostname()})


@ensure_csrf_cookie
@require_http_methods(["GET", "POST"])
def whoami(request: HttpRequest) -> JsonResponse:
    """Which replica answered, and whether Django saw the request as HTTPS (nginx terminates TLS
    and says so in X-Forwarded-Proto). GET sets the CSRF cookie, as a page with a form does; POST
    is CSRF-protected (not exempt), so one that passes shows the CSRF checks pass behind nginx."""
    return JsonResponse({"hostname": socket.gethostname(), "secure": request.is_secure()})


# The JSON endpoints carry no cookie-based authority (there are no sessions or logins),
# so CSRF protection has nothing to protect; the smoke checks post to them directly.
@csrf_exempt
@require_http_methods(["GET", "POST"])
def visits(request: HttpRequest) -> JsonResponse:
    """POST records a visit (and enqueues its task); GET reads the latest ones (the database
    only: a page that works while the broker restarts)."""
    if request.method == "GET":
        return JsonResponse({"visits": [visit.as_json() for visit in Visit.objects.all()[:LATEST]]})
    visit = record_visit(request)
    return JsonResponse({"id": visit.pk, "status_url": f"/visits/{visit.pk}/"}, status=201)


@require_GET
def visit_detail(request: HttpRequest, visit_id: int) -> JsonResponse:
    return JsonResponse(get_object_or_404(Visit, pk=visit_id).as_json())


@csrf_exempt
@require_POST
def upload(request: HttpRequest) -> JsonResponse:
    uploaded = request.FILES.get("file")
    if uploaded is None:
        return JsonResponse({"error": "multipart field 'file' is required"}, status=400)
    if uploaded.size > settings.UPLOAD_MAX_BYTES:
        return JsonResponse({"error": f"file larger than {settings.UPLOAD_MAX_BYTES} bytes"}, status=413)
    # Only the base name, made safe; the storage appends a suffix if the name is taken.
    name = get_valid_filename(PurePath(uploaded.name or "upload").name) or "upload"
    stored = default_storage.save(f"uploads/{name}", uploaded)
    return JsonResponse({"url": default_storage.url(stored)}, status=201)
