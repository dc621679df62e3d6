"""Which Django project the stack runs, and how (`app*`, `djangoSettingsModule`, `celeryApp`, ...).

Everything that can be known before anything is created is checked here, against the files
(when the stack builds): the context and Dockerfile exist, the Dockerfile takes the runtime,
the settings, application and Celery modules are files of the project. What only the running
app can tell (its settings import, its app serves) fails the release instead, with the app's
own one line, while the old release keeps serving (docs/adopt.md).

The runtime (runtime/django_docker_runtime) is built into an image of its own whose tag
names its version and content (`runtime_image_tag`): an app's Dockerfile copies it from there.
"""

from __future__ import annotations

import functools
import hashlib
import io
import re
import shlex
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Optional

import pulumi
from dotenv import dotenv_values

from components import render
from components.settings.identity import PROJECT_ROOT
from components.settings.reader import Reader
from components.settings.values import SettingsError

RUNTIME_DIR = PROJECT_ROOT / "runtime"
RUNTIME_PACKAGE = "django_docker_runtime"
RUNTIME_REPOSITORY = "django-docker-runtime"
# The build argument an app's Dockerfile names the runtime image with (docs/adopt.md).
RUNTIME_BUILD_ARG = "DJANGO_DOCKER_RUNTIME"
RUNTIME_ARG_RE = re.compile(rf"^\s*ARG\s+{RUNTIME_BUILD_ARG}\b", re.MULTILINE | re.IGNORECASE)

APP_SERVERS = ("wsgi", "asgi")
HEALTH_CHECKS = ("database", "cache", "broker")
# The runtime's gate modes (django_docker_runtime.migration_gate.MODES).
MIGRATION_MODES = ("gate", "maintenance")
IDENTIFIER = r"[A-Za-z_][A-Za-z0-9_]*"
MODULE_RE = re.compile(rf"^{IDENTIFIER}(?:\.{IDENTIFIER})*$")
APP_MODULE_RE = re.compile(rf"^(?P<module>{IDENTIFIER}(?:\.{IDENTIFIER})*)(?::(?P<attribute>{IDENTIFIER}))?$")
ENV_NAME_RE = re.compile(rf"^{IDENTIFIER}$")
URL_PATH_RE = re.compile(r"^/(?:[A-Za-z0-9._~-]+/)*$")
# Directories a project keeps but never imports from (virtualenvs, dependencies, caches).
SKIPPED_DIRS = {".git", ".venv", "venv", "env", "node_modules", "__pycache__", ".tox", "site-packages"}
# Where an app container's files may not go: the mounts and the runtime's own.
RESERVED_ROOTS = ("/", "/tmp", "/dev", "/proc", "/sys", "/opt/django-docker-runtime", "/run/secrets")


@dataclass(frozen=True, kw_only=True)
class AppSettings:
    """The Django project of the stack: where its image is built from, and how it runs."""

    context: Path
    """Build context (absolute): the project's directory."""
    dockerfile: Path
    """Its Dockerfile (absolute)."""
    server: str
    """wsgi or asgi."""
    module: str
    """APP_MODULE: the application gunicorn serves, module:attribute."""
    settings_module: str
    """DJANGO_SETTINGS_MODULE."""
    celery_app: str
    """CELERY_APP; empty: no Celery."""
    health_path: str
    health_checks: tuple[str, ...]
    ready_checks: tuple[str, ...]
    """READY_CHECKS: what a replica must pass to be ready (gunicorn listens, healthy)."""
    port: int
    static_root: str
    """STATIC_ROOT in the image; empty: no static files."""
    static_url: str
    media_root: str
    """MEDIA_ROOT in the image; empty: no media volume."""
    media_url: str
    migrate_command: tuple[str, ...]
    """Empty: no migrate job."""
    collectstatic_command: tuple[str, ...]
    """Empty: no collectstatic job."""
    migration_mode: str = "gate"
    """migrationMode: `gate` (refuse what the serving release cannot survive) or `maintenance`
    (let it through behind nginx's maintenance page)."""
    maintenance_retry_after: int = 30
    """maintenanceRetryAfter: the maintenance page's Retry-After, in seconds."""
    env: tuple[tuple[str, str], ...] = ()
    """appEnv: (name, value) with ${NAME} references to the program's own variables."""
    secret_env_names: tuple[str, ...] = ()
    """appSecretEnv's names, in order (their values stay in `secret_env`)."""
    secret_env: Optional[pulumi.Output[str]] = None
    """appSecretEnv's dotenv text (secret)."""

    @property
    def celery(self) -> bool:
        return bool(self.celery_app)

    @property
    def static(self) -> bool:
        return bool(self.static_root)

    @property
    def media(self) -> bool:
        return bool(self.media_root)


