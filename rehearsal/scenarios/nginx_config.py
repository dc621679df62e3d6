"""nginx-config: a new client_max_body_size; nginx is replaced delete-before-replace (its host
port cannot be held twice), a second or two of refused connections."""

from rehearsal.scenarios.scenario import Scenario, Up, expect


def check(ctx, result) -> str:
    (nginx,) = ctx.session.containers_of("nginx").values()
    conf = ctx.read_file(nginx["Id"], "/etc/nginx/nginx.conf")
    expect("client_max_body_size 20m;" in conf, "nginx.conf in the container does not say client_max_body_size 20m")
    expect(nginx["State"]["Health"]["Status"] == "healthy", f"nginx is {nginx['State']['Health']['Status']}")
    return "the new nginx runs the new config and is healthy"


SCENARIO = Scenario(
    "nginx-config",
    (Up("clientMaxBodySize 10m -> 20m", overrides={"clientMaxBodySize": "20m"}, check=check),),
    # At most 2 whole seconds: the real provider's replacement leaves the port closed longer than
    # the emulation's (it creates the container on `bridge`, disconnects it, connects each
    # network, uploads nginx.conf, then starts it): 7 requests failed over 1.4 s, in 2 seconds,
    # under pulumi-docker 5.1.0 (docs/rehearsal.md, Calibration); the emulation's in 1.
    max_failed_seconds=2,
)
