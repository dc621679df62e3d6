"""Release: the jobs that run before any web replica or worker changes.

`backup` (with backupBeforeMigrate) dumps the database into the backups volume before the
migration of every new image: migrate depends on it, so a failed backup fails `pulumi up`
before migrate touches anything, and the old release keeps serving. It is keyed on the image
(a new image is what can bring a migration); a run that only changes settings re-runs migrate
(a no-op then) without a new backup. With the backup accessory (backups.py) it runs the agent's
`take` in the accessory's image (a manifest of every table's rows with the dump, skipped while
the database has no table) and the accessory copies it off-host and applies retention; without
it, the postgres image's pg_dump and the retention of render.backup_command.

`migration-gate` runs first, before the backup: the runtime's compatibility gate
(`python -m django_docker_runtime.migration_gate --mode <migrationMode>`) in a container of
the new image checks the migrations the stack's database has not applied for operations the
serving release cannot survive, and fails `pulumi up` with one line per offending operation
(docs/operations.md, "The migration gate"). Everything else of the release waits for it. With
`migrationMode: maintenance` it lets them through, and `maintenance` (an NginxSite of the
maintenance configuration, keyed on the image) switches nginx to the maintenance page after the
backup and before migrate; nginx's own NginxSite switches back once the new web replicas are
healthy (components/nginx.py).

`migrate` applies migrations; `collectstatic` copies the image's static files (hashed names,
so old and new releases coexist) into the static volume nginx serves. Their commands are the
stack's (`migrateCommand`, `collectstaticCommand`); an empty one is no job. Each is a Job
(components/job.py): run to completion by `pulumi up`, recorded only when it exited 0. A
failed job fails `pulumi up` before anything that waits for it changes, and, being recorded
nowhere, runs again on the next `pulumi up`. `gate` resolves only when every job succeeded; every
long-running app container takes it as an input (a label), so none of them changes earlier,
and all of them are replaced when the jobs ran again.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Optional, Sequence, cast

import pulumi
import pulumi_docker as docker

from components import render
from components.backups import AGENT_CAPABILITIES
from components.common import (
    APP_TMPFS,
    DROP_ALL,
    LOG_DRIVER,
    LOG_OPTS,
    NO_NEW_PRIVILEGES,
    AppRuntime,
    child_options,
    hardened_app_kwargs,
    label_args,
    memory_kwargs,
)
from components.job import Job, JobArgs
from components.nginx_site import NginxSite, NginxSiteArgs
from components.settings import BackupSettings, PostgresSettings, WebSettings

# A migration may rewrite a big table; one that runs longer than this is killed and fails.
JOB_TIMEOUT_SECONDS = 1800


@dataclass(frozen=True, kw_only=True)
class ReleaseArgs:
    runtime: AppRuntime
    """The app image and its environment."""
    web: WebSettings
    """Each job gets a web replica's memory limit (the backup job too)."""
    postgres: PostgresSettings
    """The image whose pg_dump the backup runs without the backup accessory (it is on the host
    already: postgres runs it)."""
    backups: BackupSettings
    """Whether to back up before migrating, how many backups to keep."""
    backup_image: Optional[pulumi.Input[str]] = None
    """The backup accessory's image (None: there is no accessory)."""
    database_env: pulumi.Input[Sequence[str]]
    """PG* variables that reach the database (secret: the password)."""
    static_volume: Optional[pulumi.Input[str]]
    """Volume nginx serves the static files from; mounted at the app's STATIC_ROOT for
    collectstatic (None: the app has none)."""
    backups_volume: pulumi.Input[str]
    """Volume mounted at BACKUP_DIR."""
    maintenance_site: Optional[NginxSiteArgs] = None
    """migrationMode maintenance (containers): nginx's maintenance configuration, switched to
    before migrate (None: no maintenance window)."""


# The compatibility gate's job (its container name prefix and service label).
GATE_STEP = "migration-gate"
# The gate's value when the stack runs no release job at all.
NO_JOBS = "no-release-jobs"


