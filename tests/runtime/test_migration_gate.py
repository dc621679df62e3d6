"""The release's compatibility gate (django_docker_runtime.migration_gate): its pure parts with
plain asserts, then the whole check against the real PostgreSQL (the example's test database:
visits.0001 applied) with migration modules made for each case (MIGRATION_MODULES)."""

import sys
import textwrap

import pytest

from django_docker_runtime import migration_gate as gate
from django_docker_runtime.migration_gate import Finding, GateError

# --- pure ------------------------------------------------------------------------------------

COLLECTED = [
    "BEGIN;",
    "--",
    "-- Add field note to visit",
    "--",
    'ALTER TABLE "visits_visit" ADD COLUMN "note" text NULL;',
    "--",
    "-- Remove field path from visit",
    "--",
    'ALTER TABLE "visits_visit" DROP COLUMN "path" CASCADE;',
    "--",
    "-- Raw Python operation",
    "--",
    "-- THIS OPERATION CANNOT BE WRITTEN AS SQL",
    "COMMIT;",
]


def test_split_by_operation_gives_each_operation_its_statements():
    chunks = gate.split_by_operation(
        COLLECTED, ["Add field note to visit", "Remove field path from visit", "Raw Python operation"]
    )
    assert chunks == [
        ['ALTER TABLE "visits_visit" ADD COLUMN "note" text NULL;'],
        ['ALTER TABLE "visits_visit" DROP COLUMN "path" CASCADE;'],
        [],
    ]
    assert gate.cannot_be_sql(COLLECTED)


def test_split_by_operation_refuses_headers_that_do_not_match():
    with pytest.raises(GateError, match="could not be told apart"):
        gate.split_by_operation(COLLECTED, ["Add field note to visit"])
    with pytest.raises(GateError):
        gate.split_by_operation(COLLECTED, ["Add field x", "Remove field path from visit", "Raw Python operation"])


def test_created_tables():
    assert gate.created_tables(['CREATE TABLE "shop_order" ("id" bigint);', "ALTER TABLE x"]) == {"shop_order"}


class IgnoreMigration:  # the linter's class is matched by name
    pass


def test_marked_safe_by_the_linters_operation_or_its_settings():
    assert gate.is_marked_safe([object(), IgnoreMigration()], "0003_x", [], "")
    assert gate.is_marked_safe([], "0003_x", ["0003_x"], "")
    assert gate.is_marked_safe([], "0003_drop_x", [], "_drop_")
    assert not gate.is_marked_safe([object()], "0003_x", ["0002_y"], "")


DROP = Finding(
    "visits.0003_drop", 2, "Remove field path from visit", "DROP_COLUMN", "DROPPING columns", "visits_visit", "path"
)


def test_one_line_per_offending_operation_and_refusal():
    v = gate.verdict(["visits.0002_a", "visits.0003_drop"], [DROP], [], "gate")
    assert v.exit_code == gate.EXIT_REFUSED
    assert v.lines[0] == "migration-gate: 2 new migration(s) for this database: visits.0002_a, visits.0003_drop"
    assert v.lines[1] == (
        "migration-gate: visits.0003_drop operation 2 (Remove field path from visit): DROPPING columns "
        "[DROP_COLUMN] on visits_visit.path: the serving release cannot survive it"
    )
    assert v.lines[-1].startswith("migration-gate: refused: 1 operation(s) in visits.0003_drop")
    assert "IgnoreMigration" in v.lines[-1] and "migrationMode maintenance" in v.lines[-1]


def test_maintenance_mode_prints_the_same_operations_and_passes():
    v = gate.verdict(["visits.0003_drop"], [DROP], [], "maintenance")
    assert v.exit_code == gate.EXIT_OK
    assert "allowed: migrationMode maintenance" in v.lines[1]
    assert v.lines[-1] == "migration-gate: ok in maintenance mode: 1 incompatible operation(s) in visits.0003_drop"


def test_warnings_and_notes_never_refuse():
    warning = Finding("a.0002", 1, "Create index", "CREATE_INDEX", "CREATE INDEX locks table", "a_b", error=False)
    v = gate.verdict(
        ["a.0002"], [warning], ["a.0002 operation 2 (Raw Python operation): Python code, not checked"], "gate"
    )
    assert v.exit_code == gate.EXIT_OK
    assert "warning (not refused)" in v.lines[2]
    assert v.lines[1].endswith("Python code, not checked")


def test_no_plan_fresh_database_and_unknown_mode():
    assert gate.verdict([], [], [], "gate") == gate.Verdict(("migration-gate: no new migration for this database",), 0)
    assert gate.verdict(["a.0001"], [DROP], [], "gate", fresh=True).exit_code == gate.EXIT_OK
    with pytest.raises(GateError, match="not one of gate, maintenance"):
        gate.verdict([], [], [], "yolo")


