"""Carry out an update's steps on a Docker engine, the way the providers would.

The only module of the rehearsal that changes things on the engine. `rehearsal.emulation.model` says
what `pulumi up` does (create, update in place, replace in which order, delete at the end);
this module does each step as the provider does it:
- a container is created, attached to its networks, given its uploads, started, and waited
  for until healthy or until its wait_timeout (the provider polls only for `healthy`:
  terraform-provider-docker v4.5.0 resource_docker_container_funcs.go:590-625); a container
  that never turns healthy stays, recorded with an initialization error;
- an in-place update sends only what the provider's update sends (restart policy and
  resource limits, _funcs.go:1016-1070); everything else is only recorded;
- a delete stops with the destroy grace period, then removes (_funcs.go:1079-1130);
- a release job runs through the program's own provider code (components.job.JobProvider).
Steps run in parallel as their order constraints allow; after a failed step nothing new
starts, the ones running finish, and the deletes at the end do not happen (the engine bails:
pulumi/pulumi pkg/resource/deploy/deployment_executor.go:261-345).
Every planned (mock) name and id is replaced by the real one before a step acts; everything
created carries the run's labels, which is how teardown finds it.
"""

from __future__ import annotations

import io
import secrets
import tarfile
import threading
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

import docker
import docker.errors
from docker.types import IPAMConfig, IPAMPool, Mount

from planning.harness import (
    CONTAINER,
    IMAGE,
    JOB,
    NETWORK,
    NGINX_SITE,
    RANDOM_PASSWORD,
    REMOTE_IMAGE,
    SECRET,
    SERVICE,
    SERVICE_CONFIG,
    STACK_REFERENCE,
    VOLUME,
    Plan,
    PlannedResource,
)
from rehearsal.emulation.model import (
    CREATE,
    DELETE,
    DELETE_FIRST,
    DELETE_REPLACED,
    REPLACE,
    SAME,
    UPDATE,
    Entry,
    State,
    Step,
    UpdatePlan,
    next_state,
    plan_update,
)
from rehearsal.emulation.translate import (
    ContainerSpec,
    container_spec,
    image_build_kwargs,
    labels_dict,
    network_kwargs,
    remote_image_name,
    service_spec,
    substitute,
    swarm_object_data,
    volume_kwargs,
)
from rehearsal.errors import RehearsalError

STACK_LABEL = "rehearsal.stack"
RUN_LABEL = "rehearsal.run"
LOG_TAIL = 25
LOOPBACK = "127.0.0.1"  # every port the rehearsal publishes, whatever the stack's bindAddress says
SETTLE_SECONDS = 2.0  # a container without `wait` must still be running this long after start
UNDERSTOOD = {
    CONTAINER,
    NETWORK,
    VOLUME,
    IMAGE,
    REMOTE_IMAGE,
    JOB,
    NGINX_SITE,
    RANDOM_PASSWORD,
    STACK_REFERENCE,
    SERVICE,
    SERVICE_CONFIG,
    SECRET,
}
NAMED = (NETWORK, VOLUME, CONTAINER, SERVICE, SERVICE_CONFIG, SECRET)
UPDATE_FIRST_POLL_S = 7.0  # resourceDockerServiceUpdate: Delay: 7 * time.Second (_funcs.go:210)


class StepFailed(RehearsalError):
    """A step failed the way `pulumi up` would report it."""


def pulumi_like_name(logical: str) -> str:
    """Pulumi's auto-name: the logical name and 7 random hex characters (SetAutonaming(255, "-"))."""
    return f"{logical}-{secrets.token_hex(4)[:7]}"


def planned_name(r) -> Optional[str]:
    return r.inputs.get("name") or r.outputs.get("name")


def check_understood(plan: Plan, *, project_root) -> None:
    """Translate every resource once without an engine: an input the rehearsal does not
    understand fails here, before anything is created."""
    names: dict[str, str] = {}
    for r in plan.resources:
        if r.custom and r.type in NAMED:
            planned = planned_name(r)
            if planned:
                names[planned] = f"{r.name}-0000000"
    for r in plan.resources:
        if not r.custom:
            continue
        if r.type not in UNDERSTOOD:
            raise RehearsalError(f"resource {r.name}: type {r.type} not understood by the rehearsal")
        inputs = substitute(r.inputs, names)
        planned = planned_name(r)
        real_name = names.get(planned, planned) if planned is not None else None
        if r.type == NETWORK:
            network_kwargs(r.name, inputs, real_name, {})
        elif r.type == VOLUME:
            volume_kwargs(r.name, inputs, real_name, {})
        elif r.type == CONTAINER:
            container_spec(r.name, inputs, real_name=f"{r.name}-0000000", extra_labels={})
        elif r.type == IMAGE:
            image_build_kwargs(r.name, inputs, project_root)
        elif r.type == REMOTE_IMAGE:
            remote_image_name(r.name, inputs)
        elif r.type == SERVICE:
            service_spec(r.name, inputs, real_name=f"{r.name}-0000000", extra_labels={})
        elif r.type in (SERVICE_CONFIG, SECRET):
            swarm_object_data(r.type.rsplit(":", 1)[-1], r.name, inputs)


