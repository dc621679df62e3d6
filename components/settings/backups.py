"""Backups: when they are taken, how many are kept, where their off-host copies go, how they are
encrypted, and whether the WAL is archived for point-in-time recovery (`backup*` keys).

Every mistake is one line naming the key, before anything is created; a secret (the bucket's
credentials, the age identity) is never quoted, not even when it is in the wrong place (an
endpoint URL with a password in it is refused without being shown).
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Optional
from urllib.parse import urlsplit

import pulumi
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from components.settings.identity import PROJECT_ROOT
from components.settings.reader import Reader
from components.settings.values import SettingsError, duration_ns

BACKUP_DIR = PROJECT_ROOT / "backup"
BACKUP_PACKAGE = "django_docker_backup"
BACKUP_REPOSITORY = "django-docker-backup"
# The build argument backup/Dockerfile takes the stack's postgresImage in.
BACKUP_BUILD_ARG = "POSTGRES_IMAGE"

SCHEDULE_DAILY_RE = re.compile(r"^daily\s+(?P<hour>[0-9]{1,2}):(?P<minute>[0-9]{2})(?:\s+UTC)?$", re.IGNORECASE)
SCHEDULE_EVERY_RE = re.compile(r"^every\s+(?P<amount>[0-9]+)\s*(?P<unit>s|m|h|d)$", re.IGNORECASE)
UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
MIN_INTERVAL = 10
MAX_INTERVAL = 7 * 86400
# S3's bucket naming rules (docs.aws.amazon.com, "General purpose bucket naming rules"), which B2,
# R2, MinIO and SeaweedFS follow: 3-63 characters, lowercase letters, digits, dots and hyphens,
# a letter or digit at each end, not an IP address, no `..`, none of the reserved prefixes and
# suffixes.
BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
BUCKET_RESERVED_PREFIXES = ("xn--", "sthree-", "amzn-s3-demo-")
BUCKET_RESERVED_SUFFIXES = ("-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3")
PREFIX_RE = re.compile(r"^[A-Za-z0-9._-]+(?:/[A-Za-z0-9._-]+)*$")
REGION_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,40}$")
AGE_IDENTITY_RE = re.compile(r"^AGE-SECRET-KEY-1[02-9AC-HJ-NP-Z]{58}$")
# The WAL archive's passphrase is derived from the age identity (one key for the user to keep).
ARCHIVE_KDF_INFO = b"django-docker: pgBackRest repository passphrase"


@dataclass(frozen=True, kw_only=True)
class Schedule:
    interval: int
    """Seconds between runs."""
    offset: int
    """Seconds past each multiple of `interval` since the epoch (UTC)."""
    text: str
    """As people read it: `daily 03:00 UTC`, `every 6h`."""


@dataclass(frozen=True, kw_only=True)
class OffsiteSettings:
    endpoint: str
    """https://host[:port]"""
    bucket: str
    prefix: str
    region: str
    address: str
    """An IP address for the endpoint's host name (the containers' /etc/hosts); empty: DNS."""
    ca_certificate: str
    """PEM to trust for the endpoint; empty: the system's CAs."""
    access_key_id: pulumi.Output[str]
    secret_access_key: pulumi.Output[str]

    @property
    def host(self) -> str:
        return urlsplit(self.endpoint).hostname or ""


@dataclass(frozen=True, kw_only=True)
class BackupSettings:
    before_migrate: bool
    """Dump the database before the migration of every new image."""
    retention: int
    """Automatic backups (scheduled, before-migrate) kept at least, newest first."""
    retention_days: int
    """...and every automatic backup younger than this."""
    schedule: Optional[Schedule]
    offsite: Optional[OffsiteSettings]
    recipient: str
    """The age recipient (public) off-host copies are encrypted to; empty: not encrypted."""
    archive_passphrase: Optional[pulumi.Output[str]]
    """pgBackRest's repository passphrase (secret), derived from backupEncryptionKey."""
    pitr: bool
    archive_timeout: int
    """Seconds: PostgreSQL's archive_timeout."""
    drill_days: int
    memory_mb: int

    @property
    def accessory(self) -> bool:
        """A backup accessory runs (and its image is built): scheduled or off-host backups."""
        return self.schedule is not None or self.offsite is not None


