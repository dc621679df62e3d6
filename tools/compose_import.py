"""Compose files -> stack config: python -m tools.compose_import docker-compose.yml [docker-compose.prod.yml ...] --stack NAME

Reads the compose files a team ran with `docker compose -f a.yml -f b.yml up`, merges them the
way Compose does, recognises each service by its role, and writes `Pulumi.<NAME>.yaml` holding
only the keys whose value differs from Pulumi.yaml's default. The result is then planned with the
program's own settings validation (`planning.harness.plan_stack` in a throwaway copy of the project
files, placeholder secrets) before anything is written.

Merge (the subset of the Compose specification's merge rules, `13-merge.md`, that these files
need): mappings merge key by key, the later file winning on a scalar; `environment` in list form
is read as a mapping first, so variables merge by name; `command`, `entrypoint` and
`healthcheck.test` are replaced, not appended; `ports` are unique by (host_ip, target, published,
protocol) and `volumes` by target, a later entry replacing an equal one; any other sequence is
appended (`depends_on`, `env_file`, ...). `extends`, `include` and the `!reset` / `!override` tags
are refused: their results are not implemented here. Variables (`${TAG:-latest}`) are never
interpolated: the importer reads no environment and no `.env` file.

Roles: web (runs gunicorn, uvicorn, daphne or `manage.py runserver`, or is named web, app or
django), worker and beat (`celery ... worker` / `celery ... beat`, or a name with worker / beat),
postgres, redis and nginx (by image, else by name). Every other service is refused: the program
runs exactly these.

What is mapped (compose key -> stack key):
  web / worker / beat  build: (a directory, or context / dockerfile / args / target)
                                                      -> appContext (the context, which Compose resolves from the first
                                                         compose file's directory, written relative to this program's),
                                                         appDockerfile (relative to the context; Dockerfile.django-docker
                                                         when the team's takes no runtime and `make adopt` wrote that);
                                                         one image for all three: another context, target or args refused
     build.target                                    -> noted when it is the Dockerfile's last stage (what the program
                                                         builds, passing no target), else refused
     build.args                                      -> GIT_SHA and DJANGO_DOCKER_RUNTIME are the program's own; an arg
                                                         the Dockerfile's ARG default already has is understood; the rest
                                                         in one line, not mapped (the program's build passes only its own)
  web  image (beside build:)                         -> imageRepository when a plain repository name (a tag is noted:
                                                         the program tags with the git SHA); a registry's is noted
  web  command (else the Dockerfile's CMD), split as a shell runs it (sh -c, &&, ;, |, exec, wrappers before it):
       gunicorn / python -m gunicorn  -w/--workers, --threads, -t/--timeout, --max-requests, --max-requests-jitter,
                                      -k/--worker-class (uvicorn[_worker].UvicornWorker: asgi), -b/--bind's port,
                                      the application, -e/--env, --log-level
                                                      -> webConcurrency, webThreads, webTimeout, webMaxRequests,
                                                         webMaxRequestsJitter, appServer, appPort, appModule, appEnv,
                                                         djangoLogLevel (unless the environment sets it)
       uvicorn / daphne               the application, --port/-p, --workers, --limit-max-requests
                                                      -> appServer asgi, appModule, appPort, webConcurrency, webMaxRequests
       manage.py / django-admin migrate, collectstatic -> migrateCommand, collectstaticCommand (the release's jobs)
       every other option of gunicorn 27 / uvicorn / daphne: one line `not mapped: <option> (<reason>)`, or refused
       when the program cannot run it (gevent, a UNIX socket, --daemon, a factory); an unknown option is refused
  worker / beat command  celery -A/--app, -c/--concurrency, -P/--pool, --max-tasks-per-child, -Q/--queues, -B/--beat;
                         a beat service           -> celeryApp, celeryConcurrency, celeryPool (gevent, eventlet refused),
                                                         celeryMaxTasksPerChild, celeryQueues, celeryBeat; every other
                                                         option of Celery 5.7 in one line each, or refused (--detach)
  no worker nor beat service                         -> celeryApp empty: no Celery at all
  web / worker+beat / db / redis / nginx  deploy.resources.limits.memory | mem_limit
                                                      -> webMemory / celeryMemory / postgresMemory / redisMemory / nginxMemory
  web  deploy.replicas | scale                       -> webReplicas
  db / redis / nginx  image                          -> postgresImage / redisImage / nginxImage (pinned to a patch release)
  nginx ports "[ip:]P:80" / "[ip:]P:443"             -> httpPort / httpsPort, bindAddress (no nginx: web's port -> httpPort)
  restart | deploy.restart_policy.condition          -> restartPolicy (one for every container)
  web healthcheck interval/timeout/retries/start_period -> healthcheck* (Go durations)
  environment of web, worker and beat:
     what the program sets itself (render.PROVIDED_ENV): DJANGO_SETTINGS_MODULE, APP_MODULE, PORT, CELERY_APP,
     DJANGO_LOG_LEVEL, DJANGO_SECURE_HSTS_SECONDS, POSTGRES_DB/USER, DATABASE_URL's user and database,
     DJANGO_ALLOWED_HOSTS      -> djangoSettingsModule, appModule, appPort, celeryApp, djangoLogLevel,
                                  djangoHstsSeconds, postgresDb, postgresUser, serverName (the first host) +
                                  djangoAllowedHosts (the rest); the others are understood (the program decides them)
     a name settings read for one of those (SECRET_KEY, ALLOWED_HOSTS, DB_HOST, CELERY_BROKER_URL, LOG_LEVEL, ...:
     `make adopt`'s aliases) -> the same keys, and appEnv NAME=${PROGRAMS_NAME} (a Redis URL of another database
                                  keeps its database apart: redis://redis:6379/N)
     REDIS_HOST, REDIS_PORT    -> appEnv with the program's Redis (redis, 6379)
     WEB_CONCURRENCY, GUNICORN_TIMEOUT, GUNICORN_CMD_ARGS -> webConcurrency, webTimeout, gunicorn's options as above
     every other variable      -> appEnv (plain values); a name or value that looks like a secret (SECRET, PASSWORD,
                                  TOKEN, KEY, DSN, ...; a URL with a password) is named for appSecretEnv, its value
                                  never read
  environment POSTGRES_DB/USER of db                 -> postgresDb, postgresUser
  POSTGRES_PASSWORD, DJANGO_SECRET_KEY | SECRET_KEY (and every env_file), the app's secrets
              -> never copied: the `pulumi config set --secret` commands to run are printed, without the value.

The Dockerfile. When the web service has no command, what Compose ran is the image's CMD: it is
read as the command is (and its ENV DJANGO_SETTINGS_MODULE / APP_MODULE / CELERY_APP / PORT,
which the program's environment would override); the compose file's own command and environment
win over it, as in Compose. An ENTRYPOINT runs before every command the program gives: noted,
or refused when it starts a server itself. Without a build (`--image-source-stack`) the
Dockerfile is still read for those app keys.

`env_file` is not read, and that is a note, not a refusal: such files hold the secrets (which the
importer must never copy) and are usually kept out of the repository (the seed's .dockerignore
excludes `.env*`), so reading them would make the result depend on the machine it runs on. The
program passes the app only the variables `render.app_env` sets, so the note lists the stack keys
and secrets that replace the file.

Validation. The written file is planned by the program (its settings check the project's files:
the context, the Dockerfile and its runtime, the settings, application and Celery modules); every
problem it reports is one line after the compose key the value came from, or, for a key the
compose files do not set, says it is Pulumi.yaml's default.

Refusals and notes. An operator must never silently lose a setting, so every compose key is
either mapped, understood (the program owns it: volumes, networks, depends_on, ...: one
summary line), noted (the program does the same thing its own way, or the
setting is a development convenience: one `note:` line each) or refused (one line naming the key
path, exit 2, nothing written). A key the importer does not know is refused. With more than one
file (`-f base -f prod`, the production convention) bind mounts of the app's code and published
PostgreSQL/Redis ports are refusals; with one file (a developer's machine) they are notes.

Unpinned accessory images (`postgres:15`, `redis:7-alpine`, `nginx:alpine`) are refused; with
--default-images each is replaced by the program's default pin when that default is a release of
the line the tag names (postgres and redis: the same major, since their data is major-specific)
and a note says so. `latest` and untagged images are always refused.

Exit codes: 0 written; 2 refused (nothing written); 1 usage or I/O error.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import shutil
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Optional
from urllib.parse import urlsplit

import yaml

from components import render
from components import settings as stack_settings
from components.settings.app import RUNTIME_ARG_RE, RUNTIME_BUILD_ARG
from tools import compose_app
from tools.compose_app import Finding

PROJECT_ROOT = Path(__file__).resolve().parent.parent
NAMESPACE = stack_settings.PROJECT
ROLES = ("web", "worker", "beat", "db", "redis", "nginx")
ROLE_TEXT = {
    "web": "the web service",
    "worker": "the Celery worker",
    "beat": "Celery beat",
    "db": "PostgreSQL",
    "redis": "Redis",
    "nginx": "nginx",
}
MEMORY_KEY = {
    "web": "webMemory",
    "worker": "celeryMemory",
    "beat": "celeryMemory",
    "db": "postgresMemory",
    "redis": "redisMemory",
    "nginx": "nginxMemory",
}
# Accessory images: stack key, repository, the major settings.py requires, numbers in a release tag.
ACCESSORY = {
    "db": ("postgresImage", "postgres", "15", 2),
    "redis": ("redisImage", "redis", "7", 3),
    "nginx": ("nginxImage", "nginx", "", 3),
}
HOLDS_DATA = ("db", "redis")
SECRET_STACK_KEYS = ("postgresPassword", "djangoSecretKey", "tlsCertificate", "tlsKey", "imageRegistryPassword")
# Placeholders for planning only: never written, never printed.
PLACEHOLDER_SECRETS = {
    "postgresPassword": "compose-import-placeholder-password",
    "djangoSecretKey": "compose-import-placeholder-secret-key-0123456789abcdef",
}
PLACEHOLDER_SHA = "0" * 40
PLACEHOLDER_DIGEST = "registry.example.com/compose-import/web@sha256:" + "0" * 64

# Service keys the program owns for every role: understood, no config.
OWNED_KEYS = {
    "container_name",
    "hostname",
    "networks",
    "depends_on",
    "links",
    "expose",
    "labels",
    "logging",
    "init",
    "stop_signal",
    "tty",
    "stdin_open",
    "working_dir",
    "pull_policy",
    "platform",
    "domainname",
}
# Owned for app services only (the program sets them on every app container).
APP_OWNED_KEYS = {"user", "read_only", "tmpfs", "cap_drop", "stop_grace_period"}
REFUSED_KEYS = {
    "privileged": "the program runs no privileged container; remove it",
    "network_mode": "the program puts every container on its own frontend/backend networks; remove it",
    "pid": "the program shares no PID namespace; remove it",
    "ipc": "the program shares no IPC namespace; remove it",
    "cap_add": "the program adds no capabilities; remove it",
    "devices": "the program maps no host devices; remove it",
    "security_opt": "the program sets its own security options (no-new-privileges); remove it",
    "sysctls": "the program sets no sysctls; remove it",
    "ulimits": "the program sets no ulimits; remove it",
    "extra_hosts": "the program adds no /etc/hosts entries; remove it",
    "dns": "the program uses Docker's DNS; remove it",
    "dns_search": "the program uses Docker's DNS; remove it",
    "dns_opt": "the program uses Docker's DNS; remove it",
    "secrets": "Compose secrets are not mapped; set each as a stack secret (pulumi config set --secret)",
    "configs": "Compose configs are not mapped; the program renders its own configuration",
    "volumes_from": "the program shares volumes by name, not from containers; remove it",
    "extends": "extends is not followed by the importer; inline the service",
    "external_links": "the program links to nothing outside the stack; remove it",
    "gpus": "the program reserves no GPUs; remove it",
    "runtime": "the program uses the default runtime; remove it",
    "cgroup_parent": "the program sets no cgroup parent; remove it",
    "userns_mode": "the program sets no user namespace mode; remove it",
    "group_add": "the program adds no groups; remove it",
    "mac_address": "the program sets no MAC address; remove it",
    "storage_opt": "the program sets no storage options; remove it",
    "cpus": "the program sets no CPU limits; remove it",
    "cpu_shares": "the program sets no CPU limits; remove it",
    "cpu_quota": "the program sets no CPU limits; remove it",
    "cpu_period": "the program sets no CPU limits; remove it",
    "cpuset": "the program pins no CPUs; remove it",
    "mem_reservation": "the program sets only a hard memory limit (mem_limit); remove it",
    "memswap_limit": "the program leaves swap unlimited beside the memory limit; remove it",
    "mem_swappiness": "the program sets no swappiness; remove it",
    "shm_size": "the program keeps Docker's /dev/shm size; remove it",
    "oom_kill_disable": "the program keeps the OOM killer on; remove it",
    "oom_score_adj": "the program sets no OOM score; remove it",
    "pids_limit": "the provider has no pids limit; remove it",
    "profiles": "a service behind a profile is not part of the program; remove the service",
}
# The app's environment (services web, worker, beat). What the program sets itself
# (render.PROVIDED_ENV) is understood, its value mapped to the stack key it comes from; a name
# a team's settings read for one of those (SECRET_KEY, DB_HOST, CELERY_BROKER_URL, ...: the
# aliases `make adopt` knows) becomes an appEnv entry referring to the program's
# (`SECRET_KEY=${DJANGO_SECRET_KEY}`); every other variable is copied into appEnv, or, when its
# name or value says it is a secret, named for appSecretEnv (its value never read).
PROVIDED_KEYS = {
    "DJANGO_SETTINGS_MODULE": "djangoSettingsModule",
    "POSTGRES_DB": "postgresDb",
    "POSTGRES_USER": "postgresUser",
    "DJANGO_SECURE_HSTS_SECONDS": "djangoHstsSeconds",
    "DJANGO_LOG_LEVEL": "djangoLogLevel",
    "APP_MODULE": "appModule",
    "PORT": "appPort",
    "HEALTH_PATH": "healthPath",
    "HEALTH_CHECKS": "healthChecks",
    "READY_CHECKS": "readyChecks",
    "CELERY_APP": "celeryApp",
}
PROVIDED_SECRETS = {"DJANGO_SECRET_KEY": "djangoSecretKey", "POSTGRES_PASSWORD": "postgresPassword"}
# Decided by the program from other keys: the compose file's value is not needed.
PROVIDED_DERIVED = {
    "DJANGO_CSRF_TRUSTED_ORIGINS": "the origins of serverName and djangoAllowedHosts",
    "DJANGO_SECURE_SSL_REDIRECT": "on when nginx serves HTTPS (tlsCertificate, tlsKey)",
    "DJANGO_SECURE_COOKIES": "on when nginx serves HTTPS (tlsCertificate, tlsKey)",
    "FORWARDED_ALLOW_IPS": "the frontend network (frontendSubnet)",
    "POSTGRES_PORT": "PostgreSQL's 5432",
}
URL_ROLE = {"DATABASE_URL": "db", "REDIS_URL": "redis"}
# Other names a team's settings read that the program has a value for.
EXTRA_ALIASES = {"LOG_LEVEL": "DJANGO_LOG_LEVEL", "CELERY_RESULT_BACKEND": "REDIS_URL"}
# Not PROVIDED_ENV, but fixed by the program: the host and port of its own Redis.
FIXED_ENV = {"REDIS_HOST": ("redis", render.REDIS_HOST), "REDIS_PORT": ("redis", "6379")}
# The environment the example's gunicorn.conf.py read before the runtime: still mapped.
GUNICORN_ENV = {"WEB_CONCURRENCY": "webConcurrency", "GUNICORN_TIMEOUT": "webTimeout"}
INTEGER_KEYS = {
    "webReplicas",
    "webConcurrency",
    "webThreads",
    "webTimeout",
    "webMaxRequests",
    "webMaxRequestsJitter",
    "healthcheckRetries",
    "celeryConcurrency",
    "celeryMaxTasksPerChild",
    "httpPort",
    "httpsPort",
    "appPort",
    "djangoHstsSeconds",
}
_INTERPOLATION = re.compile(r"\$\{?[A-Za-z_]")


class Refused(Exception):
    """One compose key the program cannot take; the message is one line that names it."""


class _Unsupported(yaml.SafeLoader):
    """safe_load, except that the merge tags `!reset` / `!override` become a refusal (not a traceback)."""


def _compose_tag(loader: yaml.Loader, suffix: str, node: yaml.Node):
    raise Refused(
        f"{Path(node.start_mark.name).name}:{node.start_mark.line + 1}: !{suffix} is not supported by the importer; "
        f"write the merged value"
    )


_Unsupported.add_multi_constructor("!", _compose_tag)


# --- reading and merging ------------------------------------------------------------------


def load_file(path: Path) -> dict:
    try:
        with path.open(encoding="utf-8") as stream:
            data = yaml.load(stream, Loader=_Unsupported)  # noqa: S506 (a SafeLoader subclass)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f":{mark.line + 1}" if mark else ""
        raise Refused(f"{path.name}{where}: not YAML ({getattr(error, 'problem', None) or error})") from None
    if not isinstance(data, dict) or not isinstance(data.get("services"), dict):
        raise Refused(f"{path.name}: services: no services mapping; not a compose file")
    for name, service in data["services"].items():
        if not isinstance(service, dict):
            raise Refused(f"services.{name}: not a mapping")
        if "environment" in service:
            service["environment"] = _env_map(f"services.{name}.environment", service["environment"])
    return data


def _env_map(path: str, value: Any) -> dict:
    """environment: as a mapping; list items `KEY` (pass-through from the shell) get None."""
    if value is None:
        return {}
    if isinstance(value, dict):
        return {str(k): (None if v is None else str(v)) for k, v in value.items()}
    if isinstance(value, list):
        result: dict = {}
        for item in value:
            key, sep, rest = str(item).partition("=")
            result[key] = rest if sep else None
        return result
    raise Refused(f"{path}: expected a mapping or a list of KEY=VALUE")


def _unique_key(attribute: str, item: Any) -> Any:
    if attribute == "volumes":
        return parse_volume(item).target
    port = parse_port("", item)
    return (port.host_ip, port.target, port.published, port.protocol)


def merge(base: Any, override: Any, path: tuple[str, ...] = ()) -> Any:
    """`override` merged onto `base` by the rules in the module docstring."""
    last = path[-1] if path else ""
    in_service = len(path) >= 3 and path[0] == "services"
    if in_service and (path[2:] in (("command",), ("entrypoint",)) or path[2:] == ("healthcheck", "test")):
        return override
    if isinstance(base, dict) and isinstance(override, dict):
        merged = dict(base)
        for key, value in override.items():
            merged[key] = merge(base[key], value, path + (str(key),)) if key in base else value
        return merged
    if (
        in_service
        and path[2:] == ("depends_on",)
        and isinstance(base, (list, dict))
        and isinstance(override, (list, dict))
    ):
        return merge(_depends_map(base), _depends_map(override), path + ("",))
    if isinstance(base, list) and isinstance(override, list):
        if in_service and path[2:] in (("ports",), ("volumes",)):
            merged_items = {}
            for item in base + override:
                try:
                    merged_items[_unique_key(last, item)] = item
                except Refused:
                    merged_items[id(item)] = item  # refused later, with its key path
            return list(merged_items.values())
        return base + override
    return override


def _depends_map(value: Any) -> dict:
    return value if isinstance(value, dict) else {name: {"condition": "service_started"} for name in value}


def merge_files(documents: Iterable[dict]) -> dict:
    result: dict = {}
    for document in documents:
        result = merge(result, document)
    return result


# --- parsing values ---------------------------------------------------------------------


@dataclass(frozen=True)
class Port:
    host_ip: str
    published: str
    """Host port ('' = a random one; may be a range)."""
    target: str
    protocol: str
    text: str


_PORT_RE = re.compile(
    r"^(?:(?:\[(?P<ip6>[0-9a-fA-F:.]+)\]|(?P<ip>[0-9]+(?:\.[0-9]+){3})):)?(?:(?P<pub>[0-9-]*):)?"
    r"(?P<target>[0-9]+(?:-[0-9]+)?)(?:/(?P<proto>tcp|udp|sctp))?$"
)


def parse_port(path: str, item: Any) -> Port:
    if isinstance(item, dict):
        text = ", ".join(f"{k}: {v}" for k, v in item.items())
        if "target" not in item:
            raise Refused(f"{path}: '{{{text}}}' has no target")
        return Port(
            str(item.get("host_ip") or ""),
            str(item.get("published") or ""),
            str(item["target"]),
            str(item.get("protocol") or "tcp"),
            "{" + text + "}",
        )
    text = str(item)
    match = _PORT_RE.match(text)
    if not match:
        raise Refused(f"{path}: '{text}' is not a port mapping the importer reads")
    return Port(match["ip6"] or match["ip"] or "", match["pub"] or "", match["target"], match["proto"] or "tcp", text)


@dataclass(frozen=True)
class Volume:
    kind: str
    """bind, volume (named), anonymous or tmpfs."""
    source: str
    target: str
    text: str


def parse_volume(item: Any) -> Volume:
    if isinstance(item, dict):
        kind = str(item.get("type") or "volume")
        source = str(item.get("source") or "")
        return Volume(
            "anonymous" if kind == "volume" and not source else kind,
            source,
            str(item.get("target") or ""),
            "{" + ", ".join(f"{k}: {v}" for k, v in item.items()) + "}",
        )
    text = str(item)
    parts = text.split(":")
    if len(parts) == 1:
        return Volume("anonymous", "", parts[0], text)
    source, target = parts[0], parts[1]
    kind = "bind" if source.startswith((".", "/", "~", "$")) else "volume"
    return Volume(kind, source, target, text)


_MEMORY_RE = re.compile(r"^([0-9]+(?:\.[0-9]+)?)\s*([bkmg]?)b?$", re.IGNORECASE)
_UNIT = {"": 1, "b": 1, "k": 1024, "m": 1024**2, "g": 1024**3}


def memory_bytes(value: Any) -> Optional[int]:
    """A compose memory size (bytes as a number, or 512m, 1.5g, 512MB) in bytes; None when it is not one."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    match = _MEMORY_RE.match(str(value).strip())
    if not match:
        return None
    return int(float(match[1]) * _UNIT[match[2].lower()])