class Release(pulumi.ComponentResource):
    gate: pulumi.Output[str]
    """The run ids of the jobs, joined; resolves only after every job exited 0."""

    def __init__(self, name: str, args: ReleaseArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("django-docker:components:Release", name, None, opts)
        rt = args.runtime

        # Every job waits for what the component waits for (healthy postgres and redis).
        # (a list of resources: __main__ passes [db, cache])
        waits_for: list[pulumi.Resource] = (
            list(cast(Sequence[pulumi.Resource], opts.depends_on)) if opts and opts.depends_on else []
        )
        backend = [docker.ContainerNetworksAdvancedArgs(name=rt.backend_network.name)]
        app = rt.app

        def job(step: str, command: Sequence[str], volumes: list[docker.ContainerVolumeArgs], after: list) -> Job:
            return Job(
                f"{name}-{step}",
                JobArgs(
                    name_prefix=f"{name}-{step}",
                    image=rt.image,
                    command=list(command),
                    envs=rt.env,
                    networks_advanced=backend,
                    volumes=volumes,
                    labels=label_args(rt.label_map(step)),
                    timeout_seconds=JOB_TIMEOUT_SECONDS,
                    **rt.deployment.docker.job_kwargs(),
                    **memory_kwargs(args.web.memory_mb),
                    **hardened_app_kwargs(),
                ),
                # Create-before-delete, said on purpose: a new run starts while the recorded
                # one stays; deleting a finished run does nothing.
                child_options(self, depends_on=waits_for + after, delete_before_replace=False),
            )

        # The gate: before anything else of the release (a refused release takes no backup).
        check = (
            job(GATE_STEP, render.migration_gate_command(app.migration_mode), [], []) if app.migrate_command else None
        )
        checked: list[Job] = [check] if check else []
        backup = None
        if args.backups.before_migrate:
            agent = args.backup_image is not None
            backup_image: pulumi.Input[str] = (
                args.backup_image if args.backup_image is not None else args.postgres.image.text
            )
            label = pulumi.Output.from_input(rt.git_sha).apply(lambda sha: f"before-{render.short_sha(sha)}")
            backup = Job(
                f"{name}-backup",
                JobArgs(
                    name_prefix=f"{name}-backup",
                    image=backup_image,
                    command=label.apply(
                        lambda text: render.backup_agent_command("take", "--label", text, "--skip-empty")
                        if agent
                        else render.backup_command(
                            stack=rt.deployment.stack,
                            label=text,
                            retention=args.backups.retention,
                            retention_days=args.backups.retention_days,
                        )
                    ),
                    envs=pulumi.Output.from_input(args.database_env).apply(
                        lambda env: [*env, f"BACKUP_STACK={rt.deployment.stack}", f"BACKUP_DIR={render.BACKUP_DIR}"]
                    )
                    if agent
                    else args.database_env,
                    networks_advanced=backend,
                    volumes=[
                        docker.ContainerVolumeArgs(volume_name=args.backups_volume, container_path=render.BACKUP_DIR)
                    ],
                    # The image it protects the data from is the trigger: a new one, a new backup.
                    labels=label_args(
                        {
                            **render.labels(service="backup", role="accessory", stack=rt.deployment.stack),
                            f"{render.LABEL_PREFIX}.before-image": rt.image,
                        }
                    ),
                    # Root of the image (the owner of a fresh volume), with no capability beyond
                    # what it needs: the postgres image's writes its own files; the agent's
                    # entrypoint gives the volume to the postgres user and becomes it.
                    read_only=True,
                    tmpfs=APP_TMPFS,
                    capabilities=docker.ContainerCapabilitiesArgs(
                        adds=AGENT_CAPABILITIES if agent else None, drops=DROP_ALL
                    ),
                    security_opts=NO_NEW_PRIVILEGES,
                    init=True,
                    log_driver=LOG_DRIVER,
                    log_opts=LOG_OPTS,
                    timeout_seconds=JOB_TIMEOUT_SECONDS,
                    **rt.deployment.docker.job_kwargs(),
                    **memory_kwargs(args.web.memory_mb),
                ),
                child_options(self, depends_on=waits_for + checked, delete_before_replace=False),
            )
        before_migrate: list[pulumi.Resource] = [*checked, *([backup] if backup else [])]
        if args.maintenance_site is not None and app.migrate_command:
            # Keyed on the image (a label of its helper): each new image switches nginx to the
            # maintenance page once the gate and the backup passed, just before migrate.
            site = args.maintenance_site
            maintenance = NginxSite(
                f"{name}-maintenance",
                dataclasses.replace(
                    site,
                    labels=[*site.labels, docker.ContainerLabelArgs(label=render.RELEASE_IMAGE_LABEL, value=rt.image)],
                ),
                child_options(self, depends_on=waits_for + before_migrate),
            )
            before_migrate = [*before_migrate, maintenance]
        jobs = []
        if app.migrate_command:
            jobs.append(job("migrate", app.migrate_command, [], before_migrate))
        if app.collectstatic_command and args.static_volume is not None:
            jobs.append(
                job(
                    "collectstatic",
                    app.collectstatic_command,
                    [docker.ContainerVolumeArgs(volume_name=args.static_volume, container_path=app.static_root)],
                    checked,
                )
            )
        # The value (a label every replica carries) is the first job's run id: migrate's when
        # there is one; it resolves once every job has run.
        self.gate = (
            # (not the gate's: it gates every job, and a new gate run alone, e.g. for a new
            # migrationMode, must not replace the replicas)
            pulumi.Output.all(*[j.run_id for j in jobs]).apply(lambda ids: ids[0])
            if jobs
            else pulumi.Output.from_input(NO_JOBS)
        )
        self.register_outputs({"gate": self.gate})