def parse_schedule(text: str) -> Optional[Schedule]:
    """`daily HH:MM` (UTC) or `every <n>s|m|h|d`; empty: None."""
    value = " ".join(text.split())
    if not value:
        return None
    expected = "expected daily HH:MM (UTC) or every <duration> like every 6h"
    daily = SCHEDULE_DAILY_RE.match(value)
    if daily:
        hour, minute = int(daily["hour"]), int(daily["minute"])
        if hour > 23 or minute > 59:
            raise SettingsError(f"backupSchedule: '{value}' is not a time of day; {expected}")
        return Schedule(interval=86400, offset=hour * 3600 + minute * 60, text=f"daily {hour:02d}:{minute:02d} UTC")
    every = SCHEDULE_EVERY_RE.match(value)
    if every:
        seconds = int(every["amount"]) * UNIT_SECONDS[every["unit"].lower()]
        if not MIN_INTERVAL <= seconds <= MAX_INTERVAL:
            raise SettingsError(f"backupSchedule: '{value}' is out of range; expected every 10s to every 7d")
        return Schedule(interval=seconds, offset=0, text=f"every {every['amount']}{every['unit'].lower()}")
    raise SettingsError(f"backupSchedule: '{value}' does not parse; {expected}")


def check_endpoint(value: str) -> str:
    """An https:// URL with a host and nothing else; never echoed when it holds credentials."""
    if not value:
        return ""
    parts = urlsplit(value)
    if parts.username is not None or parts.password is not None:
        raise SettingsError(
            "backupS3Endpoint: holds credentials; set backupS3AccessKeyId and backupS3SecretAccessKey "
            "(secrets) and give the URL alone"
        )
    expected = "expected https://host[:port], e.g. https://s3.eu-central-1.amazonaws.com"
    if parts.scheme != "https" or not parts.hostname:
        what = "plain HTTP" if parts.scheme == "http" else "not an https:// URL"
        raise SettingsError(f"backupS3Endpoint: '{value}' is {what}; {expected} (pgBackRest speaks only HTTPS to S3)")
    try:
        parts.port  # noqa: B018 (raises on a port out of range)
    except ValueError:
        raise SettingsError(f"backupS3Endpoint: '{value}' has no valid port; {expected}") from None
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise SettingsError(
            f"backupS3Endpoint: '{value}' has a path; the bucket and prefix are backupS3Bucket and backupS3Prefix"
        )
    return f"https://{parts.netloc}"


def bucket_problem(name: str) -> Optional[str]:
    """Why S3 would refuse `name` as a bucket name, or None."""
    if not BUCKET_RE.match(name):
        return "is not a bucket name S3 takes (3 to 63 lowercase letters, digits, dots and hyphens)"
    if ".." in name or ".-" in name or "-." in name:
        return "is not a bucket name S3 takes (no two periods, or a period beside a hyphen)"
    try:
        ipaddress.IPv4Address(name)
        return "is an IP address, which S3 refuses as a bucket name"
    except ValueError:
        pass
    if name.startswith(BUCKET_RESERVED_PREFIXES) or name.endswith(BUCKET_RESERVED_SUFFIXES):
        return "uses a prefix or suffix S3 reserves"
    return None


def age_identity(text: str) -> Optional[str]:
    """The AGE-SECRET-KEY-1... line of an identity (an `age-keygen` file, comments and all); None
    when there is not exactly one."""
    keys = [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]
    return keys[0] if len(keys) == 1 and AGE_IDENTITY_RE.match(keys[0]) else None