def memory_text(size: int) -> str:
    """The form the committed stack files use: 512M, 1G, 1536M."""
    for unit, factor in (("G", 1024**3), ("M", 1024**2), ("K", 1024)):
        if size % factor == 0:
            return f"{size // factor}{unit}"
    return f"{size}b"


def compose_duration(path: str, value: Any) -> str:
    """A compose duration (1m30s, 500ms, 10s) in Go's canonical spelling, what settings.py keeps."""
    ns = stack_settings.duration_ns(str(value)) if not isinstance(value, (int, float)) else None
    if ns is None:
        raise Refused(f"{path}: '{value}' is not a duration; expected e.g. 30s or 1m30s")
    return stack_settings.go_duration(ns)


def command_words(value: Any) -> list[str]:
    """A command as words; `sh -c "..."` is unwrapped to the words of its script."""
    return compose_app.script_words(value)


def _image_repository(image: str) -> str:
    reference = image.split("@", 1)[0]
    last = reference.rsplit("/", 1)[-1]
    return last.split(":", 1)[0].lower()


# --- roles --------------------------------------------------------------------------------


def role_of(name: str, service: dict) -> Optional[str]:
    repository = _image_repository(str(service.get("image") or ""))
    if repository in ("postgres", "redis", "nginx"):
        return {"postgres": "db", "redis": "redis", "nginx": "nginx"}[repository]
    words = " ".join(command_words(service.get("command"))).lower()
    lowered = name.lower()
    if re.search(r"celery\S*\s.*\bworker\b|celeryworker", words) or ("worker" in lowered and "build" in service):
        return "worker"
    if re.search(r"celery\S*\s.*\bbeat\b|celerybeat", words) or ("beat" in lowered and "build" in service):
        return "beat"
    if re.search(r"\b(gunicorn|uvicorn|daphne)\b|\brunserver\b", words) or lowered in ("web", "app", "django"):
        return "web"
    if lowered in ("db", "postgres", "postgresql", "database"):
        return "db"
    if lowered in ("redis", "cache"):
        return "redis"
    if lowered == "nginx":
        return "nginx"
    return None


