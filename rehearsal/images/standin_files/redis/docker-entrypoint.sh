#!/bin/sh
# Stand-in for the official redis image's entrypoint: options or a .conf as first
# argument mean redis-server; as root, own /data and drop to the redis user.
set -e

if [ "${1#-}" != "$1" ] || [ "${1%.conf}" != "$1" ]; then
    set -- redis-server "$@"
fi

if [ "$1" = 'redis-server' ] && [ "$(id -u)" = '0' ]; then
    find . \! -user redis -exec chown redis '{}' +
    exec setpriv --reuid=redis --regid=redis --init-groups "$0" "$@"
fi

# The official image builds redis with protected mode off by default (the
# container network is the boundary); Debian's build keeps it on. Match the
# official default unless the command or a config file decides it.
if [ "$1" = 'redis-server' ]; then
    case " $* " in
        *protected-mode*|*.conf\ *) ;;
        *) set -- "$@" --protected-mode no ;;
    esac
fi

um="$(umask)"
if [ "$um" = '0022' ]; then
    umask 0077
fi

exec "$@"
