"""failed-backup: a release whose before-migrate backup cannot be written (a full disk, a
read-only mount: here the backups volume made unwritable). `pulumi up` fails at the backup job,
before migrate runs; the old release keeps serving. Once the volume is writable again, the same
`pulumi up` takes the backup, migrates and releases. Stacks without backupBeforeMigrate skip it."""

from components import render
from ops.backup import Backup, Backups
from ops.stack import StackOnHost
from rehearsal.scenarios.scenario import Scenario, Up, expect

BACKUP_JOB = "django-docker-release-backup"
_BEFORE: dict[str, dict] = {}  # per stack: what lock() saw, for the checks after


def backups_of(ctx) -> Backups:
    """The stack's backups, through ops (the commands an operator uses)."""
    return Backups(StackOnHost(ctx.stack, client=ctx.session.client))


def _chmod(ctx, mode: str) -> None:
    store = backups_of(ctx)
    ctx.session.client.containers.run(
        store.postgres["Image"],
        ["chmod", mode, render.BACKUP_DIR],
        remove=True,
        labels=ctx.session.run_labels,
        volumes={store.volume: {"bind": render.BACKUP_DIR}},
    )


def before_migrate_backups(ctx) -> list[Backup]:
    """The stack's before-migrate backups (`<time>-<stack>-before-<sha>.dump`): not the scheduled
    ones, which fire meanwhile when the faults share the stack (its schedule: every 30s)."""
    return [b for b in backups_of(ctx).list() if f"-{ctx.stack}-before-" in b.name]


def new_backup(ctx, variant: str, before: set[str]) -> Backup:
    """The one backup the before-migrate job took for `variant`'s release since `before` (the
    names there then): the same release may have run earlier in the rehearsal (new-commit)."""
    wanted = f"-{render.short_sha(ctx.sha_of(variant))}.dump"
    taken = [b for b in before_migrate_backups(ctx) if b.name.endswith(wanted) and b.name not in before]
    expect(len(taken) == 1, f"expected one new backup *{wanted}, found {[b.name for b in taken]}")
    return taken[0]


def takes_backups(ctx) -> bool:
    """Whether the stack runs a backup job before migrate (backupBeforeMigrate)."""
    return any(r.label("django-docker.service") == "backup" for r in ctx.rp.plan.resources)


def lock(ctx) -> str:
    expect(takes_backups(ctx), "this stack takes no backup before migrating (backupBeforeMigrate is off)")
    _BEFORE[ctx.stack] = {
        "migrations": ctx.psql("select count(*) from django_migrations"),
        "backups": {b.name for b in backups_of(ctx).list()},
    }
    _chmod(ctx, "0")
    return "the backups volume is made unwritable"


def failed(ctx, result) -> str:
    expect(BACKUP_JOB in (result.error or ""), f"failed elsewhere: {result.error}")
    ran = {r.step.name for r in result.reports if r.step.op != "same"}
    expect("django-docker-release-migrate" not in ran, "migrate ran although the backup failed")
    expect(ctx.psql("select count(*) from django_migrations") == _BEFORE[ctx.stack]["migrations"], "migrations changed")
    sha = ctx.serving_sha()
    expect(sha == ctx.serving_before, f"/health/ reports {sha}, not the release that ran before")
    return f"`pulumi up` failed at the backup, migrate never ran; {sha[:12]} still serves"


def unlock(ctx) -> str:
    _chmod(ctx, "755")
    return "the backups volume is writable again"


def released(ctx, result) -> str:
    ran = {r.step.name for r in result.reports if r.step.op != "same"}
    expect({BACKUP_JOB, "django-docker-release-migrate"} <= ran, f"backup and migrate did not both run: {sorted(ran)}")
    taken = new_backup(ctx, "next-commit", _BEFORE[ctx.stack]["backups"])
    sha = ctx.serving_sha()
    expect(sha == ctx.sha_of("next-commit"), f"/health/ reports {sha}, not the new release")
    return f"the same `pulumi up` again took {taken.name}, migrated and released {sha[:12]}"


SCENARIO = Scenario(
    "failed-backup",
    (
        Up(
            "the next commit, with the backups volume unwritable",
            image="next-commit",
            succeeds=False,
            before=lock,
            check=failed,
        ),
        Up("the same release again, with the volume writable", before=unlock, check=released),
    ),
)
