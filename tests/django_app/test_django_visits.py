"""The feature that proves a deployment end to end: a visit recorded in PostgreSQL and
processed by a real Celery worker process, an upload stored under media, the static asset,
and the replica's hostname."""

import socket
import subprocess
import sys
from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from tests.django_support import APP_DIR, app_env, closed_port, run_app, stop, test_database_url, wait_until
from visits.models import Visit
from visits.tasks import enqueue_unprocessed_visits

HOSTNAME = socket.gethostname()


def test_whoami_names_the_replica_that_answered(client):
    response = client.get("/whoami/")

    assert response.status_code == 200
    assert response.json() == {"hostname": HOSTNAME, "secure": False}
    assert "csrftoken" in response.cookies  # what a form page gives a browser


def test_whoami_post_is_csrf_protected():
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    assert client.post("/whoami/").status_code == 403
    token = client.get("/whoami/").cookies["csrftoken"].value
    response = client.post("/whoami/", HTTP_X_CSRFTOKEN=token)
    assert response.status_code == 200
    assert response.json() == {"hostname": HOSTNAME, "secure": False}


@pytest.mark.django_db
def test_the_page_records_a_visit_and_uses_the_static_asset(client):
    response = client.get("/")

    assert response.status_code == 200
    assert '<link rel="stylesheet" href="/static/visits/site.css">' in response.content.decode()
    visit = Visit.objects.get()
    assert (visit.path, visit.served_by, visit.processed) == ("/", HOSTNAME, False)


@pytest.mark.django_db
def test_posting_a_visit_records_it_and_answers_its_status_url(client):
    response = client.post("/visits/")

    assert response.status_code == 201
    visit = Visit.objects.get()
    assert response.json() == {"id": visit.pk, "status_url": f"/visits/{visit.pk}/"}
    assert client.get(f"/visits/{visit.pk}/").json() == {"id": visit.pk, "processed": False, "processed_by": None}


@pytest.mark.django_db
def test_the_latest_visits_are_read_from_the_database_alone(client):
    ids = [client.post("/visits/").json()["id"] for _ in range(12)]

    response = client.get("/visits/")

    assert response.status_code == 200
    assert [v["id"] for v in response.json()["visits"]] == ids[::-1][:10]  # newest first, ten


@pytest.mark.django_db(transaction=True)
def test_a_visit_whose_task_cannot_be_sent_is_recorded_for_later_not_failed(client, monkeypatch, caplog):
    from kombu.exceptions import OperationalError

    from visits import views

    def broker_away(visit_id):  # what delay() raises once the publish retry policy gave up
        raise OperationalError("Error 111 connecting to redis:6379. Connection refused.")

    monkeypatch.setattr(views.process_visit, "delay", broker_away)

    response = client.post("/visits/")

    assert response.status_code == 201
    visit = Visit.objects.get(pk=response.json()["id"])
    assert visit.processed_at is None  # the sweep (enqueue_unprocessed_visits) sends it again
    assert f"visit {visit.pk} recorded for later: the broker is unavailable (OperationalError)" in caplog.text
    assert "6379" not in caplog.text


@pytest.mark.django_db
def test_unknown_visit_is_404(client):
    assert client.get("/visits/999999/").status_code == 404


@pytest.mark.django_db(transaction=True)  # the worker process must see the committed row
def test_a_real_celery_worker_processes_the_visit_and_writes_back(client, celery_worker):
    response = client.post("/visits/")
    status_url = response.json()["status_url"]

    status = wait_until(
        lambda: (body := client.get(status_url).json())["processed"] and body,
        timeout=30,
        what="the worker to process the visit",
    )

    assert status == {"id": response.json()["id"], "processed": True, "processed_by": HOSTNAME}
    assert Visit.objects.get(pk=status["id"]).visits_so_far >= 1


@pytest.mark.django_db(transaction=True)
def test_beats_sweep_enqueues_lost_visits_again_for_the_worker(celery_worker):
    lost = Visit.objects.create(path="/", served_by="gone")  # recorded, but its task was lost
    Visit.objects.filter(pk=lost.pk).update(created_at=timezone.now() - timedelta(minutes=10))
    recent = Visit.objects.create(path="/", served_by="web")  # its task may still be queued

    assert enqueue_unprocessed_visits() == 1

    wait_until(lambda: Visit.objects.get(pk=lost.pk).processed, timeout=30, what="the lost visit to be processed")
    assert Visit.objects.get(pk=recent.pk).processed is False


