#!/usr/bin/env bash
# Stand-in for the official postgres image's entrypoint (the parts programs rely on):
# as root, own PGDATA and drop to the postgres user; on an empty PGDATA, initdb with
# POSTGRES_USER / POSTGRES_PASSWORD (or *_FILE) / POSTGRES_DB, password auth for
# every remote host, run /docker-entrypoint-initdb.d/*.sql|*.sh; then exec postgres.
set -Eeo pipefail

file_env() {  # VAR or VAR_FILE, like the official image
    local var="$1" def="${2:-}" file_var="${1}_FILE" val="${2:-}"
    if [ "${!var:-}" ] && [ "${!file_var:-}" ]; then
        echo >&2 "error: both $var and $file_var are set (but are exclusive)"; exit 1
    fi
    if [ "${!var:-}" ]; then val="${!var}"; elif [ "${!file_var:-}" ]; then val="$(< "${!file_var}")"; fi
    export "$var"="$val"; unset "$file_var"
}

if [ "${1:0:1}" = '-' ]; then set -- postgres "$@"; fi

if [ "$1" = 'postgres' ] && [ "$(id -u)" = '0' ]; then
    mkdir -p "$PGDATA"
    find "$PGDATA" \! -user postgres -exec chown postgres '{}' +
    chmod 00700 "$PGDATA"
    mkdir -p /var/run/postgresql || :
    find /var/run/postgresql \! -user postgres -exec chown postgres '{}' + || :
    chmod 3777 /var/run/postgresql || :
    exec setpriv --reuid=postgres --regid=postgres --init-groups "${BASH_SOURCE[0]}" "$@"
fi

if [ "$1" = 'postgres' ] && [ ! -s "$PGDATA/PG_VERSION" ]; then
    file_env POSTGRES_PASSWORD
    file_env POSTGRES_USER postgres
    file_env POSTGRES_DB "$POSTGRES_USER"
    file_env POSTGRES_INITDB_ARGS
    if [ -z "$POSTGRES_PASSWORD" ] && [ "${POSTGRES_HOST_AUTH_METHOD:-}" != 'trust' ]; then
        echo >&2 "Error: Database is uninitialized and superuser password is not specified."
        echo >&2 "       Set POSTGRES_PASSWORD (or POSTGRES_HOST_AUTH_METHOD=trust)."
        exit 1
    fi
    mkdir -p "$PGDATA" && chmod 00700 "$PGDATA"
    # shellcheck disable=SC2086
    initdb --username="$POSTGRES_USER" --pwfile=<(printf '%s\n' "$POSTGRES_PASSWORD") $POSTGRES_INITDB_ARGS
    printf '\nhost all all all %s\n' "${POSTGRES_HOST_AUTH_METHOD:-scram-sha-256}" >> "$PGDATA/pg_hba.conf"
    PGUSER="$POSTGRES_USER" PGPASSWORD="$POSTGRES_PASSWORD" \
        pg_ctl -D "$PGDATA" -o "-c listen_addresses='' -p 5432" -w start
    export PGPASSWORD="$POSTGRES_PASSWORD"
    psql=(psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --no-password --no-psqlrc)
    if [ "$POSTGRES_DB" != 'postgres' ]; then
        "${psql[@]}" --dbname postgres --set db="$POSTGRES_DB" <<<'CREATE DATABASE :"db" ;'
    fi
    for f in /docker-entrypoint-initdb.d/*; do
        case "$f" in
            *.sh) echo "running $f"; . "$f" ;;
            *.sql) echo "running $f"; "${psql[@]}" --dbname "$POSTGRES_DB" -f "$f" ;;
            *) ;;
        esac
    done
    pg_ctl -D "$PGDATA" -m fast -w stop
    unset PGPASSWORD
    echo 'PostgreSQL init process complete; ready for start up.'
fi

exec "$@"
