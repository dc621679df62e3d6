#!/usr/bin/env bash
# Make sure a Docker engine answers on this machine, for the rehearsal.
#
# Idempotent: if `docker info` already answers, do nothing. Otherwise (as root
# on Debian) install Debian's docker.io if dockerd is missing, start dockerd in
# the background and wait until it answers. Exit non-zero with one clear
# message when that is not possible. Also installs debootstrap if missing: where
# no registry answers, the rehearsal builds its stand-in images with it.
#
# Environment: DOCKERD_LOG (default /var/log/dockerd.log),
#              DOCKER_START_TIMEOUT seconds (default 60).
set -o errexit -o nounset -o pipefail

log=${DOCKERD_LOG:-/var/log/dockerd.log}
timeout=${DOCKER_START_TIMEOUT:-60}

say() { echo "start-docker: $*" >&2; }
die() { say "ERROR: $*"; exit 1; }

# Talk to the engine's socket, not through a CLI that may be missing or newer
# than the engine: `docker info` needs the CLI, so fall back to the API's ping.
engine_answers() {
    if command -v docker >/dev/null 2>&1; then
        docker info >/dev/null 2>&1 && return 0
    fi
    [ -S /var/run/docker.sock ] && command -v curl >/dev/null 2>&1 \
        && curl --silent --fail --unix-socket /var/run/docker.sock http://localhost/_ping >/dev/null 2>&1
}

apt_install() {
    command -v apt-get >/dev/null 2>&1 \
        || die "$1 is not installed and this is not Debian (no apt-get): install it, then rerun"
    say "installing Debian's $*"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null || die "apt-get update failed"
    apt-get install -y -qq --no-install-recommends "$@" >/dev/null || die "apt-get install $* failed"
}

if [ "$(id -u)" -eq 0 ] && ! command -v debootstrap >/dev/null 2>&1 && [ ! -x /usr/sbin/debootstrap ]; then
    apt_install debootstrap
fi

if engine_answers; then
    say "engine already running"
    exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
    die "no Docker engine answers and starting one needs root: run 'sudo $0'"
fi

if ! command -v dockerd >/dev/null 2>&1 && [ ! -x /usr/sbin/dockerd ]; then
    apt_install docker.io iptables ca-certificates
fi

# A dockerd that is running but not answering yet must not get a second one
# beside it; a stale pid file from a killed one is removed. (No pgrep: a fresh
# minimal Debian has no procps.)
pid=""
if [ -s /var/run/docker.pid ] && kill -0 "$(cat /var/run/docker.pid)" 2>/dev/null; then
    pid=$(cat /var/run/docker.pid)
    say "dockerd (pid $pid) is already starting; waiting for it"
else
    rm -f /var/run/docker.pid
    say "starting dockerd (log: $log)"
    nohup "$(command -v dockerd || echo /usr/sbin/dockerd)" >>"$log" 2>&1 </dev/null &
    pid=$!
fi

for _ in $(seq "$timeout"); do
    if engine_answers; then
        say "engine is up"
        exit 0
    fi
    if ! kill -0 "$pid" 2>/dev/null; then
        tail -n 20 "$log" >&2 || true
        die "dockerd exited during start-up; its last log lines are above"
    fi
    sleep 1
done
tail -n 20 "$log" >&2 || true
die "dockerd did not answer within ${timeout}s; its last log lines are above"
