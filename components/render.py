"""Pure rendering: commands, environment lists, labels, URLs and nginx.conf.

Nothing here touches Pulumi or Docker; every function takes plain values and returns plain
values, so each is tested with plain asserts on its exact output. The app's side of these
contracts (paths, commands, variables) is docs/contracts.md.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Iterable, Mapping, Optional, Sequence
from urllib.parse import quote

APP_USER = "10001:10001"
NGINX_STATIC = "/var/www/static"
NGINX_MEDIA = "/var/www/media"
NGINX_CONF = "/etc/nginx/nginx.conf"
NGINX_TLS_CERT = "/etc/nginx/tls/server.crt"
NGINX_TLS_KEY = "/etc/nginx/tls/server.key"
# A container's nginx reads its configuration from the site volume (components/nginx_site.py):
# one directory per generation, `current` a symlink to the one in use. nginx is started with
# `-c current/nginx.conf`, so a relative path in it (the certificate and key of its generation)
# is resolved against that directory at every (re)load: nginx takes the directory of the `-c`
# file as its conf prefix (nginx src/core/nginx.c ngx_process_options, 1.28.0:1058-1068).
NGINX_SITE_DIR = "/etc/nginx/site"
NGINX_SITE_CONF = f"{NGINX_SITE_DIR}/current/nginx.conf"
NGINX_SITE_TLS_CERT = "tls/server.crt"
NGINX_SITE_TLS_KEY = "tls/server.key"
# tlsMode acme: the certificate nginx serves, installed here by the ACME client (lego) after
# each issue or renewal; a self-signed placeholder until the first one (components/nginx_site.py).
NGINX_ACME_DIR = f"{NGINX_SITE_DIR}/acme"
NGINX_ACME_CERT = f"{NGINX_ACME_DIR}/server.crt"
NGINX_ACME_KEY = f"{NGINX_ACME_DIR}/server.key"
# The HTTP-01 challenges: lego writes them here, nginx serves them on port 80.
ACME_WEBROOT = "/var/www/acme"
ACME_DATA = "/acme"  # lego's --path: the account key, orders and certificates (a protected volume)
ACME_CHALLENGE_PATH = "/.well-known/acme-challenge/"
# Each generation's own file: it names the generation, which the health door then answers with.
NGINX_GENERATION_FILE = "generation.conf"
NGINX_GENERATION_HEADER = "X-Config-Generation"
POSTGRES_DATA = "/var/lib/postgresql/data"
REDIS_DATA = "/data"
BACKUP_DIR = "/backups"
POSTGRES_HOST = "postgres"
POSTGRES_PORT = 5432
REDIS_HOST = "redis"
# Every web replica carries this one alias on the frontend network: Docker's DNS answers it
# with the address of each running replica, and nginx re-resolves it (nginx_conf).
WEB_HOST = "web"
# The upstream that keeps no failure marks and no connections: the fresh attempt after nginx's
# own 502, and the requests nginx never repeats once sent (nginx_conf).
FRESH_UPSTREAM = "django_fresh"
# Docker's embedded DNS server, inside every container on a user-defined network.
DOCKER_DNS = "127.0.0.11"
# nginx answers its own health probe here, on the container's loopback only.
NGINX_HEALTH_PORT = 8081
NGINX_HEALTH_PATH = "/nginx-health"
LABEL_PREFIX = "django-docker"
# On the maintenance switches (NginxSite helpers): the image whose release they belong to, so
# a new image switches again (components/release.py, components/nginx.py).
RELEASE_IMAGE_LABEL = f"{LABEL_PREFIX}.release-image"
# Swarm secrets are mounted here (the app reads NAME_FILE; postgres POSTGRES_PASSWORD_FILE).
SECRETS_DIR = "/run/secrets"


def labels(*, service: str, role: str, stack: str, git_sha: Optional[str] = None) -> dict[str, str]:
    """Labels every container carries, so people and the policy pack can tell them apart."""
    result = {
        f"{LABEL_PREFIX}.service": service,
        f"{LABEL_PREFIX}.role": role,
        f"{LABEL_PREFIX}.stack": stack,
    }
    if git_sha:
        result[f"{LABEL_PREFIX}.git-sha"] = git_sha
    return result


# --- commands ----------------------------------------------------------------------------


# The runtime every app image carries (runtime/django_docker_runtime; docs/adopt.md).
RUNTIME = "django_docker_runtime"
WEB_APPLICATIONS = {"wsgi": f"{RUNTIME}.wsgi:application", "asgi": f"{RUNTIME}.asgi:application"}
# uvicorn-worker's worker class (uvicorn.workers.UvicornWorker is deprecated in its favour).
ASGI_WORKER = "uvicorn_worker.UvicornWorker"


def web_command(
    *, server: str, workers: int, threads: int, timeout: int, max_requests: int, max_requests_jitter: int
) -> list[str]:
    """gunicorn with the runtime's config (readiness gate, drain) serving the runtime's wrapper
    of APP_MODULE (the health endpoint ahead of the app). Every tunable is a flag, which wins
    over the config file, so `docker inspect` shows what runs."""
    argv = ["gunicorn", "--config", f"python:{RUNTIME}.gunicorn_conf", "--workers", str(workers)]
    if server == "asgi":
        argv += ["--worker-class", ASGI_WORKER]
    elif threads > 1:
        argv += ["--threads", str(threads)]
    argv += ["--timeout", str(timeout), "--graceful-timeout", str(timeout)]
    argv += ["--max-requests", str(max_requests), "--max-requests-jitter", str(max_requests_jitter)]
    return [*argv, WEB_APPLICATIONS[server]]


def worker_command(
    app: str, *, concurrency: int, pool: str, max_tasks_per_child: int, queues: Sequence[str]
) -> list[str]:
    argv = ["celery", "--app", app, "worker", "--loglevel", "INFO", "--concurrency", str(concurrency)]
    if pool != "prefork":
        argv += ["--pool", pool]
    if max_tasks_per_child:
        argv += ["--max-tasks-per-child", str(max_tasks_per_child)]
    if queues:
        argv += ["--queues", ",".join(queues)]
    return argv


def beat_command(app: str) -> list[str]:
    # The schedule lives in /tmp: the root filesystem is read-only.
    return ["celery", "--app", app, "beat", "--loglevel", "INFO", "--schedule", "/tmp/celerybeat-schedule"]


def with_secret_files(argv: Sequence[str]) -> list[str]:
    """A command that first turns NAME_FILE secrets into NAME (the runtime's `run`): the app's
    own settings then read a swarm secret like any variable."""
    return ["python", "-m", f"{RUNTIME}.run", "--", *argv]


def migration_gate_command(mode: str) -> list[str]:
    """The release's compatibility gate (django_docker_runtime.migration_gate), in a container
    of the new image: refuses (gate) or lets through (maintenance) what the serving release
    cannot survive."""
    if mode not in ("gate", "maintenance"):
        raise ValueError(f"migration mode {mode!r} is not gate or maintenance")
    return ["python", "-m", f"{RUNTIME}.migration_gate", "--mode", mode]


def app_healthcheck(role: str) -> list[str]:
    """Healthcheck test for an app container: Python, not curl (python:*-slim has no curl)."""
    return ["CMD", "python", "-m", f"{RUNTIME}.healthcheck", role]


def postgres_healthcheck(user: str, db: str) -> list[str]:
    return ["CMD", "pg_isready", "--username", user, "--dbname", db, "--host", "127.0.0.1"]


def redis_healthcheck() -> list[str]:
    return ["CMD", "redis-cli", "ping"]


def nginx_healthcheck() -> list[str]:
    """nginx itself answers (not the app behind it: a down web tier must not restart nginx)."""
    return [
        "CMD",
        "curl",
        "--fail",
        "--silent",
        "--output",
        "/dev/null",
        f"http://127.0.0.1:{NGINX_HEALTH_PORT}{NGINX_HEALTH_PATH}",
    ]


def redis_command(memory_mb: int) -> list[str]:
    """Redis is the Celery broker: persist every second and never evict a queued task."""
    max_memory_mb = max(1, memory_mb * 3 // 4)  # headroom under the container limit for fork/AOF rewrite
    return [
        "redis-server",
        "--appendonly",
        "yes",
        "--appendfsync",
        "everysec",
        "--maxmemory",
        f"{max_memory_mb}mb",
        "--maxmemory-policy",
        "noeviction",
    ]


# --- backups -----------------------------------------------------------------------------
# A backup is `pg_dump --format=custom` of the database, in BACKUP_DIR (the stack's backups
# volume), named `<UTC time>-<stack>-<label>.dump` so that names sort by time. Labels:
# `before-<sha>` (automatic, before the migration of release <sha>), `<sha>-manual` (make
# backup), `<sha>-pre-restore` (taken by make restore before it overwrites anything).
BACKUP_LABEL_RE = r"[A-Za-z0-9][A-Za-z0-9._-]{0,80}"


def short_sha(git_sha: str) -> str:
    """12 hex digits, keeping a `-dirty` mark."""
    return git_sha[:12] + ("-dirty" if git_sha.endswith("-dirty") else "")


def backup_command(*, stack: str, label: str, retention: int = 0, retention_days: int = 0) -> list[str]:
    """Dump the database (PG* environment) into BACKUP_DIR; print `backup: <name> (<size> bytes)`.

    Written under a temporary name and renamed only once complete, so a file that looks like a
    backup always is one; readable by its owner only. With `retention`, then removes the
    automatic backups of the stack that are neither among the newest `retention` nor younger
    than `retention_days` (names start with their UTC time, so the cutoff is a name compared as
    text); the operator's own are never removed. (With the backup accessory the agent does this,
    the same rule: backup/django_docker_backup/names.py.)
    """
    name = f'"$(date -u +%Y%m%dT%H%M%SZ)-{stack}-{label}.dump"'
    script = [
        "set -eu",
        "umask 077",
        f"name={name}",
        f'partial="{BACKUP_DIR}/.partial-$name"',
        "trap 'rm -f \"$partial\"' EXIT",
        'pg_dump --format=custom --file="$partial"',
        f'mv "$partial" "{BACKUP_DIR}/$name"',
        f'echo "backup: $name ($(stat -c %s "{BACKUP_DIR}/$name") bytes)"',
    ]
    if retention:
        automatic = f"^[0-9]{{8}}T[0-9]{{6}}Z-{stack.replace('.', '[.]')}-(before-.*|scheduled)[.]dump$"
        younger = f" and those younger than {retention_days} days" if retention_days else ""
        script += [
            f'cutoff="$(date -u -d "-{retention_days} days" +%Y%m%dT%H%M%SZ)"' if retention_days else 'cutoff="~"',
            f"ls -1 {BACKUP_DIR} | grep -E '{automatic}' | sort -r | tail -n +{retention + 1} | "
            'while read -r old; do if [ "$old" \\< "$cutoff" ]; then '
            f'rm -f -- "{BACKUP_DIR}/$old"; '
            f'echo "backup: removed $old (keeping the newest {retention} automatic backups{younger})"; '
            "fi; done",
        ]
    return ["sh", "-c", "\n".join(script)]


# --- the backup accessory (backup/: the agent, in an image FROM the stack's postgresImage) ----
# PostgreSQL's socket directory, shared with the accessory when the WAL is archived: pgBackRest
# reaches the server through its socket, and finished WAL segments wait in a spool beside it.
POSTGRES_RUN = "/var/run/postgresql"
WAL_SPOOL = f"{POSTGRES_RUN}/pgbackrest-spool"
BACKUP_AGENT = "django_docker_backup"


def postgres_archive_command() -> str:
    """PostgreSQL's archive_command: each finished WAL segment copied into the spool (under a
    temporary name, synced, then renamed), for the backup accessory to push with pgBackRest. A
    segment already spooled succeeds only if it is the same (PostgreSQL may archive one twice
    after a crash); any failure makes PostgreSQL keep the segment and try again."""
    return (
        f'd={WAL_SPOOL}; mkdir -p "$d" && f="$d/%f" && '
        'if [ -f "$f" ]; then cmp -s "%p" "$f"; else cp "%p" "$d/.%f.partial" && sync "$d/.%f.partial" '
        '&& mv "$d/.%f.partial" "$f"; fi'
    )


def postgres_command(*, archive_timeout_seconds: int) -> list[str]:
    """The postgres image's own entrypoint and server, with WAL archiving on (backupPitr): a
    segment is switched and archived at the latest `archive_timeout` after a commit."""
    return [
        "postgres",
        "-c",
        "archive_mode=on",
        "-c",
        f"archive_command={postgres_archive_command()}",
        "-c",
        f"archive_timeout={archive_timeout_seconds}s",
    ]


def backup_agent_command(*args: str) -> list[str]:
    return ["python3", "-m", BACKUP_AGENT, *args]


def backup_healthcheck() -> list[str]:
    return ["CMD", *backup_agent_command("health")]


def backup_env(
    *,
    stack: str,
    schedule: Optional[tuple[int, int, str]],
    retention: int,
    retention_days: int,
    drill_days: int,
    offsite: Optional[Mapping[str, str]] = None,
    pitr: bool = False,
    archive_timeout_seconds: int = 60,
) -> list[str]:
    """The agent's environment (backup/django_docker_backup/config.py), without its secrets
    (the PG* variables, the bucket's credentials, the archive's passphrase: added by the
    component as secret Outputs). `schedule`: (interval, offset, as written) in seconds, UTC.
    `offsite`: endpoint, bucket, prefix, region, ca (PEM), recipient (empty: no off-host copies)."""
    env = {
        "BACKUP_STACK": stack,
        "BACKUP_DIR": BACKUP_DIR,
        "BACKUP_RETENTION": str(retention),
        "BACKUP_RETENTION_DAYS": str(retention_days),
        "BACKUP_DRILL_DAYS": str(drill_days),
    }
    if schedule is not None:
        interval, offset, text = schedule
        env.update(BACKUP_INTERVAL_SECONDS=str(interval), BACKUP_OFFSET_SECONDS=str(offset), BACKUP_SCHEDULE=text)
    if offsite:
        env.update(
            BACKUP_S3_ENDPOINT=offsite["endpoint"],
            BACKUP_S3_BUCKET=offsite["bucket"],
            BACKUP_S3_PREFIX=offsite["prefix"],
            BACKUP_S3_REGION=offsite["region"],
        )
        if offsite.get("ca"):
            # In the environment, not uploaded: the accessory's root filesystem is read-only, and
            # Docker refuses a copy into such a container ("container rootfs is marked read-only",
            # met by the rehearsal); the agent writes it to its /tmp (a CA is public).
            env["BACKUP_S3_CA_PEM"] = offsite["ca"]
        if offsite.get("recipient"):
            env["BACKUP_AGE_RECIPIENT"] = offsite["recipient"]
    if pitr:
        env.update(
            BACKUP_PITR="true",
            BACKUP_ARCHIVE_TIMEOUT_SECONDS=str(archive_timeout_seconds),
            BACKUP_ARCHIVE_COMMAND=postgres_archive_command(),
        )
    return [f"{key}={value}" for key, value in env.items()]


def restore_command(name: str) -> list[str]:
    """Replace the database with backup `name`, all or nothing.

    The archive is read in full first (a corrupt or truncated one fails here, before anything
    changed: exit 3). Then one transaction drops the public schema and replays the dump, so
    the result is exactly the backup, also when the backup predates tables a later migration
    added; any error rolls all of it back (exit 4).
    """
    script = [
        "set -u",
        f'pg_restore --no-owner --no-privileges --file=/tmp/restore.sql "{BACKUP_DIR}/{name}" || exit 3',
        "psql --no-psqlrc --quiet --single-transaction --set ON_ERROR_STOP=1 "
        "--command 'DROP SCHEMA public CASCADE; CREATE SCHEMA public;' --file=/tmp/restore.sql >/dev/null || exit 4",
        f'echo "restored: {name}"',
    ]
    return ["sh", "-c", "\n".join(script)]


def list_backups_command() -> list[str]:
    """One line per backup: `<name> <bytes>`, oldest first."""
    return [
        "sh",
        "-c",
        f'cd {BACKUP_DIR} && for f in $(ls -1 | grep -E \'[.]dump$\' | sort); do echo "$f $(stat -c %s "$f")"; done',
    ]


def postgres_client_env(*, user: str, password: str, db: str, host: str = POSTGRES_HOST) -> list[str]:
    """What pg_dump, pg_restore and psql read to reach the database."""
    return [f"PGHOST={host}", "PGPORT=5432", f"PGUSER={user}", f"PGPASSWORD={password}", f"PGDATABASE={db}"]


# --- environment -------------------------------------------------------------------------


def database_url(*, user: str, password: str, db: str, host: str = POSTGRES_HOST, port: int = POSTGRES_PORT) -> str:
    return f"postgres://{quote(user, safe='')}:{quote(password, safe='')}@{host}:{port}/{quote(db, safe='')}"


def redis_url(*, host: str = REDIS_HOST, port: int = 6379, db: int = 0) -> str:
    return f"redis://{host}:{port}/{db}"


# What the program sets in every app container: the contract a team's settings read
# (docs/adopt.md), and the runtime's own. appEnv may refer to these (`${NAME}`), not replace them.
PROVIDED_ENV = (
    "DJANGO_SETTINGS_MODULE",
    "DJANGO_SECRET_KEY",
    "DJANGO_ALLOWED_HOSTS",
    "DJANGO_CSRF_TRUSTED_ORIGINS",
    "DATABASE_URL",
    # The same database in the parts many settings read it as (the postgres image's names).
    "POSTGRES_HOST",
    "POSTGRES_PORT",
    "POSTGRES_DB",
    "POSTGRES_USER",
    "POSTGRES_PASSWORD",
    "REDIS_URL",
    "DJANGO_SECURE_SSL_REDIRECT",
    "DJANGO_SECURE_COOKIES",
    "DJANGO_SECURE_HSTS_SECONDS",
    "DJANGO_LOG_LEVEL",
    "APP_MODULE",
    "PORT",
    "HEALTH_PATH",
    "HEALTH_CHECKS",
    "READY_CHECKS",
    "CELERY_APP",
    "FORWARDED_ALLOW_IPS",
)
# Of those, the secrets (on swarm: files, never in a service's spec).
PROVIDED_SECRETS = ("DJANGO_SECRET_KEY", "DATABASE_URL", "POSTGRES_PASSWORD")
# Names many settings read for one of those, and the program's name for it: `make adopt` and the
# compose importer give each as an appEnv reference (`SECRET_KEY=${DJANGO_SECRET_KEY}`).
PROVIDED_ALIASES = {
    "SECRET_KEY": "DJANGO_SECRET_KEY",
    "DJANGO_SECRET": "DJANGO_SECRET_KEY",
    "ALLOWED_HOSTS": "DJANGO_ALLOWED_HOSTS",
    "CSRF_TRUSTED_ORIGINS": "DJANGO_CSRF_TRUSTED_ORIGINS",
    "DB_URL": "DATABASE_URL",
    "DB_HOST": "POSTGRES_HOST",
    "DATABASE_HOST": "POSTGRES_HOST",
    "DB_PORT": "POSTGRES_PORT",
    "DATABASE_PORT": "POSTGRES_PORT",
    "DB_NAME": "POSTGRES_DB",
    "DATABASE_NAME": "POSTGRES_DB",
    "POSTGRES_NAME": "POSTGRES_DB",
    "DB_USER": "POSTGRES_USER",
    "DATABASE_USER": "POSTGRES_USER",
    "DB_PASSWORD": "POSTGRES_PASSWORD",
    "DATABASE_PASSWORD": "POSTGRES_PASSWORD",
    "CELERY_BROKER_URL": "REDIS_URL",
    "BROKER_URL": "REDIS_URL",
    "CELERY_BROKER": "REDIS_URL",
    "CACHE_URL": "REDIS_URL",
    "REDIS_CACHE_URL": "REDIS_URL",
}
REFERENCE_RE = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def references(value: str) -> list[str]:
    """The names `value` refers to as ${NAME} ($$ is a literal $)."""
    return [name for name in REFERENCE_RE.findall(value) if name]


def expand(value: str, provided: Mapping[str, str]) -> str:
    """${NAME} -> provided[NAME], $$ -> $ (references already checked by the settings)."""
    return REFERENCE_RE.sub(lambda m: "$" if m.group(0) == "$$" else provided[m.group(1)], value)


def app_env(
    *,
    settings_module: str,
    app_module: str,
    port: int,
    health_path: str,
    health_checks: Sequence[str],
    ready_checks: Sequence[str],
    celery_app: str,
    secret_key: str,
    database: Mapping[str, str],
    redis_url: str,
    allowed_hosts: Sequence[str],
    tls: bool,
    hsts_seconds: int,
    log_level: str,
    forwarded_allow_ips: str,
    csrf_trusted_origins: Sequence[str],
    extra: Sequence[tuple[str, str]] = (),
    secret_extra: Optional[Mapping[str, str]] = None,
) -> list[str]:
    """The environment of every container that runs the app image, as KEY=value strings: the
    program's (PROVIDED_ENV), then the stack's appEnv (its ${NAME}s expanded) and appSecretEnv.
    `database`: user, password, db (database_parts)."""
    env = {
        "DJANGO_SETTINGS_MODULE": settings_module,
        "DJANGO_SECRET_KEY": secret_key,
        "DJANGO_ALLOWED_HOSTS": ",".join(allowed_hosts),
        "DJANGO_CSRF_TRUSTED_ORIGINS": ",".join(csrf_trusted_origins),
        "DATABASE_URL": database_url(user=database["user"], password=database["password"], db=database["db"]),
        "POSTGRES_HOST": POSTGRES_HOST,
        "POSTGRES_PORT": str(POSTGRES_PORT),
        "POSTGRES_DB": database["db"],
        "POSTGRES_USER": database["user"],
        "POSTGRES_PASSWORD": database["password"],
        "REDIS_URL": redis_url,
        # HTTPS behaviour follows whether nginx terminates TLS: a plain-HTTP stack still works.
        "DJANGO_SECURE_SSL_REDIRECT": _bool(tls),
        "DJANGO_SECURE_COOKIES": _bool(tls),
        "DJANGO_SECURE_HSTS_SECONDS": str(hsts_seconds if tls else 0),
        "DJANGO_LOG_LEVEL": log_level,
        # The runtime's (django_docker_runtime): what it serves, where, and what health checks.
        "APP_MODULE": app_module,
        "PORT": str(port),
        "HEALTH_PATH": health_path,
        "HEALTH_CHECKS": ",".join(health_checks),
        "READY_CHECKS": ",".join(ready_checks),
        "FORWARDED_ALLOW_IPS": forwarded_allow_ips,
    }
    if celery_app:
        env["CELERY_APP"] = celery_app
    provided = dict(env)
    env.update({name: expand(value, provided) for name, value in extra})
    env.update(secret_extra or {})
    return [f"{key}={value}" for key, value in env.items()]


def secrets_as_files(env: Sequence[str], secrets: Iterable[str], directory: str) -> dict[str, str]:
    """An environment list as a mapping with each secret variable replaced by NAME_FILE, the
    file it is mounted at (the runtime reads it: django_docker_runtime.env, .run): a swarm service's spec holds no secret."""
    names = list(dict.fromkeys(secrets))
    result = {}
    for item in env:
        key, _, value = item.partition("=")
        if key in names:
            result[f"{key}_FILE"] = secret_path(directory, key)
        else:
            result[key] = value
    missing = set(names) - {key.removesuffix("_FILE") for key in result}
    if missing:
        raise ValueError(f"not in the environment: {', '.join(sorted(missing))}")
    # Which of the NAME_FILE variables are secrets the runtime reads into NAME (its `run`): only
    # these, as SSL_CERT_FILE and its kind are paths.
    result["VALUES_FROM_FILES"] = ",".join(names)
    return result


