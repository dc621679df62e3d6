#!/usr/bin/env bash
# Start the real PostgreSQL and Redis that tests/django_app runs against, on loopback only.
# Idempotent; run as root on a Debian machine (CI: a fresh one, before pytest).
# Prints the DATABASE_URL and REDIS_URL the tests default to (config/settings/test.py).
set -o errexit -o nounset -o pipefail

PG_VERSION=15
PG_CLUSTER=main
PG_PORT=5432
REDIS_PORT=6379
DB_NAME=django_app
DB_USER=django_app
DB_PASSWORD=django_app

log() { echo "start-services: $*" >&2; }

wait_for() {  # wait_for <what> <command...>: up to 30 s
    local what=$1; shift
    for _ in $(seq 1 60); do
        if "$@" >/dev/null 2>&1; then return 0; fi
        sleep 0.5
    done
    log "$what did not become ready"; return 1
}

missing=()
command -v pg_ctlcluster >/dev/null || missing+=("postgresql-${PG_VERSION}")
command -v redis-server >/dev/null || missing+=(redis-server)
if ((${#missing[@]})); then
    log "installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# --- PostgreSQL: Debian's cluster tooling, loopback only
if ! pg_lsclusters --no-header | awk '{print $1, $2}' | grep -qx "${PG_VERSION} ${PG_CLUSTER}"; then
    log "creating cluster ${PG_VERSION}/${PG_CLUSTER}"
    pg_createcluster --port "$PG_PORT" "$PG_VERSION" "$PG_CLUSTER" >/dev/null
fi
# A conf.d drop-in (Debian's postgresql.conf includes conf.d): quoting survives, reruns rewrite it.
printf "listen_addresses = '127.0.0.1'\n" >"/etc/postgresql/${PG_VERSION}/${PG_CLUSTER}/conf.d/90-loopback.conf"
pg_conftool "$PG_VERSION" "$PG_CLUSTER" set port "$PG_PORT"
if ! pg_ctlcluster "$PG_VERSION" "$PG_CLUSTER" status >/dev/null 2>&1; then
    log "starting PostgreSQL ${PG_VERSION}/${PG_CLUSTER} on 127.0.0.1:${PG_PORT}"
    pg_ctlcluster "$PG_VERSION" "$PG_CLUSTER" start
fi
wait_for PostgreSQL pg_isready --host 127.0.0.1 --port "$PG_PORT"

psql_admin() { runuser -u postgres -- psql --port "$PG_PORT" --no-psqlrc --quiet --tuples-only --no-align "$@"; }
# A cluster the package started before the drop-in existed listens on 'localhost': restart it.
if [[ "$(psql_admin -c 'SHOW listen_addresses')" != "127.0.0.1" ]]; then
    log "restarting PostgreSQL to listen on 127.0.0.1 only"
    pg_ctlcluster "$PG_VERSION" "$PG_CLUSTER" restart
    wait_for PostgreSQL pg_isready --host 127.0.0.1 --port "$PG_PORT"
fi
# CREATEDB: pytest-django creates and drops its own test_<name> database.
if [[ -z "$(psql_admin -c "SELECT 1 FROM pg_roles WHERE rolname = '${DB_USER}'")" ]]; then
    psql_admin -c "CREATE ROLE ${DB_USER} LOGIN CREATEDB PASSWORD '${DB_PASSWORD}'"
fi
if [[ -z "$(psql_admin -c "SELECT 1 FROM pg_database WHERE datname = '${DB_NAME}'")" ]]; then
    psql_admin -c "CREATE DATABASE ${DB_NAME} OWNER ${DB_USER}"
fi

# --- Redis: its own daemon on loopback, without persistence (test data only)
if ! redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping >/dev/null 2>&1; then
    log "starting Redis on 127.0.0.1:${REDIS_PORT}"
    install -d -o redis -g redis /var/lib/redis /var/log/redis 2>/dev/null || install -d /var/lib/redis /var/log/redis
    redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --daemonize yes \
        --save "" --appendonly no --dir /var/lib/redis \
        --logfile /var/log/redis/redis-server-tests.log
fi
wait_for Redis redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping

echo "DATABASE_URL=postgres://${DB_USER}:${DB_PASSWORD}@127.0.0.1:${PG_PORT}/${DB_NAME}"
echo "REDIS_URL=redis://127.0.0.1:${REDIS_PORT}/0"
