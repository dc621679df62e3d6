"""gunicorn's application for an ASGI app (with `-k uvicorn_worker.UvicornWorker`):
`django_docker_runtime.asgi:application`. APP_MODULE names the team's own (e.g. `config.asgi:application`).
"""

from django_docker_runtime import app, health

application = health.asgi(app.load())
