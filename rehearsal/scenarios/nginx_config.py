"""nginx-config: a new client_max_body_size. nginx is not replaced: the NginxSite writes the new
configuration beside the old one on nginx's site volume, `nginx -t` checks it in the running
nginx, `current` is switched to it and nginx reloads gracefully (components/nginx_site.py).
No request may fail. (Before, the config was an `upload`, which is ForceNew, and nginx was
replaced delete-before-replace: 7 requests failed over 1.4 s under pulumi-docker 5.1.0.)"""

from components import render
from rehearsal.scenarios.scenario import Scenario, Up, expect


def remember(ctx) -> str:
    (nginx,) = ctx.session.containers_of("nginx").values()
    ctx.nginx_before = nginx["Id"]
    return f"nginx is {nginx['Name'].lstrip('/')} ({nginx['Id'][:12]})"


def check(ctx, result) -> str:
    (nginx,) = ctx.session.containers_of("nginx").values()
    expect(
        nginx["Id"] == getattr(ctx, "nginx_before", None),
        f"nginx was replaced ({getattr(ctx, 'nginx_before', '?')[:12]} -> {nginx['Id'][:12]}), not reloaded",
    )
    conf = ctx.read_file(nginx["Id"], render.NGINX_SITE_CONF)
    expect("client_max_body_size 20m;" in conf, "the site's current nginx.conf does not say client_max_body_size 20m")
    expect(nginx["State"]["Health"]["Status"] == "healthy", f"nginx is {nginx['State']['Health']['Status']}")
    # What the running workers serve: the health door names the generation they were started with.
    api = ctx.session.client.api
    exec_id = api.exec_create(
        nginx["Id"],
        ["curl", "-s", "-i", f"http://127.0.0.1:{render.NGINX_HEALTH_PORT}{render.NGINX_HEALTH_PATH}"],
    )["Id"]
    headers = api.exec_start(exec_id).decode(errors="replace")
    served = next(
        (
            line.split(":", 1)[1].strip()
            for line in headers.splitlines()
            if line.lower().startswith(render.NGINX_GENERATION_HEADER.lower() + ":")
        ),
        "",
    )
    current = ctx.read_file(nginx["Id"], f"{render.NGINX_SITE_DIR}/current/{render.NGINX_GENERATION_FILE}")
    expect(served and served in current, f"nginx's workers serve generation {served!r}, the site's current is another")
    return f"the same nginx ({nginx['Id'][:12]}) reloaded: its workers serve generation {served} (client_max_body_size 20m), healthy"


SCENARIO = Scenario(
    "nginx-config",
    (Up("clientMaxBodySize 10m -> 20m", overrides={"clientMaxBodySize": "20m"}, before=remember, check=check),),
    max_failed_seconds=0,
)
