"""The day-2 commands that go through the backup accessory (`backup-agent`): a backup waited for
until it is verified off-host, the listing of both places, a restore from off-host, the
point-in-time restore and the restore drill.

The agent (backup/django_docker_backup) runs them: `docker exec` in the accessory as the
postgres user (the volume's owner) for what reads or writes the volume, or a one-off container
of the accessory's own image, environment (its CA with it), networks and host names for
what must run beside a stopped database (the point-in-time restore) or apart from the stack (the
drill's throwaway PostgreSQL). Nothing here holds a credential: the bucket's stay in the
accessory's environment and go from its inspect data to a one-off's through the API.

The age identity (backupEncryptionKey) is needed to decrypt an off-host copy, and the host
never has it: it comes from `--identity-file FILE` (or BACKUP_IDENTITY_FILE), else from the
stack's config through the Pulumi CLI (`pulumi config get`, what `make` runs with its backend
and passphrase: scripts/with-pulumi.sh), and goes to the agent on its standard input only.
"""

from __future__ import annotations

import io
import json
import os
import re
import secrets
import shutil
import subprocess
import time
from datetime import datetime, timezone
from typing import Any, Optional, Sequence

import docker.errors

from components import render
from ops.attach import frames, start_exec
from ops.backup import (
    AGENT_CAPABILITIES,
    AGENT_SERVICE,
    APP_SERVICES,
    STOP_SECONDS,
    release_label,
    wait_healthy,
)
from ops.run import run_to_end
from ops.stack import ONE_OFF, ROLE, SERVICE, STACK, OpsError, StackOnHost

WAIT_OFFSITE_SECONDS = 900
DRILL_SECONDS = 3600
POSTGRES_STOP_SECONDS = 60
AGE_IDENTITY_RE = re.compile(r"^AGE-SECRET-KEY-1[02-9AC-HJ-NP-Z]{58}$", re.MULTILINE)


def parse_at(text: str) -> Optional[datetime]:
    """`AT=`: an ISO 8601 time (UTC when it names no zone) or `latest` (None). One line otherwise."""
    value = text.strip()
    if value.lower() == "latest":
        return None
    try:
        when = datetime.fromisoformat(value.replace(" UTC", "").replace("Z", "+00:00"))
    except ValueError:
        raise OpsError(
            f"AT={value}: not a time; expected e.g. 2026-12-07T03:15:00Z (UTC) or latest; nothing changed"
        ) from None
    return when.replace(tzinfo=timezone.utc) if when.tzinfo is None else when.astimezone(timezone.utc)


def identity_for(stack: str, identity_file: Optional[str]) -> str:
    """The age identity, from a file or the stack's config (never printed)."""
    path = identity_file or os.environ.get("BACKUP_IDENTITY_FILE", "")
    if path:
        try:
            text = open(path).read()
        except OSError as error:
            raise OpsError(f"--identity-file {path}: cannot read it ({error.strerror})") from None
    else:
        pulumi = shutil.which("pulumi")
        if pulumi is None:
            raise OpsError(
                "backupEncryptionKey: needed to decrypt the off-host backup; run this through make (the Pulumi CLI "
                "reads it from the stack's config) or give ARGS=--identity-file FILE"
            )
        result = subprocess.run(
            [pulumi, "config", "get", "backupEncryptionKey", "--stack", stack], capture_output=True, text=True
        )
        if result.returncode != 0:
            raise OpsError(
                f"backupEncryptionKey: the Pulumi CLI could not read it from stack {stack}'s config "
                f"({(result.stderr.strip().splitlines() or ['no output'])[-1][:160]})"
            )
        text = result.stdout
    found = AGE_IDENTITY_RE.findall(text)
    if len(found) != 1:
        raise OpsError("backupEncryptionKey: not one age identity (AGE-SECRET-KEY-1...) there")
    return found[0]


