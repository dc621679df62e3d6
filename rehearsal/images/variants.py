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
    )
}


def scratch_dir() -> Path:
    return Path(tempfile.mkdtemp(prefix="rehearsal-variants-"))
