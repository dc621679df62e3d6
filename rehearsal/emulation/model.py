"""What a real `pulumi up` does to an existing stack: the state and the new plan in, the steps out.

Pure: no engine, no Docker, no I/O. The rules are read from the upstream code, cited where
they are used:
- the engine: pulumi/pulumi at 1b5949891b, pkg/resource/deploy/ (step_generator.go,
  step.go, deployment_executor.go);
- the providers' schemas: which inputs replace a resource (ForceNew) and which an update
  applies, from kreuzwerker/terraform-provider-docker v4.5.0 (5074970c, the `upstream` of
  pulumi-docker v5.1.0), and pulumi-docker's own provider/resources.go and provider.go.

`plan_update(state, plan)` returns the steps with the order constraints the engine keeps:
each resource's step waits for the steps of what it depends on (the program registers a
resource only when its inputs are known); a delete-before-replace deletes first (and the
dependents that would be replaced with it); resources replaced create-before-delete, and
resources the program no longer declares, are deleted at the end, in reverse dependency
order, and only when everything else succeeded. `rehearsal.emulation.engine` carries the steps out.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from dataclasses import replace as dataclass_replace
from typing import Callable, Iterable, Optional

from planning.events import CREATE, DELETE, DELETE_FIRST, DELETE_REPLACED, REPLACE, SAME, UPDATE, step_text
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
    VOLUME,
    Plan,
    PlannedResource,
    label_in,
)

TF = "kreuzwerker/terraform-provider-docker v4.5.0"
ENGINE = "pulumi/pulumi pkg/resource/deploy"


class ModelError(Exception):
    """The update cannot be planned (the engine would refuse it too); one line."""


# --------------------------------------------------------------------------- provider schemas


@dataclass(frozen=True)
class Schema:
    """What a provider says about one resource type."""

    force_new: Optional[frozenset[str]]
    """Inputs whose change replaces the resource; None: every input does."""
    applied: frozenset[str]
    """Inputs an in-place update really applies; any other change is only recorded in the state."""
    provider_dbr: bool
    """The provider asks for delete-before-replace (the engine follows unless the program says)."""
    ignored: frozenset[str] = frozenset()
    """Inputs the provider's diff does not look at."""
    source: str = ""
    nested_force_new: tuple[str, ...] = ()
    """Dotted paths below a top-level input whose change replaces (e.g. taskSpec.networksAdvanceds)."""
    autonamed: bool = False
    """The provider auto-names `name` (pulumi-docker provider/resources.go:404, SetAutonaming)."""

    def replaces(self, key: str) -> bool:
        """Can a change of this top-level input replace the resource? (for values not known yet)"""
        return (
            self.force_new is None
            or key in self.force_new
            or any(p.split(".")[0] == key for p in self.nested_force_new)
        )

    def replacing(self, key: str, old: object, new: object, renewed_values: Iterable[str] = ()) -> bool:
        """Does this change of a top-level input replace the resource?

        SDKv2 puts ForceNew on the attribute that has it, never on the block around it
        (terraform-plugin-sdk helper/schema/schema.go diffList: a nested block's own ForceNew
        reaches only its count `.#`), so a nested ForceNew path replaces only when the value at
        that path differs. Equal values (an input changed only through a renewed dependency,
        whose planned id or name is in `renewed_values`) change where those values occur.
        """
        if self.force_new is None or key in self.force_new:
            return True
        paths = [p.split(".")[1:] for p in self.nested_force_new if p.split(".")[0] == key]
        if not paths:
            return False
        if old == new:
            values = set(renewed_values)
            return any(_mentions(_at(new, path), values) for path in paths)
        return any(_at(old, path) != _at(new, path) for path in paths)

    def delete_before_replace(self, new_inputs: dict) -> bool:
        """The provider's answer, before any resource option: its own flag, or the bridge's rule
        that a replacement of a resource whose auto-named `name` the program set itself is
        delete-before-replace (pulumi-terraform-bridge pkg/tfbridge/provider.go:1275-1276,
        schema.go:195-245 nameRequiresDeleteBeforeReplace)."""
        return self.provider_dbr or (self.autonamed and bool(new_inputs.get("name")))


def _mentions(value: object, values: set[str]) -> bool:
    if isinstance(value, str):
        return value in values
    if isinstance(value, dict):
        return any(_mentions(v, values) for v in value.values())
    if isinstance(value, list):
        return any(_mentions(v, values) for v in value)
    return False


