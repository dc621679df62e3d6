"""The Celery app: configured from Django settings (CELERY_* names), tasks autodiscovered."""

from celery import Celery

from config import env

env.default_settings_module()

app = Celery("config")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
