"""gunicorn's application for an ASGI app (with `-k uvicorn_worker.UvicornWorker`):
`django_docker_runtime.asgi:application`. APP_MODULE names the team's own (e.g. `config.asgi:application`).
The health answer comes first; behind it, a request that may be repeated is repeated when the
database was briefly away (django_docker_runtime.retry).
"""

from django_docker_runtime import app, health, retry

application = health.asgi(retry.asgi(app.load()))