def _at(value: object, path: list[str]) -> object:
    for part in path:
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


# Container inputs that are ForceNew, by wire name, with the schema line that says so
# (internal/provider/resource_docker_container.go).
CONTAINER_FORCE_NEW = {
    "name": 50,
    "readOnly": 64,
    "image": 141,
    "hostname": 148,
    "domainname": 156,
    "command": 163,
    "entrypoints": 172,
    "user": 181,
    "dns": 196,
    "dnsOpts": 205,
    "dnsSearches": 214,
    "publishAllPorts": 223,
    "workingDir": 243,
    "capabilities": 262,
    "securityOpts": 291,
    "runtime": 300,
    "platform": 307,
    "stopSignal": 314,
    "stopTimeout": 321,
    "mounts": 328,
    "volumes": 434,
    "ports": 487,
    "hosts": 537,
    "ulimits": 561,
    "envs": 590,
    "privileged": 656,
    "devices": 663,
    "deviceRequests": 774,
    "labels": 833,
    "shmSize": 863,
    "logDriver": 886,
    "logOpts": 894,
    "networkMode": 901,
    "networksAdvanced": 909,
    "pidMode": 974,
    "usernsMode": 980,
    "uploads": 987,
    "sysctls": 1105,
    "ipcMode": 1111,
    "groupAdds": 1118,
    "tty": 1132,
    "stdinOpen": 1139,
    "storageOpts": 1146,
    "gpus": 1152,
    "cpus": 1158,
    "cgroupnsMode": 1176,
    "cgroupParent": 1182,
}
# What resourceDockerContainerUpdate sends to the engine (resource_docker_container_funcs.go:1016-1019);
# every other changed input (healthcheck, init, tmpfs, wait, ...) is recorded and not applied.
CONTAINER_APPLIED = frozenset(
    {
        "restart",
        "maxRetryCount",
        "cpuShares",
        "memory",
        "memoryReservation",
        "cpuSet",
        "memorySwap",
        "deviceReadBps",
        "deviceReadIops",
        "deviceWriteBps",
        "deviceWriteIops",
    }
)

# A container whose create failed (its health wait) is stored as it was before the provider's
# last Read: resource_docker_container_funcs.go sets the id at :460, returns the wait's error at
# :621, and reads the container back only at :673. So the attributes only that Read fills in
# (entrypoint :172, network_data :606; Computed) are missing from its state, and the next diff
# reports them as changed: with replace_on_changes "*" they join the replacement's keys. Seen on
# the real engine (unhealthy-release: `[#initerror, entrypoints, networkDatas]`, tests/calibration).
UNREAD_AFTER_FAILED_CREATE = {CONTAINER: ("entrypoints", "networkDatas")}

