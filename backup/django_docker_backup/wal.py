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

A quiet database switches no more segments: archive_timeout switches only when WAL that matters
was written since the last switch (PostgreSQL's checkpointer.c, CheckArchiveTimeout:
GetLastImportantRecPtr; the running-xacts record the bgwriter logs after activity is not one).
So when the switch came within a second of the last commit (measured on PostgreSQL 15 with
archive_timeout 3s: 0.09 s and 0.76 s after it), the spool time less the margin stays behind that
commit for as long as nothing else is committed, though the commit is archived. With the spool
empty and the reach an archive_timeout old, the agent asks the database where it writes WAL
(`idle_step`): a segment holding nothing yet, right after the newest pushed one, means every
commit until now is archived; something written after the newest pushed segment (the
running-xacts record) is closed with pg_switch_wal(), and then, while no transaction took an
ID since (the snapshot taken before the switch), what follows is only what the switch itself
made (pg_switch_wal's record is important, so the bgwriter logs another running-xacts): every
commit until now is archived, and no second switch is asked for.

pgBackRest takes its options from PGBACKREST_* variables (its configuration reference); the
repository is encrypted (aes-256-cbc) when the stack has backupEncryptionKey: the program derives
its passphrase from the key (components/settings/backups.py), so one key protects both.
"""

from __future__ import annotations

import json
import os
import re
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
# A WAL segment's own name (timeline, log, segment: 24 hex digits); not a .history, .backup or
# .partial file.
SEGMENT = re.compile(r"[0-9A-F]{24}")


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


def is_segment(name: Optional[str]) -> bool:
    return bool(name) and SEGMENT.fullmatch(name or "") is not None


@dataclass(frozen=True)
class Position:
    """Where the database inserts WAL now (pg_current_wal_insert_lsn()), and its transactions."""

    current: str
    """The segment it writes into."""
    previous: str
    """The segment before that one (on the current timeline's name)."""
    offset: int
    """The position's offset in `current`: after a switch, and nothing since, the segment's long
    page header only (LONG_PAGE_HEADER; measured on PostgreSQL 15: 0/5000028 after pg_switch_wal())."""
    next_xid: int
    """The next transaction ID (pg_current_snapshot()'s xmax): a commit needs one taken."""
    running: bool
    """Some transaction holding an ID is in progress (pg_current_snapshot()'s xip)."""
    at: datetime
    """The database's clock when it answered."""


@dataclass(frozen=True)
class Asked:
    """A pg_switch_wal() the agent asked for: the segment it closed, and the database's
    transactions just before it."""

    segment: str
    next_xid: int
    running: bool
    at: datetime


# SizeOfXLogLongPHD (access/xlog_internal.h: MAXALIGN of XLogLongPageHeaderData), 40 bytes on
# every 64-bit build: a segment whose insert position is no further holds no record yet.
LONG_PAGE_HEADER = 40
CAUGHT_UP, SWITCH = "caught-up", "switch"


def idle_step(last_segment: Optional[str], position: Position, asked: Optional[Asked], archive_timeout: int) -> str:
    """Pure: with the spool empty, what the newest pushed segment and the database's WAL position
    mean.

    CAUGHT_UP (every commit until `position.at` is archived): the segment written into holds
    nothing yet and the one before it is the newest pushed; or the segment the agent's own
    switch closed is the newest pushed, the database writes right after it, and no transaction
    was running then nor took an ID since (a commit needs one), so what follows is only what the
    switch made.
    SWITCH: something was written after the newest pushed segment that no switch followed (a
    switch would have put it in the spool): ask PostgreSQL to close it.
    "": nothing to conclude: no segment pushed yet; a segment switched and not pushed yet (the
    one asked for among them); a transaction since the agent's switch (PostgreSQL's
    archive_timeout switches a segment with a commit in it: asked again only after two
    archive_timeouts); an older name."""
    if not is_segment(last_segment):
        return ""
    assert last_segment is not None
    if position.offset <= LONG_PAGE_HEADER:
        return CAUGHT_UP if position.previous == last_segment else ""
    if asked is not None and last_segment <= asked.segment:
        if last_segment < asked.segment:
            return ""
        quiet = not asked.running and position.next_xid == asked.next_xid
        if quiet and position.previous == last_segment:
            return CAUGHT_UP
        if (position.at - asked.at).total_seconds() < 2 * archive_timeout:
            return ""
    return SWITCH if position.current > last_segment else ""


def _database():
    import psycopg2  # the image's (python3-psycopg2); the PG* variables say where

    try:
        connection = psycopg2.connect("", connect_timeout=10, application_name="django-docker-backup")
    except Exception as error:
        raise WalError(f"cannot connect to the database: {_first(error)}") from None
    connection.autocommit = True
    return connection


# Each segment is named for a byte inside it (the last one written, and the last one of the
# segment before): pg_walfile_name_offset() of a position exactly at a segment boundary names the
# segment before it up to PostgreSQL 16 and the one after it from 17 on (xlogfuncs.c:
# XLByteToPrevSeg, then XLByteToSeg). `pg_lsn - numeric` is PostgreSQL 14's: on an older server
# this fails and nothing is concluded (the archive's reach then waits for the next switch).
SNAPSHOT_SQL = (
    "pg_snapshot_xmax(pg_current_snapshot())::text::bigint, "
    "exists (select 1 from pg_snapshot_xip(pg_current_snapshot()))"
)
POSITION_SQL = f"""
with p as (
    select pg_current_wal_insert_lsn() as lsn,
           (select setting::numeric from pg_settings where name = 'wal_segment_size') as size
), o as (select lsn, (lsn - '0/0'::pg_lsn) % size as off from p)
select (pg_walfile_name_offset(o.lsn - 1)).file_name, (pg_walfile_name_offset(o.lsn - o.off - 1)).file_name,
       o.off::bigint, {SNAPSHOT_SQL}, clock_timestamp()
from o
"""


def _first(error: BaseException) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0]


def position() -> Position:
    """The database's WAL insert position, transactions and clock (asking writes no WAL)."""
    connection = _database()
    try:
        with connection.cursor() as cursor:
            cursor.execute(POSITION_SQL)
            current, previous, offset, next_xid, running, at = cursor.fetchone()
    except Exception as error:  # in recovery, or restarting: nothing to conclude now
        raise WalError(f"the WAL position: {_first(error)}") from None
    finally:
        connection.close()
    return Position(
        current=str(current),
        previous=str(previous),
        offset=int(offset),
        next_xid=int(next_xid),
        running=bool(running),
        at=at.astimezone(timezone.utc),
    )


def switch() -> Asked:
    """pg_switch_wal(): the current segment closed and archived now (what pgBackRest's own backup
    does at its end; a superuser's function, as the stack's database user is), the database's
    transactions read just before it."""
    connection = _database()
    try:
        with connection.cursor() as cursor:
            cursor.execute(f"select {SNAPSHOT_SQL}, clock_timestamp()")
            next_xid, running, at = cursor.fetchone()
            cursor.execute("select (pg_walfile_name_offset(pg_switch_wal() - 1)).file_name")
            (segment,) = cursor.fetchone()
    except Exception as error:
        raise WalError(f"pg_switch_wal: {_first(error)}") from None
    finally:
        connection.close()
    return Asked(segment=str(segment), next_xid=int(next_xid), running=bool(running), at=at.astimezone(timezone.utc))


def write_caught_up(config: Config, segment: str, at: datetime) -> dict[str, Any]:
    """The archive reaches `at` (nothing written since `segment` ended): recorded off-host too."""
    assert config.offsite is not None
    record = {"segment": segment, "until": state.stamp(at - SWITCH_MARGIN), "idle": True}
    offsite.put_json(config.offsite, ARCHIVED_KEY, record)
    return record