# --- against the real PostgreSQL ----------------------------------------------------------------

INITIAL = (gate.__file__ and None) or None


def migrations_package(tmp_path, name: str, files: dict[str, str]) -> str:
    """A migrations package for `visits`: the real 0001 plus `files`; its module name."""
    from tests.django_support import APP_DIR

    package = tmp_path / name
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "0001_initial.py").write_text((APP_DIR / "visits/migrations/0001_initial.py").read_text())
    for filename, text in files.items():
        (package / filename).write_text(textwrap.dedent(text))
    sys.path.insert(0, str(tmp_path))
    return name


def migration(operations: str, imports: str = "") -> str:
    return (
        "from django.db import migrations, models\n"
        + imports
        + "\n\nclass Migration(migrations.Migration):\n"
        + '    dependencies = [("visits", "0001_initial")]\n'
        + f"    operations = [{operations}]\n"
    )


def run(settings, tmp_path, name, files, mode="gate"):
    from django.db.migrations.loader import MigrationLoader  # noqa: F401 - the loader reads MIGRATION_MODULES

    settings.MIGRATION_MODULES = {"visits": migrations_package(tmp_path, name, files)}
    try:
        return gate.check("default", mode)
    finally:
        sys.path.remove(str(tmp_path))


@pytest.mark.django_db
def test_a_dropped_column_is_refused_with_its_operation(settings, tmp_path):
    v = run(
        settings,
        tmp_path,
        "gate_drop",
        {
            "0002_note_drop_path.py": migration(
                'migrations.AddField("visit", "note", models.TextField(null=True)), migrations.RemoveField("visit", "path")'
            )
        },
    )
    assert v.exit_code == gate.EXIT_REFUSED, v.lines
    assert v.lines[0] == "migration-gate: 1 new migration(s) for this database: visits.0002_note_drop_path"
    offending = [line for line in v.lines if "cannot survive" in line]
    assert offending == [
        "migration-gate: visits.0002_note_drop_path operation 2 (Remove field path from visit): DROPPING columns "
        "[DROP_COLUMN] on visits_visit.path: the serving release cannot survive it"
    ]


@pytest.mark.django_db
def test_not_null_without_default_and_rename_are_refused_a_nullable_column_passes(settings, tmp_path):
    v = run(
        settings,
        tmp_path,
        "gate_mixed",
        {
            "0002_mixed.py": migration(
                'migrations.AddField("visit", "note", models.TextField(null=True)), '
                'migrations.AddField("visit", "kind", models.CharField(max_length=10, default="x"), preserve_default=False), '
                'migrations.RenameField("visit", "served_by", "server")'
            )
        },
    )
    codes = sorted((line.split(" operation ")[1].split(" ")[0], line) for line in v.lines if "cannot survive" in line)
    assert [c for c, _ in codes] == ["2", "3"], v.lines
    assert "[NOT_NULL]" in codes[0][1] and "[RENAME_COLUMN]" in codes[1][1]
    assert v.exit_code == gate.EXIT_REFUSED


@pytest.mark.django_db
def test_the_linters_mark_and_maintenance_mode_let_it_through(settings, tmp_path):
    files = {
        "0002_drop_path.py": migration(
            'IgnoreMigration(), migrations.RemoveField("visit", "path")',
            "from django_migration_linter import IgnoreMigration\n",
        )
    }
    v = run(settings, tmp_path, "gate_marked", files)
    assert v.exit_code == gate.EXIT_OK, v.lines
    assert "visits.0002_drop_path: marked safe" in v.lines[1]
    unmarked = {"0002_drop_path.py": migration('migrations.RemoveField("visit", "path")')}
    v = run(settings, tmp_path, "gate_maint", unmarked, mode="maintenance")
    assert v.exit_code == gate.EXIT_OK and "ok in maintenance mode" in v.lines[-1]


@pytest.mark.django_db
def test_a_table_created_in_the_same_plan_is_not_a_risk(settings, tmp_path):
    v = run(
        settings,
        tmp_path,
        "gate_new_table",
        {
            "0002_tag.py": migration(
                'migrations.CreateModel("Tag", [("id", models.BigAutoField(primary_key=True)), '
                '("name", models.CharField(max_length=20, null=True))]), '
                'migrations.AlterField("tag", "name", models.CharField(max_length=20, default="t"), preserve_default=False), '
                'migrations.AlterField("tag", "name", models.IntegerField(default=1), preserve_default=False)'
            )
        },
    )
    assert v.exit_code == gate.EXIT_OK, v.lines


