"""Point-in-time recovery with pgBackRest: the WAL archive and base backups in the stack's
bucket (under <prefix>/pgbackrest), and the restore to a moment.

How WAL leaves the host. The database runs the unchanged postgresImage (no pgBackRest in it);
its `archive_command` (components/render.py, postgres_archive_args) copies each finished WAL
segment into a spool directory on the volume it shares with this accessory
(/var/run/postgresql/pgbackrest-spool), and the accessory pushes every spooled segment, in
order, with `pgbackrest archive-push`, then deletes it. A segment leaves the spool only once
pgBackRest stored it; a segment of another cluster (a new database after a host was lost, before
the restore) is refused by pgBackRest and set aside, never pushed over the archive. The spool
directory's name contains "pgbackrest" on purpose: `pgbackrest backup` refuses an
archive_command that does not (src/command/check/common.c, checkArchiveCommand: a plain strstr),
and this one does hand every segment to pgBackRest.

How far the archive reaches: a segment is spooled when PostgreSQL switches away from it, at the
latest `archive_timeout` after a commit; every commit before that switch is in it. The agent
records the spool time of the newest pushed segment, off-host too (<prefix>/pgbackrest-archived.json),
so the range a restore may target is known after the host is gone.

pgBackRest takes its options from PGBACKREST_* variables (its configuration reference); the
repository is encrypted (aes-256-cbc) when the stack has backupEncryptionKey: the program derives
its passphrase from the key (components/settings/backups.py), so one key protects both.
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Mapping, Optional

from django_docker_backup import offsite, state
from django_docker_backup.config import Config

STANZA = "main"
PGDATA = "/var/lib/postgresql/data"
SOCKET_DIR = "/var/run/postgresql"
SPOOL = f"{SOCKET_DIR}/pgbackrest-spool"
REJECTED = f"{SOCKET_DIR}/pgbackrest-rejected"
ARCHIVED_KEY = "pgbackrest-archived.json"
# A commit is in the archive only if it came before the spooled segment's switch: the spool time
# less this margin (the copy into the spool takes milliseconds).
SWITCH_MARGIN = timedelta(seconds=1)


class WalError(Exception):
    """One line from pgBackRest (its error code and message), never a credential."""


def environment(config: Config, base: Mapping[str, str]) -> dict[str, str]:
    """pgBackRest's options as PGBACKREST_* variables, from the agent's own."""
    off = config.offsite
    if off is None:
        raise WalError("no off-host storage configured")
    env = {
        "PGBACKREST_STANZA": STANZA,
        "PGBACKREST_REPO1_TYPE": "s3",
        "PGBACKREST_REPO1_PATH": "/" + off.key("pgbackrest"),
        "PGBACKREST_REPO1_S3_BUCKET": off.bucket,
        "PGBACKREST_REPO1_S3_ENDPOINT": off.host,
        "PGBACKREST_REPO1_STORAGE_PORT": str(off.port),
        "PGBACKREST_REPO1_S3_REGION": off.region,
        "PGBACKREST_REPO1_S3_URI_STYLE": "host" if offsite.addressing_style(off.host) == "virtual" else "path",
        "PGBACKREST_REPO1_S3_KEY": base.get("AWS_ACCESS_KEY_ID", ""),
        "PGBACKREST_REPO1_S3_KEY_SECRET": base.get("AWS_SECRET_ACCESS_KEY", ""),
        # Base backups (and the WAL they need) are kept for backupRetentionDays: any moment of
        # those days can be restored (pgBackRest keeps the full backup before the window too).
        "PGBACKREST_REPO1_RETENTION_FULL_TYPE": "time",
        "PGBACKREST_REPO1_RETENTION_FULL": str(config.keep_days),
        "PGBACKREST_PG1_PATH": PGDATA,
        "PGBACKREST_PG1_SOCKET_PATH": SOCKET_DIR,
        "PGBACKREST_PG1_USER": base.get("PGUSER", "postgres"),
        "PGBACKREST_PG1_DATABASE": base.get("PGDATABASE", "postgres"),
        "PGBACKREST_LOCK_PATH": "/tmp/pgbackrest",
        "PGBACKREST_LOG_LEVEL_FILE": "off",
        "PGBACKREST_LOG_LEVEL_CONSOLE": "warn",
        "PGBACKREST_START_FAST": "y",
        "PGBACKREST_ARCHIVE_TIMEOUT": "120",
    }
    if off.ca_file:
        env["PGBACKREST_REPO1_STORAGE_CA_FILE"] = off.ca_file
    if config.archive_passphrase:
        env["PGBACKREST_REPO1_CIPHER_TYPE"] = "aes-256-cbc"
        env["PGBACKREST_REPO1_CIPHER_PASS"] = config.archive_passphrase
    return env


def run(config: Config, *args: str, timeout: float = 3600) -> str:
    """`pgbackrest ARGS`; its output, or WalError with its first error line."""
    env = {**os.environ, **environment(config, os.environ)}
    try:
        result = subprocess.run(["pgbackrest", *args], capture_output=True, text=True, env=env, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise WalError(f"pgbackrest {args[-1]}: no answer within {timeout:.0f}s") from None
    if result.returncode != 0:
        raise WalError(
            error_line(result.stdout + "\n" + result.stderr) or f"pgbackrest {args[-1]}: exit {result.returncode}"
        )
    return result.stdout


def error_line(output: str) -> str:
    """pgBackRest's `ERROR: [code]: message` line (the first one), without its HINTs."""
    for line in output.splitlines():
        text = line.strip()
        if "ERROR:" in text:
            return text[text.index("ERROR:") :][:300]
    return ""