# --- the translation ------------------------------------------------------------------------


@dataclass
class Translation:
    values: dict[str, Any] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)
    refusals: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    understood: list[str] = field(default_factory=list)
    secrets: dict[str, str] = field(default_factory=dict)
    """Stack key -> the compose key (or file) it replaces."""
    optional_secrets: dict[str, str] = field(default_factory=dict)
    defaults: dict[str, Any] = field(default_factory=dict)
    """Pulumi.yaml's defaults, for the notes."""
    app_env: dict[str, tuple[str, str]] = field(default_factory=dict)
    """appEnv: name -> (value, the compose key it came from)."""
    secret_env: dict[str, str] = field(default_factory=dict)
    """appSecretEnv: name -> the compose key it came from (values never read)."""
    secret_env_files: list[str] = field(default_factory=list)
    """env_file keys: their secrets go in appSecretEnv too."""
    soft: list[tuple[str, Any, str]] = field(default_factory=list)
    """(key, value, source): taken unless the compose file sets the key itself (the Dockerfile's
    CMD and ENV, which compose's own command and environment override; gunicorn's --log-level)."""
    builds: dict[str, tuple[str, Any]] = field(default_factory=dict)
    """role -> (the compose key, build:), read once every service is known."""
    images: dict[str, tuple[str, str]] = field(default_factory=dict)
    """app role -> (the compose key, image:)."""
    commands: set[str] = field(default_factory=set)
    """App roles whose service has a command."""
    by_role: dict[str, str] = field(default_factory=dict)
    """role -> the compose service that has it."""
    no_celery: bool = False
    """No Celery worker nor beat service: celeryApp is empty, whatever names an app."""

    def set(self, key: str, value: Any, source: str, shown: Optional[str] = None) -> None:
        """Map `source` to `key`; a second, different value for the same key is a refusal."""
        if key in self.values and self.values[key] != value:
            self.refusals.append(
                f"{source}: '{shown or value}' differs from {self.sources[key]} "
                f"'{self.values[key]}'; the program has one {key}"
            )
            return
        self.values.setdefault(key, value)
        self.sources.setdefault(key, source)

    def refuse(self, path: str, why: str) -> None:
        self.refusals.append(f"{path}: {why}")

    def note(self, path: str, why: str) -> None:
        self.notes.append(f"{path}: {why}")

    def secret(self, key: str, source: str) -> None:
        self.secrets.setdefault(key, source)


@dataclass(frozen=True, kw_only=True)
class Options:
    production: bool
    """More than one compose file: bind mounts of code and published database ports are refused."""
    default_images: bool = False
    image_source_stack: str = ""
    base_dir: Path = PROJECT_ROOT
    """The first compose file's directory: Compose resolves every relative path from it
    (docker/docs content/manuals/compose/how-tos/multiple-compose-files/merge.md: "Paths are
    evaluated relative to the base file")."""
    root: Path = PROJECT_ROOT
    """The program's directory: appContext is written relative to it."""


def translate(compose: dict, options: Options, defaults: dict[str, Any]) -> Translation:
    t = Translation(defaults=dict(defaults))
    for key, value in compose.items():
        if key in ("version", "name") or str(key).startswith("x-"):
            t.understood.append(key)
        elif key == "services":
            continue
        elif key in ("volumes", "networks"):
            for item, spec in (value or {}).items():
                spec = spec or {}
                if spec.get("external"):
                    t.refuse(
                        f"{key}.{item}.external", f"the program creates its own {key}; an existing one is not adopted"
                    )
                for option in ("driver", "driver_opts", "ipam") if key == "networks" else ("driver", "driver_opts"):
                    if option in spec and not (option == "driver" and spec[option] in ("local", "bridge")):
                        t.refuse(
                            f"{key}.{item}.{option}",
                            f"the program creates local {key} with Docker's defaults; remove it",
                        )
            t.understood.append(key)
        else:
            t.refuse(key, "not mapped: the program has no equivalent; remove it")

    services = compose.get("services") or {}
    by_role: dict[str, str] = {}
    for name, service in services.items():
        role = role_of(name, service)
        if role is None:
            t.refuse(
                f"services.{name}",
                "no role in this program (web, celery worker, celery beat, postgres, redis, "
                "nginx); the program runs only those: remove the service",
            )
            continue
        if role in by_role:
            t.refuse(
                f"services.{name}",
                f"a second {ROLE_TEXT[role]} service (beside services.{by_role[role]}); the program runs one",
            )
            continue
        by_role[role] = name
    t.by_role = by_role

    if "web" not in by_role:
        t.refuse(
            "services", "no web service (one running gunicorn or manage.py runserver, or named web, app or django)"
        )
    if "worker" not in by_role and "beat" not in by_role:
        # No Celery in the compose file: none in the stack either (no worker, no beat, no broker check).
        t.set("celeryApp", "", "services (no Celery worker)")
        t.no_celery = True
        t.note("services", "no Celery worker service: celeryApp is empty (no worker nor beat; health checks no broker)")
    elif "worker" not in by_role:
        t.note("services", f"no {ROLE_TEXT['worker']} service; the program runs one beside beat")
    for role in ("db", "redis", "nginx"):
        if role not in by_role:
            t.note("services", f"no {ROLE_TEXT[role]} service; the program runs one anyway")
    if "beat" in by_role:
        t.set("celeryBeat", True, f"services.{by_role['beat']}")

    restart_sources: list[str] = []
    # Accessories first: a database name is sourced from POSTGRES_DB before an app's DATABASE_URL.
    for role in ("db", "redis", "nginx", "web", "worker", "beat"):
        if role in by_role:
            _service(t, role, by_role[role], services[by_role[role]], by_role, options, restart_sources)
    if "web" in by_role:
        _app_image(t, by_role, options)
    for role, command in (
        ("web", "gunicorn serving appModule"),
        ("worker", "`celery --app <celeryApp> worker`"),
        ("beat", "`celery --app <celeryApp> beat`"),
    ):
        if role in by_role and role not in t.commands:
            t.note(
                f"services.{by_role[role]}", f"no command (and none in a Dockerfile read); the program runs {command}"
            )
    _finish_env(t)
    _apply_soft(t)
    if not restart_sources and by_role:
        t.note(
            "services.*.restart",
            "not set (Compose: no); the program restarts every long-running container "
            f"({defaults['restartPolicy']}, restartPolicy)",
        )
    elif restart_sources:
        unset = [f"services.{by_role[r]}" for r in by_role if f"services.{by_role[r]}" not in restart_sources]
        if unset:
            t.note("restartPolicy", f"applies to every container, also {', '.join(unset)} (no restart: there)")
    return t


