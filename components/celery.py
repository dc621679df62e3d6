"""Celery: a worker from the app image (and, per stack, one beat scheduler); none at all when
the app has no Celery app (`celeryApp` empty).

On swarm (`target: swarm`) each is a service: the worker start-first, beat stop-first.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import pulumi
import pulumi_docker as docker

from components import render, swarm
from components.common import AppRuntime, container_options
from components.settings import CelerySettings

# A worker finishes its current task on SIGTERM (warm shutdown); give it time to.
WORKER_GRACE_SECONDS = 60


@dataclass(frozen=True, kw_only=True)
class CeleryArgs:
    settings: CelerySettings
    """Worker processes, memory of the worker and beat, whether beat runs."""
    runtime: AppRuntime
    """The app image and its environment."""
    release_gate: pulumi.Input[str]
    """Release.gate: workers change only after migrate succeeded."""


class Celery(pulumi.ComponentResource):
    worker_name: Optional[pulumi.Output[str]]
    """None when the app has no Celery app."""

    def __init__(self, name: str, args: CeleryArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("django-docker:components:Celery", name, None, opts)
        rt = args.runtime
        cs = args.settings
        if not cs.enabled:
            self.worker_name = None
            self.register_outputs({})
            return
        worker_command = render.worker_command(
            cs.app,
            concurrency=cs.concurrency,
            pool=cs.pool,
            max_tasks_per_child=cs.max_tasks_per_child,
            queues=cs.queues,
        )
        if rt.deployment.swarm:

            def service(role: str, command: list[str], *, start_first: bool) -> docker.Service:
                return swarm.app_service(
                    self,
                    f"{name}-{role}",
                    rt,
                    service=f"celery-{role}",
                    command=command,
                    health_role=role,
                    grace_seconds=WORKER_GRACE_SECONDS,
                    memory_mb=args.settings.memory_mb,
                    replicas=1,
                    start_first=start_first,
                    labels={"release": args.release_gate},
                )

            # The worker start-first (two consumers of one queue is what Celery is built for),
            # beat stop-first (two would send every scheduled task twice).
            worker_service = service("worker", worker_command, start_first=True)
            if cs.beat:
                service("beat", render.beat_command(cs.app), start_first=False)
            self.worker_name = worker_service.name
            self.register_outputs({"worker_name": self.worker_name})
            return

        def container(role: str, command: list[str], *, delete_before_replace: bool) -> docker.Container:
            return docker.Container(
                f"{name}-{role}",
                **rt.long_running_kwargs(
                    f"celery-{role}",
                    command,
                    health_role=role,
                    grace_seconds=WORKER_GRACE_SECONDS,
                    memory_mb=args.settings.memory_mb,
                    labels={"release": args.release_gate},
                ),
                opts=container_options(self, opts, delete_before_replace=delete_before_replace),
            )

        # Create-before-delete: two workers on one queue is what Celery is built for; the old
        # one keeps consuming until the new one answers its ping. In migrationMode maintenance
        # the old one stops first (its code does not survive the migration; tasks wait queued).
        worker = container("worker", worker_command, delete_before_replace=rt.app.migration_mode == "maintenance")
        if cs.beat:
            # Delete-before-replace: two beats would send every scheduled task twice.
            container("beat", render.beat_command(cs.app), delete_before_replace=True)
        self.worker_name = worker.name
        self.register_outputs({"worker_name": self.worker_name})
