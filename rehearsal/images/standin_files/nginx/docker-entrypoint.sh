#!/bin/sh
# Stand-in for the official nginx image's entrypoint. Debian's nginx binary keeps
# its temp files in /var/lib/nginx/*, which point into /var/cache/nginx/*_temp (the
# official build's paths, so a tmpfs there works the same): create the targets.
set -e

if [ "$1" = "nginx" ] || [ "$1" = "nginx-debug" ]; then
    for d in client_temp proxy_temp fastcgi_temp uwsgi_temp scgi_temp; do
        mkdir -p "/var/cache/nginx/$d" 2>/dev/null || true
    done
    for f in /docker-entrypoint.d/*.sh; do
        if [ -x "$f" ]; then echo "$0: running $f"; "$f"; fi
    done
fi

exec "$@"