def read_app(read: Reader, *, builds: bool, celery_beat: bool) -> AppSettings:
    """The app keys, checked (each problem noted, the reading goes on: Reader); the project's
    files too when the stack builds its image."""
    server = read.string("appServer", allowed=APP_SERVERS)
    module = read.string("appModule", pattern=APP_MODULE_RE, expected="module.path:attribute", required=True)
    settings_module = read.string(
        "djangoSettingsModule", pattern=MODULE_RE, expected="a dotted module path like config.settings", required=True
    )
    celery_app = read.string("celeryApp", pattern=APP_MODULE_RE, expected="a module path like config (or empty)")
    if celery_beat and not celery_app and read.ok("celeryApp", "celeryBeat"):
        read.refuse(
            "celeryBeat: true needs celeryApp (the app beat schedules tasks for); set it, or false", "celeryBeat"
        )
    health_path = url_path(read, "healthPath")
    checks = tuple(c.strip() for c in read.string("healthChecks").split(",") if c.strip())
    unknown = [c for c in checks if c not in HEALTH_CHECKS]
    if unknown or len(set(checks)) != len(checks):
        read.refuse(f"healthChecks: '{','.join(checks)}' is not a list of {', '.join(HEALTH_CHECKS)}", "healthChecks")
        checks = HEALTH_CHECKS
    ready = tuple(c.strip() for c in read.string("readyChecks").split(",") if c.strip())
    if [c for c in ready if c not in HEALTH_CHECKS] or len(set(ready)) != len(ready):
        read.refuse(f"readyChecks: '{','.join(ready)}' is not a list of {', '.join(HEALTH_CHECKS)}", "readyChecks")
        ready = ("database",)
    static_root, media_root = container_dir(read, "staticRoot"), container_dir(read, "mediaRoot")
    if static_root and media_root and _nested(static_root, media_root):
        read.refuse(f"mediaRoot: {media_root} and staticRoot {static_root} overlap; expected two apart", "mediaRoot")
    static_url, media_url = url_path(read, "staticUrl"), url_path(read, "mediaUrl")
    # The paths nginx and the runtime answer themselves must not hide each other, nor the app.
    served = {"healthPath": health_path}
    if static_root:
        served["staticUrl"] = static_url
    if media_root:
        served["mediaUrl"] = media_url
    for key, path in served.items():
        if path == "/":
            read.refuse(f"{key}: '/' would hide the whole app; expected a path like /static/", key)
            continue
        for other, other_path in served.items():
            if key < other and other_path != "/" and (path.startswith(other_path) or other_path.startswith(path)):
                read.refuse(f"{key}: {path} overlaps {other} {other_path}; expected separate paths", key, other)
    context = project_path(read, "appContext")
    dockerfile = context / read.string("appDockerfile", required=True, expected="a Dockerfile path")
    app = AppSettings(
        context=context,
        dockerfile=dockerfile,
        server=server,
        module=module,
        settings_module=settings_module,
        celery_app=celery_app,
        health_path=health_path,
        health_checks=checks,
        ready_checks=ready,
        port=read.integer("appPort", low=1, high=65535),
        static_root=static_root,
        static_url=static_url,
        media_root=media_root,
        media_url=media_url,
        migrate_command=command(read, "migrateCommand"),
        collectstatic_command=command(read, "collectstaticCommand") if static_root else (),
        migration_mode=read.string("migrationMode", allowed=MIGRATION_MODES),
        maintenance_retry_after=read.integer("maintenanceRetryAfter", low=1, high=3600),
        env=app_env(read),
        **secret_env(read),
    )
    if builds and read.ok("appContext", "appDockerfile", "appModule", "djangoSettingsModule", "celeryApp"):
        read.attempt(lambda: check_project(app), "appContext")
    return app


