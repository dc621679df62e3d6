"""Backups of a stack's database, on demand: take one, list them, restore one (from the volume,
from off-host, or to a point in time), and the restore drill.

Every step runs in a one-off container of the stack's own postgres image (pg_dump, pg_restore and
psql of the server's version), on its backend network, with the backups volume at BACKUP_DIR;
the same commands the program's before-migrate backup job runs (components.render). The
password goes from the postgres container's environment to the one-off's through the API.
When the stack has the backup accessory (`backup-agent`: backupSchedule or backupS3Endpoint),
that image is the accessory's (the postgres image with the agent: backup/), a backup is taken
by the agent in the accessory (with its manifest) and waited for until it is verified off-host,
and the off-host commands run there or in one-offs copied from it (ops/offsite.py).

A restore is all or nothing and undoable: the archive is read in full before anything changes
(a missing or corrupt backup is refused, one line, nothing changed); a backup of the current
database is taken first (`<sha>-pre-restore`); the replay is one transaction. It refuses to run
under a live app (web, worker, beat) unless told: `--stop-app` stops them for the restore and
starts them again (their Pulumi state is unchanged: the same containers), `--force` restores
under them.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Callable, Optional, Sequence

import docker.errors

from components import render
from ops.stack import ONE_OFF, ROLE, SERVICE, STACK, Box, OpsError, StackOnHost

AGENT_SERVICE = "backup-agent"
# What the backup image's entrypoint needs (components/backups.py, AGENT_CAPABILITIES).
AGENT_CAPABILITIES = ["CAP_CHOWN", "CAP_SETGID", "CAP_SETUID"]

APP_SERVICES = ("web", "celery-worker", "celery-beat")
BACKUP_NAME_RE = re.compile(r"(\d{8}T\d{6}Z)-.+\.dump")
HEALTHY_AGAIN_SECONDS = 180  # after --stop-app, for the app's containers to be healthy again
STOP_SECONDS = 30


@dataclass(frozen=True)
class Backup:
    name: str
    size: int

    @property
    def taken(self) -> Optional[datetime]:
        match = BACKUP_NAME_RE.fullmatch(self.name)
        return datetime.strptime(match.group(1), "%Y%m%dT%H%M%SZ").replace(tzinfo=timezone.utc) if match else None


def parse_listing(text: str) -> list[Backup]:
    """`<name> <bytes>` lines (render.list_backups_command) into Backups, oldest first."""
    found = []
    for line in text.splitlines():
        name, _, size = line.strip().rpartition(" ")
        if name and size.isdigit() and BACKUP_NAME_RE.fullmatch(name):
            found.append(Backup(name, int(size)))
    return sorted(found, key=lambda b: b.name)


def _one(boxes: Sequence[Box], what: str, stack: StackOnHost) -> Box:
    running = [b for b in boxes if b.state == "running"]
    if not running:
        raise OpsError(f"stack {stack.stack}'s {what} is not running ({', '.join(b.condition for b in boxes)})")
    return running[0]


class Backups:
    def __init__(self, stack: StackOnHost):
        self.stack = stack
        self.api = stack.client.api
        self.postgres = self.api.inspect_container(_one(stack.of_service("postgres"), "postgres", stack).id)
        # With the accessory, its image: the volume belongs to the postgres user then, and the
        # image's entrypoint becomes that user (a root without capabilities could not read it).
        agents = [b for b in stack.boxes if b.service == AGENT_SERVICE and b.role != ONE_OFF]
        self.agent = self.api.inspect_container(agents[0].id) if agents else None
        volumes = stack.client.volumes.list(
            filters={"label": [f"{STACK}={stack.stack}", f"{render.LABEL_PREFIX}.volume=backups"]}
        )
        if len(volumes) != 1:
            raise OpsError(
                f"stack {stack.stack} has {len(volumes)} backups volumes (labelled {render.LABEL_PREFIX}.volume=backups), "
                "expected one; a `pulumi up` of this version creates it"
            )
        self.volume = volumes[0].name
        self.network = stack.network("backend")

    def _env(self) -> list[str]:
        env = dict(item.split("=", 1) for item in self.postgres["Config"]["Env"] or [] if "=" in item)
        return render.postgres_client_env(
            user=env.get("POSTGRES_USER", "postgres"),
            password=env.get("POSTGRES_PASSWORD", ""),
            db=env.get("POSTGRES_DB") or env.get("POSTGRES_USER", "postgres"),
        )

    def run(self, command: list[str]) -> tuple[int, str]:
        """Run `command` in a one-off postgres container; its exit code and output (stdout+stderr)."""
        host_config = self.api.create_host_config(
            binds=[f"{self.volume}:{render.BACKUP_DIR}:rw"],
            network_mode=self.network,
            cap_drop=["ALL"],
            cap_add=AGENT_CAPABILITIES if self.agent else None,
            security_opt=["no-new-privileges:true"],
            init=True,
        )
        container = self.api.create_container(
            self.agent["Image"] if self.agent else self.postgres["Image"],
            command=command,
            environment=self._env(),
            host_config=host_config,
            labels={STACK: self.stack.stack, SERVICE: "backup", ROLE: ONE_OFF},
        )
        cid = container["Id"]
        try:
            self.api.start(cid)
            code = int(self.api.wait(cid)["StatusCode"])
            return code, self.api.logs(cid).decode(errors="replace")
        except KeyboardInterrupt:
            self.api.stop(cid, timeout=5)
            raise
        finally:
            try:
                self.api.remove_container(cid, force=True, v=True)  # the image's anonymous VOLUME too
            except docker.errors.NotFound:
                pass

    def list(self) -> list[Backup]:
        code, out = self.run(render.list_backups_command())
        if code != 0:
            raise OpsError(f"cannot list the backups volume {self.volume}: {out.strip()[-200:]}")
        return parse_listing(out)

    def take(self, label: str) -> str:
        """A backup now; its `backup: <name> (<size> bytes)` line."""
        code, out = self.run(render.backup_command(stack=self.stack.stack, label=label))
        lines = [line for line in out.splitlines() if line.startswith("backup: ")]
        if code != 0 or not lines:
            raise OpsError(f"the backup failed (exit {code}): {out.strip().splitlines()[-1:] or ['no output']}")
        return lines[0]


def release_label(stack: StackOnHost) -> str:
    """The running release's short SHA (for backup names), or `unknown`."""
    shas = [b.git_sha for b in stack.boxes if b.role == "app" and b.git_sha and b.state == "running"]
    return render.short_sha(shas[0]) if shas else "unknown"