@dataclass
class StepReport:
    index: int
    step: Step
    ok: bool
    seconds: float
    what: str
    real: dict = field(default_factory=dict)
    init_error: str = ""


@dataclass
class UpdateResult:
    """What one `pulumi up` did: every step that ran, the first failure, and the new state."""

    reports: list[StepReport]
    state: State
    error: Optional[str] = None
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.error is None


def job_connection(inputs: dict) -> dict:
    """A job's connection properties (components.job.CONNECTION_KEYS) from its inputs."""
    from components.job import CONNECTION_KEYS

    return {key: inputs[key] for key in CONNECTION_KEYS if key in inputs}


class Engine:
    def __init__(
        self,
        client: docker.DockerClient,
        *,
        run_labels: dict[str, str],
        say: Callable[[str], None],
        images: Optional[dict[str, str]] = None,
        parallelism: int = 8,
    ):
        self.client = client
        self.api = client.api
        self.run_labels = run_labels
        self.say = say
        self.images = dict(images or {})  # planned image reference or id -> real image id
        self.registry_auth: dict[str, dict[str, str]] = {}
        """Registry address -> {username, password}: what the provider's docker:registryAuth gives
        the Docker client for a service's registry query (query_registry)."""
        self.parallelism = parallelism
        self.lock = threading.Lock()
        self.cancelled = threading.Event()
        self.pool: Optional[ThreadPoolExecutor] = None

    # ------------------------------------------------------------------ one `pulumi up`

    def up(self, state: State, plan: Plan) -> UpdateResult:
        """Plan the update (rehearsal.emulation.model) and carry it out."""
        update = plan_update(state, plan)
        return self.apply(state, plan, update)

    def apply(self, state: State, plan: Plan, update: UpdatePlan) -> UpdateResult:
        started = time.monotonic()
        mapping = self.mapping(state)
        reports: dict[int, StepReport] = {}
        failed: Optional[StepReport] = None
        running: dict[Future, int] = {}
        waiting = set(range(len(update.steps)))
        self.pool = ThreadPoolExecutor(max_workers=self.parallelism, thread_name_prefix="step")
        try:
            while waiting or running:
                if failed is None and not self.cancelled.is_set():
                    for index in sorted(waiting):
                        step = update.steps[index]
                        if all(a in reports and reports[a].ok for a in step.after):
                            waiting.discard(index)
                            running[self.pool.submit(self._run, index, step, mapping)] = index
                if not running:
                    break
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in done:
                    index = running.pop(future)
                    report = future.result()
                    reports[index] = report
                    if report.step.op != SAME or not report.ok:
                        self.say(f"  {report.step.describe():<64} {brief(report.what)} ({report.seconds:.1f}s)")
                    if not report.ok and failed is None:
                        failed = report
        except BaseException:
            # Ctrl-C or SIGTERM: do not wait here for steps still waiting on health or on a job;
            # teardown removes their containers, which ends those waits; join() follows it.
            self.cancel()
            self.pool.shutdown(wait=False, cancel_futures=True)
            raise
        self.pool.shutdown(wait=True)
        outcome = {i: {"ok": r.ok, "real": r.real, "init_error": r.init_error} for i, r in reports.items()}
        new_state = next_state(state, plan, update, outcome)
        error = None
        if failed is not None:
            error = f"{failed.step.name}: {failed.what}"
        elif self.cancelled.is_set():
            error = "cancelled"
        return UpdateResult(
            sorted(reports.values(), key=lambda r: r.index), new_state, error, time.monotonic() - started
        )

    def cancel(self) -> None:
        self.cancelled.set()

    def join(self) -> None:
        """Wait for the steps an interruption left running (after teardown ended their waits)."""
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)

    # ------------------------------------------------------------------ values

    def mapping(self, state: State) -> dict[str, str]:
        """Planned (mock) value -> real value, for what exists already."""
        mapping = dict(self.images)
        for entry in state.entries:
            if entry.delete or not entry.real:
                continue
            for planned, real in (entry.real.get("planned") or {}).items():
                mapping[planned] = real
        return mapping

    def _remember(self, mapping: dict, real: dict, planned_to_real: dict) -> None:
        pairs = {p: r for p, r in planned_to_real.items() if p and r}
        real["planned"] = {**real.get("planned", {}), **pairs}
        with self.lock:
            mapping.update(pairs)

    # ------------------------------------------------------------------ steps

    def _run(self, index: int, step: Step, mapping: dict) -> StepReport:
        started = time.monotonic()
        real: dict = {}
        try:
            if step.op in (CREATE, REPLACE):
                what = self._create(step.new_resource(), mapping, real)
            elif step.op == UPDATE:
                real = step.old_entry().real  # a failed update leaves it there, with an init error
                what = self._update(step, mapping)
            elif step.op in (DELETE_FIRST, DELETE_REPLACED, DELETE):
                what = self._delete(step.old_entry())
            elif step.op == SAME:
                what = "unchanged"
            else:  # pragma: no cover - the model has no other ops
                raise RehearsalError(f"unknown step {step.op}")
            return StepReport(index, step, True, time.monotonic() - started, what, real)
        except StepFailed as failure:
            init_error = str(failure) if real.get("id") else ""
            return StepReport(index, step, False, time.monotonic() - started, str(failure), real, init_error)
        except (RehearsalError, docker.errors.DockerException) as error:
            return StepReport(index, step, False, time.monotonic() - started, str(error), real)

    def _create(self, r: PlannedResource, mapping: dict, real: dict) -> str:
        with self.lock:
            inputs = substitute(r.inputs, mapping)
        if r.type == NETWORK:
            return self._create_network(r, inputs, mapping, real)
        if r.type == VOLUME:
            name = r.inputs.get("name") or pulumi_like_name(r.name)
            volume = self.client.volumes.create(**volume_kwargs(r.name, inputs, name, self.run_labels))
            real.update(name=volume.name, id=volume.name)
            self._remember(mapping, real, {planned_name(r) or "": volume.name, r.id: volume.name})
            return f"volume {volume.name}"
        if r.type == CONTAINER:
            return self._create_container(r, inputs, mapping, real)
        if r.type == JOB:
            return self._run_job(r, inputs, mapping, real)
        if r.type == NGINX_SITE:
            return self._nginx_site(r, inputs, mapping, real)
        if r.type in (IMAGE, REMOTE_IMAGE):
            planned = [
                r.outputs.get("repoDigest"),
                r.outputs.get("imageId"),
                r.id,
                r.inputs.get("name") if r.type == REMOTE_IMAGE else None,
            ]
            image_id = next((mapping[p] for p in planned if p and p in mapping), None)
            if image_id is None:
                name = r.inputs.get("name") or r.inputs.get("imageName")
                try:
                    image_id = self.client.images.get(name).id
                except docker.errors.ImageNotFound:
                    raise StepFailed(
                        f"image {name} is not on the engine (the rehearsal builds or provides it first)"
                    ) from None
            real.update(id=image_id)
            self._remember(mapping, real, {p: image_id for p in planned if p})
            return f"image {image_id[:19]}"
        if r.type == RANDOM_PASSWORD:
            real.update(id=r.id, value="from the plan")
            return "value from the plan"
        if r.type in (SERVICE_CONFIG, SECRET):
            return self._create_swarm_object(r, inputs, mapping, real)
        if r.type == SERVICE:
            return self._create_service(r, inputs, mapping, real)
        raise RehearsalError(f"resource {r.name}: type {r.type} not understood by the rehearsal")

    def _create_network(self, r: PlannedResource, inputs: dict, mapping: dict, real: dict) -> str:
        name = r.inputs.get("name") or pulumi_like_name(r.name)
        kwargs = network_kwargs(r.name, inputs, name, self.run_labels)
        ipam = kwargs.pop("ipam", None)
        if ipam:
            kwargs["ipam"] = IPAMConfig(
                driver=ipam["driver"],
                options=ipam["options"],
                pool_configs=[IPAMPool(**pool) for pool in ipam["pool_configs"]],
            )
        try:
            network = self.client.networks.create(check_duplicate=True, **kwargs)
        except docker.errors.APIError as error:
            raise StepFailed(f"network: {error.explanation or error}") from None
        real.update(name=name, id=network.id)
        self._remember(mapping, real, {planned_name(r) or "": name, r.id: network.id})
        return f"network {name}"

    def _create_container(self, r: PlannedResource, inputs: dict, mapping: dict, real: dict) -> str:
        name = pulumi_like_name(r.name)
        inputs = on_loopback(inputs)
        spec = container_spec(r.name, inputs, real_name=name, extra_labels=self.run_labels)
        host = dict(spec.host_config)
        if "mounts" in host:
            host["mounts"] = [Mount(**m) for m in host["mounts"]]
        host_config = self.api.create_host_config(**host)
        networking = None
        first = spec.networks[0] if spec.networks else None
        if first and host.get("network_mode") == first.name:
            networking = self.api.create_networking_config(
                {
                    first.name: self.api.create_endpoint_config(
                        aliases=first.aliases or None, ipv4_address=first.ipv4_address, ipv6_address=first.ipv6_address
                    )
                }
            )
        try:
            cid = self.api.create_container(host_config=host_config, networking_config=networking, **spec.create)["Id"]
        except docker.errors.APIError as error:
            raise StepFailed(f"create failed: {error.explanation or error}") from None
        # From here the container exists: a failure leaves it, recorded with an init error.
        real.update(id=cid, name=spec.name)
        self._remember(mapping, real, {planned_name(r) or "": spec.name, r.id: cid})
        try:
            for net in spec.networks[1:] if networking else spec.networks:
                self.api.connect_container_to_network(
                    cid,
                    net.name,
                    aliases=net.aliases or None,
                    ipv4_address=net.ipv4_address,
                    ipv6_address=net.ipv6_address,
                )
            if spec.uploads:
                self.api.put_archive(cid, "/", _tar(spec.uploads))
            if spec.lifecycle.start:
                self.api.start(cid)
        except docker.errors.APIError as error:
            raise StepFailed(f"{error.explanation or error}{self.tail(cid)}") from None
        return f"{spec.name} {self._settle(cid, spec)}"

    def _settle(self, cid: str, spec: ContainerSpec) -> str:
        life = spec.lifecycle
        if not life.start:
            return "created"
        if life.wait:
            return self._wait_healthy(cid, life.wait_timeout)
        # Stricter than the provider, which no longer fails a container that exits after
        # start (terraform-provider-docker #841); the program waits on every container anyway.
        time.sleep(SETTLE_SECONDS)
        state = self.api.inspect_container(cid)["State"]
        if not state["Running"] and life.must_run:
            raise StepFailed(f"exited {state['ExitCode']} right after start (must_run){self.tail(cid)}")
        return "running"

    def _wait_healthy(self, cid: str, timeout: int) -> str:
        """Poll once a second for `healthy` until wait_timeout, as the provider does: an
        `unhealthy` or restarting container may still recover, so it is not a failure yet."""
        started = time.monotonic()
        while True:
            if self.cancelled.is_set():
                raise StepFailed("cancelled")
            state = self.api.inspect_container(cid)["State"]
            health = (state.get("Health") or {}).get("Status")
            if health is None:
                raise StepFailed("wait=true but it has no healthcheck")
            if health == "healthy":
                return f"healthy after {time.monotonic() - started:.1f}s"
            if time.monotonic() - started > timeout:
                probe = (state.get("Health") or {}).get("Log") or [{}]
                output = " | ".join((probe[-1].get("Output") or "").strip().splitlines()[-3:]) or "no output"
                raise StepFailed(
                    f"not healthy within wait_timeout={timeout}s (health: {health}, "
                    f"restarts: {self.api.inspect_container(cid).get('RestartCount', 0)}, "
                    f"last probe: {output}){self.tail(cid)}"
                )
            time.sleep(1.0)

    def _run_job(self, r: PlannedResource, inputs: dict, mapping: dict, real: dict) -> str:
        from components.job import JobProvider

        props = {k: v for k, v in inputs.items() if k not in JOB_OUTPUTS and k != "__provider"}
        props["labels"] = [*props.get("labels", []), *({"label": k, "value": v} for k, v in self.run_labels.items())]
        # The connection is the plan's (the program's docker:* settings, resolved as the
        # provider resolves them): the job reaches the engine as under a real `pulumi up`.
        try:
            result = JobProvider().create(props)
        except Exception as error:  # JobFailed: exactly what `pulumi up` would print
            raise RehearsalError(str(error).splitlines()[0]) from None
        real.update(id=result.id, run_id=result.id)
        self._remember(mapping, real, {r.id: result.id, r.outputs.get("runId"): result.id})
        return f"exited 0 (run {result.id[:12]})"

    def _nginx_site(
        self, r: PlannedResource, inputs: dict, mapping: dict, real: dict, old: Optional[dict] = None
    ) -> str:
        """The program's own provider (components.nginx_site), as the real engine runs it: create
        writes the first generation; update writes, checks, switches to and reloads the new one."""
        from components.nginx_site import NginxSiteProvider

        props = {k: v for k, v in inputs.items() if k not in ("generation", "__provider")}
        props["labels"] = [*props.get("labels", []), *({"label": k, "value": v} for k, v in self.run_labels.items())]
        # The connection is the plan's, as for the release jobs.
        try:
            if old is None:
                result = NginxSiteProvider().create(props)
                outs, rid = result.outs or {}, result.id
            else:
                outs, rid = NginxSiteProvider().update(old.get("id", ""), {}, props).outs or {}, old.get("id", "")
        except Exception as error:  # SiteError: exactly what `pulumi up` would print
            raise StepFailed(str(error).splitlines()[0]) from None
        real.update(id=rid, generation=outs["generation"])
        if old is None:
            self._remember(mapping, real, {r.id: rid})
        return f"generation {outs['generation']}" + (
            " (nginx checked and reloaded when it changed)" if old is not None else ""
        )

    def _update(self, step: Step, mapping: dict) -> str:
        if step.type == NGINX_SITE:
            with self.lock:
                inputs = substitute(step.new_resource().inputs, mapping)
            real = step.old_entry().real
            return self._nginx_site(step.new_resource(), inputs, mapping, real, old=dict(real))
        if step.type == SERVICE and step.applied:
            return self._update_service(step, mapping)
        if step.type != CONTAINER or not step.applied:
            return "recorded only" if step.keys else "initialization continued (no change)"
        with self.lock:
            inputs = substitute(step.new_resource().inputs, mapping)
        cid = step.old_entry().real.get("id")
        # What resourceDockerContainerUpdate sends (_funcs.go:1033-1070): limits and restart policy.
        kwargs: dict[str, Any] = {
            "restart_policy": {
                "Name": inputs.get("restart") or "no",
                "MaximumRetryCount": int(inputs.get("maxRetryCount") or 0),
            },
            "mem_limit": int(inputs.get("memory") or 0) * 1024 * 1024,
            "cpu_shares": int(inputs.get("cpuShares") or 0),
        }
        if inputs.get("memorySwap"):
            swap = int(inputs["memorySwap"])
            kwargs["memswap_limit"] = swap * 1024 * 1024 if swap > 0 else swap
        try:
            self.api.update_container(cid, **kwargs)
        except docker.errors.APIError as error:
            raise RehearsalError(f"Unable to update a container: {error.explanation or error}") from None
        return f"updated {', '.join(step.applied)}"

    def _delete(self, entry: Entry) -> str:
        real = entry.real
        if not real:
            return "nothing left to delete"
        if entry.type == CONTAINER:
            cid = real["id"]
            try:
                if not entry.inputs.get("attach"):
                    self.api.stop(cid, timeout=int(entry.inputs.get("destroyGraceSeconds") or 0))
                self.api.remove_container(cid, force=True, v=entry.inputs.get("removeVolumes", True) is not False)
            except docker.errors.NotFound:
                pass
            return f"{real.get('name')} stopped and removed"
        if entry.type == NETWORK:
            try:
                self.api.remove_network(real["id"])
            except docker.errors.NotFound:
                pass
            return f"network {real['name']} removed"
        if entry.type == VOLUME:
            if entry.options.get("retain_on_delete"):
                return f"volume {real['name']} kept (retain_on_delete)"
            try:
                self.api.remove_volume(real["name"], force=True)
            except docker.errors.NotFound:
                pass
            return f"volume {real['name']} removed"
        if entry.type == SERVICE:
            return self._delete_service(entry)
        if entry.type in (SERVICE_CONFIG, SECRET):
            kind = "config" if entry.type == SERVICE_CONFIG else "secret"
            try:
                (self.api.remove_config if kind == "config" else self.api.remove_secret)(real["id"])
            except docker.errors.NotFound:
                pass
            except docker.errors.APIError as error:  # e.g. still in use by a service
                raise StepFailed(f"{kind} {real['name']}: {error.explanation or error}") from None
            return f"{kind} {real['name']} removed"
        if entry.type == JOB:
            from components.job import JobProvider

            JobProvider().delete(real["id"], {**entry.outputs, **job_connection(entry.inputs)})
            return "nothing left (the job removed its container)"
        return "kept (keep_locally or a value)"

    def tail(self, cid: str) -> str:
        return container_tail(self.api, cid)

    # ------------------------------------------------------------------ swarm

    def _create_swarm_object(self, r: PlannedResource, inputs: dict, mapping: dict, real: dict) -> str:
        """docker.ServiceConfig / docker.Secret: one create with the decoded data; never updated."""
        kind = "config" if r.type == SERVICE_CONFIG else "secret"
        name = r.inputs.get("name") or pulumi_like_name(r.name)
        data = swarm_object_data(kind, r.name, inputs)
        labels = {**labels_dict(inputs.get("labels")), **self.run_labels}
        try:
            create = self.api.create_config if kind == "config" else self.api.create_secret
            created = create(name, data, labels=labels)
        except docker.errors.APIError as error:
            raise StepFailed(f"{kind}: {error.explanation or error}") from None
        real.update(name=name, id=created["ID"])
        self._remember(mapping, real, {planned_name(r) or "": name, r.id: created["ID"]})
        return f"{kind} {name}"

    def _create_service(self, r: PlannedResource, inputs: dict, mapping: dict, real: dict) -> str:
        """resourceDockerServiceCreate (_funcs.go:30-80): create; with converge_config wait until
        every slot runs; if it does not, delete the service again and fail."""
        name = r.inputs.get("name") or pulumi_like_name(r.name)
        spec = service_spec(r.name, inputs, real_name=name, extra_labels=self.run_labels)
        self.query_registry(spec.create["task_template"])
        try:
            sid = self.api.create_service(**spec.create)["ID"]
        except docker.errors.APIError as error:
            raise StepFailed(f"service create failed: {error.explanation or error}") from None
        if spec.converge_delay_s is None:
            what = "created (no converge_config: nothing waits)"
        else:
            try:
                what = self._converge(sid, spec.converge_delay_s, spec.converge_timeout_s, update=False)
            except StepFailed as failure:
                self.say(service_diagnosis(self.api, sid))  # what the provider would not show
                self._remove_service(sid, spec.stop_grace_s)  # _funcs.go:66-70
                raise StepFailed(f"{failure} (the service was deleted again)") from None
        real.update(name=name, id=sid)
        self._remember(mapping, real, {planned_name(r) or "": name, r.id: sid})
        return f"service {name} {what}"

    def query_registry(self, task: dict) -> Optional[str]:
        """What the Docker client does to a service's task on create when the provider asks it to
        query the registry (QueryRegistry: terraform-provider-docker v4.5.0
        resource_docker_service_funcs.go:45; github.com/docker/docker v28.5.2
        client/service_create.go:45-60, 88-166): it asks the engine for the image's distribution
        (GET /distribution/<image>/json, with the registry's credentials), pins a reference
        without a digest to the digest the registry answered with (repository:tag@sha256:...),
        and records the image's platforms in placement.platforms. A registry that does not
        answer leaves the spec as it is (the client's warning: "could not be accessed on a
        registry to record its digest"). Not on update: ServiceUpdate is sent without it
        (funcs.go:185-192). Returns the pinned reference, or None when nothing was pinned.
        An image id (the rehearsal runs its app images by id) is no reference to query."""
        container = task["ContainerSpec"]
        image = container["Image"]
        if image.startswith("sha256:"):
            return None
        try:
            found = self.api.inspect_distribution(image, auth_config=self.registry_auth.get(registry_of(image)))
        except docker.errors.APIError:
            return None
        platforms = [
            {"Architecture": p.get("architecture", ""), "OS": p.get("os", "")} for p in found.get("Platforms") or []
        ]
        if platforms:
            task.setdefault("Placement", {})["Platforms"] = platforms
        if "@" in image:
            return None  # imageWithDigestString: a canonical reference is left as it is
        container["Image"] = f"{image}@{found['Descriptor']['digest']}"
        return container["Image"]

    def _update_service(self, step: Step, mapping: dict) -> str:
        """resourceDockerServiceUpdate (_funcs.go:169-225): ServiceUpdate with the whole new spec;
        with converge_config, poll UpdateStatus after a first 7 s."""
        with self.lock:
            inputs = substitute(step.new_resource().inputs, mapping)
        real = step.old_entry().real
        spec = service_spec(step.name, inputs, real_name=real["name"], extra_labels=self.run_labels)
        service = self.api.inspect_service(real["id"])
        try:
            self.api.update_service(real["id"], service["Version"]["Index"], **spec.create)
        except docker.errors.APIError as error:
            raise StepFailed(f"service update failed: {error.explanation or error}") from None
        if spec.converge_delay_s is None:
            return f"updated {', '.join(step.applied)} (no converge_config: nothing waits)"
        what = self._converge(real["id"], UPDATE_FIRST_POLL_S, spec.converge_timeout_s, update=True)
        return f"updated {', '.join(step.applied)}, {what}"

    def _converge(self, sid: str, first_poll_s: float, timeout_s: float, *, update: bool) -> str:
        """The provider's refresh functions (_funcs.go:366-477, the counting at :510-555)."""
        started = time.monotonic()
        self._sleep(first_poll_s)
        rollback = False
        while True:
            service = self.api.inspect_service(sid)
            status = service.get("UpdateStatus") or {}
            state = status.get("State")
            if update and state:
                # Checked before any task: a `completed` left by an earlier rollout ends the wait
                # at once; swarm clears UpdateStatus on every ServiceUpdate (seen here), so that
                # happens only when the new spec starts no rollout (replicas, labels only).
                if state == "completed":
                    return f"update completed after {time.monotonic() - started:.1f}s"
                if state in ("rollback_completed", "paused", "rollback_paused"):
                    label = {"rollback_completed": "rollback completed", "paused": "update paused"}.get(
                        state, "rollback paused"
                    )
                    raise StepFailed(f"service {label}: {status.get('Message', '')}")
                rollback = state == "rollback_started"
            replicas = ((service["Spec"].get("Mode") or {}).get("Replicated") or {}).get("Replicas")
            if replicas is None:
                raise StepFailed("no replica count")  # _funcs.go:511-513 (global mode)
            tasks = self.api.tasks(filters={"service": sid, "desired-state": "running"})
            if _running_slots(tasks) == replicas:
                if rollback:
                    raise StepFailed(f"service rollback completed: {status.get('Message', '')}")
                return f"{replicas}/{replicas} running after {time.monotonic() - started:.1f}s"
            if time.monotonic() - started > timeout_s:
                last = "; ".join(sorted({t["Status"].get("Err") or t["Status"]["State"] for t in tasks})) or "no task"
                raise StepFailed(
                    f"Service with ID ({sid}) did not converge after {timeout_s:.0f}s "
                    f"({_running_slots(tasks)}/{replicas} running; tasks: {last})"
                )
            self._sleep(1.0)

    def _sleep(self, seconds: float) -> None:
        if self.cancelled.wait(seconds):
            raise StepFailed("cancelled")

    def _delete_service(self, entry: Entry) -> str:
        real = entry.real
        spec = service_spec(entry.name, entry.inputs, real_name=real["name"], extra_labels={})
        self._remove_service(real["id"], spec.stop_grace_s)
        return f"service {real['name']} removed"

    def _remove_service(self, sid: str, grace_s: float) -> None:
        """deleteService (_funcs.go:240-330): with a stop_grace_period, note the tasks'
        containers, remove the service, wait up to the grace for each container, then force it."""
        containers = []
        if grace_s > 0:
            for task in self.api.tasks(filters={"service": sid}):
                cid = ((task.get("Status") or {}).get("ContainerStatus") or {}).get("ContainerID")
                if cid and task["Status"]["State"] != "shutdown":
                    containers.append(cid)
        try:
            self.api.remove_service(sid)
        except docker.errors.NotFound:
            return
        for cid in containers:
            deadline = time.monotonic() + grace_s
            while time.monotonic() < deadline:
                try:
                    self.api.inspect_container(cid)
                except docker.errors.NotFound:
                    break
                time.sleep(0.5)
            try:
                self.api.remove_container(cid, force=True, v=True)
            except docker.errors.APIError:
                pass  # gone, or its removal already in progress


