"""One stack taken through real `pulumi up`s: the emulation Session's twin for the real engine.

`RealSession` has the interface of `rehearsal.runners.session.Session` that the boot, the
release scenarios and their checks use (prepare, up, preview_after, containers_of, state,
teardown), so `make rehearse-release STACK=prod ENGINE=pulumi` runs the same scenarios, checks
and load and prints the same lines. Only the engine differs: each `pulumi up` is the real one
(the Pulumi CLI on PATH, its language host, pulumi-docker, pulumi-random and the program's own
dynamic provider), run by `rehearsal.drivers.pulumi_cli`, and its steps are read from the
engine's event log, not planned by the model. Every `pulumi up` is also kept as a calibration
record (`record`): what was deployed and the steps the engine took, the data of
tests/calibration/.

For a stack that promotes (prod: `imageSource: stack`) its source stack (dev) is the builder:
it pushes each app variant to a private registry on loopback (`rehearsal.drivers.registry`:
`imageRegistry` and its credentials on dev) and only builds (`pulumi up --target` its image);
the promoting stack pulls the digest with `docker:registryAuth`, the way docs/operations.md
sets up a private registry. Each stack's config is its committed `Pulumi.<stack>.yaml` plus the
scenario's overrides, written before every command as `pulumi config set` leaves it.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Optional

import docker
import docker.errors
import yaml

from planning.events import RealStep
from planning.harness import CONTAINER, IMAGE, NETWORK, PROJECT_ROOT, SECRET, SERVICE, SERVICE_CONFIG, stack_config
from rehearsal.drivers import registry as private_registry
from rehearsal.drivers.pulumi_cli import (
    STACK_LABEL,
    TIMEOUTS,
    CLIError,
    Command,
    PulumiCLI,
    checkout_sha,
    last_error,
    state_from_export,
    state_summary,
)
from rehearsal.emulation.engine import StepReport, UpdateResult, brief, live
from rehearsal.emulation.model import State, Step
from rehearsal.emulation.readback import (
    VIEWS,
    config_view,
    inspect_subset,
    provider_view,
    read_differs,
    readback_normal,
    swarm_inspect_subset,
)
from rehearsal.errors import RehearsalError
from rehearsal.images.standins import dockerfile_base_images, ensure_images
from rehearsal.runners.stacks import RehearsalPlan, promoted_ref

# What a refresh reads back besides containers (a volume's name, driver and labels Docker never
# changes; images and jobs have nothing live to read), as readback.py names the kinds.
SWARM_READ_BACK = {SERVICE: "service", NETWORK: "network", SERVICE_CONFIG: "config", SECRET: "secret"}


@dataclass
class RealSession:
    """One stack taken through real `pulumi up`s (see the module)."""

    client: docker.DockerClient
    stack: str
    run_labels: dict[str, str]
    say: Callable[[str], None]
    work: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="rehearsal-real-")))
    state: State = field(default_factory=State)
    images: dict[str, str] = field(default_factory=dict)
    built: dict[str, str] = field(default_factory=dict)
    """Tag -> image id, for every app image a real `pulumi up` built in this run."""
    pushed: dict[str, str] = field(default_factory=dict)
    exported: str = ""  # the tag the source stack exports now (what a StackReference reads)
    """Tag -> the repo@sha256 digest the source stack pushed for it (what prod runs)."""
    records: list[dict] = field(default_factory=list)
    """Every `pulumi up` of this run: the calibration's record (see `record`)."""
    keep_work: bool = False
    cli: PulumiCLI = field(init=False)
    registry: Optional[private_registry.Registry] = None
    pushes_itself: bool = False
    """The stack builds and pushes to the run's registry (dev), rather than promoting."""
    project: Optional[Path] = None
    """The project copy of the variant being deployed."""
    variant: str = "current"
    version: str = ""
    """`pulumi version`."""
    base_images_ready: bool = False
    readbacks: list[dict] = field(default_factory=list)
    """The read-back comparison of the last refresh (compare_readback)."""
    build_client: Optional[docker.DockerClient] = None
    """The engine the source stack builds on and the base images are made on (None: `client`;
    the swarm rehearsal's stack runs on a private engine, its builds on the main one)."""
    provided: tuple[str, ...] = ()
    """Prefixes of image references a registry serves (the swarm rehearsal's `<address>/`): the
    provider pulls them, so no stand-in is made for them."""
    registry_digests: dict[str, str] = field(default_factory=dict)
    """Image name -> repository@sha256 the run's registry gave for it (the swarm rehearsal's
    accessories): kept in each record, so that the calibration replays the plan with them."""

    forecasts: bool = False
    """Run `pulumi preview` before each up and keep its events (last_preview) for the forecast."""
    last_preview: list = field(default_factory=list)

    def __post_init__(self):
        self.cli = PulumiCLI(self.work, self.say)
        if self.build_client is None:
            self.build_client = self.client
        self.engine = _NoEngine()
        self.committed, self.namespace = stack_config(self.stack)

    # ------------------------------------------------------------------ config

    def _config(self, stack: str, overrides: Mapping[str, Any], extra: Mapping[str, Any]) -> dict:
        """The committed Pulumi.<stack>.yaml's config (only what it sets: the project's defaults
        stay Pulumi.yaml's, typed), then `extra`, then the scenario's overrides."""
        committed = (yaml.safe_load((PROJECT_ROOT / f"Pulumi.{stack}.yaml").read_text()) or {}).get("config") or {}
        full = lambda k: k if ":" in k else f"{self.namespace}:{k}"  # noqa: E731
        return {
            **{full(k): v for k, v in committed.items()},
            **{full(k): v for k, v in extra.items()},
            **{full(k): v for k, v in overrides.items()},
        }

    def _source_stack(self, rp: RehearsalPlan) -> Optional[str]:
        return rp.build_stack if rp.build_stack != rp.stack else None

    # ------------------------------------------------------------------ images

    def prepare(self, rp: RehearsalPlan, *, context: Optional[Path] = None) -> str:
        """The project copy for the plan's app variant; for a promoting stack, the source stack
        builds it and pushes it to the run's registry. Pinned images (postgres, redis, nginx,
        python) must exist on the engine or in a registry it reaches: the emulation's stand-ins
        are what a run here has (`make rehearse` builds them)."""
        from rehearsal.images.variants import VARIANTS

        notes = [] if self.base_images_ready else [self._base_images(rp)]
        self.base_images_ready = True
        self.variant = next((v.name for v in VARIANTS.values() if v.git_sha == rp.git_sha), "current")
        files = VARIANTS[self.variant].files
        self.project = self.cli.project(self.variant, files)
        source = self._source_stack(rp)
        if source is None or rp.build is None:
            return "; ".join(notes + [f"{self.variant}: built by `pulumi up` from {self.project}"])
        tag = rp.build.inputs["imageName"]
        # A tag pushed earlier is skipped only while the source stack still exports it: prod reads
        # the digest from the source stack's output, so going back to an earlier commit (the
        # unhealthy-release scenario's second up) needs the source stack's `up` again (its build
        # is cached). Skipping it once made the real swarm rehearsal deploy the broken release twice.
        if tag in self.pushed and self.exported == tag:
            return "; ".join(notes + [f"{tag} pushed earlier as {self.pushed[tag]}, exported by {source}"])
        if self.registry is None:
            self.registry = private_registry.start(self.work / "registry")
            self.say(f"  a private registry for the promotion: {self.registry.address} (basic auth, loopback)")
        reg = self.registry
        builder = self._builder(self.project)
        config = self._config(source, {}, {"imageRegistry": reg.address, "imageRegistryUsername": reg.username})
        self.cli.ensure_stack(builder, source)
        self.cli.write_config(builder, source, config, {f"{self.namespace}:imageRegistryPassword": reg.password})
        command = self.cli.run(
            builder,
            source,
            "up (build)",
            "up",
            "--yes",
            "--skip-preview",
            timeout=TIMEOUTS["up"],
            git_sha=rp.git_sha or checkout_sha(),
        )
        ref = self.cli.outputs(builder, source).get("imageRef") or ""
        if "@sha256:" not in ref:
            raise CLIError(f"{source} built {tag} but exports imageRef {ref!r}, not a pushed digest")
        self.pushed[tag] = ref
        self.exported = tag
        self.built[tag] = self._builds().api.inspect_image(ref)["Id"]
        self._forget_locally(ref, tag)
        return "; ".join(notes + [f"{source} (build only) built and pushed {tag} as {ref} ({command.seconds:.0f}s)"])

    def pull_pushed(self, tag: str) -> str:
        """The digest the source stack pushed for `tag`, pulled onto the stack's engine with the
        registry's credentials, as a user does before `make forecast` runs the gate on a host that
        has not pulled it yet (docs/operations.md, "Release forecast"); returns that reference."""
        ref = self.pushed[tag]
        assert self.registry is not None
        repository, digest = ref.split("@", 1)
        auth = {"username": self.registry.username, "password": self.registry.password}
        # The engine takes a digest where a tag goes (docker pull repo@sha256:... sends it so).
        for line in self.client.api.pull(repository, tag=digest, auth_config=auth, stream=True, decode=True):
            if line.get("error"):
                raise CLIError(f"pull of {ref} failed: {line['error']}")
        return ref

    def _forget_locally(self, ref: str, tag: str) -> None:
        """Drop the builder's local names of the pushed image, so that the promoting stack's
        RemoteImage really pulls it from the registry, with `docker:registryAuth` (the provider
        pulls only what the engine does not have: terraform-provider-docker v4.5.0
        resource_docker_image_funcs.go findImage, then pullImage). Names still in use (an image
        some container runs) stay; the pull is then not exercised for that one."""
        repository = ref.split("@", 1)[0]
        for name in (ref, f"{repository}:{tag.rsplit(':', 1)[-1]}"):
            try:
                self._builds().api.remove_image(name, noprune=True)
            except docker.errors.APIError:
                pass

    def _builds(self) -> docker.DockerClient:
        return self.build_client or self.client

    def _builder(self, project: Path) -> Path:
        """The source stack's project for one variant: the build-only program beside it."""
        builder = project.with_name(project.name + ".build")
        if not builder.exists():
            builder.mkdir()
            shutil.copy(project / "Pulumi.yaml", builder / "Pulumi.yaml")
            (builder / "__main__.py").write_text(BUILDER_PROGRAM)
            for name in ("components", "runtime", "django_app", ".venv"):
                if (project / name).exists():
                    (builder / name).symlink_to((project / name).resolve())
        return builder

    def _base_images(self, rp: RehearsalPlan) -> str:
        """The pinned images (the Dockerfile's FROM lines, postgres, redis, nginx) on the engine:
        the provider pulls a missing one and no registry answers here, so the emulation's
        stand-ins (same names, same contracts) are made where the real ones are missing."""
        refs: list[str] = []
        if rp.build is not None:
            build = rp.build.inputs["build"]
            dockerfile = build.get("dockerfile") or str(Path(build["context"]) / "Dockerfile")
            built_here = {rp.runtime.inputs["imageName"]} if rp.runtime is not None else set()  # the runtime's
            refs += [
                ref
                for ref in dockerfile_base_images(Path(dockerfile).read_text(), build.get("args"))
                if ref not in built_here
            ]
        running = [
            r.inputs["image"]
            for r in rp.plan.containers()
            if isinstance(r.inputs.get("image"), str)
            and ":" in r.inputs["image"]
            and "@sha256:" not in r.inputs["image"]
            and not r.inputs["image"].startswith("sha256:")
            and not r.inputs["image"].startswith(self.provided)
        ]
        # The FROM images where the source stack builds, the containers' where they run.
        outcomes = ensure_images(self._builds(), list(dict.fromkeys(refs)), self.say)
        if running:
            outcomes += ensure_images(self.client, list(dict.fromkeys(running)), self.say)
        standins = [o.ref for o in outcomes if o.source.startswith("stand-in")]
        if standins:
            self.say(
                "  NOTE: STAND-INS IN USE for " + ", ".join(standins) + ": no registry answered, so these are "
                "Debian builds that honour the official images' contracts, not the official images"
            )
        return "; ".join(f"{o.ref} {o.source}" for o in outcomes)

    # ------------------------------------------------------------------ one `pulumi up`

    def up(self, rp: RehearsalPlan) -> UpdateResult:
        if self.project is None:
            self.prepare(rp)
        assert self.project is not None
        extra: dict[str, Any] = {}
        secret: dict[str, str] = {}
        if rp.build is not None and self._source_stack(rp) is None and self.registry is None:
            # A stack that builds pushes too, so that any of its builds can be pinned later
            # (imageSource: pin takes a registry digest, never a local image id).
            self.registry = private_registry.start(self.work / "registry")
            self.pushes_itself = True
            self.say(f"  a private registry for the builds: {self.registry.address} (basic auth, loopback)")
        if self.registry is not None:
            # Kept on every later up too, as an operator keeps them once set.
            if self.pushes_itself:
                extra["imageRegistry"] = self.registry.address
                extra["imageRegistryUsername"] = self.registry.username
                secret[f"{self.namespace}:imageRegistryPassword"] = self.registry.password
            extra["docker:registryAuth"] = [{"address": self.registry.address, "username": self.registry.username}]
            secret["docker:registryAuth[0].password"] = self.registry.password
        for key, value in (rp.secrets or {}).items():
            secret[key if ":" in key else f"{self.namespace}:{key}"] = str(value)
        overrides = dict(rp.overrides or {})
        if "imagePin" in overrides and overrides["imagePin"] in self._fake_refs():
            overrides["imagePin"] = self._fake_refs()[overrides["imagePin"]]  # the digest really pushed
        self.cli.ensure_stack(self.project, self.stack)
        self.cli.write_config(self.project, self.stack, self._config(self.stack, overrides, extra), secret)
        git_sha = rp.git_sha or checkout_sha()
        if self.forecasts:
            # What `make forecast` reads (tools/forecast.py): the events of the engine's own
            # preview of this up.
            preview = self.cli.run(
                self.project, self.stack, "preview", "preview", timeout=TIMEOUTS["up"], git_sha=git_sha, check=False
            )
            self.last_preview = preview.events
        command = self.cli.run(
            self.project,
            self.stack,
            "up",
            "up",
            "--yes",
            "--skip-preview",
            timeout=TIMEOUTS["up"],
            git_sha=git_sha,
            check=False,
        )
        self.state = state_from_export(self.cli.export(self.project, self.stack))
        for e in self.state.entries:
            if e.type == IMAGE and not e.delete and e.real.get("name"):
                name = e.real["name"]
                # Also by the tag the rehearsal's plan names it (without the run's registry).
                names = {name, name.removeprefix(f"{self.registry.address}/") if self.registry else name}
                image_id = self.client.api.inspect_image(name)["Id"]
                digest = e.outputs.get("repoDigest")
                for n in names:
                    self.built[n] = image_id
                    if self.pushes_itself and isinstance(digest, str) and "@sha256:" in digest:
                        self.pushed[n] = digest
        update = command.update
        error = None
        if command.code != 0:
            error = update.error or f"`pulumi up` exited {command.code}: {last_error(command.output)}"
        reports = [_report(i, s) for i, s in enumerate(update.steps)]
        for r in reports:
            if r.step.op != "same" or not r.ok:
                self.say(f"  {r.step.describe():<64} {'ok' if r.ok else brief(r.what, 200)} ({r.seconds:.0f}s)")
        promoted = self.pushed.get(rp.build.inputs["imageName"], "") if rp.build is not None else ""
        planned_with = {**overrides, **{k: v for k, v in extra.items() if ":" not in k}}  # what the model plans with
        self.records.append(
            record(rp, planned_with, git_sha, self.variant, command, self.state, promoted, sorted(secret))
            | ({"registry_digests": dict(self.registry_digests)} if self.registry_digests else {})
        )
        return UpdateResult(reports, self.state, error, command.seconds)

    def _fake_refs(self) -> dict[str, str]:
        return {promoted_ref(tag): ref for tag, ref in self.pushed.items()}

    def preview_after(self, rp: RehearsalPlan) -> str:
        """`pulumi preview --expect-no-changes`: raises unless the real engine plans nothing."""
        assert self.project is not None
        command = self.cli.run(
            self.project,
            self.stack,
            "preview",
            "preview",
            "--expect-no-changes",
            "--diff",
            timeout=TIMEOUTS["preview"],
            git_sha=rp.git_sha or checkout_sha(),
            check=False,
        )
        if command.code != 0:
            changes = "; ".join(s.describe() for s in command.update.changes) or last_error(command.output)
            raise RehearsalError(f"`pulumi preview --expect-no-changes` found changes: {changes}")
        unchanged = command.update.summary.get("resourceChanges", {}).get("same", 0)
        return f"nothing to change (`pulumi preview --expect-no-changes`: {unchanged} unchanged)"

    def refresh_then_preview(self, rp: RehearsalPlan) -> str:
        """`pulumi refresh --expect-no-changes` (the provider's Read of everything against the state),
        then the preview again."""
        assert self.project is not None
        command = self.cli.run(
            self.project,
            self.stack,
            "refresh",
            "refresh",
            "--yes",
            "--skip-preview",
            "--expect-no-changes",
            timeout=TIMEOUTS["refresh"],
            git_sha=rp.git_sha or checkout_sha(),
            check=False,
        )
        if command.code != 0:
            changes = "; ".join(s.describe() for s in command.update.changes) or last_error(command.output)
            raise RehearsalError(f"`pulumi refresh --expect-no-changes` found drift: {changes}")
        self.state = state_from_export(self.cli.export(self.project, self.stack))
        compared = self.compare_readback()
        differ = {c["name"]: c["differs"] for c in compared if c["differs"]}
        if differ:
            raise RehearsalError(f"readback.py does not predict the provider's Read: {differ}")
        kinds = Counter(c.get("kind", "container") for c in compared)
        return (
            f"refresh: no drift; readback.py predicts the provider's Read of "
            f"{', '.join(f'{n} {k}s' for k, n in sorted(kinds.items()))} "
            f"({', '.join(sorted({k for c in compared for k in c['read']}))}); then {self.preview_after(rp)}"
        )

    def compare_readback(self) -> list[dict]:
        """The emulation's read-back (rehearsal/emulation/readback.py provider_view, from `docker
        inspect`) against what the real provider's Read stored in the state after a refresh, for
        every live container; each kept in `self.readbacks` with the inspect fields provider_view
        reads (no environment, nothing secret) for tests/calibration/."""
        compared = []
        for entry in self.state.entries:
            if entry.type in SWARM_READ_BACK and entry.real and not entry.delete:
                compared.append(self._compare_swarm(entry))
                continue
            if entry.type != CONTAINER or not entry.real or entry.delete:
                continue
            inspect = self.client.api.inspect_container(entry.real["id"])
            view = provider_view(inspect, str(entry.inputs.get("image", "")))
            read = {k: entry.outputs.get(k) for k in view}
            differs = sorted(k for k in view if readback_normal(view[k], k) != readback_normal(read[k], k))
            compared.append(
                {
                    "name": entry.name,
                    "image": str(entry.inputs.get("image", "")),
                    "inspect": inspect_subset(inspect),
                    "read": read,
                    "differs": differs,
                }
            )
        self.readbacks = compared
        return compared

    def _compare_swarm(self, entry) -> dict:
        """A service, network, config or secret: readback.py's view of its inspect against the
        real Read (the refreshed state's outputs), the paths that differ."""
        kind = SWARM_READ_BACK[entry.type]
        api = self.client.api
        inspect = {
            "service": api.inspect_service,
            "network": api.inspect_network,
            "config": api.inspect_config,
            "secret": api.inspect_secret,
        }[kind](entry.real["id"])
        raw = kind == "config" and "dataRaw" in entry.inputs
        view = config_view(inspect, raw=raw) if kind == "config" else VIEWS[kind](inspect)
        read = {k: entry.outputs.get(k) for k in view}
        return {
            "name": entry.name,
            "kind": kind,
            **({"raw": True} if raw else {}),
            "inspect": swarm_inspect_subset(kind, inspect),
            "read": read,
            "differs": read_differs(view, read),
        }

    # ------------------------------------------------------------------ looking at it

    def write_record(self, path: Path, stack: str, scenarios: list[str], rehearsal: str = "release") -> str:
        """Every `pulumi up`'s calibration record and the readback, as tools.calibration reads them."""
        kind = {"rehearsal": rehearsal} if rehearsal != "release" else {}
        body = {"stack": stack, **kind, "version": self.version, "scenarios": scenarios}
        path.write_text(json.dumps({**body, "ups": self.records, "readback": self.readbacks}, indent=1))
        return f"  calibration records of {len(self.records)} `pulumi up`s: {path}"

    def container(self, logical: str) -> dict:
        real = live(self.state, CONTAINER)[logical]
        return self.client.api.inspect_container(real["id"])

    def containers_of(self, service: str) -> dict[str, dict]:
        names = {
            e.name
            for e in self.state.entries
            if e.type == CONTAINER
            and e.real
            and not e.delete
            and not e.init_error
            and e.label("django-docker.service") == service
        }
        return {name: self.container(name) for name in sorted(names)}

    # ------------------------------------------------------------------ the end

    def teardown(self, run: Optional[str] = None) -> tuple[int, int, int]:
        """`pulumi destroy` of every stack this run made (protection lifted first: the run's data
        is the run's), `pulumi stack rm`, the registry stopped; anything of the stack's still on
        the engine is then removed by its label and counted."""
        if run is None and not self.cli.stacks:
            return (0, 0, 0)  # before a boot: the backend is new, nothing of this run exists
        for stack in sorted(self.cli.stacks, key=lambda s: s != self.stack):  # the promoting stack first
            project = self.cli.stacks[stack]
            for what, args in (
                ("unprotect", ("state", "unprotect", "--all", "--yes")),
                ("destroy", ("destroy", "--yes", "--skip-preview")),
                ("stack rm", ("stack", "rm", "--yes", "--force")),
            ):
                try:
                    self.cli.run(project, stack, what, *args, timeout=TIMEOUTS["destroy"], event_log=what == "destroy")
                except RehearsalError as error:
                    self.say(f"  teardown: {error}")
        self.cli.stacks.clear()
        if self.registry is not None:
            self.registry.stop()
            # The names the run gave its pushes (the registry is gone with the run); the image
            # itself stays where another name or a stand-in cache keeps it.
            for image in self.client.api.images():
                for name in (image.get("RepoTags") or []) + (image.get("RepoDigests") or []):
                    if name.startswith(f"{self.registry.address}/"):
                        try:
                            self.client.api.remove_image(name, noprune=True)
                        except docker.errors.APIError:
                            pass
        left = self._sweep()
        if not self.keep_work:  # the CLI's logs and event logs stay (small), the copies and pushes go
            shutil.rmtree(self.work / "projects", ignore_errors=True)
            shutil.rmtree(self.work / "registry" / "data", ignore_errors=True)
            shutil.rmtree(self.work / "backend", ignore_errors=True)
        self.say(f"  the real engine's logs (every command's output and event log): {self.work / 'logs'}")
        return left

    def _sweep(self) -> tuple[int, int, int]:
        api = self.client.api
        label = {"label": [f"{STACK_LABEL}={self.stack}"]}
        containers = api.containers(all=True, filters=label)
        for c in containers:
            api.remove_container(c["Id"], force=True, v=True)
        networks = api.networks(filters=label)
        for n in networks:
            api.remove_network(n["Id"])
        volumes = api.volumes(filters={"label": f"{STACK_LABEL}={self.stack}"}).get("Volumes") or []
        for v in volumes:
            api.remove_volume(v["Name"], force=True)
        return len(containers), len(networks), len(volumes)