SCHEMAS: dict[str, Schema] = {
    CONTAINER: Schema(
        frozenset(CONTAINER_FORCE_NEW),
        CONTAINER_APPLIED,
        provider_dbr=True,
        source=f"{TF} resource_docker_container.go (ForceNew), _funcs.go:1016-1019 (update); "
        "pulumi-docker provider/resources.go:112-114 (DeleteBeforeReplace: true)",
    ),
    # Every network and volume input is ForceNew (resource_docker_network.go:25-139,
    # resource_docker_volume.go:41-62); neither asks for delete-before-replace.
    NETWORK: Schema(None, frozenset(), provider_dbr=False, source=f"{TF} resource_docker_network.go"),
    VOLUME: Schema(None, frozenset(), provider_dbr=False, source=f"{TF} resource_docker_volume.go"),
    REMOTE_IMAGE: Schema(
        frozenset({"name", "pullTriggers", "triggers", "platform"}),
        frozenset(),
        provider_dbr=False,
        source=f"{TF} resource_docker_image.go:36-90",
    ),
    # pulumi-docker's own Image: any input change is an update, which rebuilds (provider.go:271-326).
    IMAGE: Schema(
        frozenset(), frozenset({"*"}), provider_dbr=False, source="pulumi-docker provider/provider.go:271-326"
    ),
    RANDOM_PASSWORD: Schema(None, frozenset(), provider_dbr=False, source="pulumi-random (every input replaces)"),
    # docker_service: name and auth replace (resource_docker_service.go:58, 22-53); below
    # task_spec, container_spec.hosts (:361), container_spec.sysctl (:506), every field of
    # networks_advanced (:710-732), and container_spec.labels, whose elements are ForceNew
    # (:86-91, Elem labelSchema: helpers.go:57-76; found by the real engine's calibration: a
    # label that changed with each release replaced web and the worker on every release). `mode` is ForceNew only as a block (:768), so only adding or
    # removing it would replace, and it is Optional+Computed: no program change does; replicas
    # (:779-785) is updated in place. Everything else goes through ServiceUpdate
    # (_funcs.go:169-225). Not delete-before-replace (pulumi-docker provider/resources.go:135).
    SERVICE: Schema(
        frozenset({"name", "auth"}),
        frozenset({"*"}),
        provider_dbr=False,
        nested_force_new=(
            "taskSpec.containerSpec.labels",
            "taskSpec.containerSpec.hosts",
            "taskSpec.containerSpec.sysctl",
            "taskSpec.networksAdvanceds",
        ),
        autonamed=True,
        source=f"{TF} resource_docker_service.go (ForceNew), _funcs.go:169-225 (update)",
    ),
    # Every input replaces (resource_docker_config.go:31-53, resource_docker_secret.go:27-43);
    # neither asks for delete-before-replace (pulumi-docker provider/resources.go:109-110, 134).
    SERVICE_CONFIG: Schema(
        None, frozenset(), provider_dbr=False, autonamed=True, source=f"{TF} resource_docker_config.go"
    ),
    SECRET: Schema(None, frozenset(), provider_dbr=False, autonamed=True, source=f"{TF} resource_docker_secret.go"),
    # Our own dynamic provider (components/job.py): any change re-runs it; how the Docker
    # host is reached is not a change (job.CONNECTION_KEYS).
    JOB: Schema(
        None,
        frozenset(),
        provider_dbr=False,
        ignored=frozenset(
            {"dockerHost", "sshOpts", "certPath", "caMaterial", "certMaterial", "keyMaterial", "__provider"}
        ),
        source="components/job.py JobProvider.diff",
    ),
    # Our own dynamic provider (components/nginx_site.py): nothing replaces it; a change is an
    # update, which writes the new generation and reloads nginx. `generation` is its output.
    NGINX_SITE: Schema(
        frozenset(),
        frozenset({"*"}),
        provider_dbr=False,
        ignored=frozenset({"dockerHost", "__provider", "generation"}),
        source="components/nginx_site.py NginxSiteProvider.diff",
    ),
}


# The engine's own account of an update's changed inputs comes from the provider's diff (its
# `diffs`); a Python dynamic provider's Diff never sends them (pulumi 3.272.0
# sdk/python/lib/pulumi/dynamic/__main__.py:114-134: changes, replaces, deleteBeforeReplace
# only), so the engine reports an update of one with no keys. The model still names them.
UNREPORTED_UPDATE_KEYS = frozenset({NGINX_SITE})


def schema_of(type_: str) -> Schema:
    try:
        return SCHEMAS[type_]
    except KeyError:
        raise ModelError(f"resource type {type_} is not in the model's provider table") from None


# --------------------------------------------------------------------------- the state


@dataclass
class Entry:
    """One resource in the stack's state, as the engine keeps it between updates."""

    urn: str
    type: str
    name: str
    inputs: dict
    outputs: dict
    options: dict
    custom: bool = True
    real: dict = field(default_factory=dict)
    """What exists on the engine for it (container id, names...): the executor's business."""
    init_error: str = ""
    """The provider created it but its create failed afterwards (e.g. never healthy)."""
    delete: bool = False
    """Replaced, and left for deletion by an update that failed before its deletes ran."""
    pending_replacement: bool = False
    """Deleted for a delete-before-replace whose create has not succeeded yet."""

    def label(self, key: str) -> Optional[str]:
        return label_in(self.inputs, key)

    @staticmethod
    def of(r: PlannedResource, **kwargs) -> "Entry":
        return Entry(r.urn, r.type, r.name, r.inputs, r.outputs, r.options, r.custom, **kwargs)


@dataclass
class State:
    entries: list[Entry] = field(default_factory=list)

    def current(self, urn: str) -> Optional[Entry]:
        """The entry the next update diffs against (not one left for deletion)."""
        return next((e for e in self.entries if e.urn == urn and not e.delete), None)


