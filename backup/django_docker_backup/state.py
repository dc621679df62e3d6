"""What the agent records in the backups volume, as small JSON files written atomically (a
temporary file renamed over the old one): the status `make status` reads, each backup's
off-host record, each backup's manifest, the last restore drill.

    .meta/<backup>.json           the manifest: tables and row counts (from the dump's snapshot)
    .state/agent.json             the accessory's loop: schedule, last run, WAL archive, errors
    .state/offsite/<backup>.json  verified off-host (key, bytes, sha256), or the last failure
    .state/drill.json             the last restore drill's result
"""

from __future__ import annotations

import json
import os
import tempfile
from datetime import datetime, timezone
from typing import Any, Optional


def now() -> datetime:
    return datetime.now(timezone.utc)


def stamp(when: Optional[datetime] = None) -> str:
    return (when or now()).astimezone(timezone.utc).isoformat(timespec="seconds")


def parse_stamp(text: Optional[str]) -> Optional[datetime]:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text).astimezone(timezone.utc)
    except ValueError:
        return None


def write(path: str, data: Any) -> None:
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    fd, partial = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".partial-")
    try:
        with os.fdopen(fd, "w") as handle:
            json.dump(data, handle, indent=1, sort_keys=True)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(partial, path)
    except BaseException:
        if os.path.exists(partial):
            os.unlink(partial)
        raise


def read(path: str) -> Optional[Any]:
    try:
        with open(path) as handle:
            return json.load(handle)
    except (FileNotFoundError, ValueError):
        return None


def manifest_path(directory: str, name: str) -> str:
    return os.path.join(directory, ".meta", f"{name}.json")


def offsite_path(directory: str, name: str) -> str:
    return os.path.join(directory, ".state", "offsite", f"{name}.json")


def agent_path(directory: str) -> str:
    return os.path.join(directory, ".state", "agent.json")


def drill_path(directory: str) -> str:
    return os.path.join(directory, ".state", "drill.json")


def update_agent(directory: str, **fields: Any) -> dict:
    """Merge `fields` into agent.json (one writer: the accessory's threads hold the agent's lock)."""
    path = agent_path(directory)
    data = read(path) or {}
    data.update(fields)
    write(path, data)
    return data