def registry_of(image: str) -> str:
    """The registry an image reference names ("" for Docker Hub): its first component when that
    is a host (a dot, a port or localhost), as the distribution reference splits it."""
    first, _, rest = image.partition("/")
    return first if rest and ("." in first or ":" in first or first == "localhost") else ""


def _running_slots(tasks: list[dict]) -> int:
    """replicatedConsoleLogUpdater.update (_funcs.go:510-555): per slot the task with the lowest
    desired state (ties: lowest observed state), counted when desired is not past running
    and it runs (swarm says running only once a healthcheck has passed)."""
    order = [
        "new",
        "allocated",
        "pending",
        "assigned",
        "accepted",
        "preparing",
        "ready",
        "starting",
        "running",
        "complete",
        "shutdown",
        "failed",
        "rejected",
        "remove",
        "orphaned",
    ]
    rank = {state: i + 1 for i, state in enumerate(order)}
    by_slot: dict[int, dict] = {}
    for task in tasks:
        desired, observed = rank.get(task.get("DesiredState", ""), 0), rank.get(task["Status"]["State"], 0)
        if not desired or not observed:
            continue
        other = by_slot.get(task.get("Slot", 0))
        if other is not None:
            o_desired, o_observed = rank[other["DesiredState"]], rank[other["Status"]["State"]]
            if o_desired < desired or (o_desired == desired and o_observed <= observed):
                continue
        by_slot[task.get("Slot", 0)] = task
    return sum(
        1 for t in by_slot.values() if rank[t["DesiredState"]] <= rank["running"] and t["Status"]["State"] == "running"
    )


