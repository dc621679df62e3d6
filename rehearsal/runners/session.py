"""One rehearsed stack on the engine, across several `pulumi up`s: images, state, checks.

A `Session` keeps what a real stack keeps between updates (the state: rehearsal.emulation.model) and
what the rehearsal adds (the images it built, the planned references standing for them).
`up()` plans one `pulumi up` with the model and has the engine carry it out; after a
successful one it checks what a `pulumi preview` would show next: nothing planned, and
nothing the provider would read back differently (rehearsal.emulation.readback).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

import docker
import docker.errors

from planning.harness import CONTAINER, NETWORK, PROJECT_ROOT, REMOTE_IMAGE, SECRET, SERVICE, SERVICE_CONFIG
from rehearsal.emulation.engine import Engine, UpdateResult, build_app_image, check_understood, live, teardown
from rehearsal.emulation.model import State, plan_update
from rehearsal.emulation.readback import drift, resource_drift
from rehearsal.errors import RehearsalError
from rehearsal.hosts.private_engine import copy_images
from rehearsal.images.standins import dockerfile_base_images, ensure_images
from rehearsal.runners.stacks import RehearsalPlan

# What the provider reads back on a refresh, by resource type (volumes: name, driver and
# labels only, none of which Docker changes; images and jobs: nothing live to read).
READ_BACK = {CONTAINER: "container", NETWORK: "network", SERVICE: "service", SERVICE_CONFIG: "config", SECRET: "secret"}


@dataclass
class Session:
    client: docker.DockerClient
    stack: str
    run_labels: dict[str, str]
    say: Callable[[str], None]
    state: State = field(default_factory=State)
    images: dict[str, str] = field(default_factory=dict)
    """Planned image reference or digest -> real image id."""
    built: dict[str, str] = field(default_factory=dict)
    """Tag -> image id, for every app image this session built."""
    engine: Engine = field(init=False)
    """Made by __post_init__ from the fields above."""
    base_images_ready: bool = False
    provided: tuple[str, ...] = ()
    """Prefixes of image references something else puts on the engine (the swarm rehearsal's
    registry: `<address>/`): neither made as stand-ins nor copied."""

    def __post_init__(self):
        self.engine = Engine(self.client, run_labels=self.run_labels, say=self.say, images=self.images)

    # ------------------------------------------------------------------ images

    def prepare(self, rp: RehearsalPlan, *, context: Optional[Path] = None) -> str:
        """Make every image the plan runs exist: stand-ins for pinned ones, the runtime's image
        and then the app's built (from `context`, a variant of the app's project, when given).
        Returns a one-line summary."""
        check_understood(rp.plan, project_root=PROJECT_ROOT)
        notes = []
        if not self.base_images_ready:
            notes.append(self._base_images(rp))
            self.base_images_ready = True
        if rp.runtime is not None:
            tag = rp.runtime.inputs["imageName"]
            if tag not in self.built:
                self.built[tag] = build_app_image(self.client, rp.runtime, PROJECT_ROOT, self.say)
            planned = {rp.runtime.outputs.get("repoDigest"), rp.runtime.id}
            self.images.update({p: self.built[tag] for p in planned if p})
        for accessory in rp.accessories:  # FROM a pinned image: after the base images above
            tag = accessory.inputs["imageName"]
            if tag not in self.built:
                self.built[tag] = build_app_image(self.client, accessory, PROJECT_ROOT, self.say)
            self.images.update({p: self.built[tag] for p in (accessory.outputs.get("repoDigest"), accessory.id) if p})
        if rp.build is not None:
            tag = rp.build.inputs["imageName"]
            if tag not in self.built:
                self.built[tag] = build_app_image(self.client, rp.build, PROJECT_ROOT, self.say, context=context)
            image_id = self.built[tag]
            planned = {rp.build.outputs.get("repoDigest"), rp.build.id, *rp.promoted_refs}
            self.images.update({p: image_id for p in planned if p})
            notes.append(f"{tag} = {image_id[:19]} (from {rp.build_stack}'s plan)")
        missing = [ref for ref in rp.promoted_refs if ref not in self.images]
        if missing:
            raise RehearsalError(f"{self.stack}: the plan runs {missing}, which this rehearsal has not built")
        for r in rp.plan.of_type(REMOTE_IMAGE):
            if r.inputs["name"] in self.images:
                self.images.update(
                    {
                        p: self.images[r.inputs["name"]]
                        for p in (r.outputs.get("repoDigest"), r.outputs.get("imageId"), r.id)
                        if p
                    }
                )
        self.engine.images.update(self.images)
        return "; ".join(notes)

    def _base_images(self, rp: RehearsalPlan) -> str:
        refs: list[str] = []
        if rp.build is not None:
            build = rp.build.inputs["build"]
            dockerfile = build.get("dockerfile") or os.path.join(build["context"], "Dockerfile")
            built_here = {rp.runtime.inputs["imageName"]} if rp.runtime is not None else set()
            refs += [
                ref
                for ref in dockerfile_base_images(Path(dockerfile).read_text(), build.get("args"))
                if ref not in built_here
            ]
        app = (
            {rp.build.outputs.get("repoDigest"), rp.build.id, *rp.promoted_refs} if rp.build else set(rp.promoted_refs)
        )
        for accessory in rp.accessories:  # built here below, not pinned
            app |= {accessory.outputs.get("repoDigest"), accessory.id}
        remote = set()
        for r in rp.plan.of_type(REMOTE_IMAGE):
            remote |= {r.outputs.get("repoDigest"), r.outputs.get("imageId"), r.id}
        images = [r.inputs["image"] for r in rp.plan.containers()]
        images += [r.inputs["taskSpec"]["containerSpec"]["image"] for r in rp.plan.of_type(SERVICE)]
        refs += [
            image
            for image in images
            if image not in app and image not in remote and not image.startswith(self.provided)
        ]
        outcomes = ensure_images(self.client, list(dict.fromkeys(refs)), self.say)
        standins = [o.ref for o in outcomes if o.source.startswith("stand-in")]
        if standins:
            self.say(
                "  NOTE: STAND-INS IN USE for " + ", ".join(standins) + ": no registry answered, so these are "
                "Debian builds that honour the official images' contracts, not the official images"
            )
        return "; ".join(f"{o.ref} {o.source}" for o in outcomes)

    # ------------------------------------------------------------------ one `pulumi up`

    def up(self, rp: RehearsalPlan) -> UpdateResult:
        result = self.engine.up(self.state, rp.plan)
        self.state = result.state
        return result

    def preview_after(self, rp: RehearsalPlan) -> str:
        """What `pulumi preview` would show now: raises unless nothing would change, neither
        planned (the model) nor read back (the provider's Read of every container, network,
        service, config and secret, replayed: rehearsal.emulation.readback)."""
        planned = plan_update(self.state, rp.plan).changes
        if planned:
            raise RehearsalError(
                "a second `pulumi up` would change things: " + "; ".join(s.describe() for s in planned)
            )
        drifted: dict[str, dict] = {}
        counts: dict[str, int] = {}
        for entry in self.state.entries:
            if not entry.real or entry.delete or entry.type not in READ_BACK:
                continue
            kind = READ_BACK[entry.type]
            inspect = self._inspect(kind, entry.real)
            if inspect is None:
                drifted[entry.name] = {"(gone)": ("exists", "not found")}
                continue
            inputs = self._real_inputs(entry.inputs)
            found = (
                drift(inputs, inspect)
                if kind == "container"
                else resource_drift(kind, inputs, inspect, ignore_labels=frozenset(self.run_labels))
            )
            # ignore_changes: the engine keeps the old value for these paths, so what is read
            # there never shows as a change (components/swarm.py IGNORED: placement.platforms).
            ignored = tuple(entry.options.get("ignore_changes") or ())
            found = {k: v for k, v in found.items() if not any(k == i or k.startswith(f"{i}.") for i in ignored)}
            counts[kind] = counts.get(kind, 0) + 1
            if found:
                drifted[entry.name] = found
        if drifted:
            raise RehearsalError(
                "the provider would read back differently (a change on every `pulumi up`): "
                + "; ".join(f"{n}: {k} {v[0]!r} -> {v[1]!r}" for n, d in drifted.items() for k, v in d.items())
            )
        read = ", ".join(f"{n} {k}s" for k, n in sorted(counts.items())) or "nothing"
        return f"nothing to change; provider read-back of {read} matches their inputs"

    def _inspect(self, kind: str, real: dict) -> Optional[dict]:
        api = self.client.api
        call = {
            "container": api.inspect_container,
            "network": api.inspect_network,
            "service": api.inspect_service,
            "config": api.inspect_config,
            "secret": api.inspect_secret,
        }[kind]
        try:
            return call(real["id"])
        except docker.errors.NotFound:
            return None

    def _real_inputs(self, inputs: dict) -> dict:
        from rehearsal.emulation.translate import substitute

        mapping = self.engine.mapping(self.state)
        return substitute(inputs, mapping)

    # ------------------------------------------------------------------ looking at it

    def container(self, logical: str) -> dict:
        real = live(self.state, CONTAINER)[logical]
        return self.client.api.inspect_container(real["id"])

    def containers_of(self, service: str) -> dict[str, dict]:
        """Logical name -> inspect, for the live containers of one service."""
        names = {
            e.name
            for e in self.state.entries
            if e.type == CONTAINER and e.real and not e.delete and e.label("django-docker.service") == service
        }
        return {name: self.container(name) for name in sorted(names)}

    def teardown(self, run: Optional[str] = None) -> tuple[int, int, int]:
        return teardown(self.client, self.stack, run)


@dataclass
class ElsewhereSession(Session):
    """A Session on an engine other than the main one (a private engine: a swarm, a remote host),
    whose images are built on the main one, where the stand-ins and the build cache are, and
    copied over (`docker save | docker load`)."""

    builder: Optional[Session] = None
    """The session on the main engine that builds the images (sharing `images` and `built`)."""
    copy_to: Optional[docker.DockerClient] = None
    """Where images are loaded (the private engine's own socket; default: this session's client)."""
    copied: set[str] = field(default_factory=set)

    def prepare(self, rp: RehearsalPlan, *, context: Optional[Path] = None) -> str:
        if self.builder is None:
            raise RehearsalError(f"{type(self).__name__} needs a builder session on the main engine")
        self.builder.provided = self.provided
        note = self.builder.prepare(rp, context=context)  # shares images and built with this session
        wanted = sorted(
            {self.images.get(image, image) for image in images_of(rp) if not image.startswith(self.provided)}
            - self.copied
        )
        if wanted:
            started = time.monotonic()
            copy_images(self.builder.client, self.copy_to or self.client, wanted, self.say)
            self.copied |= set(wanted)
            note += f"; {len(wanted)} image(s) copied to the private engine in {time.monotonic() - started:.1f}s"
        self.engine.images.update(self.images)
        return note


def images_of(rp: RehearsalPlan) -> set[str]:
    """Every image the plan runs: containers, release jobs, services."""
    images = {r.inputs["taskSpec"]["containerSpec"]["image"] for r in rp.plan.of_type(SERVICE)}
    images |= {r.inputs["image"] for r in rp.plan.containers()}
    return images