def secret_path(directory: str, name: str) -> str:
    return f"{directory}/{name.lower().replace('_', '-')}"


def origin(*, host: str, tls: bool, port: int) -> str:
    """scheme://host[:port], the port left out when it is the scheme's default."""
    scheme, default = ("https", 443) if tls else ("http", 80)
    return f"{scheme}://{host}" + ("" if port == default else f":{port}")


def csrf_origins(*, hosts: Iterable[str], tls: bool, port: int) -> list[str]:
    """Origins Django trusts for CSRF (wildcard `.domain` hosts name no single origin)."""
    return [origin(host=host, tls=tls, port=port) for host in hosts if not host.startswith(".")]


def postgres_env(*, user: str, password: str, db: str) -> list[str]:
    return [f"POSTGRES_USER={user}", f"POSTGRES_PASSWORD={password}", f"POSTGRES_DB={db}"]


def postgres_file_env(*, user: str, db: str, password_file: str) -> dict[str, str]:
    """postgres_env with the password read from a file (the official image's *_FILE)."""
    return {"POSTGRES_USER": user, "POSTGRES_PASSWORD_FILE": password_file, "POSTGRES_DB": db}


def nginx_generation_conf(generation: str) -> str:
    """The generation file nginx_conf includes: `$config_generation` is this generation's id."""
    if not re.fullmatch(r"[0-9a-f]{8,64}", generation):
        raise ValueError(f"not a generation id: {generation!r}")
    return f'map $host $config_generation {{\n    default "{generation}";\n}}\n'


