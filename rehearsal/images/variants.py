"""App image variants the release rehearsal deploys: other commits of django_app/.

Each variant is a commit the rehearsal makes up: a git SHA (what the program tags and labels
the image with) and, for the broken ones, a copy of django_app/ with one realistic defect.
The product's files are never edited; a variant lives in a temporary directory.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from planning.harness import PROJECT_ROOT

APP = PROJECT_ROOT / "django_app"

# A constraint migration that the data in the database can break: a row without a path.
BAD_ROW_MIGRATION = '''\
from django.db import migrations, models


class Migration(migrations.Migration):
    """Rehearsal: every visit has a path (fails while a row without one exists)."""

    dependencies = [("visits", "0001_initial")]

    operations = [
        migrations.AddConstraint(
            model_name="visit",
            constraint=models.CheckConstraint(condition=~models.Q(path=""), name="visit_path_not_empty"),
        ),
    ]
'''

# A release whose WSGI module cannot be imported (a dependency missing from the image):
# migrate and the workers never import it, web does.
BROKEN_WSGI = '''\
"""Rehearsal: this release's WSGI module needs a package the image does not have."""

import rehearsal_missing_dependency  # noqa: F401
from django.core.wsgi import get_wsgi_application
from django_docker_runtime import env

env.default_settings_module("config.settings.production")

application = get_wsgi_application()
'''


# --- the migration gate's releases (scenarios incompatible-migration, expand-contract,
# maintenance-migration): each is the example's next version, made by editing a copy of its
# files here, never by committing a second copy.


def patched(path: str, *edits: tuple[str, str]) -> tuple[str, str]:
    """(path, the example's file with each (old, new) edit made); an edit whose old text is no
    longer in the file fails loudly (the example changed: the variant must follow it)."""
    text = (APP / path).read_text()
    for old, new in edits:
        if old not in text:
            raise ValueError(f"variants: {path} no longer contains {old!r}")
        text = text.replace(old, new)
    return path, text


def migration(name: str, depends: str, operations: str, imports: str = "") -> tuple[str, str]:
    return (
        f"visits/migrations/{name}.py",
        f'''"""Rehearsal: {name}."""

from django.db import migrations, models{imports}


class Migration(migrations.Migration):
    dependencies = [("visits", "{depends}")]

    operations = [
{operations}
    ]
