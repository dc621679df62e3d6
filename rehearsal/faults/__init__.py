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
    "BACKUP_FAULTS",
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


# The faults that need the backups rehearsal's off-host storage (the runner starts it for them).
BACKUP_FAULTS = ("scheduled-backup", "offsite-failure", "restore-offsite", "restore-drill", "pitr", "host-loss")


def all_faults() -> list[Fault]:
    from rehearsal.faults import (
        host_loss,
        kill_web,
        kill_worker,
        offsite_failure,
        pitr,
        restart_postgres,
        restart_redis,
        restore,
        restore_drill,
        restore_offsite,
        scheduled_backup,
    )

    # host-loss last: it rebuilds the stack.
    return [
        m.FAULT
        for m in (
            kill_web,
            restart_postgres,
            restart_redis,
            kill_worker,
            restore,
            scheduled_backup,
            offsite_failure,
            restore_offsite,
            restore_drill,
            pitr,
            host_loss,
        )
    ]
