"""expand-contract: the way through the gate without a maintenance window, in three releases
(docs/operations.md, "Expand/contract"): `visits_so_far` (the worker's count) becomes `position`.

1. expand: a nullable column `position`, written beside `visits_so_far`;
2. the code stops reading and writing `visits_so_far` (gone from the model state; the column
   stays, nullable already);
3. contract: `visits_so_far` dropped, in a migration marked safe with the linter's IgnoreMigration.

Each passes the gate; pages read and write the table while each release rolls out, and none
fails (release 1 serves during release 2's rollout, release 2 during release 3's)."""

from rehearsal.scenarios.incompatible_migration import SCHEMA
from rehearsal.scenarios.scenario import Scenario, Up, expect

APPLIED = "select count(*) from django_migrations where app = 'visits' and name = '{}'"


def released(variant: str, migration: str, columns: str):
    def check(ctx, _result) -> str:
        expect(ctx.psql(APPLIED.format(migration)) == "1", f"{migration} is not applied")
        schema = ctx.psql(SCHEMA)
        for column in columns.split():
            present = not column.startswith("-")
            name = column.lstrip("-")
            expect((f"{name} " in schema) == present, f"visits_visit: {name} {'missing' if present else 'still there'}")
        sha = ctx.serving_sha()
        expect(sha == ctx.sha_of(variant), f"/health/ reports {sha}, not {variant}")
        written = ctx.psql("select count(*) from visits_visit where position is not null")
        return f"{migration} applied; {sha[:12]} serves; {written} visits processed with a position"

    return check


SCENARIO = Scenario(
    "expand-contract",
    (
        Up(
            "release 1 (expand): adds the nullable position and writes it beside visits_so_far",
            image="expand",
            check=released("expand", "0002_visit_position", "position visits_so_far"),
        ),
        Up(
            "release 2: stops reading and writing visits_so_far (the column stays)",
            image="stop-reading",
            check=released("stop-reading", "0003_visit_visits_so_far_unused", "position visits_so_far"),
        ),
        Up(
            "release 3 (contract): drops visits_so_far, marked safe (IgnoreMigration)",
            image="contract",
            check=released("contract", "0004_drop_visit_visits_so_far", "position -visits_so_far"),
        ),
    ),
    pages=True,
    forecast_gate=True,
)
