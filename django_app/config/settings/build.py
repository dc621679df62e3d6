"""Settings for build-time steps only (the Dockerfile's `collectstatic`).

A settings module rather than a dummy DJANGO_SECRET_KEY in the RUN line: no value that
looks like a secret ever lands in a layer or in `docker history`, and nothing built with
these settings can serve a request (no SECRET_KEY, no ALLOWED_HOSTS, no database).
Static file settings and storage are base.py's, so the manifest matches production's.
"""

from .base import *  # noqa: F403
