"""Reading the environment: required values stop the process with one line, NAME_FILE secrets.

A missing or malformed variable raises `EnvError`, a `SystemExit`: manage.py, celery and gunicorn
then print its message and exit 1 without a traceback that would bury it in the logs.
NAME_FILE, when set, names a file that holds NAME's value instead (how a Docker secret is given:
mounted under /run/secrets, never in the environment); the two are exclusive. `expand_files()`
does that at once for the names VALUES_FROM_FILES lists (the program sets it where secrets are
files), for code that reads os.environ itself (`run`). Only those: SSL_CERT_FILE and its kind
are paths, not secrets.
"""

from __future__ import annotations

import enum
import os
from collections.abc import MutableMapping


class _Required(enum.Enum):
    """The sentinel for "no default": a one-member enum, so `is _REQUIRED` narrows the type."""

    REQUIRED = enum.auto()


_REQUIRED = _Required.REQUIRED
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}
FILE_SUFFIX = "_FILE"
# The variables whose values are files (NAME_FILE) in this container, comma-separated.
VALUES_FROM_FILES = "VALUES_FROM_FILES"


class EnvError(SystemExit):
    """A configuration error that must stop the process with a one-line message."""

    def __init__(self, name: str, problem: str) -> None:
        super().__init__(f"configuration error: {name} {problem}")
        self.name = name


def _read_file(name: str, path: str) -> str:
    try:
        with open(path, encoding="utf-8") as file:
            value = file.read().strip()
    except OSError as error:
        raise EnvError(f"{name}{FILE_SUFFIX}", f"cannot be read: {error.strerror} ({path})") from None
    if not value:
        raise EnvError(f"{name}{FILE_SUFFIX}", f"names an empty file ({path})")
    return value


def string(name: str, default: str | _Required = _REQUIRED) -> str:
    """The variable's value (or its NAME_FILE's); with no default, it must be set and non-empty."""
    path = os.environ.get(f"{name}{FILE_SUFFIX}", "").strip()
    if path:
        if os.environ.get(name, "").strip():
            raise EnvError(name, f"and {name}{FILE_SUFFIX} are both set; set one")
        return _read_file(name, path)
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
    items = [item.strip() for item in string(name, default="").split(",") if item.strip()]
    if items:
        return items
    if default is _REQUIRED:
        raise EnvError(name, "is required and not set (comma-separated list)")
    return list(default)


def expand_files(environ: MutableMapping[str, str]) -> list[str]:
    """Replace NAME_FILE by NAME with the file's content, for each NAME that VALUES_FROM_FILES
    lists; returns the names. The same rules as `string()`: NAME and NAME_FILE exclusive, the
    file readable and non-empty; a listed NAME_FILE that is missing is an error too."""
    names = [n.strip() for n in environ.get(VALUES_FROM_FILES, "").split(",") if n.strip()]
    for name in names:
        key = f"{name}{FILE_SUFFIX}"
        path = environ.get(key, "").strip()
        if not path:
            raise EnvError(key, f"is not set, and {VALUES_FROM_FILES} says {name} is a file")
        if environ.get(name, "").strip():
            raise EnvError(name, f"and {key} are both set; set one")
        environ[name] = _read_file(name, path)
        del environ[key]
    environ.pop(VALUES_FROM_FILES, None)
    return names


def default_settings_module(module: str) -> None:
    """DJANGO_SETTINGS_MODULE unless the environment names one (what Django's own manage.py does)."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", module)