# The source stack of a promotion, as the run plays it: the product's own AppImage (the same
# resource names, build and push), and only it. The whole program would do the same build, but
# its other outputs would be unknown after a failed or partial update, and a StackReference
# output is unknown in a preview whenever any output of that stack is (pulumi/pulumi
# sdk/python/lib/pulumi/stack_reference.py get_output: Output.all(name, self.outputs)): prod's
# preview would then plan a replacement of everything (seen on a real run).
BUILDER_PROGRAM = '''"""A rehearsal's source stack: the app image, built and pushed (rehearsal/runners/real_session.py)."""

import pulumi

from components import settings
from components.image import AppImage, AppImageArgs

s = settings.load_or_fail()
image = AppImage(f"{s.project}-image", AppImageArgs(image=s.image, app=s.app))
pulumi.export("imageRef", image.ref)
pulumi.export("imagePushed", image.pushed)
pulumi.export("gitSha", image.git_sha)
'''


class _NoEngine:
    """The emulation's engine has step threads to join; the CLI's steps ran in its own process."""

    def join(self) -> None:
        return None


def _report(index: int, step: RealStep) -> StepReport:
    # `applied`: what the provider's update did is what the engine reported (the model's
    # "recorded only" is its own prediction, not something the event log says).
    model_step = Step(
        step.op, step.urn, step.name, step.type, "register", keys=step.keys, applied=step.keys, mode=step.mode
    )
    seconds = float(max(0, step.ended_at - step.started_at)) if step.end is not None else 0.0
    return StepReport(
        index, model_step, step.ok, seconds, step.error or "ok", init_error=step.error if step.partial else ""
    )


def record(
    rp: RehearsalPlan,
    overrides: Mapping[str, Any],
    git_sha: str,
    variant: str,
    command: Command,
    state: State,
    promoted: str = "",
    secret_keys: Optional[list[str]] = None,
) -> dict:
    """One real `pulumi up` as the calibration keeps it (tests/calibration/): what was deployed
    (the config overrides, the variant and its commit, the promoted digest), what the engine did
    (its steps, in its order, with their outcome) and the state it left. No value of any
    resource is kept: names, operations and order only, so no secret can be in it."""
    return {
        "variant": variant,
        "git_sha": git_sha,
        "overrides": {k: v for k, v in overrides.items()},
        "secrets": sorted(secret_keys if secret_keys is not None else (rp.secrets or {})),
        **({"promoted": promoted} if promoted else {}),
        "ok": command.code == 0,
        "error": (command.update.error or "")[:300],
        "steps": [s.fixture() for s in command.update.steps],
        "state_after": state_summary(state),
    }
