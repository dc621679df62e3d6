"""What the faults do to the engine and ask of the stack: crash a container, wait for health,
ask Redis and PostgreSQL, run an operator's command. Each fault's file then says only what it
does and expects; the runner (rehearsal.runners.faults) runs them under load."""

from __future__ import annotations

import os
import signal
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Optional

import docker.errors
import requests

from ops.benchmark import run_ops
from planning.harness import CONTAINER
from rehearsal.emulation.engine import live
from rehearsal.errors import RehearsalError
from rehearsal.scenarios import ScenarioFailed

if TYPE_CHECKING:
    from rehearsal.runners.release import Context

OPS_SECONDS = 240  # one `python -m ops` command (a restore stops and starts the app)


def wait_for(what: str, ready: Callable[[], bool], timeout: float, interval: float = 0.25) -> float:
    """Poll until ready() (exceptions count as not yet); the seconds it took. Bounded."""
    started = time.monotonic()
    while True:
        try:
            if ready():
                return time.monotonic() - started
        except (requests.RequestException, docker.errors.APIError, RehearsalError, ScenarioFailed, ValueError):
            pass
        if time.monotonic() - started > timeout:
            raise ScenarioFailed(f"{what}: not within {timeout:.0f}s")
        time.sleep(interval)


def inspect(ctx: Context, cid: str) -> dict:
    return ctx.session.client.api.inspect_container(cid)


def healthy(ctx: Context, cid: str) -> bool:
    state = inspect(ctx, cid)["State"]
    return state["Running"] and (state.get("Health") or {}).get("Status", "healthy") == "healthy"


def one(ctx: Context, service: str) -> tuple[str, dict]:
    found = ctx.session.containers_of(service)
    if len(found) != 1:
        raise ScenarioFailed(f"expected one {service} container, found {len(found)}")
    return next(iter(found.items()))


def serves(ctx: Context) -> bool:
    return ctx.get("/health/").status_code == 200


def unhealthy(ctx: Context) -> list[str]:
    """The stack's containers that are not running and healthy, as `name (status/health)`."""
    bad = []
    for name, real in sorted(live(ctx.session.state, CONTAINER).items()):
        state = inspect(ctx, real["id"])["State"]
        health = (state.get("Health") or {}).get("Status")
        if not state["Running"] or health not in (None, "healthy"):
            bad.append(f"{name} ({state['Status']}/{health})")
    return bad


def crash(ctx: Context, cid: str) -> str:
    """SIGKILL the container's whole process tree from this host, as the kernel's OOM killer or
    a crash would: Docker's restart policy then applies. (`docker kill` would not do: the engine
    records it as a manual stop and skips the restart policy: moby daemon/kill.go,
    killWithSignal sets HasBeenManuallyStopped; checked on this engine.) Needs the engine on
    this host (the rehearsal's is) and root."""
    info = inspect(ctx, cid)
    pid = info["State"]["Pid"]
    if not pid:
        raise ScenarioFailed(f"{info['Name'].lstrip('/')} is not running")
    try:
        os.kill(pid, signal.SIGKILL)  # its init (tini): the kernel then kills every process in its PID namespace
    except PermissionError:
        raise RehearsalError(
            "cannot SIGKILL a container's processes: run the fault rehearsal as root, on the engine's host"
        ) from None
    except ProcessLookupError:
        raise RehearsalError(
            f"pid {pid} of {info['Name']} is not on this host: the fault rehearsal needs a local engine"
        ) from None
    return info["HostConfig"]["RestartPolicy"]["Name"] or "no"


def back_after_crash(ctx: Context, cid: str, policy: str, restarts_before: int, timeout: float) -> str:
    """Wait until a crashed container runs healthy again. The restart policy brings it back; a
    stack without one (dev may have none) has it started by hand, and says so."""
    if policy in ("no", ""):
        wait_for("the crashed container to stop", lambda: not inspect(ctx, cid)["State"]["Running"], 30)
        ctx.session.client.api.start(cid)
        how = "no restart policy: started again by hand"
    else:
        wait_for("Docker to restart it", lambda: inspect(ctx, cid)["RestartCount"] > restarts_before, timeout)
        how = f"restart policy `{policy}` restarted it"
    wait_for("the restarted container to be healthy", lambda: healthy(ctx, cid), timeout)
    return how


