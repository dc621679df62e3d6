"""Volumes: PostgreSQL data, Redis data, database backups, static files, media (the last two
only when the app has them: staticRoot, mediaRoot), and with backupPitr `postgres-run`:
PostgreSQL's socket directory and the WAL segments waiting for the backup accessory to ship
them (data: a segment there is in no other place yet).

With `protectData` the data volumes (backups included) are `protect`ed and `retain_on_delete`.
What that does and does not do: `protect` does not stop a `pulumi destroy` (or an update that
deletes them) from starting. The engine refuses only the protected resource's own delete step
(pulumi/pulumi pkg/resource/deploy/step.go, DeleteStep.Apply: deleteProtectedError), so a
destroy removes the containers, networks and file volumes, then fails at these volumes, and the
data stays. `retain_on_delete` keeps the Docker volume even when the protection was lifted
(DeleteStep.Apply skips the provider's delete). Removing a stack on purpose: docs/operations.md,
"Removing a stack (and what `protect` does)".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import pulumi
import pulumi_docker as docker

from components.common import child_options, label_args, resource_labels
from components.settings import Deployment

DATA_VOLUMES = ("postgres-data", "redis-data", "backups", "postgres-run")
FILE_VOLUMES = ("static", "media")
# nginx's configuration (components/nginx_site.py), on the containers target: rewritten from the
# stack's state by every `pulumi up` that changes it, so not data.
SITE_VOLUMES = ("nginx-site",)
# tlsMode acme (components/acme.py): lego's account key, orders and certificates (data: protected
# with protectData, like the database) and the HTTP-01 challenge files (transient).
ACME_VOLUMES = ("acme", "acme-webroot")
PROTECTED = (*DATA_VOLUMES, "acme")


@dataclass(frozen=True, kw_only=True)
class VolumesArgs:
    deployment: Deployment
    """The stack's name (labels), frontend subnet, whether data is protected."""
    static: bool
    """The app has static files (a volume collectstatic fills and nginx serves)."""
    media: bool
    """The app has uploads (a volume web and Celery write, nginx serves)."""
    nginx_site: bool = False
    """nginx reads its configuration from a volume (the containers target)."""
    acme: bool = False
    """tlsMode acme: the ACME client's volumes."""
    wal_spool: bool = False
    """backupPitr: PostgreSQL's socket directory and WAL spool, shared with the backup accessory."""


class Volumes(pulumi.ComponentResource):
    postgres_data: pulumi.Output[str]
    redis_data: pulumi.Output[str]
    backups: pulumi.Output[str]
    postgres_run: Optional[pulumi.Output[str]]
    static: Optional[pulumi.Output[str]]
    media: Optional[pulumi.Output[str]]
    nginx_site: Optional[pulumi.Output[str]]
    acme: Optional[pulumi.Output[str]]
    acme_webroot: Optional[pulumi.Output[str]]

    def __init__(self, name: str, args: VolumesArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("django-docker:components:Volumes", name, None, opts)
        names = {}
        wanted = {"static": args.static, "media": args.media}
        wanted["nginx-site"] = args.nginx_site
        wanted.update({kind: args.acme for kind in ACME_VOLUMES})
        data = tuple(kind for kind in DATA_VOLUMES if kind != "postgres-run" or args.wal_spool)
        for kind in data + tuple(kind for kind in FILE_VOLUMES + SITE_VOLUMES + ACME_VOLUMES if wanted[kind]):
            protected = args.deployment.protect_data and kind in PROTECTED
            # On swarm with shared storage, static and media are the NFS export on every node.
            shared = args.deployment.shared_volume_options() if kind in FILE_VOLUMES else None
            volume = docker.Volume(
                f"{name}-{kind}",
                driver="local" if shared else None,
                driver_opts=shared,
                labels=label_args(
                    resource_labels(what="volume", kind=kind, stack=args.deployment.stack), docker.VolumeLabelArgs
                ),
                opts=child_options(self, opts, protect=protected, retain_on_delete=protected),
            )
            names[kind] = volume.name
        self.postgres_data = names["postgres-data"]
        self.redis_data = names["redis-data"]
        self.backups = names["backups"]
        self.postgres_run = names.get("postgres-run")
        self.static = names.get("static")
        self.media = names.get("media")
        self.nginx_site = names.get("nginx-site")
        self.acme = names.get("acme")
        self.acme_webroot = names.get("acme-webroot")
        self.shared_options = args.deployment.shared_volume_options()
        """Swarm: how a service on another node mounts static and media (None: plain local volumes)."""
        self.register_outputs(dict(names))
