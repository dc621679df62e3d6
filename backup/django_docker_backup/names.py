"""Backup names and which ones retention removes. Pure.

A backup is `<UTC time>-<stack>-<label>.dump`: names sort by time. Labels say who took it:
`scheduled` (the accessory's schedule), `before-<sha>` (the release's job, before a migration),
`<sha>-manual` (make backup), `<sha>-pre-restore` (make restore, before it overwrites). The
first two are automatic: retention removes them. The operator's own are never removed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Iterable, Optional

TIME_FORMAT = "%Y%m%dT%H%M%SZ"
NAME_RE = re.compile(r"^(?P<time>\d{8}T\d{6}Z)-(?P<rest>[A-Za-z0-9][A-Za-z0-9._-]*)\.dump$")
LABEL_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,80}$")
SCHEDULED = "scheduled"
# The suffix of an age-encrypted object off-host, and of a manifest.
ENCRYPTED = ".age"
MANIFEST = ".manifest.json"


@dataclass(frozen=True)
class Backup:
    name: str
    taken: datetime
    stack: str
    label: str

    @property
    def automatic(self) -> bool:
        return self.label == SCHEDULED or self.label.startswith("before-")


def name_for(stack: str, label: str, when: datetime) -> str:
    if not LABEL_RE.match(label):
        raise ValueError(f"label {label!r}: letters, digits, . _ - only")
    return f"{when.astimezone(timezone.utc).strftime(TIME_FORMAT)}-{stack}-{label}.dump"


def parse(name: str, stack: str) -> Optional[Backup]:
    """The backup a file or object name is, for this stack; None when it is not one of its."""
    match = NAME_RE.match(name)
    if not match or not match["rest"].startswith(f"{stack}-"):
        return None
    label = match["rest"][len(stack) + 1 :]
    if not LABEL_RE.match(label):
        return None
    taken = datetime.strptime(match["time"], TIME_FORMAT).replace(tzinfo=timezone.utc)
    return Backup(name=name, taken=taken, stack=stack, label=label)


def of_stack(names: Iterable[str], stack: str) -> list[Backup]:
    """The stack's backups among `names`, oldest first."""
    found = [b for b in (parse(n, stack) for n in names) if b is not None]
    return sorted(found, key=lambda b: b.name)


def to_remove(backups: Iterable[Backup], *, keep: int, keep_days: int, now: datetime) -> list[Backup]:
    """The automatic backups retention removes: those that are neither among the newest `keep`
    automatic ones nor younger than `keep_days`. The operator's own are never removed.

    Either rule keeps a backup (a union, as restic's --keep-last and --keep-within): if backups
    stop for a month, the last `keep` of them stay; a busy week keeps every one of its days."""
    if keep < 1 or keep_days < 1:
        raise ValueError("retention keeps at least one backup and one day")
    automatic = sorted((b for b in backups if b.automatic), key=lambda b: b.name, reverse=True)
    cutoff = now - timedelta(days=keep_days)
    return sorted((b for b in automatic[keep:] if b.taken < cutoff), key=lambda b: b.name)