# --------------------------------------------------------------------------- steps

# The operations' names: one home, beside the reader of the real engine's events, so that the
# model's plans, the engine's steps and the forecast use the same words.
REGISTER, AT_END = "register", "at-end"


@dataclass(frozen=True)
class Step:
    op: str
    urn: str
    name: str
    type: str
    phase: str
    new: Optional[PlannedResource] = None
    old: Optional[Entry] = None
    keys: tuple[str, ...] = ()
    """The inputs that changed (update, replace); `#initerror` or `#trigger` when those decided."""
    applied: tuple[str, ...] = ()
    """For an update: the changed inputs the provider really applies."""
    mode: str = ""
    """For a replace: `create-before-delete` or `delete-before-replace`."""
    after: frozenset[int] = frozenset()
    """Indexes of the steps that must have succeeded first."""

    @classmethod
    def on(cls, op: str, what: PlannedResource | Entry, phase: str = REGISTER, **fields) -> "Step":
        """A step on a resource (planned) or an entry (of the state), which name it alike."""
        return cls(op, what.urn, what.name, what.type, phase, **fields)

    def new_resource(self) -> PlannedResource:
        """`new`, which the steps that register a resource carry (create, replace, update, same)."""
        if self.new is None:
            raise AttributeError(f"step {self.op} {self.name} has no new resource")
        return self.new

    def old_entry(self) -> Entry:
        """`old`, which the steps on a resource already in the state carry (update, deletes, same)."""
        if self.old is None:
            raise AttributeError(f"step {self.op} {self.name} has no old entry")
        return self.old

    def describe(self) -> str:
        text = step_text(self.op, self.name, self.mode, self.keys)
        if self.op == UPDATE:
            ignored = [k for k in self.keys if k not in self.applied]
            if ignored:
                text += f" (recorded only: {', '.join(ignored)})"
        return text


@dataclass
class UpdatePlan:
    steps: list[Step]

    @property
    def changes(self) -> list[Step]:
        """What `pulumi preview` would list: every step but `same`."""
        return [s for s in self.steps if s.op != SAME]

    def of(self, op: str) -> list[Step]:
        return [s for s in self.steps if s.op == op]


# --------------------------------------------------------------------------- planning


def changed_keys(
    old: Entry, new: PlannedResource, schema: Schema, renewed: set[str], expand: Callable[[Iterable[str]], set[str]]
) -> list[str]:
    """Inputs that differ, by top-level key (what the provider's diff reports).

    `renewed`: resources created or replaced earlier in this update. Their outputs are new
    (a new id, a new name) even though the mock plan gives them the same placeholder, so an
    input that takes its value from one of them has changed (the engine sees the new value;
    in a preview, an unknown one).
    """
    keys = set(old.inputs) | set(new.inputs)
    changed = []
    for key in sorted(keys - schema.ignored):
        if old.inputs.get(key) != new.inputs.get(key):
            changed.append(key)
        elif expand(new.options.get("property_dependencies", {}).get(key, ())) & renewed:
            changed.append(key)
    return changed


def _replace_on_changes_matches(patterns: Iterable[str], key: str) -> bool:
    # Top-level keys only: the program uses "*" (step_generator.go applyReplaceOnChanges).
    return any(p == "*" or p == key or p.split(".", 1)[0].split("[", 1)[0] == key for p in patterns)


def _expand(
    urns: Iterable[str], plan_resources: dict[str, PlannedResource], children: dict[str, list[str]]
) -> set[str]:
    """Custom resources behind a list of dependencies (a component stands for its descendants)."""
    result: set[str] = set()
    stack = list(urns)
    seen: set[str] = set()
    while stack:
        urn = stack.pop()
        if urn in seen:
            continue
        seen.add(urn)
        resource = plan_resources.get(urn)
        if resource is not None and resource.custom:
            result.add(urn)
        else:
            stack.extend(children.get(urn, ()))
    return result