def exec_out(ctx: Context, cid: str, argv: list[str]) -> str:
    api = ctx.session.client.api
    exec_id = api.exec_create(cid, argv)["Id"]
    output = api.exec_start(exec_id).decode(errors="replace").strip()
    if api.exec_inspect(exec_id)["ExitCode"] != 0:
        raise ScenarioFailed(f"{' '.join(argv)}: {output[:200]}")
    return output


def redis_cli(ctx: Context, *args: str) -> str:
    _, redis = one(ctx, "redis")
    return exec_out(ctx, redis["Id"], ["redis-cli", *args])


def logs_since(ctx: Context, cid: str, since: float) -> str:
    return ctx.session.client.api.logs(cid, since=int(since), stdout=True, stderr=True).decode(errors="replace")


def ops(ctx: Context, *args: str) -> tuple[int, str, str]:
    """`python -m ops COMMAND STACK ARGS...` as an operator runs it."""
    code, out, err, _ = run_ops([args[0], ctx.stack, *args[1:]], timeout=OPS_SECONDS)
    return code, out, err


def post_visits(ctx: Context, count: int) -> list[int]:
    """`count` POST /visits/ through nginx, each must be acknowledged (201); their ids."""
    base, host = ctx.front()
    ids = []
    with requests.Session() as http:
        http.trust_env = False
        http.headers["Host"] = host
        for _ in range(count):
            response = http.post(base + "/visits/", timeout=10, allow_redirects=False)
            if response.status_code != 201:
                raise ScenarioFailed(f"POST /visits/ -> {response.status_code}")
            ids.append(int(response.json()["id"]))
    return ids


def processed(ctx: Context, ids: list[int], after: Optional[str] = None) -> int:
    """How many of the visits have been processed (after a moment, as a PostgreSQL timestamp)."""
    if not ids:
        return 0
    when = f" and processed_at > '{after}'" if after else ""
    return int(
        ctx.psql(
            f"select count(*) from visits_visit where id in ({','.join(map(str, ids))}) "
            f"and processed_at is not null{when}"
        )
    )


@dataclass
class Sideline:
    """What a side thread saw while a fault ran (Writer, HealthWatch)."""

    acknowledged: list[int] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    slowest: float = 0.0
    seen: list[str] = field(default_factory=list)


class Writer(threading.Thread):
    """POST /visits/ through nginx every `interval` seconds until stopped (at most `limit`
    posts): the acknowledged ids (201), the failures, the slowest answer. Bounded in count and
    time, on loopback like the load."""

    def __init__(self, ctx: Context, interval: float = 0.25, limit: int = 400):
        super().__init__(daemon=True, name="fault-writer")
        self.ctx, self.interval, self.limit = ctx, interval, limit
        self.saw = Sideline()
        self._stop_event = threading.Event()

    def run(self) -> None:
        base, host = self.ctx.front()
        with requests.Session() as http:
            http.trust_env = False
            http.headers["Host"] = host
            for _ in range(self.limit):
                if self._stop_event.is_set():
                    return
                started = time.monotonic()
                try:
                    response = http.post(base + "/visits/", timeout=30, allow_redirects=False)
                    if response.status_code == 201:
                        self.saw.acknowledged.append(int(response.json()["id"]))
                    else:
                        self.saw.failed.append(str(response.status_code))
                except requests.RequestException as error:
                    self.saw.failed.append(type(error).__name__)
                self.saw.slowest = max(self.saw.slowest, time.monotonic() - started)
                self._stop_event.wait(self.interval)

    def finish(self) -> Sideline:
        self._stop_event.set()
        self.join(60)
        return self.saw