def acme_env(*, email: str, directory: str, names: Sequence[str], ca_certificate: str, renew_days: int) -> list[str]:
    """The ACME client's environment (nothing secret: the keys stay in its volume)."""
    env = [
        f"ACME_EMAIL={email}",
        f"ACME_DIRECTORY={directory}",
        f"ACME_NAMES={' '.join(names)}",
        f"ACME_RENEW_DAYS={renew_days}",
    ]
    return env + ([f"ACME_CA_PEM={ca_certificate}"] if ca_certificate else [])


# The ACME client's one script (lego's image has only busybox: POSIX sh, no openssl). $1:
#   obtain  `pulumi up`'s job: a certificate for ACME_NAMES (a new order when there is none for
#           exactly those names, else a renewal if due), installed for nginx; fails in one line
#   loop    the renewer: the same every ACME_INTERVAL seconds (12 h); /tmp/acme-status for its healthcheck
#   renew   now, whatever the days left (make renew-certificate, the rehearsal)
# Installing: lego's files copied beside nginx's (key then certificate, each renamed into place),
# then a SIGHUP to nginx's master, found in the pid namespace this container shares with nginx:
# nginx re-reads its configuration and certificate and lets old workers finish (a graceful reload;
# a certificate it cannot load leaves the old configuration serving).
ACME_SCRIPT = r"""set -u
# lego's data root's only: it creates the account key with os.Create (0666 less the umask:
# go-acme/lego v4.35.2 cmd/accounts_storage.go:206, v4.9.1 :191), so its directories are made
# 0700 first and everything in it is made root's only after each run. (Not a umask: the
# challenge files lego writes to the webroot must stay readable by nginx's workers.)
mkdir -p /acme/accounts /acme/certificates
chmod -R go= /acme 2>/dev/null
mode="${1:-obtain}"
LEGO=/lego
[ -x "$LEGO" ] || LEGO=lego
first="${ACME_NAMES%% *}"
crt="/acme/certificates/$first.crt"
key="/acme/certificates/$first.key"
live="/etc/nginx/site/acme"
log=/tmp/lego.log
if [ -n "${ACME_CA_PEM:-}" ]; then
  printf '%s\n' "$ACME_CA_PEM" > /tmp/acme-ca.pem
  export LEGO_CA_CERTIFICATES=/tmp/acme-ca.pem
fi
set -- --path /acme --accept-tos --email "$ACME_EMAIL" --server "$ACME_DIRECTORY" --http --http.webroot /var/www/acme --key-type ec256
for name in $ACME_NAMES; do set -- "$@" --domains "$name"; done

problem() {
  # lego's own account of what the CA said, on one line: "[name] acme: error: ..." when it has one.
  found=$(grep -o '\[[^]]*\] *acme: error: .*' "$log" | head -n 1 | sed 's/^\[\([^]]*\)\] *acme: error: /\1: the CA refused: /')
  [ -n "$found" ] || found="$ACME_NAMES: $(grep -v '^[[:space:]]*$' "$log" | tail -n 1 | sed 's/^[0-9\/]* [0-9:]* //')"
  echo "acme: $found"
}

reload_nginx() {
  for p in /proc/[0-9]*; do
    case "$(tr '\000' ' ' < "$p/cmdline" 2>/dev/null)" in
      "nginx: master process"*) kill -HUP "${p#/proc/}" && return 0 ;;
    esac
  done
  echo "acme: no nginx master process to reload (pid namespace not shared?)"
  return 1
}

install() {
  if [ -s "$live/server.crt" ] && cmp -s "$crt" "$live/server.crt" && cmp -s "$key" "$live/server.key"; then
    return 0
  fi
  mkdir -p "$live"
  cp "$key" "$live/.server.key.new" && chmod 600 "$live/.server.key.new" && cp "$crt" "$live/.server.crt.new"     && mv -f "$live/.server.key.new" "$live/server.key" && mv -f "$live/.server.crt.new" "$live/server.crt"     && reload_nginx && echo "acme: installed the certificate for $ACME_NAMES; nginx reloaded"
}

cycle() {
  how="$1"
  shift
  exec 9>/acme/.lock
  flock -w 600 9 || { echo "acme: another run holds /acme/.lock"; return 1; }
  if [ ! -s "$crt" ] || [ "$(cat /acme/names 2>/dev/null)" != "$ACME_NAMES" ]; then
    "$LEGO" "$@" run > "$log" 2>&1 || { problem; chmod -R go= /acme; return 1; }
    echo "$ACME_NAMES" > /acme/names
  else
    days="$ACME_RENEW_DAYS"
    [ "$how" = force ] && days=100000
    "$LEGO" "$@" renew --days "$days" --no-random-sleep > "$log" 2>&1 || { problem; chmod -R go= /acme; return 1; }
  fi
  chmod -R go= /acme
  install
}

case "$mode" in
  obtain) cycle due "$@" ;;
  renew) cycle force "$@" ;;
  loop)
    trap 'exit 0' TERM INT
    while :; do
      if out=$(cycle due "$@" 2>&1); then status="ok"; else status="failed"; fi
      [ -n "$out" ] && echo "$out"
      echo "$status $(date -u +%Y-%m-%dT%H:%M:%SZ) $out" | head -c 600 > /tmp/acme-status
      sleep "${ACME_INTERVAL:-43200}" & wait $!
    done ;;
  *) echo "acme: unknown mode $mode (obtain, renew, loop)"; exit 2 ;;
esac
"""


