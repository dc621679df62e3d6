"""The one place that reads the process environment.

Every variable the app reads is read through this module and listed in `.env.example`
(a test checks both). A missing or malformed variable stops the process with one line
naming it: `EnvError` is a `SystemExit`, so manage.py, celery and gunicorn print the
message and exit 1 without a traceback that would bury it in the logs.
"""

from __future__ import annotations

import enum
import os


class _Required(enum.Enum):
    """The sentinel for "no default": a one-member enum, so `is _REQUIRED` narrows the type."""

    REQUIRED = enum.auto()


_REQUIRED = _Required.REQUIRED
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


class EnvError(SystemExit):
    """A configuration error that must stop the process with a one-line message."""

    def __init__(self, name: str, problem: str) -> None:
        super().__init__(f"configuration error: {name} {problem}")
        self.name = name


def string(name: str, default: str | _Required = _REQUIRED) -> str:
    """The variable's value; with no default, the variable must be set and non-empty.

    NAME_FILE, when set, names a file that holds the value instead (how a Docker secret is
    given: mounted under /run/secrets, never in the environment); the two are exclusive.
    """
    path = os.environ.get(f"{name}_FILE", "").strip()
    if path:
        if os.environ.get(name, "").strip():
            raise EnvError(name, f"and {name}_FILE are both set; set one")
        try:
            with open(path, encoding="utf-8") as file:
                value = file.read().strip()
        except OSError as error:
            raise EnvError(f"{name}_FILE", f"cannot be read: {error.strerror} ({path})") from None
        if not value:
            raise EnvError(f"{name}_FILE", f"names an empty file ({path})")
        return value
    value = os.environ.get(name, "").strip()
    if value:
        return value
    if default is _REQUIRED:
        raise EnvError(name, "is required and not set")
    return default


def boolean(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    lowered = value.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise EnvError(name, f"must be a boolean (true/false), got {value!r}")


def integer(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    if not value:
        return default
    try:
        return int(value)
    except ValueError:
        raise EnvError(name, f"must be an integer, got {value!r}") from None


def csv_list(name: str, default: list[str] | _Required = _REQUIRED) -> list[str]:
    """A comma-separated list; with no default, it must contain at least one item."""
    items = [item.strip() for item in os.environ.get(name, "").split(",") if item.strip()]
    if items:
        return items
    if default is _REQUIRED:
        raise EnvError(name, "is required and not set (comma-separated list)")
    return list(default)


def default_settings_module() -> None:
    """Entry points default to production: anything else must be asked for explicitly."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.production")
