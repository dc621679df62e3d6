"""Typed stack settings: the one place that reads `pulumi.Config` (and the git SHA).

`load()` reads every key declared in Pulumi.yaml once, validates it, and returns a frozen
`StackSettings`. The user's mistakes raise one `SettingsError` with one line each, naming the
key and saying what is expected (every mistake of the stack, not only the first; a key no one
reads is one too); `__main__.py` turns it into a clean exit before any resource exists.
Defaults live only in Pulumi.yaml (the Pulumi CLI applies them); nothing here repeats them.

By concern:
  stack.py     StackSettings and load(): every key read once, section by section
  services.py  the sections: Deployment (what every resource shares), then one per service
  reader.py    the Reader every key goes through once (strings, numbers, sizes, durations, secrets);
               it collects the problems
  keys.py      the known keys (Pulumi.yaml's config, the Docker provider's), unknown ones refused
  values.py    what the parts share and the day-2 commands reuse: image references, Go durations,
               healthcheck timing, SettingsError
  images.py    the app image's source (build, another stack's digest, a pin) and the accessories'
  backups.py   backups: schedule, retention, off-host storage, encryption, point-in-time recovery
  app.py       which Django project: its context, Dockerfile, modules, health, release commands;
               the runtime image's tag
  identity.py  the commit an image is built from
  tls.py       the certificate and key, checked before anything is created
  provider.py  the Docker provider's own `docker:` settings
  registry.py  docker:registryAuth, checked in its whole shape without echoing it
"""

from components.settings.app import RUNTIME_BUILD_ARG, RUNTIME_DIR, AppSettings, runtime_image_tag
from components.settings.backups import BackupSettings, OffsiteSettings, Schedule
from components.settings.identity import EXAMPLE_APP, PROJECT_ROOT, resolve_git_sha
from components.settings.images import IMAGE_SOURCES, ImageSettings
from components.settings.services import (
    CelerySettings,
    Deployment,
    DjangoSettings,
    NginxSettings,
    PostgresSettings,
    RedisSettings,
    WebSettings,
)
from components.settings.stack import (
    LOG_LEVELS,
    MAX_REPLICAS,
    PROJECT,
    RESTART_POLICIES,
    StackSettings,
    load,
    load_or_fail,
)
from components.settings.tls import check_tls
from components.settings.values import (
    Healthcheck,
    ImageRef,
    SettingsError,
    duration_ns,
    go_duration,
    is_digest_ref,
    parse_image_ref,
)

__all__ = [
    "EXAMPLE_APP",
    "IMAGE_SOURCES",
    "RUNTIME_BUILD_ARG",
    "RUNTIME_DIR",
    "AppSettings",
    "BackupSettings",
    "OffsiteSettings",
    "Schedule",
    "LOG_LEVELS",
    "MAX_REPLICAS",
    "PROJECT",
    "PROJECT_ROOT",
    "RESTART_POLICIES",
    "CelerySettings",
    "Deployment",
    "DjangoSettings",
    "Healthcheck",
    "ImageRef",
    "ImageSettings",
    "NginxSettings",
    "PostgresSettings",
    "RedisSettings",
    "SettingsError",
    "StackSettings",
    "WebSettings",
    "check_tls",
    "duration_ns",
    "go_duration",
    "is_digest_ref",
    "load",
    "load_or_fail",
    "parse_image_ref",
    "resolve_git_sha",
    "runtime_image_tag",
]
