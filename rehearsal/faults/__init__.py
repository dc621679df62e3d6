"""Fault scenarios: one small module each, data plus an expectation.

The types and pure parts are in `fault.py`; each fault is a module of its own, which imports
them from there (never from this package: this registry imports the faults).
"""

from rehearsal.faults.fault import (
    BACKUP_LINE,
    PAGES,
    READS,
    WRITES,
    Difference,
    Fault,
    Traffic,
    Trial,
    difference,
    fault_line,
    parse_backup,
    parse_ids,
    parse_rows,
    rows_difference,
    summary_line,
    verdict,
)

__all__ = [
    "BACKUP_LINE",
    "Difference",
    "Fault",
    "PAGES",
    "READS",
    "Traffic",
    "Trial",
    "WRITES",
    "all_faults",
    "difference",
    "fault_line",
    "parse_backup",
    "parse_ids",
    "parse_rows",
    "rows_difference",
    "summary_line",
    "verdict",
]


def all_faults() -> list[Fault]:
    from rehearsal.faults import kill_web, kill_worker, restart_postgres, restart_redis, restore

    return [m.FAULT for m in (kill_web, restart_postgres, restart_redis, kill_worker, restore)]