def plan_update(state: State, plan: Plan) -> UpdatePlan:
    """The steps `pulumi up` takes to bring `state` to `plan` (see the module docstring)."""
    resources = {r.urn: r for r in plan.resources}
    children: dict[str, list[str]] = {}
    for r in plan.resources:
        if r.options.get("parent"):
            children.setdefault(r.options["parent"], []).append(r.urn)
    custom = _dependency_order(
        [r for r in plan.resources if r.custom and not r.options.get("read")], resources, children
    )

    steps: list[Step] = []
    main: dict[str, int] = {}  # urn -> index of the step after which the resource is registered
    renewed: set[str] = set()  # created or replaced in this update: their outputs are new
    deleted_first: set[str] = set()  # urns whose old entry a delete-before-replace already took

    def add(step: Step) -> int:
        steps.append(step)
        return len(steps) - 1

    def deps_of(r: PlannedResource) -> frozenset[int]:
        urns = _expand(_all_dependencies(r.options), resources, children)
        return frozenset(main[u] for u in urns if u in main and u != r.urn)

    # Resources arrive in an order where dependencies come first (the program cannot register
    # a resource before the values it takes from others exist); the mock records that order.
    for r in custom:
        schema = schema_of(r.type)
        after = deps_of(r)
        old = state.current(r.urn)

        if old is None or r.urn in deleted_first:
            was_deleted = r.urn in deleted_first
            main[r.urn] = add(
                Step.on(
                    REPLACE if was_deleted else CREATE,
                    r,
                    new=r,
                    old=old,
                    keys=("#dependency",) if was_deleted else (),
                    mode="delete-before-replace" if was_deleted else "",
                    after=after | frozenset(i for i, s in enumerate(steps) if s.op == DELETE_FIRST and s.urn == r.urn),
                )
            )
            renewed.add(r.urn)
            continue

        keys = changed_keys(old, r, schema, renewed, lambda urns: _expand(urns, resources, children))
        if old.init_error:
            keys = sorted(set(keys) | set(UNREAD_AFTER_FAILED_CREATE.get(r.type, ())))
        trigger_changed = (r.options.get("replacement_trigger") or None) != (
            old.options.get("replacement_trigger") or None
        )
        patterns = r.options.get("replace_on_changes") or ()
        # Init errors replace only with "*" (step_generator.go:1943-1946, applyReplaceOnChanges
        # :3170ff; documented on the replaceOnChanges option); otherwise an empty update
        # "continues awaiting initialization" (:2180-2198), which the provider turns into nothing.
        init_replace = bool(old.init_error) and "*" in patterns

        def renewed_values(key: str, r: PlannedResource = r) -> set[str]:
            urns = _expand(r.options.get("property_dependencies", {}).get(key, ()), resources, children) & renewed
            found = set()
            for urn in urns:
                dep = resources[urn]
                found |= {v for v in (dep.id, dep.inputs.get("name"), dep.outputs.get("name")) if v}
            return found

        replace_keys = [
            k
            for k in keys
            if schema.replacing(k, old.inputs.get(k), r.inputs.get(k), renewed_values(k))
            or _replace_on_changes_matches(patterns, k)
        ]
        if init_replace:
            replace_keys.append("#initerror")
        if trigger_changed:
            replace_keys.append("#trigger")
        if old.pending_replacement and not replace_keys:
            replace_keys.append("#pending-replacement")

        if replace_keys:
            if r.options.get("protect") and old.options.get("protect"):
                # step_generator.go:1954-1972: a protected resource is never replaced.
                raise ModelError(f"{r.name}: cannot be replaced while protected (changed: {', '.join(replace_keys)})")
            dbr = r.options.get("delete_before_replace")
            if dbr is None:  # the program left it to the provider (step_generator.go:2043-2046)
                dbr = schema.delete_before_replace(r.inputs)
            firsts: list[int] = []
            if dbr and not old.pending_replacement:  # already gone (step_generator.go:2139-2147)
                for dependent in dependent_replacements(state, old):
                    if dependent.urn in deleted_first:
                        continue
                    deleted_first.add(dependent.urn)
                    firsts.append(
                        add(
                            Step.on(
                                DELETE_FIRST,
                                dependent,
                                old=dependent,
                                keys=("#dependency",),
                                after=after | frozenset(firsts),
                            )
                        )
                    )
                firsts.append(
                    add(Step.on(DELETE_FIRST, r, old=old, keys=tuple(replace_keys), after=after | frozenset(firsts)))
                )
            # Create-before-delete: the old one goes "later on, after all creates/updates finish"
            # (:2161-2169); delete-before-replace: after the deletes above.
            main[r.urn] = add(
                Step.on(
                    REPLACE,
                    r,
                    new=r,
                    old=old,
                    keys=tuple(replace_keys),
                    mode="delete-before-replace" if dbr else "create-before-delete",
                    after=after | frozenset(firsts),
                )
            )
            renewed.add(r.urn)
        elif keys or old.init_error:
            applied = tuple(k for k in keys if "*" in schema.applied or k in schema.applied)
            main[r.urn] = add(
                Step.on(
                    UPDATE,
                    r,
                    new=r,
                    old=old,
                    keys=tuple(keys),
                    applied=applied,
                    after=after,
                )
            )
        else:
            main[r.urn] = add(Step.on(SAME, r, new=r, old=old, after=after))

    registered = frozenset(range(len(steps)))
    planned = {r.urn for r in custom}
    condemned: list[tuple[Entry, str]] = []
    for entry in state.entries:
        if not entry.custom or entry.options.get("read"):
            continue
        if entry.delete:
            condemned.append((entry, DELETE_REPLACED))  # a failed update's leftovers (:2380-2423)
        elif entry.urn in deleted_first:
            continue
        elif entry.urn not in planned:
            if entry.pending_replacement:
                continue  # nothing left to delete (RemovePendingReplaceStep)
            if entry.options.get("protect"):
                raise ModelError(f"{entry.name}: the program no longer declares it, but it is protected")
            condemned.append((entry, DELETE))
        elif any(s.op == REPLACE and s.mode == "create-before-delete" and s.urn == entry.urn for s in steps):
            condemned.append((entry, DELETE_REPLACED))
    for chain in delete_antichains([e for e, _ in condemned], state):
        before = frozenset(range(len(steps)))
        for entry in chain:
            op = next(op for e, op in condemned if e is entry)
            add(Step.on(op, entry, AT_END, old=entry, after=before | registered))
    return UpdatePlan(steps)