def brief(text: str, limit: int = 320) -> str:
    """A long message (a job's log tail on one line) cut in the middle: its start says what
    failed, its end holds the exception."""
    text = " ".join(text.split("\n"))
    return text if len(text) <= limit else f"{text[: limit // 2]} ... {text[-limit // 2 :]}"


def service_diagnosis(api, sid: str, lines: int = 6) -> str:
    """A service's tasks (state, error) and the last log lines and health probe of each task's
    container: why it did not converge (terraform-provider-docker v4.5.0 attaches none of it)."""
    out = []
    try:
        name = api.inspect_service(sid)["Spec"]["Name"]
        tasks = api.tasks(filters={"service": sid})
    except docker.errors.APIError as error:
        return f"    (service {sid[:12]}: {error.explanation or error})"
    for task in tasks[-4:]:
        status = task.get("Status") or {}
        out.append(
            f"    {name} task {task['ID'][:12]}: desired {task.get('DesiredState')}, {status.get('State')} "
            f"{status.get('Err') or status.get('Message') or ''}".rstrip()
        )
        cid = (status.get("ContainerStatus") or {}).get("ContainerID")
        if not cid:
            continue
        try:
            tail = api.logs(cid, tail=lines, stdout=True, stderr=True).decode(errors="replace").strip()
            health = (api.inspect_container(cid)["State"].get("Health") or {}).get("Log") or []
        except docker.errors.APIError:
            continue
        out += [f"      | {line}" for line in tail.splitlines()[-lines:]]
        if health:
            out.append(f"      health: {health[-1].get('Output', '').strip()[:300]}")
    return "\n".join(out) or f"    ({name}: no task)"


