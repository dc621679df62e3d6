"""When the next scheduled backup is due. Pure.

The program turns `backupSchedule` (`daily 03:00`, `every 6h`) into an interval and an offset in
seconds, UTC (components/settings/backups.py); runs are at every `offset + k * interval` seconds
since the epoch: `daily 03:00` is interval 86400, offset 10800; `every 6h` is 00:00, 06:00, ...
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone


def next_run(now: datetime, *, interval: int, offset: int) -> datetime:
    """The first run strictly after `now`."""
    if interval <= 0:
        raise ValueError("no schedule")
    seconds = now.timestamp()
    k = int((seconds - offset) // interval) + 1
    return datetime.fromtimestamp(offset + k * interval, tz=timezone.utc)


def previous_run(now: datetime, *, interval: int, offset: int) -> datetime:
    """The last run at or before `now` (when the newest scheduled backup should have been taken)."""
    return next_run(now, interval=interval, offset=offset) - timedelta(seconds=interval)


def describe(seconds: float) -> str:
    """`41s`, `12m`, `3h05m`, `2d04h` (as ops shows ages)."""
    seconds = max(0, int(seconds))
    if seconds < 60:
        return f"{seconds}s"
    minutes = seconds // 60
    if minutes < 60:
        return f"{minutes}m"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours}h{minutes:02d}m"
    days, hours = divmod(hours, 24)
    return f"{days}d{hours:02d}h"