def _service(
    t: Translation, role: str, name: str, service: dict, by_role: dict, options: Options, restart_sources: list
) -> None:
    base = f"services.{name}"
    app = role in ("web", "worker", "beat")
    for key, value in service.items():
        path = f"{base}.{key}"
        if str(key).startswith("x-") or key in OWNED_KEYS or (app and key in APP_OWNED_KEYS):
            t.understood.append(path)
        elif key in REFUSED_KEYS:
            t.refuse(path, REFUSED_KEYS[key])
        elif key == "build" and app:
            t.builds[role] = (path, value)  # read once every service is known (_app_image)
        elif key == "build":
            t.refuse(
                path,
                f"the program runs the official {ACCESSORY[role][1]} image ({ACCESSORY[role][0]}); remove the build",
            )
        elif key == "entrypoint" and app:
            t.note(
                path,
                "not used: the program gives app containers no entrypoint, so the image's own ENTRYPOINT (the "
                "Dockerfile's) runs each of its commands; put it in the Dockerfile",
            )
        elif key in ("entrypoint", "user", "read_only", "tmpfs", "cap_drop", "stop_grace_period"):
            t.refuse(path, f"the program runs {ROLE_TEXT[role]} with its image's defaults; remove it")
        elif key == "image" and app:
            t.images[role] = (path, str(value))  # read with the build (_app_image)
        elif key == "image":
            _image(t, role, path, str(value), options)
        elif key == "command":
            if app:
                t.commands.add(role)
            _command(t, role, path, value)
        elif key == "environment":
            _environment(t, role, path, value, by_role)
        elif key == "env_file":
            files = value if isinstance(value, list) else [value]
            shown = ", ".join(str(f["path"] if isinstance(f, dict) else f) for f in files)
            if app:
                t.secret("djangoSecretKey", path)
                t.secret("postgresPassword", path)
                t.secret_env_files.append(f"{shown} ({path})")
            t.note(
                path,
                f"{shown} not read (it holds secrets, and is not in the repository): the app gets only the "
                "variables the program sets (render.app_env); put each setting in its stack key or appEnv, "
                "secrets with the commands below",
            )
        elif key == "ports":
            _ports(t, role, path, value, by_role, options)
        elif key == "volumes":
            _volumes(t, role, path, value, options)
        elif key == "restart":
            _restart(t, path, str(value))
            restart_sources.append(base)
        elif key == "deploy":
            _deploy(t, role, path, value or {}, restart_sources)
        elif key == "scale":
            _replicas(t, role, path, value)
        elif key == "mem_limit":
            _memory(t, role, path, value)
        elif key == "healthcheck":
            _healthcheck(t, role, path, value or {})
        else:
            t.refuse(path, "not a key the importer knows; nothing in the program maps it")


def _pin_example(role: str) -> str:
    _, repository, major, parts = ACCESSORY[role]
    return f"{repository}:" + ".".join([major or "1"] + ["x", "y"][: parts - 1])


def _image(t: Translation, role: str, path: str, image: str, options: Options) -> None:
    key, repository, major, parts = ACCESSORY[role]
    if _INTERPOLATION.search(image):
        t.refuse(
            path, f"'{image}' needs variable interpolation; the importer reads no environment: write the pinned image"
        )
        return
    if _image_repository(image) != repository:
        t.refuse(path, f"{image} is not the {repository} image; the program runs {_pin_example(role)}")
        return
    untagged = ":" not in image.rsplit("/", 1)[-1] and "@" not in image  # Compose pulls :latest
    if untagged or image.endswith(":latest"):
        t.refuse(path, f"{image} is mutable (latest); the program needs {_pin_example(role)} (pin a patch release)")
        return
    ref = _parse_or_none(key, image)
    if ref is None:
        t.refuse(path, f"'{image}' is not an image reference; the program needs {_pin_example(role)}")
        return
    if ref.digest is not None:
        t.set(key, image, path)
        return
    leading = (re.match(r"^[0-9]+(?:\.[0-9]+)*", ref.tag or "") or [""])[0]
    numbers = leading.split(".") if leading else []
    if major and numbers and numbers[0] != major:
        t.refuse(
            path,
            f"{image} is not {repository} {major}.x; the program needs {_pin_example(role)} "
            "(a major upgrade is a migration)",
        )
        return
    if len(numbers) >= parts:
        t.set(key, image, path)
        return
    default = str(t.defaults[key])
    default_tag = default.split(":", 1)[1]
    same_line = default_tag.split("-")[0].split(".")[: len(numbers)] == numbers
    if role in HOLDS_DATA and not numbers:
        same_line = False  # the data in the volume needs a known major
    if role == "db" and ("alpine" in (ref.tag or "")) != ("alpine" in default_tag):
        same_line = False  # musl and glibc collate text differently: an existing data directory's indexes
    why = f"{image} is not pinned to a patch release; the program needs {_pin_example(role)} (e.g. {default})"
    if not options.default_images:
        t.refuse(path, why + ", or pass --default-images")
    elif not same_line:
        t.refuse(path, why + f"; --default-images does not apply: {default} is not the release line of '{ref.tag}'")
    else:
        t.note(path, f"{image} is not pinned; using the program's pinned {default} (--default-images)")


def _parse_or_none(key: str, image: str) -> Optional[stack_settings.ImageRef]:
    try:
        return stack_settings.parse_image_ref(key, image)
    except stack_settings.SettingsError:
        return None


def _command(t: Translation, role: str, path: str, value: Any) -> None:
    words = command_words(value)
    if role in ("web", "worker", "beat"):
        _apply(t, path, compose_app.read_app_command(role, words))
    elif role == "redis" and words[:1] == ["redis-server"] and words[1:] in ([], ["--appendonly", "yes"]):
        t.understood.append(path)
    elif role == "nginx" and words in (["nginx", "-g", "daemon off;"],):
        t.understood.append(path)
    else:
        t.refuse(path, f"the program runs {ROLE_TEXT[role]} with its own command; remove it")


def _apply(t: Translation, path: str, findings: list[Finding], *, soft: bool = False) -> None:
    """Findings of a command, each under `path` (the compose key it came from)."""
    for finding in findings:
        where = f"{path} {finding.where}" if finding.where else path
        if finding.kind in ("set", "release") or (finding.kind == "soft" and not soft):
            if finding.kind == "release":
                t.note(path, finding.text)
            if finding.kind == "soft":
                t.soft.append((finding.key, finding.value, where))
            elif soft:
                t.soft.append((finding.key, _typed(finding.key, finding.value), where))
            elif finding.key in INTEGER_KEYS:
                _integer(t, finding.key, finding.value, where)
            else:
                t.set(finding.key, finding.value, where)
        elif finding.kind == "soft":
            t.soft.append((finding.key, finding.value, where))
        elif finding.kind == "note":
            t.note(path, finding.text)
        elif finding.kind == "refuse":
            t.refuse(where, finding.text)
        elif finding.kind == "env":
            _app_variable(t, where, finding.key, finding.value, t.by_role)
        elif finding.kind == "missing-concurrency":
            why = "beside --autoscale" if finding.value else "(Celery starts one process per CPU)"
            t.note(
                path, f"no --concurrency {why}; the program runs celeryConcurrency {t.defaults['celeryConcurrency']}"
            )
    t.understood.append(path)


def _typed(key: str, value: Any) -> Any:
    if key in INTEGER_KEYS:
        try:
            return int(str(value).strip())
        except ValueError:
            return value
    return value


def _apply_soft(t: Translation) -> None:
    """Values the compose file may set otherwise: the first of each key, unless it is set."""
    for key, value, source in t.soft:
        if key not in t.values:
            if key in INTEGER_KEYS:
                _integer(t, key, value, source)
            else:
                t.set(key, value, source)
        elif t.values[key] != value and key == "djangoLogLevel":
            t.note(
                source,
                f"not mapped: {value} (djangoLogLevel, Django's and the server's one level, is "
                f"{t.values[key]} from {t.sources[key]})",
            )


def _integer(t: Translation, key: str, text: Any, source: str) -> None:
    if _INTERPOLATION.search(str(text)):
        t.refuse(source, "needs variable interpolation; the importer reads no environment: write the value")
        return
    try:
        t.set(key, int(str(text).strip()), source)
    except ValueError:
        t.refuse(source, f"'{text}' is not a whole number ({key})")