# lego's image starts /lego: the ACME containers run the shell instead, with acme_command.
ACME_ENTRYPOINT = ["/bin/sh"]


def acme_command(mode: str) -> list[str]:
    """The ACME client's container command (after ACME_ENTRYPOINT): ACME_SCRIPT in `mode`
    (obtain, loop, renew)."""
    if mode not in ("obtain", "loop", "renew"):
        raise ValueError(f"unknown ACME mode {mode!r}")
    return ["-c", ACME_SCRIPT, "acme", mode]


def acme_healthcheck() -> list[str]:
    """The renewer is healthy while its last round obtained or renewed (or found nothing due)."""
    return ["CMD", "sh", "-c", "grep -q '^ok' /tmp/acme-status"]


def nginx_command(conf: str = NGINX_SITE_CONF) -> list[str]:
    """nginx in the foreground on the site volume's current configuration (the official
    image's entrypoint runs its /docker-entrypoint.d scripts, then execs this)."""
    return ["nginx", "-c", conf, "-g", "daemon off;"]


def public_url(*, server_name: str, tls: bool, port: int) -> str:
    return origin(host=server_name, tls=tls, port=port) + "/"


def _bool(value: bool) -> str:
    return "true" if value else "false"


# --- nginx -------------------------------------------------------------------------------

