"""Release: the one-shot containers that run before any web replica or worker changes.

`migrate` applies migrations; `collectstatic` copies the image's static files (hashed names,
so old and new releases coexist) into the static volume nginx serves. Both run the new image
to completion; `gate` resolves only when both exited 0, and every long-running app container
takes it as an input, so a failed release fails `pulumi up` before the running replicas change.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import pulumi
import pulumi_docker as docker

from components import render
from components.common import AppRuntime, child_options

LOG_TAIL_LINES = 20


class ReleaseError(pulumi.RunError):
    """A one-shot release container exited non-zero."""


def check_exit(step: str, exit_code: Optional[int], logs: Optional[str]) -> None:
    if exit_code == 0:
        return
    tail = " | ".join((logs or "").strip().splitlines()[-LOG_TAIL_LINES:]) or "no output"
    raise ReleaseError(f"release: {step} exited with {exit_code}; running containers were left as they were. Last lines: {tail}")


@dataclass(frozen=True, kw_only=True)
class ReleaseArgs:
    runtime: AppRuntime
    """The app image and its environment."""
    static_volume: pulumi.Input[str]
    """Volume nginx serves /static/ from; mounted at STATIC_ROOT for collectstatic."""
    memory_mb: int
    """Memory limit of each one-shot."""


class Release(pulumi.ComponentResource):
    gate: pulumi.Output[str]
    """Resolves (to the migrate container's id) only after both one-shots exited 0."""

    def __init__(self, name: str, args: ReleaseArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("django-docker:components:Release", name, None, opts)
        rt = args.runtime

        def one_shot(step: str, command: list[str], volumes: list[docker.ContainerVolumeArgs]) -> docker.Container:
            return docker.Container(
                f"{name}-{step}",
                **rt.container_kwargs(step, command, memory_mb=args.memory_mb, volumes=volumes),
                restart="no",
                must_run=False,  # it is meant to exit
                attach=True,  # wait for the exit, then read exit_code
                logs=True,
                opts=child_options(self, opts),
            )

        migrate = one_shot("migrate", render.migrate_command(), [])
        static = one_shot(
            "collectstatic",
            render.collectstatic_command(),
            [docker.ContainerVolumeArgs(volume_name=args.static_volume, container_path=render.STATIC_ROOT)],
        )

        def check(values: list) -> str:
            migrate_id, migrate_code, migrate_logs, static_code, static_logs = values
            check_exit("migrate", migrate_code, migrate_logs)
            check_exit("collectstatic", static_code, static_logs)
            return migrate_id

        self.gate = pulumi.Output.all(
            migrate.id, migrate.exit_code, migrate.container_logs, static.exit_code, static.container_logs
        ).apply(check)
        self.register_outputs({"gate": self.gate})