# --- the app's image: build, image, and the Dockerfile's CMD and ENV ------------------------

_REMOTE_CONTEXT = re.compile(r"^(?:[a-z][a-z0-9+.-]*://|git@)|\.git(?:#.*)?$", re.IGNORECASE)
# build: keys the program has nothing for, and why (the program builds with pulumi-docker's
# Image: context, dockerfile, its own args, the Docker host's platform).
BUILD_NOTES = {
    "cache_from": "the program's build uses the Docker host's own cache",
    "cache_to": "the program's build uses the Docker host's own cache",
    "no_cache": "the program's build uses the Docker host's own cache",
    "pull": "the program's build uses the base images the Docker host has (they are patch-pinned)",
    "labels": "the Dockerfile's LABELs are the image's; the program labels its containers",
    "tags": "the program tags the image with the git SHA",
    "platforms": "the program builds for the Docker host's platform",
    "shm_size": "the program's build keeps Docker's default",
    "network": "the program's build uses Docker's default build network",
    "isolation": "the program's build uses Docker's default isolation",
}
BUILD_REFUSED = {
    "ssh": "the program's build forwards no SSH agent; fetch private dependencies before the build",
    "secrets": "the program's build mounts no build secrets; fetch private dependencies before the build",
    "additional_contexts": "the program builds from one context (appContext); move what it needs into it",
    "dockerfile_inline": "the program builds from a Dockerfile in the context (appDockerfile); write it to a file",
    "extra_hosts": "the program's build adds no /etc/hosts entries; remove it",
    "privileged": "the program's build is not privileged; remove it",
    "ulimits": "the program's build sets no ulimits; remove it",
    "entitlements": "the program's build grants no entitlements; remove it",
}
COMMIT_ARGS = re.compile(
    r"^(?:GIT_)?(?:COMMIT|REV|REVISION|SHA|HASH)(?:_?SHA|_?HASH|_?ID)?$|^(?:VCS_REF|SOURCE_COMMIT|BUILD_SHA)$"
)
ADOPTED_DOCKERFILE = "Dockerfile.django-docker"  # what `make adopt` writes beside a team's own


@dataclass(frozen=True)
class Build:
    path: str
    context: str
    dockerfile: str
    args: dict[str, Optional[str]]
    target: str
    form: str
    """How compose wrote it: 'string' (build: .) or 'mapping'."""


def _read_build(t: Translation, path: str, value: Any) -> Optional[Build]:
    if isinstance(value, str):
        return Build(path, value, "", {}, "", "string")
    if not isinstance(value, dict):
        t.refuse(path, "expected a directory or a mapping (context, dockerfile, args, target)")
        return None
    for key in value:
        where = f"{path}.{key}"
        if key in BUILD_NOTES:
            t.note(where, f"not mapped ({BUILD_NOTES[key]})")
        elif key in BUILD_REFUSED:
            t.refuse(where, BUILD_REFUSED[key])
        elif key not in ("context", "dockerfile", "args", "target") and not str(key).startswith("x-"):
            t.refuse(where, "not a build key the importer knows; nothing in the program maps it")
    args = value.get("args") or {}
    if isinstance(args, list):
        args = _env_map(f"{path}.args", args)
    return Build(
        path,
        str(value.get("context") or "."),
        str(value.get("dockerfile") or ""),
        {str(k): (None if v is None else str(v)) for k, v in dict(args).items()},
        str(value.get("target") or ""),
        "mapping",
    )


def _app_image(t: Translation, by_role: dict, options: Options) -> None:
    """The app's image: the program builds it from appContext (or promotes another stack's).
    Web, worker and beat run one image: one build, one context, one Dockerfile."""
    web_image = t.images.get("web")
    builds = [b for b in (_read_build(t, *t.builds[r]) for r in ("web", "worker", "beat") if r in t.builds) if b]
    if options.image_source_stack:
        t.set("imageSource", "stack", web_image[0] if web_image else "--image-source-stack")
        t.set("imageSourceStack", options.image_source_stack, "--image-source-stack")
        for path, image in t.images.values():
            t.note(path, f"'{image}' replaced by the digest {options.image_source_stack} exported (imageSource: stack)")
        for build in builds:
            t.note(
                build.path,
                f"not used: the program runs the digest {options.image_source_stack} exported (imageSource: stack); "
                "that stack builds it (its appContext)",
            )
        if builds:  # what the image runs (its CMD, its ENV) still names the app keys of this stack
            context = _context_dir(t, builds[0], options, quiet=True)
            if context is not None:
                _runtime_keys(t, builds[0], _load_dockerfile(context / (builds[0].dockerfile or "Dockerfile")))
        return
    if not builds:
        if not t.builds:  # (a build: that was itself refused is reported already)
            path, what = web_image if web_image else (f"services.{by_role['web']}", "")
            t.refuse(
                path,
                (f"'{what}' is an image built elsewhere; " if what else "no build: ")
                + "the program builds the app's image itself, from its source with the runtime (appContext): "
                "add a build: (the project's directory), or pass --image-source-stack to run a stack's digest",
            )
        return
    first = builds[0]  # web's when it has one: the roles are read web, worker, beat
    for build in builds:
        context = _context_dir(t, build, options)
        if context is None:
            continue
        where = build.path if build.form == "string" else f"{build.path}.context"
        written = build.context if Path(build.context).is_absolute() else os.path.relpath(context, options.root)
        t.set("appContext", written, where)
        # Compose's default Dockerfile is the context's `Dockerfile`, as appDockerfile's is.
        t.set(
            "appDockerfile",
            str(Path(build.dockerfile or "Dockerfile")),
            f"{build.path}.dockerfile" if build.dockerfile else where,
        )
        if build is not first:
            if (build.args, build.target) != (first.args, first.target):
                t.refuse(
                    build.path,
                    f"builds other args or another target than {first.path}; the program builds one image for "
                    "web, worker and beat",
                )
            else:
                t.understood.append(build.path)
    dockerfile = _dockerfile(t, first, options)
    _build_args(t, first, dockerfile)
    _app_images(t, by_role)


def _context_dir(t: Translation, build: Build, options: Options, *, quiet: bool = False) -> Optional[Path]:
    """The build's context as a directory (relative to the first compose file's), or a refusal
    (quiet: None, when the build is not used)."""
    where = build.path if build.form == "string" else f"{build.path}.context"
    if _INTERPOLATION.search(build.context) or _INTERPOLATION.search(build.dockerfile):
        if not quiet:
            t.refuse(where, "needs variable interpolation; the importer reads no environment: write the path")
        return None
    if _REMOTE_CONTEXT.search(build.context):
        if not quiet:
            t.refuse(where, f"'{build.context}' is a remote context; the program builds a directory (appContext)")
        return None
    directory = Path(build.context)
    return directory if directory.is_absolute() else (options.base_dir / directory).resolve()


def _load_dockerfile(path: Path) -> Optional[tuple[str, compose_app.Dockerfile]]:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None  # the program's settings refuse it, naming the build (validate)
    return text, compose_app.read_dockerfile(text)


def _dockerfile(t: Translation, build: Build, options: Options) -> Optional[compose_app.Dockerfile]:
    """The Dockerfile the compose file builds: what the program builds instead when it does not
    take the runtime, its target, its ENTRYPOINT, then the app keys its CMD and ENV name."""
    if "appContext" not in t.values:
        return None
    context = (options.root / str(t.values["appContext"])).resolve()
    name = str(t.values["appDockerfile"])
    loaded = _load_dockerfile(context / name)
    if loaded is None:
        return None
    text, parsed = loaded
    built = parsed
    where = f"{build.path}.dockerfile" if build.dockerfile else build.path
    if not RUNTIME_ARG_RE.search(text):
        adopted = _load_dockerfile(context / ADOPTED_DOCKERFILE)
        if adopted is not None and RUNTIME_ARG_RE.search(adopted[0]):
            t.values["appDockerfile"] = ADOPTED_DOCKERFILE
            t.sources["appDockerfile"] = f"{where} ({ADOPTED_DOCKERFILE} beside it)"
            t.note(
                where,
                f"{name} does not take the runtime (no ARG {RUNTIME_BUILD_ARG}); the program builds "
                f"{ADOPTED_DOCKERFILE}, which `make adopt` wrote beside it",
            )
            built = adopted[1]
    if build.target:
        stage = parsed.stage(build.target)
        last = parsed.stages[-1].name if parsed.stages else ""
        if built is not parsed:
            t.note(f"{build.path}.target", f"not used: the program builds {ADOPTED_DOCKERFILE}'s last stage")
        elif stage is None:
            t.refuse(f"{build.path}.target", f"'{build.target}' is not a stage of {name}")
        elif stage is parsed.stages[-1]:
            t.note(
                f"{build.path}.target",
                f"'{build.target}' is {name}'s last stage, the one the program builds (it passes no target)",
            )
        else:
            t.refuse(
                f"{build.path}.target",
                f"'{build.target}' is not {name}'s last stage ('{last or 'unnamed'}'); the program builds the last "
                "stage (it passes no target): put that stage last, or build from a Dockerfile whose last stage it is",
            )
    final = built.stage()
    if final is not None and final.entrypoint:
        runs = compose_app.entrypoint_runs_server(final.entrypoint)
        shown = compose_app.shown(final.entrypoint)
        if runs:
            t.refuse(
                where,
                f"the Dockerfile's ENTRYPOINT `{shown}` starts {runs} itself, so every command the program gives "
                "(web, worker, beat, the release jobs) would become its arguments; make it CMD",
            )
        else:
            t.note(
                where,
                f"the Dockerfile's ENTRYPOINT `{shown}` runs before each command the program gives (web, worker, "
                'beat, the release jobs): it must end by running them (exec "$@")',
            )
    _runtime_keys(t, build, loaded)
    return parsed


