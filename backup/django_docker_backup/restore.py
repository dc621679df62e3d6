"""The restores that run in one-off containers of the backup image, which ops/backup.py starts:

- `drill`: the newest (or a named) off-host backup restored into a throwaway PostgreSQL, in this
  very container (the image is the stack's postgresImage), every table's row count checked
  against the backup's own manifest; then it keeps serving until stopped, so that ops can run the
  app's `migrate --check` against it from a container of the app image.
- `pitr`: the stack's database as it was at a moment (or at the end of the archive): pgBackRest
  restores the newest base backup before it into the data volume and PostgreSQL replays the
  archived WAL up to it, in this container, then promotes and stops cleanly; the stack's own
  postgres container starts on the result. The recovery settings pgBackRest wrote are reset.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from typing import Any, Optional

from django_docker_backup import dump, offsite, state, wal
from django_docker_backup.config import Config

DRILL_DIR = "/drill"
READY_SECONDS = 3600


class RestoreFailed(Exception):
    """One line: which step failed, and why."""


def _run(argv: list[str], what: str, **kwargs: Any) -> str:
    result = subprocess.run(argv, capture_output=True, text=True, **kwargs)
    if result.returncode != 0:
        lines = (result.stderr or result.stdout).strip().splitlines()
        raise RestoreFailed(f"{what}: {lines[-1][:200] if lines else f'exit {result.returncode}'}")
    return result.stdout


def count_rows(host: str, database: str) -> dict[str, int]:
    import psycopg2
    from psycopg2 import sql

    connection = psycopg2.connect(host=host, dbname=database, connect_timeout=10)
    try:
        with connection.cursor() as cursor:
            cursor.execute(dump.TABLES_SQL)
            tables = [f"{schema}.{table}" for schema, table in cursor.fetchall()]
            counts = {}
            for qualified in tables:
                schema, table = qualified.split(".", 1)
                cursor.execute(
                    sql.SQL("select count(*) from {}.{}").format(sql.Identifier(schema), sql.Identifier(table))
                )
                counts[qualified] = int(cursor.fetchone()[0])
            return counts
    finally:
        connection.close()


def compare(expected: dict[str, int], restored: dict[str, int]) -> list[str]:
    """Pure: every table of the manifest with its rows, and nothing else; one line each difference."""
    problems = []
    for table in sorted(set(expected) | set(restored)):
        if table not in restored:
            problems.append(f"{table}: in the backup ({expected[table]} rows), not restored")
        elif table not in expected:
            problems.append(f"{table}: restored, not in the backup's manifest")
        elif expected[table] != restored[table]:
            problems.append(f"{table}: {restored[table]} rows restored, {expected[table]} in the backup")
    return problems


def drill(config: Config, name: str, identity: str) -> int:
    """Restore into a throwaway server here; print `DRILL <json>`; serve until SIGTERM."""
    if config.offsite is None:
        raise RestoreFailed("no off-host storage configured (backupS3Endpoint)")
    user, password = os.environ.get("PGUSER", "postgres"), os.environ.get("PGPASSWORD", "")
    database = os.environ.get("PGDATABASE", user)
    directory = os.path.join(DRILL_DIR, "backups")
    pgdata = os.path.join(DRILL_DIR, "pgdata")
    os.makedirs(directory, mode=0o700, exist_ok=True)
    started = time.monotonic()
    manifest = offsite.fetch(config.offsite, directory, config.stack, name, identity)
    fetched = time.monotonic() - started
    print(f"drill: fetched {manifest['name']} from {config.offsite.where} in {fetched:.1f}s", flush=True)
    with tempfile.NamedTemporaryFile("w", dir="/tmp", delete=False) as pwfile:
        pwfile.write(password + "\n")
    try:
        _run(
            [
                "initdb",
                "-D",
                pgdata,
                "-U",
                user,
                f"--pwfile={pwfile.name}",
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
            ],
            "initdb",
        )
    finally:
        os.unlink(pwfile.name)
    with open(os.path.join(pgdata, "pg_hba.conf"), "a") as hba:
        hba.write("host all all all scram-sha-256\n")
    _run(
        [
            "pg_ctl",
            "-D",
            pgdata,
            "-w",
            "-t",
            "120",
            "-l",
            os.path.join(DRILL_DIR, "server.log"),
            "-o",
            "-c listen_addresses='*' -c unix_socket_directories=/tmp -c fsync=off",
            "start",
        ],
        "start the throwaway PostgreSQL",
    )
    local = {**os.environ, "PGHOST": "/tmp"}
    if database != "postgres":
        _run(["createdb", "-h", "/tmp", "-U", user, database], "createdb", env=local)
    restore_started = time.monotonic()
    _run(
        [
            "pg_restore",
            "-h",
            "/tmp",
            "-U",
            user,
            "-d",
            database,
            "--no-owner",
            "--no-privileges",
            "--exit-on-error",
            os.path.join(directory, manifest["name"]),
        ],
        "pg_restore",
        env=local,
    )
    restored_in = time.monotonic() - restore_started
    counts = count_rows("/tmp", database)
    expected = manifest.get("tables")
    problems = (
        compare(expected, counts)
        if expected is not None
        else ["no row counts to compare: a backup taken before the backup accessory (it restored)"]
    )
    result = {
        "backup": manifest["name"],
        "taken_at": manifest.get("taken_at"),
        "tables": len(counts),
        "rows": sum(counts.values()),
        "expected_rows": manifest.get("rows"),
        "problems": problems,
        "fetched_seconds": round(fetched, 1),
        "restored_seconds": round(restored_in, 1),
        "encrypted": bool(identity),
    }
    print("DRILL " + json.dumps(result), flush=True)
    stopped = []
    signal.signal(signal.SIGTERM, lambda *_: stopped.append(1))
    signal.signal(signal.SIGINT, lambda *_: stopped.append(1))  # the postgres image's STOPSIGNAL
    deadline = time.monotonic() + READY_SECONDS
    while not stopped and time.monotonic() < deadline:
        time.sleep(0.2)
    subprocess.run(["pg_ctl", "-D", pgdata, "-m", "fast", "-w", "stop"], capture_output=True)
    return 0


def record_drill(config: Config, result: dict[str, Any]) -> dict[str, Any]:
    """Keep a drill's result in the volume (status reads it) and off-host (drills/<time>.json)."""
    record = {**result, "at": result.get("at") or state.stamp()}
    state.write(state.drill_path(config.directory), record)
    if config.offsite is not None:
        stamp = state.parse_stamp(record["at"]) or state.now()
        offsite.put_json(config.offsite, f"{offsite.DRILLS}/{stamp.strftime('%Y%m%dT%H%M%SZ')}.json", record)
    return record


