"""failed-migration: a release whose migration the data breaks. `pulumi up` fails at the
migrate job, the old release keeps serving, and the backup taken just before the migration is
there (stacks with backupBeforeMigrate); the operator fixes the data and runs `pulumi up`
again with the same image, which runs the migration again and releases."""

from components import render
from rehearsal.scenarios.failed_backup import backups_of, new_backup, takes_backups
from rehearsal.scenarios.scenario import Scenario, Up, expect

BAD_ROW = "insert into visits_visit (created_at, path, served_by, processed_by) values (now(), '', 'rehearsal', '')"


_BACKUPS_BEFORE: dict[str, set] = {}  # per stack: the backups there before this release


def bad_row(ctx) -> str:
    if takes_backups(ctx):
        _BACKUPS_BEFORE[ctx.stack] = {b.name for b in backups_of(ctx).list()}
    ctx.psql(BAD_ROW)
    return "a visit without a path is in the database (the new constraint forbids it)"


def fix(ctx) -> str:
    ctx.psql("delete from visits_visit where path = ''")
    return "the operator deletes the row without a path"


def failed(ctx, result) -> str:
    expect("django-docker-release-migrate" in (result.error or ""), f"failed elsewhere: {result.error}")
    expect("visit_path_not_empty" in (result.error or "") or "exited" in (result.error or ""), result.error or "")
    sha = ctx.serving_sha()
    expect(sha == ctx.serving_before, f"/health/ reports {sha}, not the release that ran before")
    recorded = ctx.psql("select count(*) from django_migrations where name = '0002_visit_path_not_empty'")
    expect(recorded == "0", "the failed migration is recorded as applied")
    return f"`pulumi up` failed at migrate; {sha[:12]} still serves; the migration is not applied" + backup_taken(ctx)


def backup_taken(ctx) -> str:
    """The before-migrate backup of the failed release: there, complete, holding the data the migration met."""
    if not takes_backups(ctx):
        return " (this stack takes no backup before migrating)"
    taken = new_backup(ctx, "bad-migration", _BACKUPS_BEFORE.get(ctx.stack, set()))
    code, listing = backups_of(ctx).run(["pg_restore", "--list", f"{render.BACKUP_DIR}/{taken.name}"])
    expect(code == 0 and "TABLE DATA public visits_visit" in listing, "the backup is not a readable dump of the visits")
    return f"; the backup taken before it: {taken.name} ({taken.size} bytes, readable)"


def released(ctx, result) -> str:
    ran = [
        r.step.name for r in result.reports if r.step.name == "django-docker-release-migrate" and r.step.op != "same"
    ]
    expect(ran, "the migrate job did not run again")
    recorded = ctx.psql("select count(*) from django_migrations where name = '0002_visit_path_not_empty'")
    expect(recorded == "1", "the migration is not recorded as applied")
    sha = ctx.serving_sha()
    expect(sha == ctx.sha_of("bad-migration"), f"/health/ reports {sha}, not the new release")
    return f"the same `pulumi up` again ran migrate and released {sha[:12]}"


SCENARIO = Scenario(
    "failed-migration",
    (
        Up(
            "a release with a constraint migration the data breaks",
            image="bad-migration",
            succeeds=False,
            before=bad_row,
            check=failed,
        ),
        Up("the same release again, after the data was fixed", before=fix, check=released),
    ),
)