def _runtime_keys(t: Translation, build: Build, loaded: Optional[tuple[str, compose_app.Dockerfile]]) -> None:
    """What the compose file ran of the image: the Dockerfile's CMD when the web service has no
    command, and the ENV the program sets itself (so its value must come to the stack)."""
    stage = (loaded[1].stage(build.target) or loaded[1].stage()) if loaded is not None else None
    if stage is None:
        return
    web = t.builds.get("web", (build.path, None))[0].rsplit(".build", 1)[0]
    if "web" not in t.commands and stage.cmd:
        t.commands.add("web")  # read: the image's command is the web service's
        t.note(
            f"{web}.build",
            f"the web service has no command: its Dockerfile's CMD `{compose_app.shown(stage.cmd)}` is read instead",
        )
        _apply(
            t, f"{web}.build (Dockerfile CMD)", compose_app.read_app_command("web", command_words(stage.cmd)), soft=True
        )
    for variable, key in (
        ("DJANGO_SETTINGS_MODULE", "djangoSettingsModule"),
        ("APP_MODULE", "appModule"),
        ("CELERY_APP", "celeryApp"),
        ("PORT", "appPort"),
    ):
        if variable in stage.env and not _INTERPOLATION.search(stage.env[variable]):
            t.soft.append((key, _typed(key, stage.env[variable]), f"{web}.build (Dockerfile ENV {variable})"))


def _build_args(t: Translation, build: Build, dockerfile: Optional[compose_app.Dockerfile]) -> None:
    """What the program passes is its own (GIT_SHA, the runtime); the rest is listed, one line."""
    if not build.args:
        return
    own, unmapped, commits = [], [], []
    for name, value in build.args.items():
        if name in ("GIT_SHA", RUNTIME_BUILD_ARG):
            own.append(name)
        elif dockerfile is not None and value is not None and dockerfile.arg_default(name, build.target) == value:
            continue  # the Dockerfile's default already: the program's build gets the same
        else:
            unmapped.append(name)
            if COMMIT_ARGS.match(name):
                commits.append(name)
    where = f"{build.path}.args"
    if own:
        meaning = {"GIT_SHA": "the commit", RUNTIME_BUILD_ARG: "the runtime's image"}
        t.note(where, f"{', '.join(f'{name} ({meaning[name]})' for name in own)}: the program passes its own")
    if unmapped:
        hint = f"; {', '.join(commits)}: the program passes the commit as GIT_SHA" if commits else ""
        t.note(
            where,
            f"not mapped: {', '.join(unmapped)} (the program's build passes only its own GIT_SHA and "
            f"{RUNTIME_BUILD_ARG}: give each ARG its value as a default in the Dockerfile{hint})",
        )
    t.understood.append(where)


_REGISTRY_HOST = re.compile(r"^(?:localhost|[^/]*[.:][^/]*)$")


def _app_images(t: Translation, by_role: dict) -> None:
    """image: beside build: names what is built. A plain repository name is imageRepository."""
    web = t.images.get("web")
    for role, (path, image) in t.images.items():
        if role != "web":
            if web is not None and image == web[1]:
                t.understood.append(path)  # the web service's image: the same one
            else:
                t.note(path, f"'{image}' not used: every app container runs the one image the program builds")
            continue
        if _INTERPOLATION.search(image) or "@" in image:
            t.note(path, f"'{image}' not used: the program builds appContext and tags it with the git SHA")
            continue
        name, _, tag = image.rpartition(":") if ":" in image.rsplit("/", 1)[-1] else (image, "", "")
        first = name.split("/", 1)[0]
        if "/" in name and _REGISTRY_HOST.match(first):
            registry, _, repository = name.rpartition("/")
            t.note(
                path,
                f"'{image}' not used: to push to {registry}, set imageRegistry {registry} and imageRepository "
                f"{repository} with imageRegistryUsername and imageRegistryPassword (the program tags with the git SHA)",
            )
            continue
        t.set("imageRepository", name, path)
        if tag:
            t.note(path, f"':{tag}' not used: the program tags the image with the git SHA")


# --- the environment ----------------------------------------------------------------------


def aliases() -> dict[str, str]:
    """Names settings read for what the program provides, and the program's name for it."""
    return {**render.PROVIDED_ALIASES, **EXTRA_ALIASES}


def _environment(t: Translation, role: str, path: str, env: dict, by_role: dict) -> None:
    app = role in ("web", "worker", "beat")
    for name, value in env.items():
        where = f"{path}.{name}"
        if app:
            _app_variable(t, where, name, value, by_role)
        elif role == "db":
            if name == "POSTGRES_PASSWORD":
                t.secret("postgresPassword", where)  # the value is never read further, nor shown
            elif name in ("POSTGRES_DB", "POSTGRES_USER"):
                _plain(t, PROVIDED_KEYS[name], value, where)
            elif name == "PGDATA":
                t.understood.append(where)
            else:
                t.refuse(where, "the program sets PostgreSQL's environment itself and has no key for it; remove it")
        else:
            t.refuse(where, f"the program sets {ROLE_TEXT[role]}'s environment itself and has no key for it; remove it")


def _app_variable(t: Translation, where: str, name: str, value: Optional[str], by_role: dict) -> None:
    """One variable of an app service: the program's own (mapped or understood), an alias of one
    (mapped, and an appEnv reference), or the app's (appEnv, or appSecretEnv for a secret)."""
    provided = name if name in render.PROVIDED_ENV else aliases().get(name)
    if provided:
        _provided(t, where, name, provided, value, by_role)
        if provided != name:
            reference = "${%s}" % provided
            database = _url_path(value) if provided == "REDIS_URL" else ""
            if database.isdigit() and database != "0":  # another database than REDIS_URL's: kept apart
                reference = render.redis_url(db=int(database))
            _add_env(t, name, reference, where)
        return
    if name in GUNICORN_ENV:
        _plain(t, GUNICORN_ENV[name], value, where)
    elif name == "GUNICORN_CMD_ARGS":
        words = shlex.split(value or "")
        _apply(t, where, compose_app.read_gunicorn(words, application=False))
    elif name in FIXED_ENV:
        role, fixed = FIXED_ENV[name]
        if name.endswith("_HOST") and value is not None and value != by_role.get(role):
            t.refuse(
                where,
                f"points at host '{value}', not the compose file's {ROLE_TEXT[role]} service; the program runs its own "
                f"{ROLE_TEXT[role]}",
            )
            return
        _add_env(t, name, fixed, where)
    elif name == "GIT_SHA":
        t.note(
            where,
            "not copied: the program passes the commit as the build argument GIT_SHA (the Dockerfile's "
            "`ARG GIT_SHA` and `ENV GIT_SHA=$GIT_SHA` give it to the app)",
        )
    elif compose_app.secret_name(name) or (value is not None and compose_app.has_credentials(value)):
        t.secret_env.setdefault(name, where)  # never read further, nor shown
    elif value is None or _INTERPOLATION.search(value):
        t.refuse(where, "needs a value from the environment; the importer reads no environment: write the value")
    else:
        if name in ("DEBUG", "DJANGO_DEBUG") and value.strip().lower() not in ("", "0", "false", "no", "off"):
            t.note(
                where,
                f"{value}: Django's DEBUG shows tracebacks and settings to anyone who meets an error; "
                "set it off for a stack people use",
            )
        _add_env(t, name, value, where)


def _provided(t: Translation, where: str, name: str, provided: str, value: Optional[str], by_role: dict) -> None:
    """A variable the program sets: its value becomes the stack key the program sets it from."""
    if provided in PROVIDED_SECRETS:
        t.secret(PROVIDED_SECRETS[provided], where)  # the value is never read further, nor shown
    elif provided in URL_ROLE:
        _url(t, where, value, URL_ROLE[provided], by_role)
        database = _url_path(value) if name == "REDIS_URL" else ""
        if database not in ("", "0"):
            t.note(where, f"Redis database {database}: the program's REDIS_URL is database 0")
    elif provided == "POSTGRES_HOST":
        if value is not None and not _INTERPOLATION.search(value) and value != by_role.get("db"):
            t.refuse(
                where,
                f"points at host '{value}', not the compose file's PostgreSQL service; the program runs its own "
                "PostgreSQL",
            )
        else:
            t.understood.append(where)
    elif provided == "DJANGO_ALLOWED_HOSTS":
        _allowed_hosts(t, where, value)
    elif provided in PROVIDED_KEYS:
        if PROVIDED_KEYS[provided] == "celeryApp" and t.no_celery:
            t.note(where, "not mapped: no Celery worker or beat service, so the stack runs no Celery (celeryApp empty)")
            return
        _plain(t, PROVIDED_KEYS[provided], value, where)
    else:  # PROVIDED_DERIVED: the program decides it from other keys
        t.understood.append(where)


def _url_path(value: Optional[str]) -> str:
    """A URL's path without slashes (a Redis URL's database number), or ''."""
    if not value or _INTERPOLATION.search(value):
        return ""
    try:
        return urlsplit(value).path.strip("/")
    except ValueError:
        return ""


def _add_env(t: Translation, name: str, value: str, where: str) -> None:
    """An appEnv entry: one value for every app container."""
    if name in t.app_env and t.app_env[name][0] != value:
        t.refuse(
            where,
            f"'{value}' differs from {t.app_env[name][1]} '{t.app_env[name][0]}'; appEnv has one {name} "
            "for every app container",
        )
        return
    t.app_env.setdefault(name, (value, where))


def _finish_env(t: Translation) -> None:
    if t.app_env:
        t.values["appEnv"] = [f"{name}={value}" for name, (value, _) in t.app_env.items()]
        t.sources["appEnv"] = ", ".join(source for _, source in t.app_env.values())


def _plain(t: Translation, key: str, value: Optional[str], where: str) -> None:
    if value is None or _INTERPOLATION.search(value):
        t.refuse(where, "needs a value from the environment; the importer reads no environment: write the value")
        return
    if key in INTEGER_KEYS:
        _integer(t, key, value, where)
    elif key == "djangoLogLevel":
        t.set(key, value.strip().upper(), where)
    else:
        t.set(key, value.strip(), where)


