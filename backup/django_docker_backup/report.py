"""What `make status` says about backups: the newest local and off-host backup, the WAL archive,
the last restore drill, and a warning for each that is older than the schedule allows or
failing. Pure: the agent's records in, a dict out (`status --json`), and the lines ops prints.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Optional

from django_docker_backup import state
from django_docker_backup.schedule import describe, previous_run

# A scheduled backup takes a while (the dump, then the upload and its read-back): how late the
# newest one may be past the run that should have made it, before it is warned about.
GRACE = timedelta(minutes=30)
# Without a schedule, local backups are not expected on any rhythm: only failures are warned about.


def allowed_age(*, interval: int, offset: int, now: datetime) -> Optional[timedelta]:
    """How old the newest automatic backup may be now: since the run that should have made it
    (plus a grace); None without a schedule. Within that grace of a run, the run may still be
    dumping, and the newest is the run's before: one interval more (without it, `make status`
    warned in the seconds after every run began; CI's restore-drill fault, a 30 s schedule)."""
    if interval <= 0:
        return None
    due = previous_run(now, interval=interval, offset=offset)
    grace = min(GRACE, timedelta(seconds=interval / 2))
    running = now - due < grace
    return (now - due) + grace + (timedelta(seconds=interval) if running else timedelta(0))


def warnings(status: dict[str, Any], now: datetime) -> list[str]:
    """One line per problem; empty when the backups are as the stack's settings ask."""
    found: list[str] = []
    schedule = status.get("schedule") or {}
    interval = int(schedule.get("interval") or 0)
    allowed = allowed_age(interval=interval, offset=int(schedule.get("offset") or 0), now=now)
    started = state.parse_stamp(status.get("started_at"))
    if allowed is not None and started is not None and now - started < timedelta(seconds=interval) + allowed:
        allowed = None  # the accessory is newer than its schedule's last run: nothing is due yet
    if (status.get("last_scheduled") or {}).get("skipped"):
        allowed = None  # the database has no table yet: nothing to back up
    local = status.get("local") or {}
    newest_local = state.parse_stamp((local.get("newest") or {}).get("taken_at"))
    if allowed is not None:
        if newest_local is None:
            found.append(f"no backup in the volume, and the schedule ({schedule.get('text')}) should have made one")
        elif now - newest_local > allowed:
            found.append(
                f"the newest backup is {describe((now - newest_local).total_seconds())} old; "
                f"the schedule ({schedule.get('text')}) allows {describe(allowed.total_seconds())}"
            )
    last = status.get("last_scheduled") or {}
    if last.get("error"):
        found.append(f"the scheduled backup at {last.get('at')} failed: {last['error']}")
    offsite = status.get("offsite")
    if offsite:
        if offsite.get("error"):
            found.append(f"off-host storage {offsite.get('where')}: {offsite['error']}")
        failing = offsite.get("failing") or []
        for item in failing[:3]:
            found.append(f"{item['name']} is not off-host: {item['error']} ({item['attempts']} attempts)")
        if len(failing) > 3:
            found.append(f"{len(failing) - 3} more backups are not off-host")
        newest_off = state.parse_stamp((offsite.get("newest") or {}).get("taken_at"))
        if allowed is not None:
            allowed += min(GRACE, timedelta(seconds=int(schedule.get("interval") or 0) / 2))  # the upload
        if allowed is not None and (newest_off is None or now - newest_off > allowed):
            age = (
                "none there"
                if newest_off is None
                else f"the newest is {describe((now - newest_off).total_seconds())} old"
            )
            found.append(f"off-host copies lag: {age}; the schedule allows {describe(allowed.total_seconds())}")
    wal = status.get("wal")
    if wal:
        if wal.get("error"):
            found.append(f"WAL archive: {wal['error']}")
        until = state.parse_stamp(wal.get("until"))
        lag_allowed = timedelta(seconds=int(wal.get("archive_timeout") or 60) * 3 + 60)
        if until is None:
            settling = started is not None and now - started < lag_allowed
            if not settling:  # the first segment goes with the first base backup, moments after start
                found.append("WAL archive: nothing archived yet")
        elif now - until > lag_allowed and not wal.get("idle"):
            found.append(
                f"WAL archive: the newest archived commit is {describe((now - until).total_seconds())} old "
                f"(archive_timeout {wal.get('archive_timeout')}s)"
            )
        if int(wal.get("waiting") or 0) > 8:
            found.append(f"WAL archive: {wal['waiting']} segments waiting in the spool")
    drill = status.get("drill")
    drill_days = int(status.get("drill_days") or 30)
    if offsite is not None:
        at = state.parse_stamp((drill or {}).get("at"))
        if drill is None or at is None:
            if started is None or now - started > timedelta(days=drill_days):
                found.append(f"no restore drill in {drill_days} days (make restore-drill)")
        elif not drill.get("ok"):
            found.append(
                f"the last restore drill ({describe((now - at).total_seconds())} ago) failed: {drill.get('problem')}"
            )
        elif now - at > timedelta(days=drill_days):
            found.append(
                f"the last restore drill is {describe((now - at).total_seconds())} old; at most {drill_days} days "
                "(backupDrillDays; make restore-drill)"
            )
    return found


def lines(status: dict[str, Any], now: datetime) -> list[str]:
    """The backup part of `make status`."""

    def age(text: Optional[str]) -> str:
        when = state.parse_stamp(text)
        return f"{describe((now - when).total_seconds())} ago" if when else "-"

    out = []
    schedule = status.get("schedule") or {}
    sched = schedule.get("text") or "none (make backup, and before each migration)"
    nxt = state.parse_stamp(schedule.get("next"))
    out.append(
        f"backups: schedule {sched}"
        + (f", next in {describe((nxt - now).total_seconds())}" if nxt else "")
        + f"; keep {status.get('keep')} and every one younger than {status.get('keep_days')} days"
    )
    local = (status.get("local") or {}).get("newest")
    out.append(f"  newest local: {local['name']} ({age(local.get('taken_at'))})" if local else "  newest local: none")
    off = status.get("offsite")
    if off:
        newest = off.get("newest")
        out.append(
            f"  newest off-host: {newest['name']} ({age(newest.get('taken_at'))}, verified {age(newest.get('verified_at'))})"
            if newest
            else f"  newest off-host: none at {off.get('where')}"
        )
        out.append(
            f"  off-host: {off.get('where')}{', encrypted (age)' if off.get('encrypted') else ''}; "
            f"{off.get('count', 0)} backups there; {len(off.get('pending') or [])} waiting to go"
        )
    wal = status.get("wal")
    if wal:
        out.append(
            f"  WAL archive (point-in-time recovery): up to {wal.get('until') or '-'} ({age(wal.get('until'))}), "
            f"{wal.get('waiting', 0)} segments waiting; base backups: {wal.get('backups', '?')}"
        )
    drill = status.get("drill")
    if drill:
        verdict = "passed" if drill.get("ok") else f"FAILED ({drill.get('problem')})"
        out.append(
            f"  restore drill: {verdict} {age(drill.get('at'))}, {drill.get('backup')}: {drill.get('tables')} tables, "
            f"{drill.get('rows')} rows, migrate --check {drill.get('migrate', '-')}"
        )
    elif off:
        out.append("  restore drill: never (make restore-drill)")
    for warning in status.get("warnings") or []:
        out.append(f"  WARNING: {warning}")
    return out
