"""A release forecast: what an update will do to the running site, in a few lines. Pure: from
steps in the update model's words, either the model's plan of a `pulumi up`
(rehearsal/emulation/forecast.py) or the real engine's preview read by planning/events.py
(`make forecast`, tools/forecast.py).

    forecast_steps(steps, service_of) -> Forecast(lines, disruption, ...)

- which containers are replaced and how (create-before-delete, or delete first), by service;
  which are created or deleted (a scale change);
- which release jobs run (migration-gate, backup, migrate, collectstatic);
- whether nginx reloads (its site's configuration written again), and whether a maintenance
  window opens (the release's maintenance switch, migrationMode maintenance);
- the expected disruption, the worst of: `maintenance window`, `delete-first of <names>` (a
  container that serves stops before its successor starts), `nginx reload` (graceful: none
  refused), `none`.

What steps cannot say: the migrations themselves and the gate's verdict, which need the new
image and the database (ops/forecast.py, from tools/forecast.py, runs the gate for them when the image is there).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping

from planning.events import CREATE, DELETE, DELETE_FIRST, DELETE_REPLACED, REPLACE, UPDATE, RealStep, steps_of
from planning.harness import CONTAINER, JOB, NGINX_SITE

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
    removed: Mapping[str, int] = field(default_factory=dict)
    """Service -> every container the update removes: the replaced, the deleted, and those a
    failed release left (its never-healthy replicas and the old ones kept for deletion)."""
    started: Mapping[str, int] = field(default_factory=dict)
    """Service -> every container the update starts (replacements and new ones)."""
    jobs: tuple[str, ...] = ()
    reload: bool = False
    """nginx's site written again and reloaded (the container kept)."""


def forecast_steps(steps: Iterable[Any], service_of: Callable[[Any], str]) -> Forecast:
    """The forecast of steps in the model's words: the model's plan (forecast) or the real
    engine's preview read by planning/events.py (tools/forecast.py); `service_of` names a
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
    removed = Counter(
        service_of(s) for s in steps if s.type == CONTAINER and s.op in (DELETE_FIRST, DELETE_REPLACED, DELETE)
    )
    started = Counter(service_of(s) for s in steps if s.type == CONTAINER and s.op in (REPLACE, CREATE))
    by_service: Counter = Counter()
    for (service, _), n in replaced.items():
        by_service[service] += n
    # What a failed release left: a replacement's delete beyond the one old container it replaces.
    left = removed - by_service - deleted
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
    if left:
        lines.append(
            "removed, left by a failed release: " + ", ".join(f"{service} x{n}" for service, n in sorted(left.items()))
        )
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
    return Forecast(
        tuple(lines),
        disruption,
        maintenance,
        replaced=dict(by_service),
        created=dict(created),
        deleted=dict(deleted),
        removed=dict(removed),
        started=dict(started),
        jobs=tuple(ordered_jobs),
        reload=reload,
    )


# --------------------------------------------------------------------------- the real engine's preview

SERVICE_LABEL = "django-docker.service"
# The release's gate job (components/release.py names its jobs `<prefix>-release-<step>`).
GATE_JOB = "-release-migration-gate"
UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"
# The app's image: the AppImage component's build or pull (components/image.py).
APP_IMAGE = "django-docker:components:AppImage$"
IMAGE_TYPES = ("docker:index/image:Image", "docker:index/remoteImage:RemoteImage")
# Its other child: the runtime's image, the app's base (built first), never what the release runs.
RUNTIME_IMAGE = "-runtime"


class PreviewError(Exception):
    """The preview failed, or is not one; one line."""


@dataclass(frozen=True)
class Preview:
    steps: list[RealStep]
    labels: dict[str, dict[str, str]]
    """Logical name -> the container's Docker labels (its new inputs, else its old)."""
    gate_image: str
    """The image the release's migration-gate job runs: its own input when the preview knows it,
    else the name the app image is pulled or built under ('': none)."""
    gate_command: tuple[str, ...]
    """That job's command (the stack's migrationMode in it)."""


def _labels(inputs: dict) -> dict[str, str]:
    raw = inputs.get("labels") or []
    if isinstance(raw, dict):
        return {str(k): str(v) for k, v in raw.items()}
    return {str(i.get("label")): str(i.get("value")) for i in raw if isinstance(i, dict)}


def read_preview(events: list[dict]) -> Preview:
    """A preview's engine events (`pulumi preview --event-log FILE`, one JSON EngineEvent a line)
    in the update model's words. `preview --json` will not do: its digest keeps one `replace`
    per resource and drops the create-replacement and delete-replaced steps whose order says
    whether the old container goes first (pulumi/pulumi pkg/backend/display/json.go)."""
    labels: dict[str, dict[str, str]] = {}
    gate_image: str = ""
    app_image = ""
    gate_command: tuple[str, ...] = ()
    errors = []
    for event in events:
        if "diagnosticEvent" in event and event["diagnosticEvent"].get("severity") == "error":
            errors.append(event["diagnosticEvent"].get("message") or "")
        pre = event.get("resourcePreEvent")
        if not pre:
            continue
        metadata = pre.get("metadata") or {}
        name = (metadata.get("urn") or "").split("::", 3)[-1]
        new = metadata.get("new") or {}
        for state in (new, metadata.get("old") or {}):
            found = _labels(state.get("inputs") or {})
            if metadata.get("type") == CONTAINER and found:
                labels.setdefault(name, found)
        inputs = new.get("inputs") or {}
        app_child = APP_IMAGE in (metadata.get("urn") or "") and not name.endswith(RUNTIME_IMAGE)
        if app_child and metadata.get("type") in IMAGE_TYPES:
            # What the release's image will be called: the pull's name (prod: the digest dev
            # pushed) or the build's tag. The gate job's own image input is unknown whenever the
            # image changes (an output of this resource), which is every release.
            app_image = str(inputs.get("name") or inputs.get("imageName") or app_image)
        if metadata.get("type") == JOB and name.endswith(GATE_JOB) and inputs.get("command"):
            image = inputs.get("image")
            # A value the preview cannot know yet (an image `pulumi up` builds) is the engine's
            # unknown sentinel (pulumi/pulumi sdk/go/common/resource/plugin/rpc.go UnknownStringValue).
            gate_image = image if isinstance(image, str) and image != UNKNOWN else ""
            gate_command = tuple(str(part) for part in inputs["command"])
    if errors:
        raise PreviewError("the preview failed: " + " ".join(errors[0].split())[:300])
    return Preview(steps_of(events).steps, labels, gate_image or app_image, gate_command)


def tell(preview: Preview) -> Forecast:
    def service_of(step) -> str:
        return preview.labels.get(step.name, {}).get(SERVICE_LABEL) or _job(step.name) or step.name

    return forecast_steps(preview.steps, service_of)


def _job(name: str) -> str:
    # The release jobs are named `<prefix>-release-<job>` (components/release.py).
    return name.split("-release-", 1)[1] if "-release-" in name else ""