def _url(t: Translation, where: str, value: Optional[str], role: str, by_role: dict) -> None:
    """DATABASE_URL and friends: the program renders them; only their host, user and database are read."""
    t.understood.append(where)
    if value is None or _INTERPOLATION.search(value):
        return
    try:
        parts = urlsplit(value)
        host = parts.hostname
    except ValueError:
        host = None
    if not host:
        t.refuse(where, "not a URL the importer reads; the program renders it")
        return
    if host != by_role.get(role):
        t.refuse(
            where,
            f"points at host '{host}', not the compose file's {ROLE_TEXT[role]} service; the program "
            f"runs its own {ROLE_TEXT[role]}",
        )
        return
    if role == "db":
        if parts.username:
            t.set("postgresUser", parts.username, where + " (user)")
        database = parts.path.lstrip("/")
        if database:
            t.set("postgresDb", database, where + " (database)")


def _allowed_hosts(t: Translation, where: str, value: Optional[str]) -> None:
    if value is None or _INTERPOLATION.search(value):
        t.refuse(where, "needs a value from the environment; the importer reads no environment: write the value")
        return
    hosts = [h.strip() for h in value.split(",") if h.strip()]
    if not hosts or "*" in hosts:
        t.refuse(where, "'*' allows every host; the program needs the names (serverName, djangoAllowedHosts)")
        return
    t.set("serverName", hosts[0], where + " (first host)")
    t.set("djangoAllowedHosts", ",".join(hosts[1:]), where + " (other hosts)")


def _ports(t: Translation, role: str, path: str, value: Any, by_role: dict, options: Options) -> None:
    front = "nginx" if "nginx" in by_role else "web"
    for item in value or []:
        try:
            port = parse_port(path, item)
        except Refused as error:
            t.refusals.append(str(error))
            continue
        if role in ("db", "redis"):
            what = ROLE_TEXT[role]
            if port.host_ip in ("127.0.0.1", "::1") or not options.production:
                t.note(
                    path,
                    f"'{port.text}' not published: the program never publishes {what} (reach it with "
                    f"`make exec STACK=<stack> SERVICE={'postgres' if role == 'db' else 'redis'}`)",
                )
            else:
                t.refuse(path, f"the program never publishes {what}; remove it")
        elif role == "web" and front == "nginx":
            t.note(path, f"'{port.text}' not published: web replicas are reached only through nginx (httpPort)")
        elif role != front:
            t.refuse(path, f"the program publishes no port of {ROLE_TEXT[role]}; remove it")
        else:
            _front_port(t, role, path, port)


def _front_port(t: Translation, role: str, path: str, port: Port) -> None:
    if port.protocol != "tcp":
        t.refuse(path, f"'{port.text}' is {port.protocol}; the program publishes HTTP over tcp only")
        return
    if not port.published.isdigit():
        t.refuse(
            path,
            f"'{port.text}' publishes {'a range' if port.published else 'a random host port'}; "
            "the program needs one fixed host port (httpPort)",
        )
        return
    if role == "nginx":
        key = {"80": "httpPort", "443": "httpsPort"}.get(port.target)
        if key is None:
            t.refuse(path, f"'{port.text}': the program's nginx listens on 80 (httpPort) and 443 (httpsPort) only")
            return
    else:
        key = "httpPort"
        t.note(path, f"'{port.text}': the program puts nginx in front of gunicorn; nginx publishes httpPort")
    if key == "httpsPort":
        t.optional_secrets.update({"tlsCertificate": path, "tlsKey": path})
    t.set(key, int(port.published), f"{path} '{port.text}'", shown=port.published)
    t.set("bindAddress", port.host_ip or "0.0.0.0", f"{path} '{port.text}'")


def _volumes(t: Translation, role: str, path: str, value: Any, options: Options) -> None:
    for item in value or []:
        volume = parse_volume(item)
        if volume.kind in ("volume", "anonymous", "tmpfs"):
            t.understood.append(path)  # the program's own volumes: postgres-data, redis-data, static, media
        elif role == "nginx" and volume.target.startswith("/etc/nginx/"):
            t.understood.append(path)  # the program renders nginx's configuration
        elif role in ("db", "redis"):
            t.refuse(
                path,
                f"'{volume.text}' bind-mounts a host path into {ROLE_TEXT[role]}; the program keeps its "
                "data in its own volume and runs no init scripts; remove it",
            )
        elif options.production:
            t.refuse(
                path,
                f"'{volume.text}' bind-mounts a host path; the program runs the built image and mounts "
                "nothing from the host; remove it",
            )
        else:
            t.note(
                path,
                f"'{volume.text}' not mounted: the program runs the built image, so a code change needs "
                "`pulumi up` (no live reload)",
            )


_RESTART = {"always": "always", "unless-stopped": "unless-stopped", "on-failure": "on-failure", "any": "always"}


def _restart(t: Translation, path: str, value: str) -> None:
    policy = _RESTART.get(value.strip())
    if policy is None:
        t.refuse(
            path, f"'{value}' is not a policy the program has; restartPolicy is always, unless-stopped or on-failure"
        )
        return
    t.set("restartPolicy", policy, path)


def _deploy(t: Translation, role: str, path: str, deploy: dict, restart_sources: list) -> None:
    for key, value in deploy.items():
        where = f"{path}.{key}"
        if key == "replicas":
            _replicas(t, role, where, value)
        elif key == "resources":
            for kind, limits in (value or {}).items():
                for item, amount in (limits or {}).items():
                    if kind == "limits" and item == "memory":
                        _memory(t, role, f"{where}.limits.memory", amount)
                    elif kind == "limits" and item == "cpus":
                        t.refuse(f"{where}.limits.cpus", "the program sets no CPU limits; remove it")
                    else:
                        t.refuse(f"{where}.{kind}.{item}", "the program sets only a memory limit; remove it")
        elif key == "restart_policy":
            for item, setting in (value or {}).items():
                if item == "condition":
                    _restart(t, f"{where}.condition", {"none": "no"}.get(str(setting), str(setting)))
                    restart_sources.append(path.rsplit(".", 1)[0])
                else:
                    t.refuse(
                        f"{where}.{item}", "the program's restartPolicy has no delay, attempts or window; remove it"
                    )
        elif key in ("update_config", "rollback_config"):
            t.note(
                where,
                "the program's release replaces web replicas and the worker create-before-delete "
                '(docs/operations.md, "What a release does")',
            )
        else:
            t.refuse(where, "swarm-only; the program runs on one Docker host; remove it")


def _replicas(t: Translation, role: str, path: str, value: Any) -> None:
    try:
        count = int(value)
    except (TypeError, ValueError):
        t.refuse(path, f"'{value}' is not a whole number")
        return
    if role == "web":
        t.set("webReplicas", count, path)
    elif count != 1:
        hint = "; raise celeryConcurrency instead" if role == "worker" else ""
        t.refuse(path, f"{count}: the program runs one {ROLE_TEXT[role].removeprefix('the ')} container{hint}")
    else:
        t.understood.append(path)


def _memory(t: Translation, role: str, path: str, value: Any) -> None:
    size = memory_bytes(value)
    if size is None:
        t.refuse(path, f"'{value}' is not a memory size; expected e.g. 512M")
        return
    key = MEMORY_KEY[role]
    if key == "celeryMemory" and key in t.values and t.values[key] != memory_text(size):
        # worker and beat share one limit: keep the larger, so neither gets less than before
        current = memory_bytes(t.values[key])
        if current is None:  # (max() would raise the same TypeError)
            raise TypeError(f"{key}: {t.values[key]!r} is not a memory size")
        larger = max(current, size)
        t.note(
            path, f"{memory_text(size)}: worker and beat share celeryMemory; using the larger, {memory_text(larger)}"
        )
        t.values[key] = memory_text(larger)
        return
    t.set(key, memory_text(size), path)


def _healthcheck(t: Translation, role: str, path: str, check: dict) -> None:
    if role != "web":
        t.note(path, f"not used: the program gives {ROLE_TEXT[role]} its own healthcheck")
        return
    for item, value in check.items():
        where = f"{path}.{item}"
        key = {
            "interval": "healthcheckInterval",
            "timeout": "healthcheckTimeout",
            "start_period": "healthcheckStartPeriod",
        }.get(item)
        if key:
            try:
                t.set(key, compose_duration(where, value), where)
            except Refused as error:
                t.refusals.append(str(error))
        elif item == "retries":
            _integer(t, "healthcheckRetries", value, where)
        elif item == "test":
            t.note(
                where,
                "replaced by the program's own probe (python -m django_docker_runtime.healthcheck web; slim images have no curl)",
            )
        elif item == "disable":
            t.note(where, "the program always checks the web replicas' health (a release waits for it)")
        else:
            t.refuse(where, "the program's healthcheck has no such setting; remove it")


# --- the stack file -------------------------------------------------------------------------


def project_defaults(root: Path) -> tuple[list[str], dict[str, Any]]:
    project = yaml.safe_load((root / "Pulumi.yaml").read_text())
    order, defaults = [], {}
    for key, declaration in (project.get("config") or {}).items():
        order.append(key)
        defaults[key] = declaration.get("default") if isinstance(declaration, dict) else declaration
    return order, defaults


def _same(key: str, value: Any, default: Any) -> bool:
    if key.endswith("Memory"):
        return memory_bytes(value) == memory_bytes(default)
    if key.startswith("healthcheck") and key != "healthcheckRetries":
        return stack_settings.duration_ns(str(value)) == stack_settings.duration_ns(str(default))
    return value == default


def stack_values(t: Translation, order: list[str], defaults: dict[str, Any]) -> dict[str, Any]:
    """The mapped values that differ from Pulumi.yaml's defaults, in Pulumi.yaml's order."""
    return {key: t.values[key] for key in order if key in t.values and not _same(key, t.values[key], defaults[key])}