def other_cluster(message: str) -> bool:
    """The archive belongs to another cluster (pgBackRest's FileInvalidError of
    checkStanzaInfoPg, or archive-push's system-id mismatch)."""
    return "do not match the database" in message or "system-id" in message or "does not match" in message


def stanza_create(config: Config) -> None:
    run(config, "stanza-create", timeout=300)


def spooled() -> list[str]:
    """Segments (and history, backup label files) waiting in the spool, in archive order."""
    try:
        return sorted(n for n in os.listdir(SPOOL) if not n.startswith(".") and n[:1].isdigit())
    except FileNotFoundError:
        return []


def push(config: Config, name: str) -> datetime:
    """Push one spooled file; delete it once pgBackRest stored it. Returns its spool time."""
    path = os.path.join(SPOOL, name)
    spooled_at = datetime.fromtimestamp(os.path.getmtime(path), tz=timezone.utc)
    run(config, "archive-push", path, timeout=600)
    os.unlink(path)
    return spooled_at


def reject(name: str) -> None:
    """Set a spooled file aside (another cluster's): never pushed, kept for a person to look at."""
    os.makedirs(REJECTED, exist_ok=True)
    os.replace(os.path.join(SPOOL, name), os.path.join(REJECTED, name))


def base_backup(config: Config) -> str:
    run(config, "--type=full", "backup", timeout=6 * 3600)
    return "full"


def info(config: Config) -> dict[str, Any]:
    """pgBackRest's own account of the stanza (`info --output=json`), the first stanza's."""
    data = json.loads(run(config, "--output=json", "info", timeout=300) or "[]")
    return data[0] if data else {}


@dataclass(frozen=True)
class Range:
    """What a point-in-time restore can reach."""

    earliest: Optional[datetime]
    """The end of the oldest base backup: nothing before it can be restored."""
    latest: Optional[datetime]
    """The newest commit known to be archived."""
    backups: int

    def problem(self, target: datetime) -> Optional[str]:
        """Why `target` cannot be restored to, or None."""
        if self.earliest is None or self.latest is None:
            return "nothing is archived yet (no base backup, or no WAL pushed)"
        if target < self.earliest:
            return f"before the oldest base backup ({stamp(self.earliest)}); the archive covers {self.describe()}"
        if target > self.latest:
            return f"after the newest archived commit ({stamp(self.latest)}); the archive covers {self.describe()}"
        return None

    def describe(self) -> str:
        return f"{stamp(self.earliest)} to {stamp(self.latest)}" if self.earliest and self.latest else "nothing"


def stamp(when: Optional[datetime]) -> str:
    return when.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC") if when else "-"


def range_of(backup_info: dict[str, Any], archived: Optional[dict[str, Any]]) -> Range:
    """Pure: pgBackRest's info and the agent's archived record -> the range."""
    backups = backup_info.get("backup") or []
    stops = [b.get("timestamp", {}).get("stop") for b in backups if b.get("timestamp", {}).get("stop")]
    earliest = datetime.fromtimestamp(min(stops), tz=timezone.utc) if stops else None
    latest = state.parse_stamp((archived or {}).get("until"))
    if latest is not None and earliest is not None and latest < earliest:
        latest = earliest  # the base backup itself is consistent at its end
    return Range(earliest=earliest, latest=latest, backups=len(backups))


def read_archived(config: Config) -> Optional[dict[str, Any]]:
    assert config.offsite is not None
    return offsite.get_json(config.offsite, ARCHIVED_KEY)


def write_archived(config: Config, segment: str, spooled_at: datetime) -> dict[str, Any]:
    assert config.offsite is not None
    record = {
        "segment": segment,
        "spooled_at": state.stamp(spooled_at),
        "until": state.stamp(spooled_at - SWITCH_MARGIN),
    }
    offsite.put_json(config.offsite, ARCHIVED_KEY, record)
    return record
