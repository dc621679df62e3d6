"""The Celery app: configured from Django settings (CELERY_* names), tasks autodiscovered."""

from celery import Celery

from django_docker_runtime import env

env.default_settings_module("config.settings.production")

app = Celery("config")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
