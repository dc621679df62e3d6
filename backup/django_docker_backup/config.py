"""What the agent is given: its environment, as the program renders it (components/render.py,
backup_env). Read once; a missing or wrong variable is one line naming it."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Mapping, Optional
from urllib.parse import urlsplit


class ConfigError(Exception):
    """One line naming the variable."""


@dataclass(frozen=True)
class Offsite:
    """Where the off-host copies go: an S3-compatible bucket (the credentials stay in the
    environment, AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, read by boto3 and pgBackRest)."""

    endpoint: str
    """https://host[:port]"""
    bucket: str
    prefix: str
    """No leading or trailing slash; objects are <prefix>/dumps/..., <prefix>/pgbackrest/..."""
    region: str
    ca_file: str
    """A CA bundle to trust for the endpoint (empty: the system's)."""
    recipient: str
    """An age recipient (age1...): dumps are encrypted to it; empty: not encrypted."""

    @property
    def host(self) -> str:
        return urlsplit(self.endpoint).hostname or ""

    @property
    def port(self) -> int:
        return urlsplit(self.endpoint).port or 443

    def key(self, *parts: str) -> str:
        return "/".join(p for p in (self.prefix, *parts) if p)

    @property
    def where(self) -> str:
        """For people: s3://bucket/prefix (no credentials, no endpoint secrets)."""
        return f"s3://{self.bucket}/{self.prefix}".rstrip("/")


@dataclass(frozen=True)
class Config:
    stack: str
    directory: str
    interval: int
    """Seconds between scheduled backups; 0: no schedule."""
    offset: int
    schedule_text: str
    keep: int
    keep_days: int
    offsite: Optional[Offsite]
    pitr: bool
    archive_timeout: int
    """Seconds: PostgreSQL's archive_timeout (how stale the WAL archive may be)."""
    archive_passphrase: str
    """pgBackRest's repository cipher passphrase (empty: not encrypted)."""
    drill_days: int
    """A restore drill older than this is warned about."""

    @property
    def state_dir(self) -> str:
        return os.path.join(self.directory, ".state")


def _int(env: Mapping[str, str], name: str, default: int, low: int = 0) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name}: {raw!r} is not a whole number") from None
    if value < low:
        raise ConfigError(f"{name}: {value} is below {low}")
    return value


CA_PATH = "/tmp/django-docker-backup-s3-ca.pem"


def ca_file(env: Mapping[str, str], path: str = CA_PATH) -> str:
    """The CA bundle to trust for the endpoint: BACKUP_S3_CA_FILE, or BACKUP_S3_CA_PEM (what the
    program gives: the root filesystem is read-only, so no file is uploaded) written to /tmp."""
    given = env.get("BACKUP_S3_CA_FILE", "").strip()
    pem = env.get("BACKUP_S3_CA_PEM", "").strip()
    if given or not pem:
        return given
    if not os.path.exists(path) or open(path).read() != pem + "\n":
        partial = f"{path}.{os.getpid()}"
        with open(partial, "w") as handle:
            handle.write(pem + "\n")
        os.chmod(partial, 0o644)
        os.replace(partial, path)
    return path


def load(env: Mapping[str, str] = os.environ) -> Config:
    stack = env.get("BACKUP_STACK", "").strip()
    if not stack:
        raise ConfigError("BACKUP_STACK: not set (the stack's name, for the backups' names)")
    offsite = None
    endpoint = env.get("BACKUP_S3_ENDPOINT", "").strip()
    if endpoint:
        parts = urlsplit(endpoint)
        if parts.scheme != "https" or not parts.hostname:
            raise ConfigError("BACKUP_S3_ENDPOINT: not an https:// URL")
        bucket = env.get("BACKUP_S3_BUCKET", "").strip()
        if not bucket:
            raise ConfigError("BACKUP_S3_BUCKET: not set")
        for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
            if not env.get(name, "").strip():
                raise ConfigError(f"{name}: not set (the bucket's credentials)")
        offsite = Offsite(
            endpoint=endpoint.rstrip("/"),
            bucket=bucket,
            prefix=env.get("BACKUP_S3_PREFIX", "").strip().strip("/"),
            region=env.get("BACKUP_S3_REGION", "").strip() or "us-east-1",
            ca_file=ca_file(env),
            recipient=env.get("BACKUP_AGE_RECIPIENT", "").strip(),
        )
    pitr = env.get("BACKUP_PITR", "").strip().lower() == "true"
    if pitr and offsite is None:
        raise ConfigError("BACKUP_PITR: true needs BACKUP_S3_ENDPOINT (the WAL archive goes off-host)")
    return Config(
        stack=stack,
        directory=env.get("BACKUP_DIR", "/backups").strip() or "/backups",
        interval=_int(env, "BACKUP_INTERVAL_SECONDS", 0),
        offset=_int(env, "BACKUP_OFFSET_SECONDS", 0),
        schedule_text=env.get("BACKUP_SCHEDULE", "").strip(),
        keep=_int(env, "BACKUP_RETENTION", 7, low=1),
        keep_days=_int(env, "BACKUP_RETENTION_DAYS", 30, low=1),
        offsite=offsite,
        pitr=pitr,
        archive_timeout=_int(env, "BACKUP_ARCHIVE_TIMEOUT_SECONDS", 60, low=1),
        archive_passphrase=env.get("BACKUP_ARCHIVE_PASSPHRASE", ""),
        drill_days=_int(env, "BACKUP_DRILL_DAYS", 30, low=1),
    )
