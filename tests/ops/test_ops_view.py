"""The pure parts of the day-2 commands: inspect data -> Box, the status and ps lines, the
attach protocol's frames, the interleaving of logs, --since."""

from datetime import datetime, timedelta, timezone

import pytest

from ops.attach import HEADER, frames
from ops.logs import format_line, merged, parse_since, sort_key
from ops.stack import GIT_SHA, ONE_OFF, RELEASE, REPLICA, ROLE, SERVICE, STACK, URL, OpsError, box, ordered
from ops.view import ago, ps_lines, status_lines

NOW = datetime(2026, 11, 25, 12, 0, 0, tzinfo=timezone.utc)
SHA = "0123456789abcdef0123456789abcdef01234567"
DIGEST = "registry.example.com/app@sha256:" + "ab" * 32


def attrs(
    name,
    service,
    *,
    role="app",
    replica=None,
    status="running",
    health="healthy",
    exit_code=0,
    restarts=0,
    sha=SHA,
    image=DIGEST,
    created="2026-11-25T11:50:00.123456789Z",
    ports=None,
    release="r1",
):
    labels = {STACK: "prod", SERVICE: service, ROLE: role}
    if role == "app":
        labels.update({GIT_SHA: sha, RELEASE: release, URL: "https://example.com/"})
    if replica:
        labels[REPLICA] = replica
    state = {"Status": status, "ExitCode": exit_code, "StartedAt": "2026-11-25T11:50:01.5Z"}
    if health:
        state["Health"] = {"Status": health}
    return {
        "Id": name + "-id",
        "Name": "/" + name,
        "Created": created,
        "RestartCount": restarts,
        "State": state,
        "Config": {"Labels": labels, "Image": image},
        "Image": "sha256:" + "cd" * 32,
        "NetworkSettings": {"Ports": ports or {}},
    }