_MEDIA_CSP = "\"default-src 'none'; sandbox\""
_SECURITY_HEADERS = (
    ("X-Content-Type-Options", '"nosniff"'),
    ("X-Frame-Options", '"DENY"'),
    ("Referrer-Policy", '"same-origin"'),
)


def nginx_conf(
    *,
    server_name: str,
    client_max_body_size: str,
    tls: bool,
    app_port: int,
    static_url: Optional[str],
    media_url: Optional[str],
    health_path: str,
    public_https_port: int = 443,
    hsts_seconds: int = 0,
    tls_cert_path: str = NGINX_TLS_CERT,
    tls_key_path: str = NGINX_TLS_KEY,
    generation_file: Optional[str] = None,
    acme_webroot: Optional[str] = None,
    maintenance_retry_after: Optional[int] = None,
) -> str:
    """The whole nginx.conf: one upstream that follows the web replicas, files from volumes
    (static at `static_url`, uploads at `media_url`; None: the app has none).

        The app's health answer (`health_path`) is proxied like a page, with one difference: its
        503 ("the broker is down") is the answer, passed to the client, never a reason to try
        another replica or to mark this one failed. Counted as a failure (max_fails=1), the 503s
        of a broker restart took every replica out of the upstream for fail_timeout, and every
        page failed with them ("no live upstreams"), pages that never use the broker included.

        The upstream names the replicas' shared alias with `resolve`: nginx asks Docker's DNS
        again every second and adds or drops replicas as they start and stop, so a release or a
        change of the replica count never touches nginx (`resolve` in nginx open source since
        1.27.3; the pinned image is 1.28). A replica that refuses a connection (still booting,
        or stopping) is skipped for a moment and the request goes to the next one; only
        idempotent requests are retried (nginx's default). A retry cannot cross a re-resolution
        (nginx ends it with "no live upstreams", a 502: ngx_http_upstream_round_robin.c), so such
        a 502 of a repeatable request is tried once more in a named location, with the new set
        and without nginx's failure marks (FRESH_UPSTREAM).

    generation_file: a file beside this one that defines `$config_generation`
    (nginx_generation_conf); the health door then answers with it in a header, which is how a
    reload is seen to have taken (components/nginx_site.py). None: a config without generations
    (swarm's).

    acme_webroot: tlsMode acme: port 80 serves the HTTP-01 challenges from this directory (never
    redirected: the first challenge comes before any certificate); everything else is
    redirected to HTTPS.

    maintenance_retry_after: the maintenance configuration (migrationMode maintenance, `make
    maintenance`): every request but the static files, the uploads and the ACME challenges is
    answered 503 with `Retry-After: <seconds>` and a plain page, and nothing reaches the app;
    the rest (TLS, the health door and its generation) as in the site's own configuration.
    """
    headers = _SECURITY_HEADERS + (
        (("Strict-Transport-Security", f'"max-age={hsts_seconds}; includeSubDomains"'),) if tls and hsts_seconds else ()
    )

    def add_headers(indent: str, extra: Sequence[tuple[str, str]] = ()) -> str:
        # add_header in a location replaces the server's, so every location states them all.
        return "\n".join(f"{indent}add_header {name} {value} always;" for name, value in (*headers, *extra))

    # Django sends some of these itself (SecurityMiddleware: HSTS with `preload`, nosniff,
    # Referrer-Policy; XFrameOptionsMiddleware). nginx states them for every response, so the
    # app's copies are hidden and each header is sent once: the TLS rehearsal found two
    # Strict-Transport-Security headers with different values, and a client heeds only the
    # first (RFC 6797 section 8.1).
    hidden = "\n".join(f"            proxy_hide_header {name};" for name, _ in headers)

    pages_next_upstream = "error timeout http_502 http_503 http_504"

    def proxy_to(upstream: str, next_upstream: str = pages_next_upstream, connection: str = '""') -> str:
        return f"""            proxy_pass http://{upstream};
{hidden}
            proxy_http_version 1.1;
            proxy_set_header Connection {connection};
            proxy_set_header Host $host;
            proxy_set_header X-Real-IP $remote_addr;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_set_header X-Forwarded-Host $host;
            proxy_redirect off;
            # Try every replica before giving up (0: no limit), within a bounded time.
            proxy_next_upstream {next_upstream};
            proxy_next_upstream_tries 0;
            proxy_next_upstream_timeout 15s;
            # A replica on the same bridge completes the handshake in microseconds (the kernel
            # answers, however busy the app); one whose address died never does. Fail over
            # fast, before nginx re-resolves and can no longer retry (see the upstream above).
            proxy_connect_timeout 100ms;
            proxy_read_timeout 60s;"""

    # The pages: a request nginx never repeats once sent (POST, PATCH: ngx_http_upstream_next,
    # NGX_HTTP_UPSTREAM_FT_NON_IDEMPOTENT) goes over a connection of its own, never a kept-alive
    # one a replica may be closing as it drains; the rest reuse connections (the maps below).
    proxy = proxy_to("$django_upstream", connection="$django_connection")
    # Static files: a name Django's ManifestStaticFilesStorage fingerprinted (`site.3f2a9c1b0e4d.css`:
    # 12 hex of its content's MD5, django/contrib/staticfiles/storage.py HashedFilesMixin.hashed_name)
    # never changes content, so browsers and CDNs keep it a year without asking again
    # (`immutable`, RFC 8246); any other name may change with a release, so it is kept a minute
    # (WhiteNoise's defaults for the same two kinds: WHITENOISE_MAX_AGE, immutable_file_test).
    static = (
        f"""
        location ~ "^{re.escape(static_url)}(.+\\.[0-9a-f]{{12}}\\.[A-Za-z0-9]+)$" {{
            alias {NGINX_STATIC}/$1;
            access_log off;
{add_headers("            ", (("Cache-Control", '"public, max-age=31536000, immutable"'),))}
        }}

        location {static_url} {{
            alias {NGINX_STATIC}/;
            access_log off;
{add_headers("            ", (("Cache-Control", '"public, max-age=60"'),))}
        }}
"""
        if static_url
        else ""
    )
    media = (
        f"""
        location {media_url} {{
            alias {NGINX_MEDIA}/;
            # Uploaded files never run as HTML or script in this origin.
{add_headers("            ", (("Content-Security-Policy", _MEDIA_CSP),))}
        }}
"""
        if media_url
        else ""
    )
    maintenance = (
        f"""{static}{media}
        location / {{
            # A plain page, never cached; clients and crawlers come back after Retry-After.
            default_type text/html;
{add_headers("            ", (("Retry-After", str(maintenance_retry_after)), ("Cache-Control", '"no-store"')))}
            return 503 '{MAINTENANCE_PAGE}';
        }}"""
        if maintenance_retry_after is not None
        else None
    )
    # The app's own 503 is the health answer (see above): never a reason to try another replica.
    health_proxy = proxy_to("django", "error timeout")

    def again(name: str, next_upstream: str = pages_next_upstream, extra: str = "") -> str:
        # Where nginx's own 502 (every replica it tried failed, or the replica set changed under
        # its retry: "no live upstreams") goes for one fresh attempt with the current set,
        # through the upstream that keeps no failure marks (FRESH_UPSTREAM). The health door
        # needs it as much as the pages: a probe that met one draining replica and one address
        # that died with its container got that 502 in CI (unhealthy-release).
        return f"""
        location {name} {{
            # Only a request that may be repeated, or one nothing of which reached a replica
            # (each attempt failed to connect, or found none: every byte count 0); anything else
            # keeps the 502.
            set $again "";
            if ($request_method ~ ^(GET|HEAD|OPTIONS)$) {{
                set $again yes;
            }}
            if ($upstream_bytes_sent ~ "^[0 ,:]*$") {{
                set $again yes;
            }}
            if ($again = "") {{
                return 502;
            }}
{proxy_to(FRESH_UPSTREAM, next_upstream, connection="close")}{extra}
{add_headers("            ")}
        }}
"""

    health = f"""
        location = {health_path} {{
{health_proxy}
            access_log off;
            error_page 502 = @health_again;
{add_headers("            ")}
        }}
{again("@health_again", "error timeout", chr(10) + "            access_log off;")}"""
    locations = f"""{static}{media}{health}
        location / {{
{proxy}
            # nginx's own 502: one fresh attempt (@again).
            error_page 502 = @again;
{add_headers("            ")}
        }}
{again("@again").rstrip()}"""
    if maintenance is not None:
        locations = maintenance

    generation_include = (
        f"""
    # Which generation of this configuration the workers run (see the health door).
    include {generation_file};
"""
        if generation_file
        else ""
    )
    generation_header = (
        f"            add_header {NGINX_GENERATION_HEADER} $config_generation always;\n" if generation_file else ""
    )

    challenge = (
        f"""
        # The ACME CA's HTTP-01 challenges (RFC 8555 section 8.3), written by the ACME client.
        location ^~ {ACME_CHALLENGE_PATH} {{
            root {acme_webroot};
            default_type text/plain;
            access_log off;
        }}"""
        if acme_webroot
        else ""
    )
    if tls:
        redirect_port = "" if public_https_port == 443 else f":{public_https_port}"
        servers_block = f"""
    server {{
        listen 80 default_server;
        server_name {server_name};{challenge}
        location / {{
            return 301 https://$host{redirect_port}$request_uri;
        }}
    }}

    server {{
        listen 443 ssl default_server;
        http2 on;
        server_name {server_name};
        ssl_certificate {tls_cert_path};
        ssl_certificate_key {tls_key_path};
        ssl_protocols TLSv1.2 TLSv1.3;
        ssl_session_cache shared:SSL:10m;
        ssl_session_timeout 1h;
{locations}
    }}"""
    else:
        servers_block = f"""
    server {{
        listen 80 default_server;
        server_name {server_name};
{locations}
    }}"""

    return f"""# Rendered by components/render.py: do not edit in the container.
# The official image's unprivileged worker user (the master binds the ports as root).
user nginx;
worker_processes auto;
pid /tmp/nginx.pid;
error_log stderr warn;

events {{
    worker_connections 1024;
}}

http {{
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    access_log /dev/stdout;
    server_tokens off;
    sendfile on;
    tcp_nopush on;
    keepalive_timeout 65s;
    client_max_body_size {client_max_body_size};
    client_body_temp_path /tmp/nginx-client-body;
    proxy_temp_path /tmp/nginx-proxy;
    # Text compressed (text/html always is), also for clients behind a proxy (`Via`), with
    # `Vary: Accept-Encoding` so a cache keeps both forms; tiny answers are not worth it.
    gzip on;
    gzip_vary on;
    gzip_proxied any;
    gzip_comp_level 5;
    gzip_min_length 256;
    gzip_types text/plain text/css text/javascript application/javascript application/json application/xml image/svg+xml;

    # Docker's DNS, asked again each second; IPv4 only (the networks have no IPv6).
    resolver {DOCKER_DNS} valid=1s ipv6=off;
    resolver_timeout 2s;

    upstream django {{
        zone django 64k;
        # A replica that refuses a connection (booting, or draining before it exits:
        # django_docker_runtime.gunicorn_conf) is skipped for a few seconds and the request retried
        # on the next one. So no request goes to a replica's address after it died with its
        # container; such a request would wait out the connect timeout, and nginx cannot
        # retry across a re-resolution (ngx_http_upstream_round_robin.c: "no live upstreams").
        server {WEB_HOST}:{app_port} resolve max_fails=1 fail_timeout=5s;
        keepalive 16;
    }}

    upstream {FRESH_UPSTREAM} {{
        zone {FRESH_UPSTREAM} 64k;
        # The same replicas without failure marks, for the fresh attempt (@again): when every
        # replica is marked (the new ones refused while booting, then the old ones while
        # draining), nginx would answer "no live upstreams" until the marks expire, although a
        # new one listens by then (ngx_http_upstream_get_peer skips a marked peer; nothing
        # clears the marks when all are). Here each is tried in turn, a refusing one in
        # microseconds. And with no connection kept, for the requests nginx never repeats once
        # sent: on a new connection a draining replica refuses before anything is sent, and
        # nginx passes the request on; on a reused one the replica may close it under the
        # request (a 502: "Connection reset by peer"). Every request through here says
        # `Connection: close`, so none is kept: nginx >= 1.29.7 keeps connections to every
        # upstream by default, and 1.28 (the pinned image) refuses `keepalive 0`.
        server {WEB_HOST}:{app_port} resolve max_fails=0;
    }}

    # Which upstream a page's request goes to, and what it says of its connection (above).
    map $request_method $django_upstream {{
        default django;
        POST {FRESH_UPSTREAM};
        PATCH {FRESH_UPSTREAM};
        LOCK {FRESH_UPSTREAM};
    }}
    map $request_method $django_connection {{
        default "";
        POST close;
        PATCH close;
        LOCK close;
    }}

{generation_include}
    server {{
        # The container healthcheck's own door: loopback only, never proxied.
        listen 127.0.0.1:{NGINX_HEALTH_PORT};
        access_log off;
        location = {NGINX_HEALTH_PATH} {{
{generation_header}            return 204;
        }}
    }}
{servers_block}
}}
"""