def on_loopback(inputs: dict) -> dict:
    """The container's inputs with every published port bound to 127.0.0.1 (a rehearsal
    never listens on the machine's other interfaces)."""
    if not inputs.get("ports"):
        return inputs
    return {**inputs, "ports": [{**port, "ip": LOOPBACK} for port in inputs["ports"]]}


JOB_OUTPUTS = {"runId", "exitCode", "logTail", "startedAt", "finishedAt"}


def container_tail(api, cid: str, lines: int = LOG_TAIL) -> str:
    try:
        text = api.logs(cid, tail=lines).decode(errors="replace").rstrip()
    except docker.errors.APIError:
        return ""
    body = "\n".join("    | " + line for line in text.splitlines()) or "    | (no output)"
    return f"\n  last {lines} log lines:\n{body}"


def _tar(uploads) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for u in uploads:
            info = tarfile.TarInfo(u.path.lstrip("/"))
            info.size, info.mode, info.uid, info.gid = len(u.content), u.mode, u.uid, u.gid
            info.mtime = int(time.time())
            tar.addfile(info, io.BytesIO(u.content))
    return buffer.getvalue()


# --------------------------------------------------------------------------- what exists


def live(state: State, type_: str) -> dict[str, dict]:
    """Logical name -> what exists on the engine, for resources of one type in the state."""
    return {e.name: e.real for e in state.entries if e.type == type_ and e.real and not e.delete}


