"""A WSGI module that fails to import, as a broken release's app would: the gunicorn tests put
this folder on PYTHONPATH and start `gunicorn ... broken_release_wsgi:application`."""

raise RuntimeError("broken release: the app fails to import")