MAINTENANCE_PAGE = (
    '<!doctype html>\\n<html lang="en"><head><meta charset="utf-8"><title>Down for maintenance</title></head>'
    "<body><h1>Down for maintenance</h1><p>The site is being updated and will be back in a moment. "
    "Please try again shortly.</p></body></html>\\n"
)
# The site's two configurations, side by side in every generation of the site volume
# (components/nginx_site.py): `nginx.conf`, the one nginx runs, is a copy of one of them, so
# `make maintenance` switches by writing a generation with the other one.
SITE_CONF_FILE = "site.conf"
MAINTENANCE_CONF_FILE = "maintenance.conf"


def first_address(subnet: str) -> str:
    """The subnet's first host address: the gateway Docker's default IPAM gives a network."""
    return str(next(iter(ipaddress.ip_network(subnet).hosts())))


def familiar_image(image: str) -> str:
    """An image reference as the Docker client writes it into a service's spec: Docker Hub's
    domain and `library/` dropped (moby client/service_create.go imageWithTagString, the
    distribution reference's FamiliarString); a bare repository gets no tag here (settings
    refuse one)."""
    for domain in ("docker.io/", "index.docker.io/"):
        if image.startswith(domain):
            rest = image[len(domain) :]
            if rest.startswith("library/") and _repository(rest).count("/") == 1:
                rest = rest[len("library/") :]
            return rest
    return image


def with_digest(image: str, repo_digest: str) -> str:
    """`image` (repository:tag) pinned to the digest of `repo_digest` (repository@sha256:...), the
    way the Docker client pins a swarm service's image when the registry answers
    (repository:tag@sha256:..., moby client/service_create.go imageWithDigestString). Unchanged
    when it already has a digest, or when `repo_digest` is not of the same repository (an image
    built or retagged locally: no registry gave it that name, so none pins it either)."""
    if "@" in image or "@sha256:" not in repo_digest:
        return image
    repository, digest = repo_digest.split("@", 1)
    return f"{image}@{digest}" if _repository(image) == repository else image


def _repository(image: str) -> str:
    """repository[:tag][@digest] -> repository (a registry's :port is not a tag)."""
    name = image.split("@", 1)[0]
    return name.rsplit(":", 1)[0] if ":" in name.rsplit("/", 1)[-1] else name
