"""`python -m django_docker_runtime.migration_gate --mode gate|maintenance`: the release's
compatibility gate, run by `pulumi up` in a container of the new image before the backup and
the migration (components/release.py).

A release is create-before-delete: the old replicas serve while the new image migrates, and
for seconds after. So every migration the stack's database has not applied yet (what
`manage.py migrate --plan` would run there) is checked for operations the serving release
cannot survive: a dropped or renamed column or table, a NOT NULL column the old code does not
fill, a changed column type, a new unique constraint the old code may violate.

The checks are django-migration-linter's (3YOURMIND/django-migration-linter, pinned in the
image's requirements): its SQL analyser for the database's vendor reads the SQL Django would
run. This module adds what the linter's command does not do for a release:
- the plan is the stack's: the migrations unapplied *in that database*, in order (the
  linter's own command lints every migration on disk, or a git range);
- one line per offending operation: the SQL is collected operation by operation (as
  `sqlmigrate` does: Migration.apply with collect_sql) and each operation's statements are
  analysed apart, so a line names the operation, not only the migration;
- what old code cannot touch is not a risk: tables created earlier in the same plan, and a
  database that has no migration applied at all (nothing serves yet);
- no guessing: a migration whose SQL cannot be rendered, a database that does not answer, an
  unknown vendor, or an image without the linter fail with one line (exit 2).

Ways through, both explicit:
- the linter's own mark: `django_migration_linter.IgnoreMigration()` among a migration's
  operations (the contract step of expand/contract, once no serving code uses what it drops),
  or its `MIGRATION_LINTER_OPTIONS` setting (`ignore_name`, `exclude_migration_tests`);
- the stack's `migrationMode: maintenance`: the same lines are printed, the gate passes, and
  nginx serves a maintenance page while the migration runs.

Exit 0: the release may go on; 1: refused (an offending operation); 2: the gate could not check.
The linter's warnings (an index built without CONCURRENTLY locks writes) are printed, never refused.
"""

from __future__ import annotations

import argparse
import logging
import re
import sys
from dataclasses import dataclass
from typing import Any, Iterable, Optional, Sequence

MODES = ("gate", "maintenance")
EXIT_OK, EXIT_REFUSED, EXIT_ERROR = 0, 1, 2
PREFIX = "migration-gate:"
LINTER_PIN = "django-migration-linter==6.0.0"
NO_SQL = "-- THIS OPERATION CANNOT BE WRITTEN AS SQL"
CREATE_TABLE_RE = re.compile(r'^CREATE TABLE\s+[`"\']?([^`"\'\s(]+)', re.IGNORECASE)
TABLE_RE = re.compile(r'\b(?:ALTER|DROP) TABLE\s+(?:IF EXISTS\s+)?[`"\']?([^`"\'\s(]+)', re.IGNORECASE)


class GateError(Exception):
    """The gate could not check; one line."""


@dataclass(frozen=True)
class Finding:
    """One problem of one operation."""

    migration: str
    """`app_label.name`."""
    index: int
    """The operation's position in the migration, from 1."""
    operation: str
    """Django's description of it (`Remove field path from visit`)."""
    code: str
    """The linter's check code (DROP_COLUMN, NOT_NULL, ...)."""
    message: str
    table: Optional[str] = None
    column: Optional[str] = None
    error: bool = True
    """False: a warning (printed, never refused)."""


@dataclass(frozen=True)
class Verdict:
    lines: tuple[str, ...]
    exit_code: int


# --- pure --------------------------------------------------------------------------------------


def split_by_operation(collected: Sequence[str], descriptions: Sequence[str]) -> list[list[str]]:
    """The SQL statements of each operation, from what Migration.apply(collect_sql=True)
    collected: a header `--`, `-- <description>`, `--` before each operation's statements
    (django/db/migrations/migration.py, Migration.apply). Comment lines are dropped, and so
    are the BEGIN/COMMIT around the whole. Raises GateError when the headers do not match
    the operations one to one."""
    chunks: list[list[str]] = []
    i, n = 0, len(collected)
    while i < n:
        expected = descriptions[len(chunks)] if len(chunks) < len(descriptions) else None
        if collected[i] == "--" and i + 2 < n and collected[i + 2] == "--" and collected[i + 1].startswith("-- "):
            if expected is None or collected[i + 1] != f"-- {expected}":
                raise GateError(
                    f"the SQL of {len(descriptions)} operation(s) could not be told apart (at {collected[i + 1]!r})"
                )
            chunks.append([])
            i += 3
            continue
        line = collected[i].strip()
        if chunks and line and not line.startswith("--") and line.upper() not in ("BEGIN;", "COMMIT;"):
            chunks[-1].append(line)
        i += 1
    if len(chunks) != len(descriptions):
        raise GateError(
            f"the SQL of {len(descriptions)} operation(s) could not be told apart ({len(chunks)} headers found)"
        )
    return chunks