''',
    )


VISITS_SO_FAR_FIELD = (
    "    # The task's result: how many visits had been recorded when this one was processed.\n"
    "    visits_so_far = models.PositiveIntegerField(null=True, blank=True)\n"
)
POSITION_FIELD = "    position = models.PositiveIntegerField(null=True, blank=True)\n"
COUNT = "Visit.objects.filter(pk__lte=visit_id).count()"
WRITES_VISITS_SO_FAR = f"        visits_so_far={COUNT},\n"
TEMPLATE = "visits/templates/visits/index.html"
SHOWS_VISITS_SO_FAR = '{{ v.visits_so_far|default_if_none:"" }}'

# Drops a column the serving release reads (its model selects it) and writes: refused by the gate.
INCOMPATIBLE = (
    migration(
        "0002_remove_visit_visits_so_far", "0001_initial", '        migrations.RemoveField("visit", "visits_so_far"),'
    ),
    patched("visits/models.py", (VISITS_SO_FAR_FIELD, "")),
    patched("visits/tasks.py", (WRITES_VISITS_SO_FAR, "")),
    patched(TEMPLATE, (SHOWS_VISITS_SO_FAR, "")),
)

# Expand/contract of `visits_so_far` into `position`, three releases (the columns the rest of
# the rehearsal and the faults use stay as they are):
# 1. expand: a nullable column, written beside the old one (which is still read);
EXPAND = (
    migration(
        "0002_visit_position",
        "0001_initial",
        '        migrations.AddField("visit", "position", models.PositiveIntegerField(null=True, blank=True)),',
    ),
    patched("visits/models.py", (VISITS_SO_FAR_FIELD, VISITS_SO_FAR_FIELD + POSITION_FIELD)),
    patched("visits/tasks.py", (WRITES_VISITS_SO_FAR, WRITES_VISITS_SO_FAR + f"        position={COUNT},\n")),
)
# 2. the code stops reading and writing the old column: gone from the model (the state only; it
#    is nullable already, so rows without it can be written). Safe for release 1.
STOP_READING = (
    EXPAND[0],
    migration(
        "0003_visit_visits_so_far_unused",
        "0002_visit_position",
        """        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.RemoveField("visit", "visits_so_far")],
        ),""",
    ),
    patched("visits/models.py", (VISITS_SO_FAR_FIELD, POSITION_FIELD)),
    patched("visits/tasks.py", (WRITES_VISITS_SO_FAR, f"        position={COUNT},\n")),
    patched(TEMPLATE, (SHOWS_VISITS_SO_FAR, '{{ v.position|default_if_none:"" }}')),
)
# 3. contract: the column no release reads any more is dropped; the gate would refuse the drop,
#    so the migration says it is safe with the linter's own mark.
CONTRACT = (
    *STOP_READING,
    migration(
        "0004_drop_visit_visits_so_far",
        "0003_visit_visits_so_far_unused",
        """        IgnoreMigration(),  # contract step: no serving release reads visits_so_far (0003)
        migrations.RunSQL(
            'ALTER TABLE "visits_visit" DROP COLUMN "visits_so_far"',
            reverse_sql='ALTER TABLE "visits_visit" ADD COLUMN "visits_so_far" integer NULL',
        ),""",
        imports="\nfrom django_migration_linter import IgnoreMigration",
    ),
)
# After the three: a migration the serving release (3) cannot survive, run in maintenance mode.
MAINTENANCE = (
    *(file for file in CONTRACT if file[0].startswith("visits/migrations/")),
    migration(
        "0005_remove_visit_position",
        "0004_drop_visit_visits_so_far",
        '        migrations.RemoveField("visit", "position"),',
    ),
    patched("visits/models.py", (VISITS_SO_FAR_FIELD, "")),
    patched("visits/tasks.py", (WRITES_VISITS_SO_FAR, "")),
    patched(TEMPLATE, (SHOWS_VISITS_SO_FAR, "")),
)


@dataclass(frozen=True)
class Variant:
    name: str
    git_sha: Optional[str]
    """None: the checkout's own commit (what `pulumi up` would tag)."""
    files: tuple[tuple[str, str], ...] = ()
    """(path under django_app/, content) written over a copy of django_app/."""

    def context(self, scratch: Path) -> Optional[Path]:
        """The build context: django_app/ itself, or a patched copy of it under `scratch`."""
        if not self.files:
            return None
        target = scratch / self.name
        if not target.exists():
            shutil.copytree(APP, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
            for path, content in self.files:
                (target / path).write_text(content)
        return target


def _sha(name: str) -> str:
    return hashlib.sha1(f"rehearsal:{name}".encode()).hexdigest()


VARIANTS = {
    v.name: v
    for v in (
        Variant("current", None),
        Variant("next-commit", _sha("next-commit")),
        Variant(
            "bad-migration",
            _sha("bad-migration"),
            (("visits/migrations/0002_visit_path_not_empty.py", BAD_ROW_MIGRATION),),
        ),
        Variant("broken-wsgi", _sha("broken-wsgi"), (("config/wsgi.py", BROKEN_WSGI),)),
        Variant("incompatible-migration", _sha("incompatible-migration"), INCOMPATIBLE),
        Variant("expand", _sha("expand"), EXPAND),
        Variant("stop-reading", _sha("stop-reading"), STOP_READING),
        Variant("contract", _sha("contract"), CONTRACT),
        Variant("maintenance-migration", _sha("maintenance-migration"), MAINTENANCE),
    )
}


def scratch_dir() -> Path:
    return Path(tempfile.mkdtemp(prefix="rehearsal-variants-"))
