#!/usr/bin/env python
import sys

from django_docker_runtime import env


def main() -> None:
    env.default_settings_module("config.settings.production")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