def _all_dependencies(options: dict) -> list[str]:
    """depends_on and every resource an input came from (the SDK sends both)."""
    found = list(options.get("dependencies") or ())
    for urns in (options.get("property_dependencies") or {}).values():
        found.extend(urns)
    return found


def _dependency_order(custom: list[PlannedResource], resources: dict, children: dict) -> list[PlannedResource]:
    """Custom resources with every dependency first; registration order breaks ties.

    The program registers a resource only once its inputs are known, so the recorded order
    already is one; sorting keeps the model right for a hand-built plan too.
    """
    urns = {r.urn for r in custom}
    deps = {r.urn: (_expand(_all_dependencies(r.options), resources, children) & urns) - {r.urn} for r in custom}
    ordered: list[PlannedResource] = []
    done: set[str] = set()
    while len(ordered) < len(custom):
        ready = [r for r in custom if r.urn not in done and deps[r.urn] <= done]
        if not ready:
            raise ModelError("dependency cycle among: " + ", ".join(r.name for r in custom if r.urn not in done))
        ordered.append(ready[0])
        done.add(ready[0].urn)
    return ordered


def dependent_replacements(state: State, root: Entry) -> list[Entry]:
    """Resources a delete-before-replace of `root` takes down first, in dependency order.

    step_generator.go:3268ff (calculateDependentReplacements): the transitive dependents of
    the root whose inputs come from a resource in the replace set (property dependencies) and
    whose provider would replace them were those inputs to change. A plain depends_on edge
    never takes a dependent down.
    """
    replace_set = {root.urn}
    found: list[Entry] = []
    for entry in [e for e in state.entries if not e.delete]:  # state order is dependency order
        if entry.urn == root.urn or not entry.custom or entry.options.get("read"):
            continue
        keys = [
            k
            for k, urns in (entry.options.get("property_dependencies") or {}).items()
            if set(urns) & replace_set and k in entry.inputs
        ]
        if not keys:
            continue
        schema = schema_of(entry.type)
        patterns = entry.options.get("replace_on_changes") or ()
        if any(schema.replaces(k) or _replace_on_changes_matches(patterns, k) for k in keys):
            replace_set.add(entry.urn)
            found.append(entry)
    return found


