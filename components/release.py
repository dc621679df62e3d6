"""Release: the jobs that run before any web replica or worker changes.

`migrate` applies migrations; `collectstatic` copies the image's static files (hashed names,
so old and new releases coexist) into the static volume nginx serves. Each is a Job
(components/job.py): run to completion by `pulumi up`, recorded only when it exited 0. A
failed job fails `pulumi up` before anything that waits for it changes, and, being recorded
nowhere, runs again on the next `pulumi up`. `gate` resolves only when both succeeded; every
long-running app container takes it as an input (a label), so none of them changes earlier,
and all of them are replaced when the jobs ran again.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_docker as docker

from components import render
from components.common import AppRuntime, hardened_app_kwargs, label_args, memory_kwargs
from components.job import Job, JobArgs

# A migration may rewrite a big table; one that runs longer than this is killed and fails.
JOB_TIMEOUT_SECONDS = 1800


@dataclass(frozen=True, kw_only=True)
class ReleaseArgs:
    runtime: AppRuntime
    """The app image and its environment."""
    static_volume: pulumi.Input[str]
    """Volume nginx serves /static/ from; mounted at STATIC_ROOT for collectstatic."""
    memory_mb: int
    """Memory limit of each job."""


class Release(pulumi.ComponentResource):
    gate: pulumi.Output[str]
    """The migrate run's id; resolves only after both jobs exited 0."""

    def __init__(self, name: str, args: ReleaseArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("django-docker:components:Release", name, None, opts)
        rt = args.runtime

        def job(step: str, command: list[str], volumes: list[docker.ContainerVolumeArgs]) -> Job:
            return Job(
                f"{name}-{step}",
                JobArgs(
                    name_prefix=f"{name}-{step}",
                    image=rt.image,
                    command=command,
                    envs=rt.env,
                    networks_advanced=[docker.ContainerNetworksAdvancedArgs(name=rt.backend_network)],
                    volumes=volumes,
                    labels=label_args(rt.label_map(step)),
                    timeout_seconds=JOB_TIMEOUT_SECONDS,
                    docker_host=rt.docker_host,
                    **memory_kwargs(args.memory_mb),
                    **hardened_app_kwargs(),
                ),
                # Create-before-delete, said on purpose: a new run starts while the recorded
                # one stays; deleting a finished run does nothing. And a job waits for what its
                # component waits for (healthy postgres and redis).
                pulumi.ResourceOptions(parent=self, depends_on=opts.depends_on if opts else None,
                                       delete_before_replace=False),
            )

        migrate = job("migrate", render.migrate_command(), [])
        static = job(
            "collectstatic",
            render.collectstatic_command(),
            [docker.ContainerVolumeArgs(volume_name=args.static_volume, container_path=render.STATIC_ROOT)],
        )
        # The value is migrate's run id (a label every replica carries); both jobs must have run.
        self.gate = pulumi.Output.all(migrate.run_id, static.run_id).apply(lambda ids: ids[0])
        self.register_outputs({"gate": self.gate})