# --- values --------------------------------------------------------------------------------


def url_path(read: Reader, key: str) -> str:
    return read.string(key, pattern=URL_PATH_RE, expected="a path that starts and ends with /, e.g. /static/")


def container_dir(read: Reader, key: str) -> str:
    """An absolute directory in the image, normalised; empty stays empty (and so does a refused one)."""
    value = read.string(key)
    if not value:
        return ""
    path = PurePosixPath(value)
    if not path.is_absolute() or ".." in path.parts or any(c in value for c in " \t\n:,"):
        read.refuse(f"{key}: '{value}' is not an absolute path in the image; expected e.g. /app/staticfiles", key)
        return ""
    normal = str(path)
    if any(normal == root or (root != "/" and normal.startswith(root + "/")) for root in RESERVED_ROOTS):
        read.refuse(f"{key}: {normal} is a system or runtime path; expected a directory of the app's", key)
        return ""
    return normal


def _nested(a: str, b: str) -> bool:
    return a == b or a.startswith(b + "/") or b.startswith(a + "/")


def command(read: Reader, key: str) -> tuple[str, ...]:
    value = read.string(key)
    try:
        return tuple(shlex.split(value))
    except ValueError as error:
        read.refuse(f"{key}: '{value}' cannot be split into arguments ({error})", key)
        return ()


def project_path(read: Reader, key: str) -> Path:
    """A directory named relative to the program's directory (or absolute)."""
    value = read.string(key, required=True, expected="a directory, e.g. ../myproject")
    return (PROJECT_ROOT / value).resolve()


def check_value(key: str, name: str, value: str) -> bool:
    """An extra variable may not replace one the program sets, and refers only to those (True),
    or SettingsError."""
    if name in render.PROVIDED_ENV:
        raise SettingsError(f"{key}: {name} is set by the program; refer to it as ${{{name}}} under another name")
    if "$" in render.REFERENCE_RE.sub("", value):
        raise SettingsError(f"{key}: {name} has a lone $; write $$ for a $, ${{NAME}} for a variable")
    for reference in render.references(value):
        if reference not in render.PROVIDED_ENV:
            raise SettingsError(
                f"{key}: {name} refers to ${{{reference}}}, which the program does not set; "
                f"expected one of {', '.join(render.PROVIDED_ENV)}"
            )
    return True


def app_env(read: Reader) -> tuple[tuple[str, str], ...]:
    pairs = []
    for index, item in enumerate(read.string_list("appEnv")):
        name, sep, value = item.partition("=")
        if not sep or not ENV_NAME_RE.match(name):
            read.refuse(f"appEnv[{index}]: '{item}' is not NAME=value", "appEnv")
            continue
        if not read.attempt(functools.partial(check_value, f"appEnv[{index}]", name, value), "appEnv"):
            continue
        pairs.append((name, value))
    read.attempt(lambda: _unique("appEnv", [name for name, _ in pairs]), "appEnv")
    return tuple(pairs)


def parse_dotenv(text: str) -> dict[str, str]:
    """dotenv lines as python-dotenv reads them (quotes, comments, `export`), every value set."""
    values = dotenv_values(stream=io.StringIO(text))
    return {name: value or "" for name, value in values.items()}


def secret_env(read: Reader) -> dict:
    """appSecretEnv: names checked here, values never looked at beyond parsing (never echoed)."""
    secret = read.secret("appSecretEnv")
    if secret is None:
        return {}
    text = read.secret_text("appSecretEnv")
    if text is None:  # `make check` without the passphrase: present, its contents unknown
        return {"secret_env": secret}
    found = read.attempt(lambda: _secret_names(text), "appSecretEnv")
    if found is None:
        return {}
    return {"secret_env_names": tuple(found), "secret_env": secret}


