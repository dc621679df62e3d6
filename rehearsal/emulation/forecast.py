"""A release forecast: what an update (the model's plan of a `pulumi up`) will do to the running
site, in a few lines. Pure: from rehearsal.emulation.model's Update only.

    forecast(update) -> Forecast(lines, disruption)

- which containers are replaced and how (create-before-delete, or delete first), by service;
- which release jobs run (migration-gate, backup, migrate, collectstatic);
- whether nginx reloads (its site's configuration written again), and whether a maintenance
  window opens (the release's maintenance switch, migrationMode maintenance);
- the expected disruption, the worst of: `maintenance window`, `delete-first of <names>` (a
  container that serves stops before its successor starts), `nginx reload` (graceful: none
  refused), `none`.

What it cannot say: the migrations themselves and the gate's verdict, which need the new image
and the database (the gate job says them when it runs).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping

from planning.harness import CONTAINER, JOB, NGINX_SITE
from rehearsal.emulation.model import CREATE, DELETE, DELETE_FIRST, REPLACE, UPDATE, UpdatePlan

MAINTENANCE_SWITCH = "-release-maintenance"
# What serves: a delete-first of one of these is a disruption; beat and the accessories' restarts
# are not requests failing (beat is a singleton on purpose; postgres and redis are accessories
# whose replacement the release scenarios never make).
SERVING = ("web", "nginx")
JOB_ORDER = ("migration-gate", "backup", "migrate", "collectstatic")


@dataclass(frozen=True)
class Forecast:
    lines: tuple[str, ...]
    disruption: str
    """`none`, `nginx reload`, `delete-first of <names>` or `maintenance window`."""
    maintenance: bool
    replaced: Mapping[str, int] = field(default_factory=dict)
    """Service -> how many of its containers are replaced (either way)."""
    created: Mapping[str, int] = field(default_factory=dict)
    deleted: Mapping[str, int] = field(default_factory=dict)
    jobs: tuple[str, ...] = ()
    reload: bool = False
    """nginx's site written again and reloaded (the container kept)."""


def _service(step) -> str:
    resource = step.new if step.new is not None else step.old
    return resource.label("django-docker.service") or step.name


def forecast(update: UpdatePlan) -> Forecast:
    return forecast_steps(update.steps, _service)


def forecast_steps(steps: Iterable[Any], service_of: Callable[[Any], str]) -> Forecast:
    """The forecast of steps in the model's words: the model's plan (forecast) or the real
    engine's preview read by rehearsal/drivers/events.py (ops/forecast.py); `service_of` names a
    step's service (the label on a container, the job's name)."""
    steps = list(steps)
    replaced: Counter = Counter()
    first: set[str] = set()
    for s in steps:
        if s.type != CONTAINER:
            continue
        if s.op == REPLACE:
            how = "delete first" if s.mode == "delete-before-replace" else "create-before-delete"
            replaced[(service_of(s), how)] += 1
            if how == "delete first" and service_of(s) in SERVING:
                first.add(s.name)
        elif s.op == DELETE_FIRST and service_of(s) in SERVING:
            first.add(s.name)
    created = Counter(service_of(s) for s in steps if s.type == CONTAINER and s.op == CREATE)
    deleted = Counter(service_of(s) for s in steps if s.type == CONTAINER and s.op == DELETE)
    jobs = {service_of(s) for s in steps if s.type == JOB and s.op in (CREATE, REPLACE)}
    ordered_jobs = [j for j in JOB_ORDER if j in jobs] + sorted(jobs - set(JOB_ORDER))
    sites = [s for s in steps if s.type == NGINX_SITE and s.op in (CREATE, UPDATE)]
    maintenance = any(s.name.endswith(MAINTENANCE_SWITCH) for s in sites)
    reload = any(not s.name.endswith(MAINTENANCE_SWITCH) for s in sites)

    lines = []
    if replaced:
        lines.append(
            "replaced: " + ", ".join(f"{service} x{n} ({how})" for (service, how), n in sorted(replaced.items()))
        )
    if created:
        lines.append("created: " + ", ".join(f"{service} x{n}" for service, n in sorted(created.items())))
    if deleted:
        lines.append("deleted: " + ", ".join(f"{service} x{n}" for service, n in sorted(deleted.items())))
    lines.append("jobs: " + (", ".join(ordered_jobs) if ordered_jobs else "none"))
    if maintenance:
        disruption = "maintenance window"
        lines.append("nginx: the maintenance page from just before migrate until the new web replicas are healthy")
    elif first:
        disruption = "delete-first of " + ", ".join(sorted(first))
    elif reload:
        disruption = "nginx reload"
    else:
        disruption = "none"
    if reload and not maintenance:
        lines.append("nginx: its configuration written again and reloaded (never replaced)")
    if not any(s.op != "same" for s in steps):
        lines = ["nothing changes"]
    lines.append(f"disruption: {disruption}")
    by_service: Counter = Counter()
    for (service, _), n in replaced.items():
        by_service[service] += n
    return Forecast(
        tuple(lines),
        disruption,
        maintenance,
        replaced=dict(by_service),
        created=dict(created),
        deleted=dict(deleted),
        jobs=tuple(ordered_jobs),
        reload=reload,
    )