class Agent:
    """The stack's backup accessory, as ops talks to it."""

    def __init__(self, stack: StackOnHost, box_id: str):
        self.stack = stack
        self.api = stack.client.api
        self.id = box_id
        self.attrs = self.api.inspect_container(box_id)
        env = dict(item.split("=", 1) for item in self.attrs["Config"]["Env"] or [] if "=" in item)
        self.offsite = bool(env.get("BACKUP_S3_ENDPOINT"))
        self.encrypted = bool(env.get("BACKUP_AGE_RECIPIENT"))
        self.pitr = env.get("BACKUP_PITR") == "true"
        self.where = (
            f"s3://{env.get('BACKUP_S3_BUCKET')}/{env.get('BACKUP_S3_PREFIX')}".rstrip("/") if self.offsite else ""
        )

    @classmethod
    def of(cls, stack: StackOnHost) -> Optional["Agent"]:
        boxes = [b for b in stack.boxes if b.service == AGENT_SERVICE and b.role != ONE_OFF]
        if not boxes:
            return None
        running = [b for b in boxes if b.state == "running"]
        if not running:
            raise OpsError(
                f"stack {stack.stack}'s backup accessory is not running ({', '.join(b.condition for b in boxes)}): "
                f"make logs STACK={stack.stack} SERVICE={AGENT_SERVICE}"
            )
        return cls(stack, running[0].id)

    # --- talking to it

    def run(self, *args: str, stdin: Optional[bytes] = None, timeout: float = 600) -> tuple[int, str, str]:
        """`python3 -m django_docker_backup ARGS` in the accessory as the postgres user:
        (exit code, stdout, stderr)."""
        exec_id = self.api.exec_create(
            self.id, render.backup_agent_command(*args), user="postgres", stdin=stdin is not None
        )["Id"]
        channel = start_exec(self.api, exec_id, tty=False)
        if stdin is not None:
            channel.write(stdin)
            channel.close_write()
        out, err, pending = io.BytesIO(), io.BytesIO(), b""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            data = channel.read(65536)
            if not data:
                break
            complete, pending = frames(pending + data)
            for stream, payload in complete:
                (err if stream == 2 else out).write(payload)
        code = self.api.exec_inspect(exec_id).get("ExitCode")
        return (
            124 if code is None else int(code),
            out.getvalue().decode(errors="replace"),
            err.getvalue().decode(errors="replace"),
        )

    def json(self, *args: str, stdin: Optional[bytes] = None) -> Any:
        code, out, err = self.run(*args, stdin=stdin)
        lines = [line for line in out.splitlines() if line.startswith(("{", "["))]
        if code != 0 or not lines:
            raise OpsError(f"the backup agent's {args[0]} failed: {_last(err or out)}")
        return json.loads(lines[-1])

    # --- commands

    def backup(self, label: str) -> int:
        """A backup now (the agent's, with its manifest); then, with off-host storage, wait until
        the accessory verified its copy there, and say so; a failed copy fails the command."""
        started = time.monotonic()
        code, out, err = self.run("take", "--label", label)
        if code != 0:
            raise OpsError(f"the backup failed: {_last(err or out)}")
        lines = [line for line in out.splitlines() if line.startswith(("backup: ", "manifest: "))]
        print(f"{lines[0]} in {time.monotonic() - started:.1f}s", flush=True)
        for line in lines[1:]:
            print(line, flush=True)
        if not self.offsite:
            return 0
        name = lines[0].split()[1]
        code, out, err = self.run(
            "wait-offsite", name, "--timeout", str(WAIT_OFFSITE_SECONDS), timeout=WAIT_OFFSITE_SECONDS + 30
        )
        record = json.loads([line for line in out.splitlines() if line.startswith("{")][-1]) if "{" in out else {}
        if code == 0:
            print(
                f"off-host: {record['key']} verified ({record['bytes']} bytes read back, sha256 {record['sha256'][:16]}"
                f"{', age-encrypted' if record.get('encrypted') else ''}) in {time.monotonic() - started:.1f}s",
                flush=True,
            )
            return 0
        print(
            f"off-host: FAILED: {record.get('error') or _last(err or out)} (the backup is in the volume; the accessory "
            f"tries again: make status STACK={self.stack.stack})",
            flush=True,
        )
        return 1

    def take_line(self, label: str) -> str:
        code, out, err = self.run("take", "--label", label)
        lines = [line for line in out.splitlines() if line.startswith("backup: ")]
        if code != 0 or not lines:
            raise OpsError(f"the backup failed: {_last(err or out)}")
        return lines[0]

    def list_backups(self) -> int:
        from ops.view import ago, table

        listing = self.json("list")
        now = datetime.now(timezone.utc)
        local, offsite = listing["local"], listing.get("offsite") or {}
        names = sorted(set(local) | set(offsite))
        if not names:
            print(f"stack {self.stack.stack} has no backup yet (make backup STACK={self.stack.stack})")
        rows = []
        for name in names:
            here = local.get(name)
            there = offsite.get(name)
            record = (here or {}).get("offsite") or {}
            if there and there.get("complete"):
                state = (
                    "verified" + (" (age)" if there.get("encrypted") else "")
                    if "verified_at" in record or not here
                    else "there"
                )
            elif record.get("error"):
                state = f"FAILED x{record.get('attempts', 1)}"
            else:
                state = "pending" if self.offsite else "-"
            taken = datetime.strptime(name[:16], "%Y%m%dT%H%M%SZ").replace(tzinfo=timezone.utc)
            rows.append(
                (name, str((here or there or {}).get("bytes", "-")), ago(taken, now), "yes" if here else "-", state)
            )
        if rows:
            print("\n".join(table(("BACKUP", "BYTES", "AGE", "LOCAL", "OFF-HOST"), rows)))
        if self.offsite:
            print(
                f"off-host: {listing.get('where')}"
                + (f"; listing FAILED: {listing['offsite_error']}" if listing.get("offsite_error") else "")
            )
            return 1 if listing.get("offsite_error") else 0
        return 0

    def fetch(self, name: str, identity_file: Optional[str]) -> str:
        """Bring an off-host backup (empty: the newest) into the volume; its name."""
        if not self.offsite:
            raise OpsError(f"FROM=offsite: stack {self.stack.stack} has no off-host storage (backupS3Endpoint)")
        identity = identity_for(self.stack.stack, identity_file).encode() + b"\n" if self.encrypted else b""
        code, out, err = self.run("fetch", *([name] if name else []), stdin=identity, timeout=6 * 3600)
        if code != 0:
            raise OpsError(f"{'BACKUP=' + name + ': ' if name else ''}{_last(err or out)}; nothing changed")
        line = next(line for line in out.splitlines() if line.startswith("fetched: "))
        print(line, flush=True)
        return line.split()[1]

    def status(self) -> dict:
        return self.json("status")

    # --- one-offs of the accessory's image

    def one_off(
        self,
        command: Sequence[str],
        *,
        binds: Sequence[str],
        networks: Sequence[str],
        name: str,
        environment: Optional[list[str]] = None,
        stdin: bool = False,
        aliases: Sequence[str] = (),
    ) -> str:
        """A container like the accessory (image, environment: the CA too, host names), with these
        mounts and networks; created, not started. Its id."""
        host = self.attrs["HostConfig"]
        host_config = self.api.create_host_config(
            binds=list(binds),
            network_mode=networks[0],
            cap_drop=["ALL"],
            cap_add=AGENT_CAPABILITIES,
            security_opt=["no-new-privileges:true"],
            init=True,
            extra_hosts=_extra_hosts(host.get("ExtraHosts")),
            tmpfs={"/tmp": "rw,nosuid,size=256m"},
        )
        created = self.api.create_container(
            self.attrs["Image"],
            command=list(command),
            environment=environment if environment is not None else self.attrs["Config"]["Env"],
            host_config=host_config,
            labels={STACK: self.stack.stack, SERVICE: "backup", ROLE: ONE_OFF},
            name=name,
            stdin_open=stdin,
            networking_config=self.api.create_networking_config(
                {networks[0]: self.api.create_endpoint_config(aliases=list(aliases) or None)}
            )
            if networks[0] != "none"
            else None,
        )
        cid = created["Id"]
        for network in networks[1:]:
            self.api.connect_container_to_network(cid, network)
        return cid

    def network_of(self, kind: str) -> str:
        return self.stack.network(kind)