def _secret_names(text: str) -> list[str]:
    names = list(parse_dotenv(text))
    meaningful = [line for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    if not names or len(names) < len(meaningful):
        raise SettingsError(
            "appSecretEnv: not dotenv lines NAME=value (one per line); set it with "
            "`pulumi config set --secret appSecretEnv < app.env`"
        )
    for name in names:
        if not ENV_NAME_RE.match(name):
            raise SettingsError(f"appSecretEnv: '{name}' is not a variable name")
        if name in render.PROVIDED_ENV:
            raise SettingsError(f"appSecretEnv: {name} is set by the program; use another name")
    _unique("appSecretEnv", names)
    return names


def _unique(key: str, names: list[str]) -> None:
    seen = set()
    for name in names:
        if name in seen:
            raise SettingsError(f"{key}: {name} is set twice")
        seen.add(name)


# --- the project's files -------------------------------------------------------------------


def import_roots(context: Path) -> list[Path]:
    """Where the project's modules can be imported from: its root, src/, and the directory of a
    manage.py one level down (backend/manage.py)."""
    roots = [context, context / "src"]
    roots += sorted(p.parent for p in context.glob("*/manage.py") if p.parent.name not in SKIPPED_DIRS)
    return [root for root in roots if root.is_dir()]


def module_file(context: Path, module: str) -> Optional[Path]:
    """The file that defines `module` in the project (module.py or module/__init__.py)."""
    parts = module.split(".")
    for root in import_roots(context):
        base = root.joinpath(*parts)
        for candidate in (base.with_suffix(".py"), base / "__init__.py"):
            if candidate.is_file():
                return candidate
    return None


def _shown(module: str) -> str:
    return f"{module.replace('.', '/')}.py"


def check_project(app: AppSettings) -> None:
    """What the files can tell before anything is created: each mistake one line naming its key."""
    where = app.context
    if not where.is_dir():
        raise SettingsError(f"appContext: {where} is not a directory")
    if not app.dockerfile.is_file():
        raise SettingsError(f"appDockerfile: {app.dockerfile} does not exist")
    if not RUNTIME_ARG_RE.search(app.dockerfile.read_text(errors="replace")):
        raise SettingsError(
            f"appDockerfile: {app.dockerfile} does not take the runtime (no `ARG {RUNTIME_BUILD_ARG}`); "
            "add the lines in docs/adopt.md, or let `make adopt` write one"
        )
    for key, module in (
        ("djangoSettingsModule", app.settings_module),
        ("appModule", APP_MODULE_RE.match(app.module)["module"]),  # type: ignore[index]
    ):
        if module_file(where, module) is None:
            raise SettingsError(f"{key}: {module} is not a module of {where} (no {_shown(module)})")
    if app.celery:
        module = APP_MODULE_RE.match(app.celery_app)["module"]  # type: ignore[index]
        # `celery --app proj` also finds proj.celery (celery/app/utils.py find_app)
        if module_file(where, module) is None and module_file(where, f"{module}.celery") is None:
            raise SettingsError(
                f"celeryApp: {app.celery_app} is not a module of {where} (no {_shown(module)}); "
                "set it to the module that creates the Celery app, or empty for no Celery"
            )


# --- the runtime image ---------------------------------------------------------------------


def runtime_version(root: Path = RUNTIME_DIR) -> str:
    text = (root / RUNTIME_PACKAGE / "__init__.py").read_text()
    match = re.search(r'^VERSION = "([0-9][0-9A-Za-z.+-]*)"$', text, re.MULTILINE)
    if not match:
        raise SettingsError(f"{root}: the runtime package has no VERSION")
    return match.group(1)


def runtime_image_tag(root: Path = RUNTIME_DIR) -> str:
    """`django-docker-runtime:<version>-<12 hex of its files>`: a new runtime, a new tag, so every
    app image that copies it is rebuilt."""
    digest = hashlib.sha256()
    files = sorted(p for p in (root / RUNTIME_PACKAGE).rglob("*.py") if "__pycache__" not in p.parts)
    for path in [root / "Dockerfile", *files]:
        digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes() + b"\0")
    return f"{RUNTIME_REPOSITORY}:{runtime_version(root)}-{digest.hexdigest()[:12]}"
