"""gunicorn's application for a WSGI app: `django_docker_runtime.wsgi:application`.

APP_MODULE names the team's own (e.g. `config.wsgi:application`); importing it sets Django up.
"""

from django_docker_runtime import app, health

application = health.wsgi(app.load())