def test_celery_beat_starts_with_the_contract_command(settings, tmp_path):
    log = tmp_path / "beat.log"
    env = app_env(
        CELERY_APP="config",
        DJANGO_SETTINGS_MODULE="config.settings.test",
        DATABASE_URL=settings.DATABASE_URL,
        REDIS_URL=settings.REDIS_URL,
    )
    schedule = tmp_path / "celerybeat-schedule"  # the contract's is /tmp/celerybeat-schedule
    with log.open("w") as output:
        process = subprocess.Popen(
            ["celery", "--app", "config", "beat", "--loglevel", "INFO", "--schedule", str(schedule)],
            cwd=APP_DIR,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            wait_until(lambda: "beat: Starting..." in log.read_text(), timeout=30, what="beat to start")
            # The container healthcheck of the beat role passes while beat runs...
            assert run_app(sys.executable, "-m", "django_docker_runtime.healthcheck", "beat", env=env).returncode == 0
            # ...and fails when its broker is gone.
            no_broker = {**env, "REDIS_URL": f"redis://127.0.0.1:{closed_port()}/0"}
            assert (
                run_app(sys.executable, "-m", "django_docker_runtime.healthcheck", "beat", env=no_broker).returncode
                == 1
            )
        finally:
            stop(process)
    assert "Traceback" not in log.read_text()
    # ...and fails once beat has stopped.
    assert run_app(sys.executable, "-m", "django_docker_runtime.healthcheck", "beat", env=env).returncode == 1


@pytest.mark.django_db(transaction=True)
def test_worker_healthcheck_pings_its_own_node(celery_worker, settings):
    env = app_env(
        CELERY_APP="config",
        DJANGO_SETTINGS_MODULE="config.settings.test",
        DATABASE_URL=test_database_url(),
        REDIS_URL=settings.REDIS_URL,
    )

    assert run_app(sys.executable, "-m", "django_docker_runtime.healthcheck", "worker", env=env).returncode == 0


def test_celery_is_configured_for_reliability(settings):
    from config.celery import app

    assert app.conf.task_acks_late is True
    assert app.conf.worker_prefetch_multiplier == 1
    assert app.conf.task_reject_on_worker_lost is True
    assert app.conf.broker_url == settings.REDIS_URL
    app.loader.import_default_modules()
    assert "visits.tasks.process_visit" in app.tasks
    # A task lost with its worker comes back after the visibility timeout (kombu's redis
    # transport), which must outlast any running task, and is swept for every 10 s.
    options = app.conf.broker_transport_options
    assert app.conf.task_time_limit < options["visibility_timeout"] <= app.conf.task_time_limit + 60
    assert options["unacked_restore_throttle"] == 1
    # A send waits out a broker restart (a few seconds) instead of failing its request.
    policy = app.conf.task_publish_retry_policy
    assert app.conf.task_publish_retry is True
    waited = sum(
        min(policy["interval_start"] + i * policy["interval_step"], policy["interval_max"])
        for i in range(policy["max_retries"])
    )
    assert 15 <= waited <= 30


@pytest.mark.django_db
def test_a_task_can_be_made_to_work_a_bounded_time(monkeypatch):
    from visits import tasks

    slept = []
    monkeypatch.setattr(tasks.time, "sleep", slept.append)
    visit = Visit.objects.create(path="/", served_by="web")

    tasks.process_visit(visit.pk, work_seconds=3600)

    assert slept == [tasks.WORK_SECONDS_MAX] and tasks.WORK_SECONDS_MAX < 50  # the soft time limit
    assert Visit.objects.get(pk=visit.pk).processed
    tasks.process_visit(visit.pk)
    assert slept == [tasks.WORK_SECONDS_MAX]  # no work unless asked


def test_a_visit_is_retried_while_the_database_is_away():
    from django.db import OperationalError

    from visits.tasks import process_visit

    assert OperationalError in process_visit.autoretry_for and process_visit.max_retries >= 5
    # Each countdown (at most retry_backoff_max) stays below the broker's visibility timeout:
    # a retry waiting for its ETA is held unacknowledged by the worker.
    from config.celery import app

    assert process_visit.retry_backoff_max < app.conf.broker_transport_options["visibility_timeout"]


def test_upload_is_stored_under_media_uploads(client, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path

    response = client.post("/uploads/", {"file": SimpleUploadedFile("hello world.txt", b"hello\n")})

    assert response.status_code == 201
    assert response.json() == {"url": "/media/uploads/hello_world.txt"}
    assert (tmp_path / "uploads" / "hello_world.txt").read_bytes() == b"hello\n"


def test_upload_keeps_the_existing_file_and_strips_directories(client, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    client.post("/uploads/", {"file": SimpleUploadedFile("notes.txt", b"first")})

    second = client.post("/uploads/", {"file": SimpleUploadedFile("../../notes.txt", b"second")})

    url = second.json()["url"]
    assert url.startswith("/media/uploads/notes_") and url.endswith(".txt")
    assert (tmp_path / "uploads" / "notes.txt").read_bytes() == b"first"
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == sorted(["notes.txt", url.rsplit("/", 1)[1]])


def test_upload_without_a_file_is_400(client):
    assert client.post("/uploads/", {}).status_code == 400


def test_upload_over_the_limit_is_413(client, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    settings.UPLOAD_MAX_BYTES = 10

    response = client.post("/uploads/", {"file": SimpleUploadedFile("big.bin", b"x" * 11)})

    assert response.status_code == 413
    assert not (tmp_path / "uploads").exists()
