"""django-docker's runtime: what every image the program deploys carries, whatever the Django project.

The program builds it into a tiny image (runtime/Dockerfile, FROM scratch) that an app's Dockerfile
copies from (docs/adopt.md); nothing in a team's own code has to import it. What it gives:

- `wsgi` / `asgi`: the team's application (APP_MODULE), with the health endpoint answered ahead of
  Django (any Host header, plain HTTP even with the SSL redirect on);
- `gunicorn_conf`: gunicorn opens its port only once the app can serve, and drains before it exits;
- `healthcheck`: the container healthchecks of web, the Celery worker and beat (Python, not curl);
- `run`: a wrapper that turns NAME_FILE secrets into NAME before it execs a command (swarm secrets);
- `build`: the Dockerfile's step for Django's files (collectstatic with placeholders that are no
  secret, STATIC_ROOT and MEDIA_ROOT given to the app user), and `--probe` for `make adopt`;
- `env`: the environment contract's reader (required values, NAME_FILE), for settings that want it.
"""

VERSION = "1.0.0"