def cannot_be_sql(collected: Sequence[str]) -> bool:
    return any(line == NO_SQL for line in collected)


def created_tables(statements: Iterable[str]) -> set[str]:
    """Tables the statements create (`CREATE TABLE "x" (...)`)."""
    return {m.group(1) for s in statements if (m := CREATE_TABLE_RE.match(s.strip()))}


def touched_tables(statements: Iterable[str]) -> set[str]:
    """Tables the statements alter or drop."""
    return {m.group(1) for s in statements for m in TABLE_RE.finditer(s)}


def only_new_tables(table: Optional[str], statements: Sequence[str], created: set[str]) -> bool:
    """Whether an issue concerns only tables created earlier in this plan (no serving code
    knows them). The linter names the table only for one-statement checks; for the others,
    every table the operation's statements touch."""
    tables = {table} if table else touched_tables(statements)
    return bool(tables) and tables <= created


def is_marked_safe(operations: Iterable[Any], name: str, ignore_names: Iterable[str], ignore_contains: str) -> bool:
    """The linter's own marks: an IgnoreMigration operation (matched by class name, so this
    stays pure), or the migration named in MIGRATION_LINTER_OPTIONS."""
    return (
        any(type(op).__name__ == "IgnoreMigration" for op in operations)
        or name in set(ignore_names)
        or bool(ignore_contains and ignore_contains in name)
    )


def finding_line(f: Finding, mode: str) -> str:
    where = f.table + (f".{f.column}" if f.column else "") if f.table else ""
    what = f"{f.message} [{f.code}]" + (f" on {where}" if where else "")
    if not f.error:
        verdict = "warning (not refused)"
    elif mode == "maintenance":
        verdict = "allowed: migrationMode maintenance (nginx serves the maintenance page meanwhile)"
    else:
        verdict = "the serving release cannot survive it"
    return f"{PREFIX} {f.migration} operation {f.index} ({f.operation}): {what}: {verdict}"


def verdict(
    plan: Sequence[str], findings: Sequence[Finding], notes: Sequence[str], mode: str, fresh: bool = False
) -> Verdict:
    """The lines to print and the exit code, from the plan's migrations and what was found."""
    if mode not in MODES:
        raise GateError(f"mode {mode!r} is not one of {', '.join(MODES)}")
    if fresh:
        return Verdict(
            (f"{PREFIX} a database with no migration applied: nothing serves yet, {len(plan)} migration(s) pass",),
            EXIT_OK,
        )
    if not plan:
        return Verdict((f"{PREFIX} no new migration for this database",), EXIT_OK)
    lines = [f"{PREFIX} {len(plan)} new migration(s) for this database: {', '.join(plan)}"]
    lines += [f"{PREFIX} {note}" for note in notes]
    lines += [finding_line(f, mode) for f in findings]
    errors = [f for f in findings if f.error]
    if not errors:
        lines.append(f"{PREFIX} ok: every new migration is safe while the old release serves")
        return Verdict(tuple(lines), EXIT_OK)
    migrations = sorted({f.migration for f in errors})
    if mode == "maintenance":
        lines.append(
            f"{PREFIX} ok in maintenance mode: {len(errors)} incompatible operation(s) in {', '.join(migrations)}"
        )
        return Verdict(tuple(lines), EXIT_OK)
    lines.append(
        f"{PREFIX} refused: {len(errors)} operation(s) in {', '.join(migrations)} would break the release that "
        "serves; nothing was backed up or migrated. Ways through: expand/contract (mark the migration safe with "
        "django_migration_linter.IgnoreMigration() once no serving code uses what it changes), or "
        "django-docker:migrationMode maintenance for this release (docs/operations.md)"
    )
    return Verdict(tuple(lines), EXIT_REFUSED)


# --- against the database ----------------------------------------------------------------------


def _linter():
    try:
        from django_migration_linter.sql_analyser.analyser import (  # type: ignore[import-not-found,import-untyped,unused-ignore]
            analyse_sql_statements,
            get_sql_analyser_class,
        )
    except ImportError:
        raise GateError(
            f"the image has no django-migration-linter: add {LINTER_PIN} (and appdirs, toml) to its requirements "
            "(docs/adopt.md), or set django-docker:migrationMode maintenance"
        ) from None
    return analyse_sql_statements, get_sql_analyser_class