def delete_antichains(entries: list[Entry], state: State) -> list[list[Entry]]:
    """Deletes in rounds, as the engine schedules them: each round runs only once the one before
    it completed (pulumi/pulumi pkg/resource/deploy/deployment_executor.go:515-553).

    step_generator.go:2745-2794 (ScheduleDeletes) builds the rounds from the bottom: first every
    condemned resource none of whose dependencies is still condemned, then the next layer, and
    reverses the list, so a resource is deleted after everything that depends on it. Not the
    same rounds as building them from the top (first what nothing depends on): a resource with
    a short chain of dependents waits for a later round. The first real-engine calibration found
    that difference (new-commit: the backup job's old run was deleted beside collectstatic's,
    not after it).
    """
    pending = list(entries)
    rounds: list[list[Entry]] = []
    depends = {id(e): _state_dependencies(e, state) for e in pending}
    while pending:
        # Whatever depends on no other condemned entry goes in this (bottom) round.
        chain = [e for e in pending if not any(o.urn in depends[id(e)] for o in pending if o is not e)]
        if not chain:
            raise ModelError("dependency cycle among deletes: " + ", ".join(e.name for e in pending))
        rounds.append(chain)
        pending = [e for e in pending if all(e is not c for c in chain)]
    rounds.reverse()
    return rounds


def _state_dependencies(entry: Entry, state: State) -> set[str]:
    """URNs `entry` depends on in the state (components stand for their custom descendants)."""
    by_urn = {e.urn: e for e in state.entries}
    children: dict[str, list[str]] = {}
    for e in state.entries:
        parent = e.options.get("parent")
        if parent:
            children.setdefault(parent, []).append(e.urn)
    result: set[str] = set()
    stack = _all_dependencies(entry.options)
    seen: set[str] = set()
    while stack:
        urn = stack.pop()
        if urn in seen or urn == entry.urn:
            continue
        seen.add(urn)
        if urn in by_urn:
            result.add(urn)
        stack.extend(children.get(urn, ()))
    return result


# --------------------------------------------------------------------------- after the engine acted


def next_state(state: State, plan: Plan, update: UpdatePlan, outcome: dict[int, dict]) -> State:
    """The state after an update, from what each step did.

    outcome: step index -> {"ok": bool, "real": {...}, "init_error": str} for the steps that
    ran; steps that never ran (an earlier one failed) change nothing. Components and reads are
    taken from the plan, as the program registered them this time.
    """
    copies = {id(e): dataclass_replace(e) for e in state.entries}
    entries = [copies[id(e)] for e in state.entries if e.custom and not e.options.get("read")]

    for index, step in enumerate(update.steps):
        result = outcome.get(index)
        if result is None:
            continue
        ok = bool(result.get("ok"))
        if step.op in (DELETE, DELETE_REPLACED):
            if ok:
                entries.remove(copies[id(step.old)])
        elif step.op == DELETE_FIRST:
            if ok:
                gone = copies[id(step.old)]
                gone.pending_replacement, gone.real = True, {}
        elif step.op in (CREATE, REPLACE):
            if not ok and not result.get("real"):
                continue  # nothing was created: nothing to record
            fresh = Entry.of(
                step.new_resource(),
                real=dict(result.get("real") or {}),
                init_error="" if ok else (result.get("init_error") or "create failed"),
            )
            current = [e for e in entries if e.urn == step.urn and not e.delete]
            position = entries.index(current[-1]) + 1 if current else len(entries)
            for e in current:
                if step.mode == "create-before-delete":
                    e.delete = True  # step.go:467-472, also when the create only partly failed
                else:
                    entries.remove(e)  # a pending replacement, now replaced
                    position -= 1
            entries.insert(position, fresh)
        elif step.op == UPDATE and (ok or result.get("init_error")):
            # A partly failed update (the bridge answers with the state it reached and an init
            # error: a swarm service whose update rolled back) keeps the new inputs and the error
            # (pulumi/pulumi pkg/resource/deploy/step.go UpdateStep.Apply: StatusPartialFailure,
            # InitError -> s.new.InitErrors); the next up then updates it again, changes or not.
            # Recorded: tests/calibration/prod-swarm.json, unhealthy-release up 1.
            updated = copies[id(step.old)]
            new = step.new_resource()
            updated.inputs, updated.outputs, updated.options = new.inputs, new.outputs, new.options
            updated.init_error = "" if ok else result["init_error"]
        elif step.op == SAME:
            copies[id(step.old)].options = step.new_resource().options
    others = [Entry.of(r) for r in plan.resources if not r.custom or r.options.get("read")]
    return State(others + entries)