class HealthWatch(threading.Thread):
    """GET /health/ every `interval` seconds until stopped: each distinct answer, in order
    (`200`, `503 broker=error: OperationalError`, ...)."""

    def __init__(self, ctx: Context, interval: float = 0.2, limit: int = 1500):
        super().__init__(daemon=True, name="fault-health-watch")
        self.ctx, self.interval, self.limit = ctx, interval, limit
        self.saw = Sideline()
        self._stop_event = threading.Event()

    def run(self) -> None:
        for _ in range(self.limit):
            if self._stop_event.is_set():
                return
            try:
                response = self.ctx.get("/health/")
                failing = {
                    name: value for name, value in (response.json().get("checks") or {}).items() if value != "ok"
                }
                seen = f"{response.status_code}" + "".join(f" {k}={v}" for k, v in sorted(failing.items()))
            except (requests.RequestException, ValueError) as error:
                seen = type(error).__name__
            if not self.saw.seen or self.saw.seen[-1] != seen:
                self.saw.seen.append(seen)
            self._stop_event.wait(self.interval)

    def finish(self) -> Sideline:
        self._stop_event.set()
        self.join(30)
        return self.saw


# --- the backups rehearsal's off-host storage and the accessory --------------------------------


@dataclass
class Offsite:
    """What the backup faults share: the run's S3 server, the age identity (the operator's copy of
    backupEncryptionKey, in a 0600 file as `--identity-file` takes it), the stack's prefix."""

    server: Any
    """rehearsal.hosts.s3.S3Server"""
    identity: str
    identity_file: str
    prefix: str

    def dump_keys(self) -> dict[str, dict]:
        return {k: v for k, v in self.server.objects(f"{self.prefix}/dumps/").items()}


def offsite(ctx: Context) -> Offsite:
    if ctx.offsite is None:
        raise ScenarioFailed("the backups rehearsal's S3 server is not running (the hook did not start it)")
    return ctx.offsite


def agent(ctx: Context):
    """The stack's backup accessory, as ops talks to it."""
    from ops.offsite import Agent
    from ops.stack import StackOnHost

    found = Agent.of(StackOnHost(ctx.stack, client=ctx.session.client))
    if found is None:
        raise ScenarioFailed("the stack has no backup accessory (backup-agent)")
    return found


def agent_status(ctx: Context) -> dict:
    return agent(ctx).status()


def ops_ok(ctx: Context, *args: str, timeout: float = OPS_SECONDS) -> str:
    """`python -m ops ARGS` that must exit 0; its stdout."""
    code, out, err, _ = run_ops([args[0], ctx.stack, *args[1:]], timeout=timeout)
    if code != 0:
        raise ScenarioFailed(f"`ops {' '.join(args)}` exit {code}: {(out + err).strip().splitlines()[-2:]}")
    return out


def newest_scheduled(ctx: Context) -> Optional[str]:
    status = agent_status(ctx)
    last = status.get("last_scheduled") or {}
    return last.get("name")


def agent_shell(ctx: Context, script: str) -> str:
    """A shell script in the backup accessory, as the volume's owner (postgres); its output."""
    (box,) = ctx.session.containers_of("backup-agent").values()
    api = ctx.session.client.api
    exec_id = api.exec_create(box["Id"], ["sh", "-c", script], user="postgres")["Id"]
    output = api.exec_start(exec_id).decode(errors="replace").strip()
    if api.exec_inspect(exec_id)["ExitCode"] != 0:
        raise ScenarioFailed(f"{script[:80]}: {output[:200]}")
    return output


def archived_past(ctx: Context, moment: str, timeout: float) -> float:
    """Wait until the WAL archive reaches past `moment` (a PostgreSQL timestamp); the seconds it took."""

    seen: dict = {}

    def reached() -> bool:
        seen.update(agent_status(ctx).get("wal") or {})
        until = seen.get("until")
        return bool(until) and ctx.psql(f"select '{until}'::timestamptz > '{moment}'::timestamptz") == "t"

    try:
        return wait_for("the WAL archive to reach past the last write", reached, timeout, 1)
    except ScenarioFailed as failure:
        shown = {k: seen.get(k) for k in ("until", "segment", "waiting", "error")}
        raise ScenarioFailed(f"{failure} (the last write {moment}; the archive: {shown})") from None
