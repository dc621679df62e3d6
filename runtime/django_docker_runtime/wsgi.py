"""gunicorn's application for a WSGI app: `django_docker_runtime.wsgi:application`.

APP_MODULE names the team's own (e.g. `config.wsgi:application`); importing it sets Django up.
The health answer comes first; behind it, a request that may be repeated is repeated when the
database was briefly away (django_docker_runtime.retry).
"""

from django_docker_runtime import app, health, retry

application = health.wsgi(retry.wsgi(app.load()))
