"""One backup: `pg_dump --format=custom` of the database into the backups volume, with its
manifest: every table and its row count, counted in the very snapshot the dump reads
(`pg_export_snapshot()`, then `pg_dump --snapshot`), so the manifest says what the backup holds,
not what the database held a moment later. The restore drill checks a restore against it.

Written under a temporary name and renamed only when complete (a file that looks like a backup
always is one), readable by its owner only; the manifest is written first, so a backup never
appears without it. Connection: the PG* variables (the stack's database, on its backend network).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
from typing import Any, Optional

from django_docker_backup import names, state

# The tables pg_dump writes the data of: ordinary tables (partitions included, not their
# partitioned parents, which hold no rows of their own), not the system's, not an extension's.
TABLES_SQL = """
select n.nspname, c.relname
from pg_class c join pg_namespace n on n.oid = c.relnamespace
where c.relkind = 'r'
  and n.nspname not in ('pg_catalog', 'information_schema') and n.nspname not like 'pg\\_%'
  and not exists (select 1 from pg_depend d where d.classid = 'pg_class'::regclass and d.objid = c.oid and d.deptype = 'e')
order by 1, 2
"""


class BackupFailed(Exception):
    """One line: why the backup was not taken (nothing was left behind)."""


def sha256_of(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _connect():
    import psycopg2  # the image's (python3-psycopg2); the PG* variables say where

    return psycopg2.connect("", connect_timeout=10, application_name="django-docker-backup")


def take(stack: str, directory: str, label: str, *, skip_empty: bool = False) -> dict[str, Any]:
    """Take a backup now. Returns its manifest, or {"skipped": why} when `skip_empty` and the
    database has no table yet (an automatic backup of a stack that has never migrated)."""
    when = state.now()
    name = names.name_for(stack, label, when)
    target = os.path.join(directory, name)
    partial = os.path.join(directory, f".partial-{name}")
    os.umask(0o077)
    try:
        connection = _connect()
    except Exception as error:  # psycopg2.OperationalError and its kind
        raise BackupFailed(f"cannot connect to the database: {_first_line(error)}") from None
    try:
        connection.set_session(isolation_level="REPEATABLE READ", readonly=True)
        with connection.cursor() as cursor:
            cursor.execute("select pg_export_snapshot(), current_database(), current_setting('server_version')")
            snapshot, database, server_version = cursor.fetchone()
            cursor.execute(TABLES_SQL)
            tables = [f"{schema}.{table}" for schema, table in cursor.fetchall()]
            if skip_empty and not tables:
                return {"skipped": "the database has no table yet", "name": name}
            counts: dict[str, int] = {}
            from psycopg2 import sql

            for qualified in tables:
                schema, table = qualified.split(".", 1)
                cursor.execute(
                    sql.SQL("select count(*) from {}.{}").format(sql.Identifier(schema), sql.Identifier(table))
                )
                counts[qualified] = int(cursor.fetchone()[0])
        dumped = subprocess.run(
            ["pg_dump", "--format=custom", f"--snapshot={snapshot}", f"--file={partial}"],
            capture_output=True,
            text=True,
        )
        if dumped.returncode != 0:
            raise BackupFailed(f"pg_dump exit {dumped.returncode}: {_first_line(dumped.stderr) or 'no output'}")
    except BackupFailed:
        _remove(partial)
        raise
    except Exception as error:
        _remove(partial)
        raise BackupFailed(f"{type(error).__name__}: {_first_line(error)}") from None
    finally:
        connection.rollback()
        connection.close()
    size = os.path.getsize(partial)
    manifest = {
        "name": name,
        "stack": stack,
        "label": label,
        "taken_at": state.stamp(when),
        "database": database,
        "server_version": server_version,
        "tables": counts,
        "rows": sum(counts.values()),
        "bytes": size,
        "sha256": sha256_of(partial),
        "pg_dump": _pg_dump_version(),
    }
    state.write(state.manifest_path(directory, name), manifest)
    os.replace(partial, target)
    return manifest


def remove(directory: str, name: str) -> None:
    """A backup and its manifest, from the volume (its off-host copy has its own retention)."""
    _remove(os.path.join(directory, name))
    _remove(state.manifest_path(directory, name))


def local_names(directory: str) -> list[str]:
    try:
        return sorted(n for n in os.listdir(directory) if n.endswith(".dump") and not n.startswith("."))
    except FileNotFoundError:
        return []


def line(manifest: dict[str, Any]) -> str:
    """What `make backup` and the release job print: the line ops parses, then the manifest's."""
    if "skipped" in manifest:
        return f"backup: skipped ({manifest['skipped']})"
    return (
        f"backup: {manifest['name']} ({manifest['bytes']} bytes)\n"
        f"manifest: {len(manifest['tables'])} tables, {manifest['rows']} rows, sha256 {manifest['sha256'][:16]}"
    )


def _pg_dump_version() -> str:
    result = subprocess.run(["pg_dump", "--version"], capture_output=True, text=True)
    return result.stdout.strip()


def _remove(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def _first_line(error: Optional[object]) -> str:
    text = str(error or "").strip()
    return text.splitlines()[0][:200] if text else ""
