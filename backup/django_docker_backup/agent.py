"""The backup accessory: one process, three loops, each recording what it did in the volume.

- schedule: at each scheduled time, a backup (dump.take, label `scheduled`; skipped while the
  database has no table), then with PITR a base backup (pgBackRest, full).
- off-host: every backup in the volume that is not verified off-host yet, newest first, is
  uploaded and read back (offsite.upload); a failure is retried with a growing pause (15 s up to
  10 min); then retention, off-host and in the volume. A backup that is not off-host yet is never
  removed from the volume, whatever its age.
- WAL (with PITR): the stanza is created (again, after an error), a base backup taken when the
  archive has none, and every spooled WAL segment pushed in order (wal.py).

Whoever took a backup (the schedule, the release job, `make backup`), the same loop copies it.
The container's healthcheck reads a heartbeat file the main loop writes: the agent is alive;
whether its work succeeds is what `make status` reports (report.py).
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from datetime import datetime, timedelta
from typing import Any, Optional

from django_docker_backup import dump, names, offsite, report, state, wal
from django_docker_backup.config import Config
from django_docker_backup.schedule import next_run

logger = logging.getLogger("django_docker_backup")
HEARTBEAT = "/tmp/django-docker-backup.heartbeat"
HEARTBEAT_SECONDS = 5
SYNC_SECONDS = 5
LIST_SECONDS = 60
BACKOFF = (15, 30, 60, 120, 300, 600)
# A base backup with a scheduled backup, at most this often: the WAL in between makes any moment
# restorable, and a base backup copies the whole data directory.
BASE_BACKUP_SECONDS = 3600


class Agent:
    def __init__(self, config: Config):
        self.config = config
        self.stop = threading.Event()
        self.wake = threading.Event()
        self.lock = threading.Lock()  # agent.json has one writer at a time
        self.next_try: dict[str, float] = {}
        self.stanza_ready = threading.Event()
        self.last_segment: Optional[str] = None  # the newest WAL segment pushed (not .history, .partial)
        self.asked: Optional[wal.Asked] = None  # the agent's last pg_switch_wal()
        self.probed_at = 0.0

    # --- recording

    def record(self, **fields: Any) -> None:
        with self.lock:
            state.update_agent(self.config.directory, **fields)

    # --- the loops

    def run(self) -> int:
        signal.signal(signal.SIGTERM, lambda *_: self.stop.set())
        signal.signal(signal.SIGINT, lambda *_: self.stop.set())
        c = self.config
        self.record(started_at=state.stamp(), schedule_text=c.schedule_text)
        loops = [self.schedule_loop]
        if c.offsite is not None:
            loops.append(self.offsite_loop)
        if c.pitr:
            loops.append(self.wal_loop)
        threads = [
            threading.Thread(target=self.guarded, args=(loop,), daemon=True, name=loop.__name__) for loop in loops
        ]
        for thread in threads:
            thread.start()
        logger.info(
            "backup agent for stack %s: schedule %s; off-host %s; point-in-time recovery %s",
            c.stack,
            c.schedule_text or "none",
            c.offsite.where if c.offsite else "none",
            "on" if c.pitr else "off",
        )
        while not self.stop.is_set():
            with open(HEARTBEAT, "w") as handle:
                handle.write(state.stamp())
            self.stop.wait(HEARTBEAT_SECONDS)
        for thread in threads:
            thread.join(timeout=20)
        return 0

    def guarded(self, loop) -> None:
        """A loop that fails is logged and started again after a pause, never left dead."""
        while not self.stop.is_set():
            try:
                loop()
            except Exception as error:  # the loop's own errors are recorded inside; this is a bug's
                logger.exception("%s stopped: %s; starting it again in 30 s", loop.__name__, error)
                self.stop.wait(30)

    def schedule_loop(self) -> None:
        c = self.config
        if c.pitr:
            # Base backups are taken here only, one at a time, while the WAL loop keeps shipping
            # (a base backup waits for its last segment to reach the archive).
            while not self.stanza_ready.wait(5):
                if self.stop.is_set():
                    return
            try:
                if not (wal.info(c).get("backup") or []):
                    self.base_backup("the archive has none")
            except wal.WalError as error:
                self.record(wal_error=str(error))
        if c.interval <= 0:
            while not self.stop.is_set():  # no schedule: local retention now and then
                self.local_retention()
                self.stop.wait(3600)
            return
        while not self.stop.is_set():
            due = next_run(state.now(), interval=c.interval, offset=c.offset)
            self.record(next_run=state.stamp(due))
            while not self.stop.is_set() and state.now() < due:
                self.stop.wait(min(30.0, max(0.05, (due - state.now()).total_seconds())))
            if self.stop.is_set():
                return
            self.scheduled_backup(due)

    def scheduled_backup(self, due: datetime) -> None:
        c = self.config
        started = time.monotonic()
        try:
            manifest = dump.take(c.stack, c.directory, names.SCHEDULED, skip_empty=True)
        except dump.BackupFailed as error:
            logger.error("scheduled backup failed: %s", error)
            self.record(last_scheduled={"at": state.stamp(due), "error": str(error)})
            return
        if "skipped" in manifest:
            logger.info("scheduled backup skipped: %s", manifest["skipped"])
            self.record(last_scheduled={"at": state.stamp(due), "skipped": manifest["skipped"]})
        else:
            logger.info("%s in %.1fs", dump.line(manifest).replace("\n", "; "), time.monotonic() - started)
            self.record(
                last_scheduled={
                    "at": state.stamp(due),
                    "name": manifest["name"],
                    "seconds": round(time.monotonic() - started, 1),
                }
            )
            last_base = state.parse_stamp(
                (state.read(state.agent_path(c.directory)) or {}).get("last_base_backup", {}).get("at")
            )
            if c.pitr and (last_base is None or (state.now() - last_base).total_seconds() >= BASE_BACKUP_SECONDS):
                self.base_backup("scheduled")
        self.local_retention()
        self.wake.set()

    def base_backup(self, why: str) -> None:
        started = time.monotonic()
        try:
            wal.base_backup(self.config)
            logger.info("base backup (%s) taken in %.1fs", why, time.monotonic() - started)
            self.record(last_base_backup={"at": state.stamp(), "seconds": round(time.monotonic() - started, 1)})
        except wal.WalError as error:
            logger.error("base backup (%s) failed: %s", why, error)
            self.record(last_base_backup={"at": state.stamp(), "error": str(error)})

    def offsite_loop(self) -> None:
        c = self.config
        assert c.offsite is not None
        listed_at = 0.0
        while not self.stop.is_set():
            verified = self.verified_names()
            pending = [n for n in dump.local_names(c.directory) if n not in verified]
            copied = False
            for name in reversed(pending):  # newest first: it is the one a host loss needs
                if self.stop.is_set():
                    return
                if self.next_try.get(name, 0) > time.monotonic():
                    continue
                copied = self.upload(name) or copied
            if copied or time.monotonic() - listed_at > LIST_SECONDS or self.wake.is_set():
                self.wake.clear()
                listed_at = time.monotonic()
                self.offsite_retention()
                self.local_retention()
            self.wake.wait(SYNC_SECONDS)

    def upload(self, name: str) -> bool:
        """Copy one backup off-host, verified; whether it worked (a failure is recorded)."""
        c = self.config
        assert c.offsite is not None
        started = time.monotonic()
        try:
            record = offsite.upload(c.offsite, c.directory, name)
        except offsite.OffsiteError as error:
            attempts = int((state.read(state.offsite_path(c.directory, name)) or {}).get("attempts", 1))
            pause = BACKOFF[min(attempts, len(BACKOFF)) - 1]
            self.next_try[name] = time.monotonic() + pause
            logger.error("off-host copy of %s FAILED (attempt %d, again in %ds): %s", name, attempts, pause, error)
            return False
        self.next_try.pop(name, None)
        logger.info(
            "off-host: %s verified at %s (%d bytes, sha256 %s%s) in %.1fs",
            name,
            record["key"],
            record["bytes"],
            record["sha256"][:16],
            ", age-encrypted" if record["encrypted"] else "",
            time.monotonic() - started,
        )
        return True

    def verified_names(self) -> set[str]:
        folder = os.path.dirname(state.offsite_path(self.config.directory, "x"))
        try:
            files = os.listdir(folder)
        except FileNotFoundError:
            return set()
        found = set()
        for leaf in files:
            if leaf.endswith(".json") and "verified_at" in (state.read(os.path.join(folder, leaf)) or {}):
                found.add(leaf[: -len(".json")])
        return found

    def offsite_retention(self) -> None:
        c = self.config
        assert c.offsite is not None
        try:
            copies = offsite.listing(c.offsite, c.stack)
            by_name = {copy.name: copy for copy in copies}
            doomed = names.to_remove(
                names.of_stack(by_name, c.stack), keep=c.keep, keep_days=c.keep_days, now=state.now()
            )
            for backup in doomed:
                offsite.delete(c.offsite, by_name[backup.name])
                logger.info("off-host: removed %s (retention: newest %d, %d days)", backup.name, c.keep, c.keep_days)
                gone = state.offsite_path(c.directory, backup.name)
                if os.path.exists(gone):
                    os.unlink(gone)
            kept = [copy for copy in copies if copy.name not in {b.name for b in doomed} and copy.manifest_key]
            newest = kept[-1] if kept else None
            taken = names.parse(newest.name, c.stack) if newest else None
            verified = state.read(state.offsite_path(c.directory, newest.name)) if newest else None
            self.record(
                offsite={
                    "listed_at": state.stamp(),
                    "count": len(kept),
                    "newest": {
                        "name": newest.name,
                        "taken_at": state.stamp(taken.taken) if taken else None,
                        "verified_at": (verified or {}).get("verified_at") or state.stamp(newest.modified),
                    }
                    if newest
                    else None,
                    "error": None,
                }
            )
        except Exception as error:  # listing or deleting: S3 away or refusing
            line = str(error) if isinstance(error, offsite.OffsiteError) else offsite.describe(error)
            logger.error("off-host listing or retention failed: %s", line)
            self.record(
                offsite={**((state.read(state.agent_path(c.directory)) or {}).get("offsite") or {}), "error": line}
            )

    def local_retention(self) -> None:
        c = self.config
        backups = names.of_stack(dump.local_names(c.directory), c.stack)
        doomed = names.to_remove(backups, keep=c.keep, keep_days=c.keep_days, now=state.now())
        verified = self.verified_names() if c.offsite is not None else None
        for backup in doomed:
            if verified is not None and backup.name not in verified:
                continue  # not off-host yet: the only copy stays
            dump.remove(c.directory, backup.name)
            logger.info("removed %s from the volume (retention: newest %d, %d days)", backup.name, c.keep, c.keep_days)

    def wal_loop(self) -> None:
        c = self.config
        while not self.stop.is_set():
            try:
                wal.stanza_create(c)
                self.record(wal_error=None)
                self.stanza_ready.set()
                break
            except wal.WalError as error:
                message = str(error)
                if wal.other_cluster(message):
                    message = (
                        f"the archive at {c.offsite.where if c.offsite else '?'}/pgbackrest belongs to another "
                        "database cluster (this one is new: restore it with make restore AT=..., or set another "
                        f"backupS3Prefix) ({message[:120]})"
                    )
                logger.error("WAL archive: %s; trying again in 30 s", message)
                self.record(wal_error=message)
                self.stop.wait(30)
        archived = (state.read(state.agent_path(c.directory)) or {}).get("wal_archived") or {}
        self.last_segment = archived.get("segment") if wal.is_segment(archived.get("segment")) else None
        while not self.stop.is_set():
            self.ship()
            self.stop.wait(1)

    def ship(self) -> None:
        c = self.config
        waiting = wal.spooled()
        if not waiting:
            with self.lock:  # nothing waits: nothing is failing to go
                if (state.read(state.agent_path(c.directory)) or {}).get("wal_error"):
                    state.update_agent(c.directory, wal_error=None)
            self.catch_up()
            return
        for segment in waiting:
            if self.stop.is_set():
                return
            try:
                spooled_at = wal.push(c, segment)
                archived = wal.write_archived(c, segment, spooled_at)
                self.record(wal_archived=archived, wal_error=None)
                if wal.is_segment(segment):
                    self.last_segment = segment
            except (wal.WalError, offsite.OffsiteError) as error:
                message = str(error)
                if wal.other_cluster(message):
                    wal.reject(segment)
                    logger.error("WAL %s is another cluster's: set aside, not pushed (%s)", segment, message[:160])
                    continue
                logger.error("WAL %s not pushed: %s", segment, message)
                self.record(wal_error=f"{segment} not pushed: {message}")
                return  # in order, or not at all: try again in a second

    def catch_up(self) -> None:
        """The spool is empty and the archive's reach is an archive_timeout old: ask the database
        whether anything was written since the newest pushed segment (wal.idle_step). Nothing: the
        archive reaches now (recorded here and off-host). WAL that no switch followed: closed with
        pg_switch_wal(), so it reaches the spool. At most once per archive_timeout."""
        c = self.config
        if time.monotonic() - self.probed_at < c.archive_timeout:
            return
        archived = (state.read(state.agent_path(c.directory)) or {}).get("wal_archived") or {}
        until = state.parse_stamp(archived.get("until"))
        if until is None or (state.now() - until).total_seconds() < c.archive_timeout:
            return
        self.probed_at = time.monotonic()
        try:
            where = wal.position()
            step = wal.idle_step(self.last_segment, where, self.asked, c.archive_timeout)
            if step == wal.CAUGHT_UP and self.last_segment is not None:
                self.record(wal_archived=wal.write_caught_up(c, self.last_segment, where.at))
            elif step == wal.SWITCH:
                self.asked = wal.switch()
                logger.info(
                    "WAL after %s that no switch followed (a quiet database): %s closed",
                    self.last_segment,
                    self.asked.segment,
                )
        except wal.WalError as error:  # restarting, in recovery: the next round asks again
            logger.info("WAL archive's reach not checked: %s", error)
        except Exception as error:  # the off-host record: S3 away (the segments' own pushes report it)
            logger.info("WAL archive's reach not recorded off-host: %s", offsite.describe(error))


def status(config: Config, now: Optional[datetime] = None) -> dict[str, Any]:
    """Everything `make status` and `make backups` read, from the volume (no S3 call)."""
    now = now or state.now()
    c = config
    recorded = state.read(state.agent_path(c.directory)) or {}
    backups = names.of_stack(dump.local_names(c.directory), c.stack)
    newest = backups[-1] if backups else None
    result: dict[str, Any] = {
        "stack": c.stack,
        "schedule": {
            "text": c.schedule_text,
            "interval": c.interval,
            "offset": c.offset,
            "next": recorded.get("next_run"),
        },
        "keep": c.keep,
        "keep_days": c.keep_days,
        "drill_days": c.drill_days,
        "local": {
            "count": len(backups),
            "newest": {"name": newest.name, "taken_at": state.stamp(newest.taken)} if newest else None,
        },
        "last_scheduled": recorded.get("last_scheduled"),
        "started_at": recorded.get("started_at"),
        "drill": state.read(state.drill_path(c.directory)),
    }
    if c.offsite is not None:
        off = dict(recorded.get("offsite") or {})
        records = {b.name: state.read(state.offsite_path(c.directory, b.name)) or {} for b in backups}
        verified = sorted(
            (name, r) for name, r in records.items() if "verified_at" in r
        )  # newer than the last listing, perhaps
        if verified:
            name, r = verified[-1]
            listed = (off.get("newest") or {}).get("name") or ""
            if name > listed:
                taken = names.parse(name, c.stack)
                off["newest"] = {
                    "name": name,
                    "taken_at": state.stamp(taken.taken) if taken else None,
                    "verified_at": r["verified_at"],
                }
        off["where"] = c.offsite.where
        off["encrypted"] = bool(c.offsite.recipient)
        off["pending"] = [name for name, r in records.items() if "verified_at" not in r]
        off["failing"] = [
            {"name": name, "error": r["error"], "attempts": r.get("attempts", 1)}
            for name, r in records.items()
            if "verified_at" not in r and r.get("error")
        ]
        result["offsite"] = off
    if c.pitr:
        archived = recorded.get("wal_archived") or {}
        result["wal"] = {
            "until": archived.get("until"),
            "segment": archived.get("segment"),
            "waiting": len(wal.spooled()),
            "error": recorded.get("wal_error"),
            "archive_timeout": c.archive_timeout,
            "last_base_backup": recorded.get("last_base_backup"),
        }
    result["warnings"] = report.warnings(result, now)
    return result


def heartbeat_age() -> Optional[float]:
    try:
        return time.time() - os.path.getmtime(HEARTBEAT)
    except FileNotFoundError:
        return None


def fresh(limit: timedelta = timedelta(seconds=60)) -> bool:
    age = heartbeat_age()
    return age is not None and age < limit.total_seconds()