def _extra_hosts(entries: Optional[list[str]]) -> Optional[dict[str, str]]:
    if not entries:
        return None
    return dict(entry.split(":", 1) for entry in entries)


def _last(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return (lines[-1] if lines else "no output").removeprefix("backup: ")[:240]


def _start_stopped(stack: StackOnHost, ids: Sequence[str]) -> None:
    for cid in ids:
        stack.client.api.start(cid)


def pitr_copy_prefix(stack: str) -> str:
    """The start of the name of the volume a point-in-time restore copies the data directory into."""
    return f"{stack}-pitr-before-"


def keep_pitr_copy(*, copied: bool, restored: bool, put_back: Optional[bool]) -> bool:
    """Whether the point-in-time restore keeps its copy of the data directory: only when that
    copy may be the one intact copy of the data (the restore began and did not end, and the data
    was not put back from it). A partial copy (the copy failed, a full disk say) is removed: it
    would only keep the disk full."""
    return copied and not restored and put_back is not True


def restore_at(stack: StackOnHost, at: str) -> int:
    """Point-in-time restore: the database as it was at `at` (or the end of the archive)."""
    from ops.backup import Backups

    target = parse_at(at)
    agent = Agent.of(stack)
    if agent is None or not agent.pitr:
        raise OpsError(
            f"AT={at}: stack {stack.stack} archives no WAL (backupPitr is off); restore a backup: make backups"
        )
    info = agent.json("pitr-info")
    earliest, latest = (datetime.fromisoformat(info[k]) if info.get(k) else None for k in ("earliest", "latest"))
    if earliest is None or latest is None:
        raise OpsError(f"AT={at}: nothing is archived yet (no base backup, or no WAL pushed); nothing changed")
    covers = f"the archive covers {earliest:%Y-%m-%d %H:%M:%S} to {latest:%Y-%m-%d %H:%M:%S} UTC"
    if target is not None and target < earliest:
        raise OpsError(f"AT={at}: before the oldest base backup; {covers}; nothing changed")
    if target is not None and target > latest:
        raise OpsError(f"AT={at}: after the newest archived commit; {covers}; nothing changed")
    started = time.monotonic()
    api = stack.client.api
    store = Backups(stack)
    safety = agent.take_line(f"{release_label(stack)}-pre-restore")
    print(f"before restoring: {safety}", flush=True)
    app = [
        b
        for b in stack.boxes
        if b.service in APP_SERVICES and b.role != ONE_OFF and b.state in ("running", "restarting")
    ]
    postgres = store.postgres["Id"]
    stopped: list[str] = []
    data_volume = next(m["Name"] for m in store.postgres["Mounts"] if m["Destination"] == render.POSTGRES_DATA)
    run_volume = next(m["Name"] for m in store.postgres["Mounts"] if m["Destination"] == render.POSTGRES_RUN)
    copy = pitr_copy_prefix(stack.stack) + secrets.token_hex(3)
    copied = restored = False
    put_back: Optional[bool] = None  # after a failed restore: whether the data was put back
    try:
        for box in app:
            api.stop(box.id, timeout=STOP_SECONDS)
            stopped.append(box.id)
        api.stop(agent.id, timeout=60)
        stopped.append(agent.id)
        api.stop(postgres, timeout=POSTGRES_STOP_SECONDS)
        stopped.append(postgres)
        print(f"stopped {', '.join(b.label for b in app)}, the backup accessory and postgres", flush=True)
        # All or nothing: the data directory as it was, kept until the restore succeeded.
        stack.client.volumes.create(copy, labels={STACK: stack.stack, SERVICE: "backup", ROLE: ONE_OFF})
        # BACKUP_DIR=/copy: the image's entrypoint gives that directory to the postgres user first.
        copy_env = [e for e in agent.attrs["Config"]["Env"] if not e.startswith("BACKUP_DIR=")] + ["BACKUP_DIR=/copy"]
        cid = agent.one_off(
            ["sh", "-c", f"cp -a {render.POSTGRES_DATA}/. /copy/"],
            binds=[f"{data_volume}:{render.POSTGRES_DATA}:ro", f"{copy}:/copy"],
            networks=["none"],
            name=f"{stack.stack}-pitr-copy-{secrets.token_hex(3)}",
            environment=copy_env,
        )
        code, out = run_to_end(api, cid, 6 * 3600)
        api.remove_container(cid, force=True, v=True)
        if code != 0:
            raise OpsError(
                f"AT={at}: could not keep a copy of the data directory first ({_last(out)}); nothing changed"
            )
        copied = True
        cid = agent.one_off(
            render.backup_agent_command("pitr-restore", at if target is None else target.isoformat()),
            binds=[f"{data_volume}:{render.POSTGRES_DATA}", f"{run_volume}:{render.POSTGRES_RUN}"],
            networks=[stack.network("egress")],
            name=f"{stack.stack}-pitr-{secrets.token_hex(3)}",
        )
        code, out = run_to_end(api, cid, 6 * 3600)
        api.remove_container(cid, force=True, v=True)
        line = next((x for x in out.splitlines() if x.startswith("PITR ")), None)
        if code != 0 or line is None:
            cid = agent.one_off(
                [
                    "sh",
                    "-c",
                    f"find {render.POSTGRES_DATA} -mindepth 1 -delete && cp -a /copy/. {render.POSTGRES_DATA}/",
                ],
                binds=[f"{data_volume}:{render.POSTGRES_DATA}", f"{copy}:/copy:ro"],
                networks=["none"],
                name=f"{stack.stack}-pitr-back-{secrets.token_hex(3)}",
                environment=copy_env,
            )
            back, back_out = run_to_end(api, cid, 6 * 3600)
            api.remove_container(cid, force=True, v=True)
            put_back = back == 0
            state = (
                "the database is as it was"
                if put_back
                else f"putting the data back FAILED too ({_last(back_out)}; it is in volume {copy})"
            )
            raise OpsError(f"AT={at}: the restore failed ({_last(out)}); {state}")
        result = json.loads(line[len("PITR ") :])
        restored = True
    finally:
        for cid in reversed(stopped):  # postgres first, then the accessory, then the app
            api.start(cid)
        if stopped:
            wait_healthy(stack, stopped)
            print(
                f"started postgres, the backup accessory and the app again: {len(stopped)} containers healthy",
                flush=True,
            )
        if not keep_pitr_copy(copied=copied, restored=restored, put_back=put_back):
            try:
                stack.client.volumes.get(copy).remove()
            except docker.errors.NotFound:
                pass
    print(
        f"restored: stack {stack.stack}'s database to {result['target']} (timeline {result['timeline']}; "
        f"{result['stopped'][:120]}): files {result['files_seconds']:.1f}s, WAL replay {result['replay_seconds']:.1f}s, "
        f"{time.monotonic() - started:.1f}s in all (undo: make restore STACK={stack.stack} BACKUP={safety.split()[1]})",
        flush=True,
    )
    return 0


def drill(stack: StackOnHost, name: str, identity_file: Optional[str]) -> int:
    """The restore drill: the newest (or named) off-host backup into a throwaway PostgreSQL, its
    tables and rows against its manifest, `migrate --check` of the running release against it;
    everything it made removed; the result recorded (make status shows it)."""
    from ops.run import MANAGE, one_off_config, release_template

    agent = Agent.of(stack)
    if agent is None or not agent.offsite:
        raise OpsError(f"stack {stack.stack} has no off-host backups to drill (backupS3Endpoint)")
    api = stack.client.api
    identity = identity_for(stack.stack, identity_file).encode() + b"\n" if agent.encrypted else b""
    token = secrets.token_hex(3)
    network = api.create_network(
        f"{stack.stack}-drill-{token}", driver="bridge", internal=True, labels={STACK: stack.stack, ROLE: ONE_OFF}
    )["Id"]
    volume = stack.client.volumes.create(
        f"{stack.stack}-drill-{token}", labels={STACK: stack.stack, ROLE: ONE_OFF}
    ).name
    environment = [e for e in agent.attrs["Config"]["Env"] if not e.startswith("BACKUP_DIR=")] + ["BACKUP_DIR=/drill"]
    started = time.monotonic()
    made: list[str] = []
    result: dict[str, Any] = {"ok": False, "problem": "the drill did not finish"}
    try:
        box = agent.one_off(
            render.backup_agent_command("drill", *([name] if name else [])),
            binds=[f"{volume}:/drill"],
            networks=[network, stack.network("egress")],
            aliases=["postgres"],
            name=f"{stack.stack}-drill-{token}",
            environment=environment,
            stdin=True,
        )
        made.append(box)
        sock = api.attach_socket(box, params={"stdin": 1, "stream": 1})
        api.start(box)
        raw = getattr(sock, "_sock", sock)
        raw.sendall(identity)
        raw.shutdown(1)
        sock.close()
        deadline = time.monotonic() + DRILL_SECONDS
        drilled = None
        while time.monotonic() < deadline:
            logs = api.logs(box, stdout=True, stderr=True).decode(errors="replace")
            drilled = next((line for line in logs.splitlines() if line.startswith("DRILL ")), None)
            if drilled or api.inspect_container(box)["State"]["Status"] != "running":
                break
            time.sleep(0.5)
        if drilled is None:
            raise OpsError(f"the drill's restore failed: {_last(api.logs(box).decode(errors='replace'))}")
        restored = json.loads(drilled[len("DRILL ") :])
        # The running release's own `migrate --check` against the restored copy (it answers as
        # `postgres` on the drill's network, with the stack's database, user and password).
        template = api.inspect_container(release_template(stack).id)
        check = api.create_container(
            **one_off_config(stack, template, [*MANAGE, "migrate", "--check"], tty=False, network=network),
            name=f"{stack.stack}-drill-check-{token}",
        )["Id"]
        made.append(check)
        migrate_code, migrate_out = run_to_end(api, check, 600)
        migrate = "ok" if migrate_code == 0 else f"FAILED (exit {migrate_code}: {_last(migrate_out)})"
        problems = list(restored["problems"]) + (
            [] if migrate_code == 0 else [f"migrate --check: {_last(migrate_out)}"]
        )
        result = {
            **restored,
            "ok": not problems,
            "problem": "; ".join(problems)[:300] if problems else None,
            "migrate": migrate,
            "seconds": round(time.monotonic() - started, 1),
        }
    except OpsError as error:
        result = {"ok": False, "problem": str(error)[:300], "seconds": round(time.monotonic() - started, 1)}
    finally:
        for cid in made:
            try:
                api.remove_container(cid, force=True, v=True)
            except docker.errors.NotFound:
                pass
        api.remove_network(network)
        stack.client.volumes.get(volume).remove(force=True)
    agent.run("record-drill", stdin=json.dumps(result).encode())
    if result["ok"]:
        print(
            f"drill: passed: {result['backup']} ({result['tables']} tables, {result['rows']} rows, as its manifest says; "
            f"migrate --check ok) fetched in {result['fetched_seconds']:.1f}s, restored in {result['restored_seconds']:.1f}s, "
            f"{result['seconds']:.1f}s in all; the throwaway PostgreSQL, its network and volume removed",
            flush=True,
        )
        return 0
    print(f"drill: FAILED: {result.get('problem')} ({result['seconds']:.1f}s)", flush=True)
    return 1