def build_app_image(client, r: PlannedResource, project_root, say, *, context=None) -> str:
    """Build a planned docker.Image with the classic builder (optionally from another context)."""
    from rehearsal.images.standins import stream_build

    kwargs = image_build_kwargs(r.name, r.inputs, project_root)
    tag = kwargs.pop("tag")
    if context is not None:
        kwargs["path"] = str(context)
    say(f"  building {tag} from {kwargs['path']} ({kwargs['dockerfile']}, args {kwargs['buildargs']})")
    return stream_build(client, tag, **kwargs)


def teardown(client: docker.DockerClient, stack: str, run: str | None = None) -> tuple[int, int, int]:
    """Remove every container, network and volume labelled as this stack's rehearsal
    (or only one run's). Nothing without the label is touched."""
    selector = [f"{STACK_LABEL}={stack}"] + ([f"{RUN_LABEL}={run}"] if run else [])
    filters = {"label": selector}
    containers = client.api.containers(all=True, filters=filters)
    for c in containers:
        try:
            client.api.remove_container(c["Id"], force=True, v=True)
        except docker.errors.NotFound:
            pass
    networks = client.api.networks(filters=filters)
    for n in networks:
        try:
            client.api.remove_network(n["Id"])
        except docker.errors.NotFound:
            pass
    volumes = client.api.volumes(filters=filters).get("Volumes") or []
    for v in volumes:
        try:
            client.api.remove_volume(v["Name"], force=True)
        except docker.errors.NotFound:
            pass
    return len(containers), len(networks), len(volumes)
