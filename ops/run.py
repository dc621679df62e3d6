"""One-off management commands and exec into a running container: the stack is only read.

`manage` is `docker compose run --rm web python manage.py …` for a stack the program runs: a
new container from the *running* release (the same image id, environment, user and hardening
as a healthy web replica), on the stack's backend network only, removed afterwards whatever
happens, its exit code passed through. The environment goes from one container's inspect data
to the next container's create call through the API: it is never printed, never on a command
line. `exec` runs a command inside one running container of a service.
"""

from __future__ import annotations

import secrets
import sys
from typing import Optional, Sequence

import docker
import docker.errors
import requests

from ops.attach import attach_container, has_input, pump, start_exec
from ops.stack import GIT_SHA, ONE_OFF, RELEASE, ROLE, SERVICE, STACK, Box, OpsError, StackOnHost

MANAGE = ["python", "manage.py"]
# A one-off gets at most this long to stop on Ctrl-C before it is killed.
STOP_SECONDS = 5
# run_to_end's exit code for a one-off that did not end in time (as coreutils' timeout says it).
TIMED_OUT = 124


def interactive(no_tty: bool) -> bool:
    """A TTY when we have one on both ends (as `docker compose run` decides), unless -T."""
    return not no_tty and sys.stdin.isatty() and sys.stdout.isatty()


def pick(stack: StackOnHost, service: str, replica: Optional[str] = None) -> Box:
    """The container to run in: the given replica, else the first healthy one, else the first running one."""
    boxes = stack.of_service(service)
    if replica is not None:
        named = [b for b in boxes if b.replica == replica]
        if not named:
            have = ", ".join(b.replica for b in boxes if b.replica) or "none (it is not replicated)"
            raise OpsError(f"service {service} of stack {stack.stack} has no replica {replica}; replicas: {have}")
        boxes = named
    for wanted in (lambda b: b.ok, lambda b: b.state == "running"):
        chosen = [b for b in boxes if wanted(b)]
        if chosen:
            return chosen[0]
    raise OpsError(
        f"no running container of {service} in stack {stack.stack}: "
        + ", ".join(f"{b.label} ({b.condition})" for b in boxes)
    )


def run_to_end(api, cid: str, timeout: float) -> tuple[int, str]:
    """Start a created one-off and wait at most `timeout` seconds for its exit: (exit code,
    its output). One that has not ended by then is stopped, and its code is TIMED_OUT: docker-py
    waits with the HTTP read timeout, and says so with requests' exception
    (docker/api/container.py `wait`), never with an exit code. The caller removes it."""
    api.start(cid)
    try:
        code = int(api.wait(cid, timeout=timeout)["StatusCode"])
    except (requests.exceptions.RequestException, OSError):
        api.stop(cid, timeout=STOP_SECONDS)
        code = TIMED_OUT
    return code, api.logs(cid, stdout=True, stderr=True).decode(errors="replace")


def release_template(stack: StackOnHost) -> Box:
    """The running release's web replica to copy (the worker's when web has none running)."""
    for service in ("web", "celery-worker"):
        running = [b for b in stack.boxes if b.service == service and b.role == "app" and b.state == "running"]
        if running:
            return next((b for b in running if b.ok), running[0])
    raise OpsError(
        f"stack {stack.stack} runs no container of the app image (web, celery-worker): nothing to copy a release from"
    )


def one_off_config(
    stack: StackOnHost, template: dict, command: Sequence[str], *, tty: bool, network: str, stdin: bool = True
) -> dict:
    """create_container arguments: the template's image, env,
    user and hardening; its own labels, on `network` only; stdin (when there is any to give)
    kept open until ours ends."""
    config, host = template["Config"], template["HostConfig"]
    labels = config.get("Labels") or {}
    api = stack.client.api
    host_config = api.create_host_config(
        binds=host.get("Binds") or None,
        mounts=host.get("Mounts") or None,
        read_only=bool(host.get("ReadonlyRootfs")),
        tmpfs=host.get("Tmpfs") or None,
        cap_drop=host.get("CapDrop") or None,
        security_opt=host.get("SecurityOpt") or None,
        init=host.get("Init"),
        mem_limit=host.get("Memory") or None,
        memswap_limit=host.get("MemorySwap") or None,
        network_mode=network,
    )
    return dict(
        image=template["Image"],  # the image id: exactly what the release runs, no pull
        command=list(command),
        environment=config.get("Env") or [],
        user=config.get("User") or None,
        working_dir=config.get("WorkingDir") or None,
        labels={
            STACK: stack.stack,
            SERVICE: "manage",
            ROLE: ONE_OFF,
            GIT_SHA: labels.get(GIT_SHA, ""),
            RELEASE: labels.get(RELEASE, ""),
        },
        tty=tty,
        stdin_open=stdin,  # and StdinOnce: docker-py sets it for an attached create (detach=False)
        host_config=host_config,
    )


def manage(stack: StackOnHost, args: Sequence[str], *, no_tty: bool = False) -> int:
    """`python manage.py ARGS` in a one-off container of the running release; its exit code."""
    api = stack.client.api
    template = api.inspect_container(release_template(stack).id)
    tty = interactive(no_tty)
    stdin = tty or has_input(sys.stdin)
    kwargs = one_off_config(stack, template, [*MANAGE, *args], tty=tty, network=stack.network("backend"), stdin=stdin)
    container_id = api.create_container(**kwargs, name=f"{stack.stack}-manage-{secrets.token_hex(3)}")["Id"]
    try:
        # A pipe over TLS: stdin on its own attach, closed whole at its end (ops.attach).
        split = stdin and not tty and stack.host.tls
        channel = attach_container(api, container_id, stdin=stdin and not split)
        stdin_channel = attach_container(api, container_id, stdin=True, output=False) if split else None
        pump(
            channel,
            tty=tty,
            forward_stdin=stdin,
            stdin_channel=stdin_channel,
            started=lambda: api.start(container_id),
            resize=lambda h, w: api.resize(container_id, height=h, width=w),
        )
        return int(api.wait(container_id)["StatusCode"])
    except KeyboardInterrupt:
        api.stop(container_id, timeout=STOP_SECONDS)
        return 130
    finally:
        try:
            api.remove_container(container_id, force=True)
        except docker.errors.NotFound:
            pass


def exec_in(
    stack: StackOnHost, service: str, args: Sequence[str], *, replica: Optional[str] = None, no_tty: bool = False
) -> int:
    """ARGS inside one running container of `service`; its exit code."""
    if not args:
        raise OpsError(
            "no command to run; e.g. make exec STACK=prod SERVICE=web ARGS='python manage.py showmigrations'"
        )
    target = pick(stack, service, replica)
    api = stack.client.api
    tty = interactive(no_tty)
    stdin = tty or has_input(sys.stdin)
    if stdin and not tty and stack.host.tls:
        raise OpsError(
            f"exec: {stack.where}: input piped into exec cannot be ended over TLS from here (a TLS "
            "connection cannot be half-closed in Python); run it without a pipe, or use `manage`"
        )
    exec_id = api.exec_create(target.id, list(args), stdin=stdin, tty=tty)["Id"]
    channel = start_exec(api, exec_id, tty=tty)
    try:
        pump(channel, tty=tty, forward_stdin=stdin, resize=lambda h, w: api.exec_resize(exec_id, height=h, width=w))
    except KeyboardInterrupt:
        return 130
    code = api.exec_inspect(exec_id).get("ExitCode")
    return 126 if code is None else int(code)