def check(database: str = "default", mode: str = "gate") -> Verdict:
    """The plan of the database's unapplied migrations, checked. Raises GateError."""
    from django.conf import settings
    from django.db import connections
    from django.db.migrations.executor import MigrationExecutor

    analyse, analyser_for = _linter()
    options = getattr(settings, "MIGRATION_LINTER_OPTIONS", None) or {}
    excluded = list(options.get("exclude_migration_tests") or [])
    ignore_names = list(options.get("ignore_name") or [])
    ignore_contains = options.get("ignore_name_contains") or ""
    connection = connections[database]
    try:
        analyser = analyser_for(connection.settings_dict["ENGINE"])
    except ValueError as exc:
        raise GateError(f"the linter has no analyser for this database: {exc}") from None
    try:
        connection.ensure_connection()
        executor = MigrationExecutor(connection)
    except Exception as exc:  # noqa: BLE001 - the driver's and the loader's errors alike, one line
        raise GateError(f"cannot read the database's migrations: {type(exc).__name__}: {first_line(exc)}") from None
    loader = executor.loader
    applied = set(loader.applied_migrations)
    steps = executor.migration_plan(loader.graph.leaf_nodes())
    plan = [f"{m.app_label}.{m.name}" for m, backwards in steps if not backwards]
    if any(backwards for _, backwards in steps):
        raise GateError("the plan unapplies migrations (the image is older than the database)")
    if not applied:
        return verdict(plan, [], [], mode, fresh=True)

    findings: list[Finding] = []
    notes: list[str] = []
    created: set[str] = set()
    for migration, _ in steps:
        label = f"{migration.app_label}.{migration.name}"
        if is_marked_safe(migration.operations, migration.name, ignore_names, ignore_contains):
            notes.append(f"{label}: marked safe (django-migration-linter IgnoreMigration / ignore_name)")
            continue
        state = loader.project_state((migration.app_label, migration.name), at_end=False)
        try:
            with connection.schema_editor(collect_sql=True, atomic=migration.atomic) as editor:
                migration.apply(state, editor, collect_sql=True)
                collected = list(editor.collected_sql)
        except Exception as exc:  # noqa: BLE001 - what sqlmigrate would fail with
            raise GateError(f"cannot render the SQL of {label}: {type(exc).__name__}: {first_line(exc)}") from None
        descriptions = [op.describe() for op in migration.operations]
        try:
            chunks = split_by_operation(collected, descriptions)
        except GateError as exc:
            raise GateError(f"{label}: {exc}") from None
        for index, (op, statements) in enumerate(zip(migration.operations, chunks), start=1):
            if not getattr(op, "reduces_to_sql", True):
                notes.append(f"{label} operation {index} ({op.describe()}): Python code, not checked")
            errors, _ignored, warnings = analyse(analyser, statements, excluded)
            for issue, is_error in [(e, True) for e in errors] + [(w, False) for w in warnings]:
                if only_new_tables(issue.table, statements, created):
                    continue  # a table of this plan: no serving code uses it
                findings.append(
                    Finding(
                        label,
                        index,
                        op.describe(),
                        issue.code,
                        issue.message,
                        issue.table,
                        issue.column,
                        error=is_error,
                    )
                )
            created |= created_tables(statements)
    return verdict(plan, findings, notes, mode)


def first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [""])[0][:300]


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m django_docker_runtime.migration_gate")
    parser.add_argument("--mode", choices=MODES, default="gate")
    parser.add_argument("--database", default="default")
    args = parser.parse_args(argv)
    try:
        import django

        django.setup()
        # The linter logs each statement it tests at DEBUG; under an app at DEBUG (dev) they
        # buried the gate's own lines in the job's last lines. Its findings are ours to print.
        logging.getLogger("django_migration_linter").setLevel(logging.INFO)
        result = check(args.database, args.mode)
    except GateError as exc:
        print(f"{PREFIX} cannot check: {exc}", flush=True)
        return EXIT_ERROR
    except Exception as exc:  # noqa: BLE001 - settings that do not import, a migration that does not
        print(f"{PREFIX} cannot check: {type(exc).__name__}: {first_line(exc)}", flush=True)
        return EXIT_ERROR
    for line in result.lines:
        print(line, flush=True)
    return result.exit_code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
