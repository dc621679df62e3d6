"""The team's application, named by APP_MODULE (`package.module:attribute`, as gunicorn takes it)."""

from __future__ import annotations

import importlib
import re
from typing import Any

from django_docker_runtime import env

APP_MODULE_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*(:[A-Za-z_][A-Za-z0-9_]*)?$")


def load() -> Any:
    """Import APP_MODULE and return its application (attribute `application` unless named)."""
    spec = env.string("APP_MODULE")
    if not APP_MODULE_RE.match(spec):
        raise env.EnvError("APP_MODULE", f"must be module.path[:attribute], got {spec!r}")
    module_name, _, attribute = spec.partition(":")
    module = importlib.import_module(module_name)
    try:
        return getattr(module, attribute or "application")
    except AttributeError:
        raise env.EnvError("APP_MODULE", f"{module_name} has no attribute {attribute or 'application'!r}") from None