RECOVERY_SETTINGS = (
    "restore_command",
    "recovery_target_time",
    "recovery_target_action",
    "recovery_target",
    "recovery_target_timeline",
)


def pitr_options(target: Optional[datetime]) -> list[str]:
    """pgBackRest's restore options: to the end of the archive (None), or to `target`, then promote.
    `--target-action` only with a target: pgBackRest refuses it with --type=default ("option
    'target-action' not valid without option 'type' in ('immediate', 'lsn', 'name', 'time',
    'xid')", met by the host-loss rehearsal); at the archive's end PostgreSQL promotes anyway."""
    if target is None:
        return ["--delta", "--type=default"]
    return [
        "--delta",
        "--type=time",
        f"--target={target.strftime('%Y-%m-%d %H:%M:%S.%f+00')}",
        "--target-action=promote",
    ]


def pitr(config: Config, target: Optional[datetime], archive_command: str) -> dict[str, Any]:
    """Restore the stack's data volume (mounted at wal.PGDATA, its server stopped) to `target`
    (None: the end of the archive), replaying WAL here; returns what was done."""
    started = time.monotonic()
    wal.run(config, *pitr_options(target), "restore", timeout=6 * 3600)
    restored_files = time.monotonic() - started
    log = "/tmp/recovery.log"
    server = subprocess.Popen(
        [
            "postgres",
            "-D",
            wal.PGDATA,
            "-c",
            "listen_addresses=",
            "-c",
            f"unix_socket_directories={wal.SOCKET_DIR}",
            "-c",
            "archive_mode=on",
            "-c",
            f"archive_command={archive_command}",
        ],
        stdout=open(log, "w"),
        stderr=subprocess.STDOUT,
        # restore_command is `pgbackrest archive-get`: its options (stanza, repository) come from
        # the same PGBACKREST_* variables, which pgBackRest does not write into the command.
        env={**os.environ, **wal.environment(config, os.environ)},
    )
    try:
        deadline = time.monotonic() + READY_SECONDS
        while True:
            if server.poll() is not None:
                raise RestoreFailed(f"PostgreSQL stopped during recovery: {_tail(log)}")
            probe = subprocess.run(
                ["psql", "-h", wal.SOCKET_DIR, "-XAtqc", "select pg_is_in_recovery()"], capture_output=True, text=True
            )
            if probe.returncode == 0 and probe.stdout.strip() == "f":
                break
            if time.monotonic() > deadline:
                raise RestoreFailed(f"recovery did not finish within {READY_SECONDS}s: {_tail(log)}")
            time.sleep(0.3)
        replayed = time.monotonic() - started - restored_files
        for setting in RECOVERY_SETTINGS:
            subprocess.run(
                ["psql", "-h", wal.SOCKET_DIR, "-XAtqc", f"ALTER SYSTEM RESET {setting}"], capture_output=True
            )
        timeline = subprocess.run(
            ["psql", "-h", wal.SOCKET_DIR, "-XAtqc", "select timeline_id from pg_control_checkpoint()"],
            capture_output=True,
            text=True,
        ).stdout.strip()
        stopping = [line for line in open(log) if "recovery stopping" in line] or [
            line for line in open(log) if "redo done" in line
        ]
    finally:
        subprocess.run(["pg_ctl", "-D", wal.PGDATA, "-m", "fast", "-w", "-t", "300", "stop"], capture_output=True)
        if server.poll() is None:
            server.wait(timeout=300)
    return {
        "target": state.stamp(target) if target else "latest",
        "files_seconds": round(restored_files, 1),
        "replay_seconds": round(replayed, 1),
        "timeline": timeline,
        "stopped": stopping[-1].strip().split("LOG:", 1)[-1].strip()[:200] if stopping else "",
    }


def _tail(path: str) -> str:
    try:
        lines = [line.strip() for line in open(path) if line.strip()]
    except FileNotFoundError:
        return "no log"
    return lines[-1][:200] if lines else "no log"


def read_identity() -> str:
    """An age identity from standard input (empty when none was given), never from a file of the volume."""
    if sys.stdin is None or sys.stdin.isatty():
        return ""
    text = sys.stdin.read()
    return "\n".join(line for line in text.splitlines() if line.strip().startswith("AGE-SECRET-KEY-"))
