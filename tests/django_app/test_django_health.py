"""/health/ against the real PostgreSQL and Redis: all good, database down, Redis down."""

import pytest
from django.db import connections
from django_app_support import closed_port

pytestmark = pytest.mark.django_db


def test_healthy_answers_200_with_each_check_and_the_git_sha(client, settings):
    settings.GIT_SHA = "0123abc"

    response = client.get("/health/")

    assert response.status_code == 200
    assert response.json() == {"status": "ok", "checks": {"database": "ok", "redis": "ok"}, "git_sha": "0123abc"}
    assert response["Cache-Control"] == "no-store"


def test_redis_down_answers_503_naming_redis(client, settings):
    settings.REDIS_URL = f"redis://127.0.0.1:{closed_port()}/0"

    response = client.get("/health/")

    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "error"
    assert body["checks"]["database"] == "ok"
    assert body["checks"]["redis"].startswith("error")
    assert "ConnectionError" in body["checks"]["redis"]


@pytest.mark.django_db(transaction=True)  # no open test transaction to break by reconnecting
def test_database_down_answers_503_naming_the_database(client):
    connection = connections["default"]
    real_port = connection.settings_dict["PORT"]
    connection.close()
    connection.settings_dict["PORT"] = closed_port()
    try:
        response = client.get("/health/")
    finally:
        connection.close()
        connection.settings_dict["PORT"] = real_port

    assert response.status_code == 503
    body = response.json()
    assert body["checks"]["redis"] == "ok"
    assert body["checks"]["database"] == "error: OperationalError"


def test_health_answers_any_host_but_other_pages_still_check_it(client):
    # The container healthcheck's Host is 127.0.0.1:8000, which is not an allowed host.
    assert client.get("/health/", HTTP_HOST="127.0.0.1:8000").status_code == 200
    assert client.get("/whoami/", HTTP_HOST="127.0.0.1:8000").status_code == 400


def test_health_is_not_redirected_to_https(client, settings):
    # The healthcheck speaks plain HTTP to the container even when the site redirects.
    settings.SECURE_SSL_REDIRECT = True

    assert client.get("/health/").status_code == 200
    assert client.get("/whoami/").status_code == 301


def test_health_only_answers_get_and_head(client):
    assert client.head("/health/").status_code == 200
    assert client.post("/health/").status_code == 404