def backup(stack: StackOnHost) -> int:
    started = time.monotonic()
    print(Backups(stack).take(f"{release_label(stack)}-manual") + f" in {time.monotonic() - started:.1f}s", flush=True)
    return 0


def list_backups(stack: StackOnHost) -> int:
    found = Backups(stack).list()
    now = datetime.now(timezone.utc)
    if not found:
        print(f"stack {stack.stack} has no backup yet (make backup STACK={stack.stack})")
        return 0
    from ops.view import ago, table

    print("\n".join(table(("BACKUP", "BYTES", "AGE"), [(b.name, str(b.size), ago(b.taken, now)) for b in found])))
    return 0


def wait_healthy(stack: StackOnHost, ids: Sequence[str], seconds: float = HEALTHY_AGAIN_SECONDS) -> None:
    """Until every one of `ids` runs and is healthy (no healthcheck counts as healthy), or OpsError."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        states = [stack.client.api.inspect_container(i)["State"] for i in ids]
        if all(
            s.get("Status") == "running" and (s.get("Health") or {}).get("Status", "healthy") == "healthy"
            for s in states
        ):
            return
        time.sleep(0.5)
    raise OpsError(
        f"the stack's containers were started again but are not healthy after {seconds:.0f}s: make status STACK={stack.stack}"
    )


def restore(
    stack: StackOnHost,
    name: str,
    *,
    stop_app: bool = False,
    force: bool = False,
    take: Optional[Callable[[str], str]] = None,
) -> int:
    """Replace the database with backup `name` of the volume. `take(label)`: how the pre-restore
    backup is taken (the accessory's agent, when the stack has one: ops.offsite), its line."""
    if "/" in name or not BACKUP_NAME_RE.fullmatch(name):
        raise OpsError(
            f"BACKUP={name}: not a backup name (<UTC time>-<stack>-<label>.dump); make backups STACK={stack.stack} lists them"
        )
    store = Backups(stack)
    found = store.list()
    if name not in {b.name for b in found}:
        newest = ", ".join(b.name for b in found[-3:][::-1]) or "none"
        raise OpsError(
            f"BACKUP={name}: no such backup on stack {stack.stack}'s volume {store.volume}; the newest: {newest}"
        )
    code, out = store.run(["pg_restore", "--list", f"{render.BACKUP_DIR}/{name}"])
    if code != 0:
        raise OpsError(
            f"BACKUP={name}: not a readable pg_dump archive ({out.strip().splitlines()[-1][:160] if out.strip() else f'exit {code}'}); nothing changed"
        )
    app = [
        b
        for b in stack.boxes
        if b.service in APP_SERVICES and b.role != ONE_OFF and b.state in ("running", "restarting")
    ]
    if app and not (stop_app or force):
        raise OpsError(
            f"stack {stack.stack}'s app is running against the database ({', '.join(b.label for b in app)}); "
            "add --stop-app to stop it for the restore and start it again (ARGS=--stop-app), or --force to restore under it"
        )
    started = time.monotonic()
    safety = (take or store.take)(f"{release_label(stack)}-pre-restore")
    print(f"before restoring: {safety}", flush=True)
    stopped: list[str] = []
    try:
        if stop_app:
            for b in app:
                stack.client.api.stop(b.id, timeout=STOP_SECONDS)
                stopped.append(b.id)
            print(f"stopped {', '.join(b.label for b in app)}", flush=True)
        replay_started = time.monotonic()
        code, out = store.run(render.restore_command(name))
        replay_seconds = time.monotonic() - replay_started
        if code != 0:
            why = {3: "the archive could not be read", 4: "the replay failed and was rolled back"}.get(
                code, f"exit {code}"
            )
            raise OpsError(
                f"BACKUP={name}: {why}; the database is as it was ({out.strip().splitlines()[-1][:160] if out.strip() else ''})"
            )
    finally:
        for cid in stopped:
            stack.client.api.start(cid)
        if stopped:
            wait_healthy(stack, stopped)
            print(f"started the app again: {len(stopped)} containers healthy", flush=True)
    print(
        f"restored: {name} into stack {stack.stack}'s database, replayed in {replay_seconds:.1f}s, "
        f"{time.monotonic() - started:.1f}s in all (undo: make restore STACK={stack.stack} BACKUP={safety.split()[1]})",
        flush=True,
    )
    return 0