def healthy_stack():
    return ordered(
        [
            box(attrs("app-redis", "redis", role="accessory", image="redis:7.4.5-bookworm")),
            box(attrs("app-web-2", "web", replica="2")),
            box(attrs("app-web-10", "web", replica="10")),
            box(
                attrs(
                    "app-nginx",
                    "nginx",
                    role="accessory",
                    image="nginx:1.28.0-bookworm",
                    ports={"80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "80"}]},
                )
            ),
            box(attrs("app-worker", "celery-worker", created="2026-11-25T11:49:00Z")),
        ]
    )


def test_box_reads_what_inspect_says():
    b = box(attrs("app-web-2", "web", replica="2", restarts=3))
    assert (b.name, b.service, b.replica, b.label, b.restarts) == ("app-web-2", "web", "2", "web-2", 3)
    assert b.created == datetime(2026, 11, 25, 11, 50, 0, 123456, tzinfo=timezone.utc)
    assert b.started == datetime(2026, 11, 25, 11, 50, 1, 500000, tzinfo=timezone.utc)
    assert (b.git_sha, b.url, b.ok, b.condition) == (SHA, "https://example.com/", True, "healthy")


@pytest.mark.parametrize(
    "kwargs, condition, ok",
    [
        (dict(health="unhealthy"), "unhealthy", False),
        (dict(health="starting"), "starting", False),
        (dict(health=None), "running", True),
        (dict(status="exited", exit_code=137, health=None), "exited 137", False),
        (dict(status="restarting"), "restarting", False),
    ],
)
def test_condition_and_verdict(kwargs, condition, ok):
    b = box(attrs("x", "web", **kwargs))
    assert (b.condition, b.ok) == (condition, ok)


def test_order_is_door_app_then_data_and_replicas_numerically():
    assert [b.label for b in healthy_stack()] == ["nginx", "web-2", "web-10", "celery-worker", "redis"]


def test_ago():
    assert [ago(NOW - timedelta(seconds=s), NOW) for s in (5, 125, 3 * 3600 + 300, 2 * 86400 + 4 * 3600)] == [
        "5s",
        "2m",
        "3h05m",
        "2d04h",
    ]
    assert ago(None, NOW) == "-"


def test_status_of_a_healthy_stack():
    lines, ok = status_lines("prod", "unix:///var/run/docker.sock", healthy_stack(), NOW)
    assert ok
    assert lines[0] == "stack prod on unix:///var/run/docker.sock"
    # Deployed when its first container was created: the worker, at 11:49.
    assert lines[1] == f"release: {SHA} deployed 2026-11-25 11:49:00 UTC (11m ago) on web-2, web-10, celery-worker"
    assert lines[2] == f"  image: {DIGEST} (id sha256:cdcdcdcdcdcd)"
    assert lines[3] == "url: https://example.com/"
    assert lines[4].split() == ["SERVICE", "HEALTH", "RESTARTS", "RELEASE", "UP", "CONTAINER"]
    assert lines[6].split() == ["web-2", "healthy", "0", SHA[:12], "9m", "app-web-2"]
    assert lines[-1] == "prod: all 5 containers healthy"


def test_status_names_every_unhealthy_container_and_fails():
    boxes = healthy_stack() + [
        box(attrs("app-web-3", "web", replica="3", health="unhealthy", restarts=2)),
        box(attrs("app-beat", "celery-beat", status="exited", exit_code=1, health=None)),
    ]
    lines, ok = status_lines("prod", "here", ordered(boxes), NOW)
    assert not ok
    assert lines[-1] == "prod: 2 of 7 containers not healthy: web-3 (unhealthy), celery-beat (exited 1)"


def test_status_shows_two_releases_side_by_side_without_failing():
    other = "f" * 40
    boxes = healthy_stack() + [
        box(
            attrs(
                "app-web-4",
                "web",
                replica="4",
                sha=other,
                image=DIGEST[:-4] + "eeee",
                created="2026-11-25T11:58:00Z",
                release="r2",
            )
        )
    ]
    lines, ok = status_lines("prod", "here", ordered(boxes), NOW)
    assert ok
    assert [line.split()[1] for line in lines if line.startswith("release:")] == [SHA, other]
    assert "  2 releases run side by side: a release is under way, or one stopped half-way" in lines


def test_one_off_containers_are_listed_but_not_judged():
    one_off = box(attrs("prod-manage-1a2b3c", "manage", role=ONE_OFF, health=None, status="exited", exit_code=1))
    lines, ok = status_lines("prod", "here", healthy_stack() + [one_off], NOW)
    assert ok
    assert "one-off: prod-manage-1a2b3c (ops manage)" in lines


def test_status_of_a_stack_without_the_app():
    lines, ok = status_lines("prod", "here", [box(attrs("app-redis", "redis", role="accessory"))], NOW)
    assert ok and lines[1] == "release: none (no container of the app image is running)"
    assert lines[2] == "url: unknown (no app container carries its label)"


def test_ps_rows():
    lines = ps_lines(healthy_stack(), NOW)
    assert lines[0].split() == ["SERVICE", "CONTAINER", "STATE", "CREATED", "IMAGE", "PORTS"]
    assert lines[1].split() == ["nginx", "app-nginx", "healthy", "9m", "nginx:1.28.0-bookworm", "0.0.0.0:80->80/tcp"]
    assert lines[2].split()[4] == "registry.example.com/app@sha256:abababababab"


def test_frames_split_the_attach_stream_and_keep_the_incomplete_rest():
    stream = HEADER.pack(1, 3) + b"out" + HEADER.pack(2, 4) + b"err\n" + HEADER.pack(1, 10) + b"part"
    found, rest = frames(stream)
    assert found == [(1, b"out"), (2, b"err\n")]
    assert rest == HEADER.pack(1, 10) + b"part"
    assert frames(rest + b"ial...")[0] == [(1, b"partial...")]
    assert frames(b"\x01\x00")[0] == []


def test_logs_are_merged_in_time_order_whatever_the_fraction_length():
    # Docker trims trailing zeros of the fraction: .5 is later than .123456789.
    blobs = {
        "web-1": b"2026-11-25T11:00:00.5Z second\n2026-11-25T11:00:02Z fourth\n",
        "web-2": b"2026-11-25T11:00:00.123456789Z first\n2026-11-25T11:00:01.000000001Z third\n",
    }
    assert [(p, t) for p, _, t in merged(blobs)] == [
        ("web-2", b"first"),
        ("web-1", b"second"),
        ("web-2", b"third"),
        ("web-1", b"fourth"),
    ]
    assert sort_key("2026-11-25T11:00:00.5Z") == "2026-11-25T11:00:00.500000000Z"


def test_log_line_prefix():
    assert format_line("web-1", 13, "2026-11-25T11:00:00Z", b"GET /", False) == b"web-1         | GET /\n"
    assert format_line("web-1", 5, "2026-11-25T11:00:00Z", b"GET /", True) == b"web-1 | 2026-11-25T11:00:00Z GET /\n"


def test_since():
    assert parse_since("10m", NOW) == int(NOW.timestamp()) - 600
    assert parse_since("1h30m", NOW) == int(NOW.timestamp()) - 5400
    assert parse_since("1764072000") == 1764072000
    assert parse_since("2026-11-25T10:00:00Z") == datetime(2026, 11, 25, 10, tzinfo=timezone.utc)
    assert parse_since(None) is None
    with pytest.raises(OpsError, match="--since yesterday: not a duration"):
        parse_since("yesterday")
