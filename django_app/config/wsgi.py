from django.core.wsgi import get_wsgi_application

from django_docker_runtime import env

env.default_settings_module("config.settings.production")

application = get_wsgi_application()
