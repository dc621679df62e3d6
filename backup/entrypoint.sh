#!/bin/sh
# Every container of the backup image starts here. As root (what the program starts it as, with
# only CHOWN, SETUID and SETGID): give the backups volume and the WAL spool to the postgres user
# (a volume an older release's backup job wrote as root, or Docker created root-owned), then drop
# to that user, the owner of PGDATA, for the command. As any other user: the command as it is.
set -eu
if [ "$(id -u)" = 0 ]; then
    for dir in "${BACKUP_DIR:-/backups}" /var/run/postgresql; do
        if [ -d "$dir" ]; then
            find "$dir" -xdev \( ! -user postgres -o ! -group postgres \) -exec chown postgres:postgres {} + 2>/dev/null || true
        fi
    done
    exec setpriv --reuid=postgres --regid=postgres --init-groups "$0" "$@"
fi
exec "$@"