@pytest.mark.django_db
def test_a_migration_that_does_not_import_is_one_line(settings, tmp_path, capsys, monkeypatch):
    settings.MIGRATION_MODULES = {
        "visits": migrations_package(tmp_path, "gate_broken", {"0002_broken.py": "import not_a_module\n"})
    }
    monkeypatch.setattr("django.setup", lambda *a, **k: None)
    try:
        code = gate.main(["--mode", "gate"])
    finally:
        sys.path.remove(str(tmp_path))
    out = capsys.readouterr().out.strip().splitlines()
    assert code == gate.EXIT_ERROR
    assert out == [
        "migration-gate: cannot check: cannot read the database's migrations: ModuleNotFoundError: No module named 'not_a_module'"
    ]


def test_only_new_tables():
    alter = ['ALTER TABLE "visits_tag" ALTER COLUMN "name" SET NOT NULL;']
    assert gate.touched_tables(alter + ['DROP TABLE "x" CASCADE;']) == {"visits_tag", "x"}
    assert gate.only_new_tables(None, alter, {"visits_tag"})
    assert gate.only_new_tables("visits_tag", [], {"visits_tag"})
    assert not gate.only_new_tables(None, alter, {"other"})
    assert not gate.only_new_tables(None, [], {"visits_tag"})


# --- the rehearsal's releases (rehearsal/images/variants.py): the verdicts their scenarios expect


def variant_migrations(tmp_path, variant: str) -> str:
    """The variant's visits migrations as a package of their own (its module name)."""
    from rehearsal.images.variants import VARIANTS

    package = f"variant_{variant.replace('-', '_')}"
    files = {
        path.rsplit("/", 1)[1]: text for path, text in VARIANTS[variant].files if path.startswith("visits/migrations/")
    }
    return migrations_package(tmp_path, package, files)


@pytest.mark.django_db
@pytest.mark.parametrize(
    "variant, mode, code, offending",
    [
        ("incompatible-migration", "gate", gate.EXIT_REFUSED, ["0002_remove_visit_visits_so_far operation 1"]),
        ("expand", "gate", gate.EXIT_OK, []),
        ("stop-reading", "gate", gate.EXIT_OK, []),
        ("contract", "gate", gate.EXIT_OK, []),
        ("maintenance-migration", "gate", gate.EXIT_REFUSED, ["0005_remove_visit_position operation 1"]),
        ("maintenance-migration", "maintenance", gate.EXIT_OK, []),
    ],
)
def test_the_rehearsals_releases_get_the_verdict_their_scenario_expects(
    settings, tmp_path, variant, mode, code, offending
):
    settings.MIGRATION_MODULES = {"visits": variant_migrations(tmp_path, variant)}
    try:
        v = gate.check("default", mode)
    finally:
        sys.path.remove(str(tmp_path))
    assert v.exit_code == code, v.lines
    refused = [line.split("visits.")[1].split(" (")[0] for line in v.lines if "cannot survive" in line]
    assert refused == offending, v.lines
    if variant == "contract":
        assert any("visits.0004_drop_visit_visits_so_far: marked safe" in line for line in v.lines)


# --- the command as the release job runs it (production settings, a subprocess) ---------------


def run_gate(database_url: str, *args: str):
    from tests.django_support import production_env, run_app

    return run_app(
        sys.executable,
        "-m",
        "django_docker_runtime.migration_gate",
        *args,
        env=production_env(DATABASE_URL=database_url),
    )


@pytest.mark.django_db(transaction=True)
def test_the_command_passes_on_the_examples_own_migrations():
    from tests.django_support import test_database_url

    result = run_gate(test_database_url(), "--mode", "gate")
    assert (result.returncode, result.stdout.strip()) == (0, "migration-gate: no new migration for this database"), (
        result.stderr
    )


def test_a_database_it_cannot_reach_is_one_line_and_no_release():
    from tests.django_support import closed_port

    result = run_gate(f"postgres://app:hunter2-not-shown@127.0.0.1:{closed_port()}/app")
    lines = result.stdout.strip().splitlines()
    assert result.returncode == gate.EXIT_ERROR, result.stderr
    assert len(lines) == 1 and lines[0].startswith(
        "migration-gate: cannot check: cannot read the database's migrations: OperationalError:"
    ), lines
    assert "hunter2" not in result.stdout + result.stderr


def test_an_unknown_mode_is_refused_by_the_command_line():
    result = run_gate("postgres://x@127.0.0.1:1/x", "--mode", "yolo")
    assert result.returncode == 2 and "invalid choice: 'yolo'" in result.stderr
