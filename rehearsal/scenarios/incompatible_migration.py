"""incompatible-migration: a release whose migration drops a column the serving release reads
and writes (visits_so_far). The migration gate refuses it before the backup and the migration,
with one line naming the operation; `pulumi up` fails there, the database is unchanged (its
columns and its applied migrations), no before-migrate backup was taken (scheduled ones may
fire meanwhile), and the old release serves on, its pages reading the table throughout (the
scenario's page load)."""

from rehearsal.scenarios.failed_backup import before_migrate_backups, takes_backups
from rehearsal.scenarios.scenario import Scenario, Up, expect

GATE_JOB = "django-docker-release-migration-gate"
SCHEMA = (
    "select string_agg(column_name || ' ' || data_type || ' ' || is_nullable, ', ' order by column_name) "
    "from information_schema.columns where table_name = 'visits_visit'"
)
APPLIED = "select string_agg(app || '.' || name, ', ' order by id) from django_migrations"
OFFENDING = "visits.0002_remove_visit_visits_so_far operation 1 (Remove field visits_so_far from visit)"
_BEFORE: dict[str, dict] = {}  # per stack: the database and the backups before the release


def database(ctx) -> dict:
    return {"schema": ctx.psql(SCHEMA), "applied": ctx.psql(APPLIED)}


def before_migrate(ctx) -> set[str]:
    """The names of the before-migrate backups: only these say whether the release went past the
    gate (CI met a scheduled one within the scenario's 6 s)."""
    return {b.name for b in before_migrate_backups(ctx)}


def remember(ctx) -> str:
    _BEFORE[ctx.stack] = {
        **database(ctx),
        "backups": before_migrate(ctx) if takes_backups(ctx) else set(),
    }
    columns = _BEFORE[ctx.stack]["schema"].count(",") + 1
    return f"visits_visit has {columns} columns, visits_so_far among them"


def refused(ctx, result) -> str:
    error = result.error or ""
    expect(GATE_JOB in error, f"failed elsewhere: {error}")
    expect(OFFENDING in error and "[DROP_COLUMN]" in error, f"the gate's line does not name the operation: {error}")
    before = _BEFORE[ctx.stack]
    expect(database(ctx) == {k: before[k] for k in ("schema", "applied")}, "the database changed")
    ran = {r.step.name for r in result.reports if r.step.op != "same"} - {GATE_JOB}
    jobs = {n for n in ran if n.startswith("django-docker-release-")}
    expect(not jobs, f"release jobs ran after the refusal: {sorted(jobs)}")
    if takes_backups(ctx):
        taken = before_migrate(ctx) - before["backups"]
        expect(not taken, f"a backup was taken before migrate: {sorted(taken)}")
    sha = ctx.serving_sha()
    expect(sha == ctx.serving_before, f"/health/ reports {sha}, not the release that ran before")
    line = next(part for part in error.split(" | ") if OFFENDING in part)
    return f"refused before the backup and migrate: {line.strip()}; the database is unchanged; {sha[:12]} serves on"


SCENARIO = Scenario(
    "incompatible-migration",
    (
        Up(
            "a release whose migration drops visits_so_far, which the serving release reads and writes",
            image="incompatible-migration",
            succeeds=False,
            before=remember,
            check=refused,
        ),
    ),
    pages=True,
    forecast_gate=True,
)