def render_stack_file(
    values: dict[str, Any],
    sources: dict[str, str],
    files: list[str],
    secrets: Iterable[str],
    item_sources: Optional[dict[str, list[str]]] = None,
) -> str:
    """The stack file: one line per key naming the compose key it came from; a list (appEnv)
    one item per line, each naming its own."""
    lines = [
        f"# Written by tools/compose_import.py from {' + '.join(files)}. Only what differs from Pulumi.yaml's defaults.",
        "# Each value names the compose key it came from.",
    ]
    secrets = list(secrets)
    if secrets:
        lines.append(
            f"# Secrets (pulumi config set --secret ...), never copied from the compose files: {', '.join(secrets)}."
        )
    lines.append("config:")
    if not values:
        lines[-1] = "config: {}"
    for key, value in values.items():
        if isinstance(value, list):
            lines.append(f"  {NAMESPACE}:{key}:")
            item_source = (item_sources or {}).get(key, [])
            for index, item in enumerate(value):
                source = f"  # {item_source[index]}" if index < len(item_source) else ""
                lines.append(f"    - {_scalar(item)}{source}")
            continue
        dumped = yaml.safe_dump({f"{NAMESPACE}:{key}": value}, default_flow_style=False, width=1000).strip()
        lines.append(f"  {dumped}  # {sources[key]}")
    return "\n".join(lines) + "\n"


def _scalar(value: Any) -> str:
    return yaml.safe_dump(value, default_flow_style=True, width=1000).strip().removesuffix("...").strip()


def validate(
    text: str,
    stack: str,
    root: Path,
    *,
    secrets: Iterable[str],
    image_source_stack: str,
    secret_env_names: Iterable[str] = (),
) -> Optional[str]:
    """Plan the stack with the program's own settings: their problems in one line, or None."""
    problems = validate_lines(
        text,
        stack,
        root,
        secrets=secrets,
        image_source_stack=image_source_stack,
        secret_env_names=secret_env_names,
    )
    return "; ".join(problems) if problems else None


def validate_lines(
    text: str,
    stack: str,
    root: Path,
    *,
    secrets: Iterable[str],
    image_source_stack: str,
    secret_env_names: Iterable[str] = (),
) -> list[str]:
    """Plan the stack with the program's own settings (placeholders for the secrets it would be
    given); every problem they report, one line each."""
    from planning.harness import PlanError, plan_stack  # imported late: the SDK is slow to import

    placeholders = {key: PLACEHOLDER_SECRETS[key] for key in secrets if key in PLACEHOLDER_SECRETS}
    names = list(secret_env_names)
    if names:  # the names are checked as the program checks them; the values are placeholders
        placeholders["appSecretEnv"] = "".join(f"{name}=compose-import-placeholder\n" for name in names)
    references = (
        {image_source_stack: {"imageRef": PLACEHOLDER_DIGEST, "imagePushed": True, "gitSha": PLACEHOLDER_SHA}}
        if image_source_stack
        else {}
    )
    saved = {name: os.environ.get(name) for name in ("GIT_SHA",)}
    with tempfile.TemporaryDirectory(prefix="compose-import-") as scratch:
        temp_root = Path(scratch)
        for name in ("Pulumi.yaml", "__main__.py"):
            shutil.copy2(root / name, temp_root / name)
        (temp_root / f"Pulumi.{stack}.yaml").write_text(text)
        if not os.environ.get("GIT_SHA") and not os.environ.get("GITHUB_SHA"):
            os.environ["GIT_SHA"] = PLACEHOLDER_SHA  # the image tag does not matter to validation
        try:
            plan_stack(stack, root=temp_root, secrets=placeholders, stack_references=references)
        except PlanError as error:
            lines = [line for line in str(error).strip().splitlines() if line.strip()]
            return lines or ["the program refused the stack"]
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
    return []


# --- the command ----------------------------------------------------------------------------


@dataclass
class Outcome:
    code: int
    stdout: list[str] = field(default_factory=list)
    stderr: list[str] = field(default_factory=list)
    written: Optional[Path] = None


def run(
    files: list[Path],
    stack: str,
    *,
    out_dir: Path = PROJECT_ROOT,
    root: Path = PROJECT_ROOT,
    force: bool = False,
    default_images: bool = False,
    image_source_stack: str = "",
) -> Outcome:
    out = Outcome(code=0)
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", stack):
        out.stderr.append(f"--stack: '{stack}' is not a stack name (letters, digits, _ . -)")
        out.code = 1
        return out
    target = out_dir / f"Pulumi.{stack}.yaml"
    if target.exists() and not force:
        out.stderr.append(f"{target.name}: exists; pass --force to overwrite it")
        out.code = 2
        return out
    order, defaults = project_defaults(root)
    try:
        documents = [load_file(path) for path in files]
    except OSError as error:
        out.stderr.append(f"{error.filename}: {error.strerror}")
        out.code = 1
        return out
    except Refused as error:
        out.stderr.extend([str(error), "compose_import: refused; nothing written"])
        out.code = 2
        return out
    compose = merge_files(documents)
    options = Options(
        production=len(files) > 1,
        default_images=default_images,
        image_source_stack=image_source_stack,
        base_dir=files[0].resolve().parent,
        root=root,
    )
    t = translate(compose, options, defaults)
    if t.refusals:
        out.stderr.extend(t.refusals)
        out.stderr.append(f"compose_import: {len(t.refusals)} compose key(s) refused; nothing written")
        out.code = 2
        return out
    values = stack_values(t, order, defaults)
    names = [path.name for path in files]
    secrets = [key for key in SECRET_STACK_KEYS if key in t.secrets]
    secret_env = list(t.secret_env)
    shown_secrets = secrets + (["appSecretEnv"] if secret_env or t.secret_env_files else [])
    item_sources = {"appEnv": [source for _, source in t.app_env.values()]}
    text = render_stack_file(values, t.sources, names, shown_secrets, item_sources)
    problems = validate_lines(
        text, stack, root, secrets=secrets, image_source_stack=image_source_stack, secret_env_names=secret_env
    )
    if problems:
        out.stderr.extend(_settings_source(t, problem, defaults) for problem in problems)
        out.stderr.append("compose_import: the program's settings refused the result; nothing written")
        out.code = 2
        return out
    target.write_text(text)
    out.written = target
    out.stdout.append(
        f"wrote {target.name} from {' + '.join(names)}: "
        + (", ".join(f"{k}={_scalar(v)}" for k, v in values.items()) if values else "every key at its default")
    )
    out.stdout.extend(f"note: {line}" for line in t.notes)
    understood = sorted(set(t.understood))
    if understood:
        out.stdout.append(f"understood, no config (the program owns them): {', '.join(understood)}")
    if secrets:
        out.stdout.append(
            "secrets: never copied; run these (each prompts for the value; unset, the program generates one):"
        )
        out.stdout.extend(
            f"  pulumi config set --secret --stack {stack} {key}   # replaces {t.secrets[key]}" for key in secrets
        )
    if secret_env or t.secret_env_files:
        what = [f"{name} ({source})" for name, source in t.secret_env.items()]
        what += [f"the lines of {files} your app reads that the program does not set" for files in t.secret_env_files]
        out.stdout.append("the app's own secrets: never copied; one NAME=value line each in a file, then:")
        out.stdout.append(f"  pulumi config set --secret --stack {stack} appSecretEnv < app.env   # {'; '.join(what)}")
    if t.optional_secrets:
        out.stdout.append("to serve HTTPS on httpsPort (needs both):")
        out.stdout.extend(
            f"  pulumi config set --secret --stack {stack} {key} < {'fullchain.pem' if key == 'tlsCertificate' else 'privkey.pem'}"
            for key in t.optional_secrets
        )
    return out


def _settings_source(t: Translation, problem: str, defaults: dict[str, Any]) -> str:
    """A problem the program's settings found, after the compose key its value came from."""
    key = problem.split(":", 1)[0]
    item = re.match(r"^(\w+)\[(\d+)\]$", key)
    if item and item.group(1) == "appEnv" and int(item.group(2)) < len(t.app_env):
        return f"{list(t.app_env.values())[int(item.group(2))][1]}: {problem}"
    if key in t.sources:
        return f"{t.sources[key]}: {problem}"
    if key == "appSecretEnv" and t.secret_env:
        named = next((source for name, source in t.secret_env.items() if f" {name} " in f" {problem} "), None)
        return f"{named}: {problem}" if named else problem
    if key in defaults:
        return f"{problem} (Pulumi.yaml's default: the compose files do not set {key})"
    return problem


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.compose_import",
        description="Write Pulumi.<stack>.yaml from docker-compose files (merged like `docker compose -f a -f b`).",
    )
    parser.add_argument("files", nargs="+", type=Path, help="compose files, base first")
    parser.add_argument("--stack", required=True, help="the stack to write (Pulumi.<stack>.yaml)")
    parser.add_argument(
        "--out-dir", type=Path, default=PROJECT_ROOT, help="where to write the stack file (default: the project)"
    )
    parser.add_argument("--force", action="store_true", help="overwrite an existing stack file")
    parser.add_argument(
        "--default-images",
        action="store_true",
        help="replace an unpinned postgres/redis/nginx tag by the program's pinned default of the same line",
    )
    parser.add_argument(
        "--image-source-stack",
        default="",
        metavar="ORG/PROJECT/STACK",
        help="the app services' image: run the digest this stack exported (imageSource: stack)",
    )
    args = parser.parse_args(argv)
    outcome = run(
        args.files,
        args.stack,
        out_dir=args.out_dir,
        force=args.force,
        default_images=args.default_images,
        image_source_stack=args.image_source_stack,
    )
    for line in outcome.stdout:
        print(line)
    for line in outcome.stderr:
        print(line, file=sys.stderr)
    return outcome.code


if __name__ == "__main__":
    sys.exit(main())
