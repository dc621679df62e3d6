"""django-docker's backup agent: what runs in the backup accessory and its one-off containers.

The program builds it into an image FROM the stack's own postgresImage (backup/Dockerfile) and
runs it as the `backup` accessory: scheduled pg_dump backups into the backups volume, the same
backups as the release's before-migrate job and `make backup`; every one of them copied to
S3-compatible storage, optionally encrypted with age, then read back and checked (size and
SHA-256) before it counts as off-host; retention by count and age, locally and off-host; with
`backupPitr`, the WAL archive and base backups of pgBackRest in the same bucket, for
point-in-time recovery. The day-2 commands (ops/backup.py) run its other subcommands: list,
fetch, the restore drill, the point-in-time restore.

Modules: `config` (the environment it is given), `names` and `schedule` (pure), `state` (what it
records in the volume), `dump` (pg_dump with a manifest), `offsite` (S3 and age), `wal`
(pgBackRest), `agent` (the accessory's loop), `drill`, `__main__` (the commands).
"""

VERSION = "1.0.0"