def age_recipient(identity: str) -> str:
    """The public half of an age X25519 identity (what age-keygen -y prints), by pyrage."""
    import pyrage

    return str(pyrage.x25519.Identity.from_str(identity).to_public())


def archive_passphrase(identity: str) -> str:
    """pgBackRest's repository passphrase: HKDF-SHA256 of the identity (it never leaves the
    config as itself; one key protects the dumps and the WAL archive)."""
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=ARCHIVE_KDF_INFO).derive(identity.encode()).hex()


def read_backups(read: Reader, *, stack: str, swarm: bool) -> BackupSettings:
    before_migrate = read.boolean("backupBeforeMigrate")
    retention = read.integer("backupRetention", low=1, high=1000)
    retention_days = read.integer("backupRetentionDays", low=1, high=3650)
    schedule = read.attempt(lambda: parse_schedule(read.string("backupSchedule")), "backupSchedule")
    drill_days = read.integer("backupDrillDays", low=1, high=365)
    memory_mb = read.memory_mb("backupMemory")
    if read.ok("backupBeforeMigrate", "backupRetention", "backupSchedule") and not before_migrate and schedule is None:
        for key in ("backupRetention", "backupRetentionDays"):
            if not read.is_default(key):
                read.refuse(
                    f"{key}: set, but no automatic backup is taken or removed (backupBeforeMigrate is false and "
                    "backupSchedule is empty); set one of them, or remove it",
                    key,
                )

    endpoint = read.attempt(lambda: check_endpoint(read.string("backupS3Endpoint")), "backupS3Endpoint") or ""
    bucket = read.string("backupS3Bucket")
    prefix = read.string("backupS3Prefix").strip("/")
    region = read.string(
        "backupS3Region", pattern=REGION_RE, expected="a region like us-east-1 (R2: auto)", required=True
    )
    address = read.string("backupS3Address")
    ca_pem = read.string("backupS3CaCertificate")
    access_key_id = read.secret("backupS3AccessKeyId", token=True)
    secret_access_key = read.secret("backupS3SecretAccessKey", token=True)
    encryption = read.secret("backupEncryptionKey")
    pitr = read.boolean("backupPitr")
    archive_timeout = read.duration("backupArchiveTimeout")

    offsite_keys = (
        "backupS3Bucket",
        "backupS3Prefix",
        "backupS3Region",
        "backupS3Address",
        "backupS3CaCertificate",
        "backupS3AccessKeyId",
        "backupS3SecretAccessKey",
        "backupEncryptionKey",
        "backupPitr",
    )
    offsite: Optional[OffsiteSettings] = None
    if not endpoint:
        if read.ok("backupS3Endpoint"):
            for other in offsite_keys:
                if not read.is_default(other) and read.ok(other):
                    read.refuse(f"{other}: set, but backupS3Endpoint is empty (no off-host copies)", other)
    else:
        if not bucket:
            read.refuse("backupS3Bucket: empty; the bucket the off-host copies go to (it must exist)", "backupS3Bucket")
        elif (why := bucket_problem(bucket)) is not None:
            read.refuse(f"backupS3Bucket: '{bucket}' {why}", "backupS3Bucket")
        if prefix and (not PREFIX_RE.match(prefix) or any(part in (".", "..") for part in prefix.split("/"))):
            read.refuse(
                f"backupS3Prefix: '{prefix}' is not a key prefix (letters, digits, . _ - and / between parts)",
                "backupS3Prefix",
            )
        if address:
            try:
                ipaddress.ip_address(address)
            except ValueError:
                read.refuse(f"backupS3Address: '{address}' is not an IP address", "backupS3Address")
        if ca_pem:
            try:
                if not x509.load_pem_x509_certificates(ca_pem.encode()):
                    raise ValueError
            except ValueError:
                read.refuse(
                    "backupS3CaCertificate: not a PEM certificate (-----BEGIN CERTIFICATE-----)",
                    "backupS3CaCertificate",
                )
        for name, value in (("backupS3AccessKeyId", access_key_id), ("backupS3SecretAccessKey", secret_access_key)):
            if value is None and read.ok(name):
                read.refuse(f"{name}: not set; set it with `pulumi config set --secret {name}`", name)
        if swarm:
            read.refuse(
                "backupS3Endpoint: the backup accessory does not run on swarm yet (target: swarm); "
                "take backups with make backup, or run the stack with target: containers",
                "backupS3Endpoint",
            )
        if access_key_id is not None and secret_access_key is not None:
            offsite = OffsiteSettings(
                endpoint=endpoint,
                bucket=bucket,
                prefix=prefix or f"django-docker/{stack}",
                region=region,
                address=address,
                ca_certificate=ca_pem,
                access_key_id=access_key_id,
                secret_access_key=secret_access_key,
            )

    recipient: str = ""
    passphrase: Optional[pulumi.Output[str]] = None
    if encryption is not None:
        text = read.secret_text("backupEncryptionKey")
        if text is None:  # `make check` without the passphrase: present, contents unknown
            recipient = "age1unknownuntilthesecretisdecrypted"
            passphrase = encryption
        else:
            identity = age_identity(text)
            if identity is None:
                read.refuse(
                    "backupEncryptionKey: not an age identity (one AGE-SECRET-KEY-1... line: make one with "
                    "`age-keygen`, keep a copy, then `pulumi config set --secret backupEncryptionKey < key.txt`)",
                    "backupEncryptionKey",
                )
            else:
                recipient = age_recipient(identity)
                passphrase = encryption.apply(lambda secret: archive_passphrase(age_identity(secret) or ""))

    if pitr and not endpoint and read.ok("backupS3Endpoint", "backupPitr"):
        pass  # refused above with the other off-host keys
    if not pitr and not read.is_default("backupArchiveTimeout") and read.ok("backupArchiveTimeout", "backupPitr"):
        read.refuse("backupArchiveTimeout: set, but backupPitr is false (no WAL is archived)", "backupArchiveTimeout")
    timeout_seconds = (duration_ns(archive_timeout) or 0) // 10**9
    if read.ok("backupArchiveTimeout") and not 1 <= timeout_seconds <= 3600:
        read.refuse(
            f"backupArchiveTimeout: '{archive_timeout}' is out of range; expected 1s to 1h", "backupArchiveTimeout"
        )
        timeout_seconds = 60
    if swarm and schedule is not None and read.ok("backupSchedule"):
        read.refuse(
            "backupSchedule: the backup accessory does not run on swarm yet (target: swarm); take backups with "
            "make backup, or run the stack with target: containers",
            "backupSchedule",
        )
    return BackupSettings(
        before_migrate=before_migrate,
        retention=retention,
        retention_days=retention_days,
        schedule=schedule,
        offsite=offsite,
        recipient=recipient,
        archive_passphrase=pulumi.Output.secret(passphrase) if passphrase is not None else None,
        pitr=pitr and offsite is not None,
        archive_timeout=max(1, timeout_seconds),
        drill_days=drill_days,
        memory_mb=memory_mb,
    )


def backup_image_tag(postgres_image: str, root: Path = BACKUP_DIR) -> str:
    """`django-docker-backup:<12 hex>`: of its files and the postgresImage it is built FROM, so a
    new agent or a new PostgreSQL release is a new image (and a new accessory)."""
    digest = hashlib.sha256(postgres_image.encode() + b"\0")
    files = sorted(p for p in (root / BACKUP_PACKAGE).rglob("*.py") if "__pycache__" not in p.parts)
    for path in [root / "Dockerfile", root / "entrypoint.sh", *files]:
        digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes() + b"\0")
    return f"{BACKUP_REPOSITORY}:{digest.hexdigest()[:12]}"
