"""`make benchmark-http`'s variants of the rendered nginx.conf: each takes back exactly one change."""

import re

from components import render
from rehearsal.checks.http_bench import variant
from tests.nginx_check import APP_PATHS


def shipped():
    return render.nginx_conf(server_name="example.com", client_max_body_size="10m", tls=False, **APP_PATHS)


def test_without_upstream_keep_alive_every_request_asks_to_close():
    shipped_conf = shipped()
    conf = variant(shipped_conf, "no upstream keep-alive")
    # nginx >= 1.29.7 keeps upstream connections by default: the directive's absence is not enough.
    directive = re.compile(r"^\s*keepalive \d+;", re.MULTILINE)
    assert directive.search(shipped_conf) and not directive.search(conf)
    headers = re.findall(r"proxy_set_header Connection ([^;]*);", conf)
    assert headers and set(headers) == {"close"}
    assert len(headers) == len(re.findall(r"proxy_set_header Connection ", shipped_conf))


def test_without_gzip_only_gzip_changes():
    shipped_conf = shipped()
    conf = variant(shipped_conf, "no gzip")
    assert "\n    gzip off;" in conf and "\n    gzip on;" not in conf
    assert conf.replace("gzip off;", "gzip on;") == shipped_conf
