"""The rules of the django-docker policy pack, as plain functions.

Each rule is a `validate(args, report_violation)` function in the shape
pulumi_policy calls, wrapped in a `ResourceValidationPolicy` with its
enforcement level. The functions read only `args.resource_type`, `args.props`
(the resource's inputs, camelCase wire names), `args.urn`, `args.opts.protect`
and `args.get_config()`, so tests call them directly with hand-built args.

Which containers a rule applies to is decided by the labels the program puts
on every resource (docs/contracts.md): `django-docker.role` (`app` for
containers that run the app image, `accessory` otherwise) and
`django-docker.service`. Because the other rules trust those labels, the
mandatory `resources-labelled` rule makes sure no container, network or volume
can escape them by leaving a label out.

One-shot containers (`migration-gate`, `migrate`, `collectstatic`, run as release Jobs) run to
completion once per deploy: they have no healthcheck and no restart policy by
design. They are exempt from the healthcheck rule and held to restart "no" (or
none) by the restart rule, but not exempt from the image, memory, non-root and
CIS rules: a Job is held to every rule a container is.

With `target: swarm` the program runs docker.Service resources instead of containers (and
mounts docker.Secret files instead of secret environment variables); the `swarm-*` rules hold
them to the same intent, reading the container from `taskSpec.containerSpec`, and select them
by the same labels (`swarm-service-labelled` makes sure a service carries them). The release
jobs stay Jobs on swarm too, held to the container rules.

During `pulumi preview` a value the engine does not know yet (the digest of an
image that has not been built) makes pulumi_policy skip that rule for that
resource with a notice; the rule runs again with the real value in `pulumi up`.
So the rules read only what they need (a label by its key, not every label).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Callable, Optional

from pulumi_policy import (
    EnforcementLevel,
    PolicyConfigSchema,
    ResourceValidationArgs,
    ResourceValidationPolicy,
)

ReportViolation = Callable[..., None]

CONTAINER = "docker:index/container:Container"
# The release jobs (components/job.py): a dynamic resource that runs a container to completion,
# with docker.Container's input names. Every container rule holds for it too.
JOB = "pulumi-python:dynamic/django-docker:Job"
RUNS_A_CONTAINER = frozenset({CONTAINER, JOB})
NETWORK = "docker:index/network:Network"
VOLUME = "docker:index/volume:Volume"
IMAGE = "docker:index/image:Image"
REMOTE_IMAGE = "docker:index/remoteImage:RemoteImage"
# Swarm (stack setting `target: swarm`): services instead of containers, the secrets they mount.
SERVICE = "docker:index/service:Service"
SECRET = "docker:index/secret:Secret"

LABEL_SERVICE = "django-docker.service"
LABEL_ROLE = "django-docker.role"
LABEL_STACK = "django-docker.stack"
LABEL_NETWORK = "django-docker.network"
LABEL_VOLUME = "django-docker.volume"

ROLES = frozenset({"app", "accessory"})
ONE_SHOT_SERVICES = frozenset({"migration-gate", "migrate", "collectstatic"})
PORT_PUBLISHERS = frozenset({"nginx"})
DATA_VOLUMES = frozenset({"postgres-data", "redis-data"})
LONG_RUNNING_RESTARTS = frozenset({"always", "unless-stopped", "on-failure"})
DEFAULT_PRODUCTION_STACKS = ("prod",)
# Services that own a data directory on one node's volume: one task, never two at once.
STATEFUL_SERVICES = frozenset({"postgres", "redis"})

# A content digest, and a whole image reference pinned by one.
_DIGEST = r"sha256:[0-9a-f]{64}"
_DIGEST_RE = re.compile(_DIGEST)
_PINNED_BY_DIGEST_RE = re.compile(r"[^@\s]+@" + _DIGEST)


# --- reading resources -------------------------------------------------------


class Labels(Mapping[str, Any]):
    """The `labels` input ([{label, value}, ...]) read by key: only the value asked for is read.

    During `pulumi preview` pulumi_policy skips a rule for a resource as soon as the rule reads a
    value the engine does not know yet. An app container's labels include the release gate's run
    id, unknown until the release jobs ran: reading every label (as a dict of them would) made
    the real engine skip every app-container rule in every release's preview ("can't run policy
    ... string value at .labels.1.value can't be known during preview", pulumi v3.259.0); the
    rules need only the role, service and stack labels, which are known.
    """

    def __init__(self, items: Any):
        self._items = list(items or ())

    def __getitem__(self, key: str) -> Any:
        for item in self._items:
            if item.get("label") == key:
                return item.get("value")
        raise KeyError(key)

    def __iter__(self):
        return (item.get("label") for item in self._items)

    def __len__(self) -> int:
        return len(self._items)


def labels(props: Mapping[str, Any]) -> Labels:
    """The `labels` input, by key (see Labels)."""
    return Labels(props.get("labels"))


def stack_of(args: ResourceValidationArgs) -> Optional[str]:
    """The stack a resource belongs to: the URN names it
    (`urn:pulumi:<stack>::<project>::...`); the program's stack label is the
    fallback for a resource whose URN cannot be read."""
    match = re.match(r"urn:pulumi:([^:]+)::", args.urn or "")
    if match:
        return match.group(1)
    return labels(args.props).get(LABEL_STACK)


def production_stacks(args: ResourceValidationArgs) -> tuple[str, ...]:
    """Stacks held to the production rules; policy config `productionStacks`."""
    configured = args.get_config().get("productionStacks")
    return tuple(configured) if configured else DEFAULT_PRODUCTION_STACKS


def is_app(props: Mapping[str, Any]) -> bool:
    return labels(props).get(LABEL_ROLE) == "app"


def is_one_shot(props: Mapping[str, Any]) -> bool:
    return labels(props).get(LABEL_SERVICE) in ONE_SHOT_SERVICES


def _name(args: ResourceValidationArgs) -> str:
    service = labels(args.props).get(LABEL_SERVICE)
    return f"{args.name} ({service})" if service else args.name


def image_reference_problem(ref: Any) -> Optional[str]:
    """Why an image reference is not pinned, or None when it is.

    Pinned: a digest (`repo@sha256:<64 hex>`), a local image id
    (`sha256:<64 hex>`), or a tag other than `latest`. A reference with no tag
    and no digest means `latest` to Docker.
    """
    if not ref or not isinstance(ref, str):
        return "has no image reference"
    if _DIGEST_RE.fullmatch(ref):
        return None
    name, at, digest = ref.partition("@")
    if at:
        return None if _DIGEST_RE.fullmatch(digest) else f"has a malformed digest in {ref!r}"
    # A colon before the last slash is a registry port (localhost:5000/web).
    last_part = name.rsplit("/", 1)[-1]
    if ":" not in last_part:
        return f"runs {ref!r} with neither tag nor digest, which Docker resolves to latest"
    if last_part.rsplit(":", 1)[1] == "latest":
        return f"runs {ref!r}: latest is a moving tag"
    return None


def is_digest_reference(ref: Any) -> bool:
    """`repo@sha256:<64 hex>` or a local image id `sha256:<64 hex>`."""
    return isinstance(ref, str) and bool(_DIGEST_RE.fullmatch(ref) or _PINNED_BY_DIGEST_RE.fullmatch(ref))


def _user_is_root(user: Any) -> bool:
    uid = str(user).split(":", 1)[0].strip()
    return uid in ("", "0", "root")


def _healthcheck_tests(props: Mapping[str, Any]) -> list[str]:
    healthcheck = props.get("healthcheck") or {}
    return list(healthcheck.get("tests") or ())


# --- mandatory rules ---------------------------------------------------------


def validate_image_pinned(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if args.resource_type in RUNS_A_CONTAINER:
        problem = image_reference_problem(args.props.get("image"))
    elif args.resource_type == REMOTE_IMAGE:
        problem = image_reference_problem(args.props.get("name"))
    else:
        return
    if problem:
        report_violation(f"{_name(args)} {problem}; pin a version tag or a digest.")


def validate_app_image_by_digest(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    # Prod runs exactly what dev proved: a tag can be re-pushed, a digest cannot.
    if args.resource_type not in RUNS_A_CONTAINER or not is_app(args.props):
        return
    image = args.props.get("image")
    if not is_digest_reference(image):
        report_violation(
            f"{_name(args)} runs the app image as {image!r}; app containers run a digest "
            "(repo@sha256:... or a local sha256:... id), never a tag."
        )


def validate_resources_labelled(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    # The other rules select resources by these labels; a missing one would let
    # a resource slip past them silently.
    found = labels(args.props)
    if args.resource_type in RUNS_A_CONTAINER:
        if not found.get(LABEL_SERVICE):
            report_violation(f"{args.name} has no {LABEL_SERVICE} label.")
        if found.get(LABEL_ROLE) not in ROLES:
            report_violation(
                f"{args.name} has {LABEL_ROLE}={found.get(LABEL_ROLE)!r}; expected one of {sorted(ROLES)}."
            )
    elif args.resource_type == NETWORK and not found.get(LABEL_NETWORK):
        report_violation(f"{args.name} has no {LABEL_NETWORK} label.")
    elif args.resource_type == VOLUME and not found.get(LABEL_VOLUME):
        report_violation(f"{args.name} has no {LABEL_VOLUME} label.")


def validate_app_memory_limit(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if args.resource_type not in RUNS_A_CONTAINER or not is_app(args.props):
        return
    memory = args.props.get("memory")
    if not isinstance(memory, (int, float)) or isinstance(memory, bool) or memory <= 0:
        report_violation(f"{_name(args)} has no memory limit (memory={memory!r} MB); set one.")


def validate_app_restart_policy(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if args.resource_type not in RUNS_A_CONTAINER or not is_app(args.props):
        return
    restart = args.props.get("restart")
    if is_one_shot(args.props):
        # A one-shot that restarts would run its job again and again.
        if restart not in (None, "no"):
            report_violation(f'{_name(args)} is a one-shot but has restart={restart!r}; use "no".')
    elif restart not in LONG_RUNNING_RESTARTS:
        report_violation(f"{_name(args)} has restart={restart!r}; use one of {sorted(LONG_RUNNING_RESTARTS)}.")


def validate_app_healthcheck(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if args.resource_type not in RUNS_A_CONTAINER or not is_app(args.props) or is_one_shot(args.props):
        return
    tests = _healthcheck_tests(args.props)
    if not tests or tests[0] == "NONE":
        report_violation(f"{_name(args)} has no healthcheck; give it a test command.")


def validate_app_non_root(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if args.resource_type not in RUNS_A_CONTAINER or not is_app(args.props):
        return
    user = args.props.get("user")
    # Unset means whatever the image says; the rule wants it stated here.
    if user is None or _user_is_root(user):
        report_violation(f"{_name(args)} runs as user {user!r}; set a non-root uid (e.g. 10001:10001).")


def validate_only_nginx_publishes_ports(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if args.resource_type not in RUNS_A_CONTAINER:
        return
    service = labels(args.props).get(LABEL_SERVICE)
    if service in PORT_PUBLISHERS:
        return
    published = [
        f"{port.get('ip') or '0.0.0.0'}:{port.get('external') or '?'}->{port.get('internal')}"
        for port in args.props.get("ports") or ()
    ]
    if published:
        report_violation(f"{_name(args)} publishes host ports {', '.join(published)}; only nginx may.")
    if args.props.get("publishAllPorts"):
        report_violation(f"{_name(args)} sets publishAllPorts; only nginx may publish host ports.")


def validate_backend_network_internal(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if args.resource_type != NETWORK or labels(args.props).get(LABEL_NETWORK) != "backend":
        return
    if args.props.get("internal") is not True:
        report_violation(f"{args.name} is the backend network but internal={args.props.get('internal')!r}; set true.")


def validate_prod_data_volumes_protected(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if args.resource_type != VOLUME:
        return
    volume = labels(args.props).get(LABEL_VOLUME)
    stack = stack_of(args)
    if volume in DATA_VOLUMES and stack in production_stacks(args) and not args.opts.protect:
        report_violation(f"{args.name} holds {volume} in stack {stack} but is not protected; set protect=True.")


def validate_prod_never_builds(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    # Prod promotes the digest proven in dev; a build there would be a new, unproven image.
    if args.resource_type != IMAGE:
        return
    stack = stack_of(args)
    if stack in production_stacks(args):
        report_violation(f"{args.name} builds an image in stack {stack}; production promotes dev's digest instead.")


# --- advisory rules: CIS Docker Benchmark, section 5 (container runtime) ------


def validate_cis_read_only_root(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if args.resource_type in RUNS_A_CONTAINER and args.props.get("readOnly") is not True:
        report_violation(f"{_name(args)} has a writable root filesystem; set readOnly and use tmpfs/volumes.")


def validate_cis_capabilities_dropped(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if args.resource_type not in RUNS_A_CONTAINER:
        return
    capabilities = args.props.get("capabilities") or {}
    drops = {str(cap).upper() for cap in capabilities.get("drops") or ()}
    if "ALL" not in drops:
        report_violation(
            f"{_name(args)} keeps Docker's default capabilities; drop ALL and add back only what it needs."
        )


def validate_cis_no_new_privileges(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if args.resource_type not in RUNS_A_CONTAINER:
        return
    options = {str(opt).replace("=", ":") for opt in args.props.get("securityOpts") or ()}
    if not options & {"no-new-privileges", "no-new-privileges:true"}:
        report_violation(f"{_name(args)} can gain privileges (setuid); add securityOpts no-new-privileges:true.")


def validate_cis_not_privileged(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if args.resource_type in RUNS_A_CONTAINER and args.props.get("privileged") is True:
        report_violation(f"{_name(args)} is privileged: it has root on the host.")


def validate_cis_host_namespaces(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if args.resource_type not in RUNS_A_CONTAINER:
        return
    for key in ("networkMode", "pidMode", "ipcMode", "usernsMode"):
        if args.props.get(key) == "host":
            report_violation(f"{_name(args)} shares the host's namespace ({key}=host).")


def validate_cis_docker_socket(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if args.resource_type not in RUNS_A_CONTAINER:
        return
    sources = [volume.get("hostPath") for volume in args.props.get("volumes") or ()]
    sources += [mount.get("source") for mount in args.props.get("mounts") or ()]
    if any(source and str(source).endswith("docker.sock") for source in sources):
        report_violation(f"{_name(args)} mounts the Docker socket: that is root on the host.")


def validate_cis_accessory_memory_limit(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    # App containers are held to this by the mandatory rule.
    if args.resource_type not in RUNS_A_CONTAINER or is_app(args.props):
        return
    memory = args.props.get("memory")
    if not isinstance(memory, (int, float)) or isinstance(memory, bool) or memory <= 0:
        report_violation(f"{_name(args)} has no memory limit.")


def validate_cis_accessory_healthcheck(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if args.resource_type not in RUNS_A_CONTAINER or is_app(args.props):
        return
    tests = _healthcheck_tests(args.props)
    if not tests or tests[0] == "NONE":
        report_violation(f"{_name(args)} has no healthcheck.")


# --- swarm rules (`target: swarm`): services, and the secrets they mount -------
#
# The same intent as the container rules, read from a docker.Service's inputs: the container
# is `taskSpec.containerSpec`, its limit `taskSpec.resources.limits.memoryBytes`, its ports
# `endpointSpec.ports`. A Service carries the same django-docker.service/.role labels as a
# container (on the service itself, `labels`), and the rules select by them.

# Variable names that say "secret"; `<NAME>_FILE` names the file a secret is mounted at instead.
_SECRET_NAME_RE = re.compile(r"PASSWORD|PASSWD|PASSPHRASE|SECRET|TOKEN|CREDENTIAL|(PRIVATE|API|ACCESS)_?KEY")
# A URL with a password in it: scheme://user:password@host (the user may be empty).
_URL_WITH_PASSWORD_RE = re.compile(r"[a-z][a-z0-9+.-]*://[^/@\s:]*:[^/@\s]+@", re.IGNORECASE)
# A constraint that ties a task to a node (or to the nodes a label marks): where its volume is.
_NODE_CONSTRAINT_RE = re.compile(r"\s*node\.(id|hostname|labels\.[^\s=!]+)\s*==\s*\S")


def _task_spec(props: Mapping[str, Any]) -> Mapping[str, Any]:
    return props.get("taskSpec") or {}


def _container_spec(props: Mapping[str, Any]) -> Mapping[str, Any]:
    return _task_spec(props).get("containerSpec") or {}


def is_secret_name(name: str) -> bool:
    upper = name.upper()
    return not upper.endswith("_FILE") and bool(_SECRET_NAME_RE.search(upper))


def has_url_password(value: Any) -> bool:
    return isinstance(value, str) and bool(_URL_WITH_PASSWORD_RE.search(value))


def _is_positive_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0


def validate_swarm_service_labelled(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    # As resources-labelled for containers: the swarm rules select services by these labels.
    if args.resource_type != SERVICE:
        return
    found = labels(args.props)
    if not found.get(LABEL_SERVICE):
        report_violation(f"{args.name} is a swarm service with no {LABEL_SERVICE} label.")
    if found.get(LABEL_ROLE) not in ROLES:
        report_violation(
            f"{args.name} is a swarm service with {LABEL_ROLE}={found.get(LABEL_ROLE)!r}; "
            f"expected one of {sorted(ROLES)}."
        )


def validate_swarm_image_pinned(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if args.resource_type != SERVICE:
        return
    problem = image_reference_problem(_container_spec(args.props).get("image"))
    if problem:
        report_violation(f"{_name(args)} {problem}; pin a version tag or a digest.")


def validate_swarm_app_image_by_digest(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if args.resource_type != SERVICE or not is_app(args.props):
        return
    image = _container_spec(args.props).get("image")
    if not is_digest_reference(image):
        report_violation(
            f"{_name(args)} runs the app image as {image!r}; app services run a digest (repo@sha256:...), never a tag."
        )


def validate_swarm_memory_limit(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if args.resource_type != SERVICE:
        return
    limits = (_task_spec(args.props).get("resources") or {}).get("limits") or {}
    memory = limits.get("memoryBytes")
    if not _is_positive_number(memory):
        report_violation(
            f"{_name(args)} has no memory limit (taskSpec.resources.limits.memoryBytes={memory!r}); set one."
        )


def validate_swarm_app_non_root(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if args.resource_type != SERVICE or not is_app(args.props):
        return
    user = _container_spec(args.props).get("user")
    if user is None or _user_is_root(user):
        report_violation(
            f"{_name(args)} runs as user {user!r}; set taskSpec.containerSpec.user to a non-root uid (e.g. 10001:10001)."
        )


def validate_swarm_app_read_only_root(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if args.resource_type != SERVICE or not is_app(args.props):
        return
    if _container_spec(args.props).get("readOnly") is not True:
        report_violation(
            f"{_name(args)} has a writable root filesystem; set taskSpec.containerSpec.readOnly and use tmpfs/volumes."
        )


def validate_swarm_app_capabilities_dropped(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if args.resource_type != SERVICE or not is_app(args.props):
        return
    drops = {str(cap).upper() for cap in _container_spec(args.props).get("capDrops") or ()}
    if "ALL" not in drops:
        report_violation(
            f"{_name(args)} keeps Docker's default capabilities; set taskSpec.containerSpec.capDrops to [ALL]."
        )


def validate_swarm_no_secret_in_env(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    # A service's environment is part of its spec: `docker service inspect` shows it to anyone
    # with access to a manager, secret in Pulumi's state or not. Secrets go in as swarm secret
    # files (`<NAME>_FILE` points at one).
    if args.resource_type != SERVICE:
        return
    env = _container_spec(args.props).get("env") or {}
    if not isinstance(env, Mapping):  # the provider's shape is {NAME: value}; tolerate ["NAME=value"]
        env = dict(str(item).partition("=")[::2] for item in env)
    names = [str(name) for name in env]
    # Names before values: a value unknown during a preview must not hide a secret-named variable.
    secret_named = sorted(name for name in names if is_secret_name(name))
    if secret_named:
        report_violation(
            f"{_name(args)} has {', '.join(secret_named)} in its environment; "
            "mount it as a swarm secret file (<NAME>_FILE) instead."
        )
    with_password = sorted(name for name in names if name not in secret_named and has_url_password(env[name]))
    if with_password:
        report_violation(
            f"{_name(args)} has a URL with a password in {', '.join(with_password)}; "
            "mount it as a swarm secret file (<NAME>_FILE) instead."
        )


def validate_swarm_secret_data_secret(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    # What a policy can see of secret-ness: pulumi_policy hands a validation the plain value of
    # a secret input (it drops the engine's secret marker), so the marker it does get is the
    # resource option additionalSecretOutputs. pulumi_docker's Secret always sets it to
    # ["data"], and makes its data input secret too.
    if args.resource_type != SECRET:
        return
    if "data" not in (args.opts.additional_secret_outputs or ()):
        report_violation(
            f"{_name(args)} is a swarm secret whose data is not marked secret; "
            "register it as a Pulumi secret (additionalSecretOutputs: data)."
        )


def validate_swarm_only_nginx_publishes_ports(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if args.resource_type != SERVICE or labels(args.props).get(LABEL_SERVICE) in PORT_PUBLISHERS:
        return
    published = [
        f"{port.get('publishedPort') or '(any)'}->{port.get('targetPort')}/{port.get('protocol') or 'tcp'}"
        for port in (args.props.get("endpointSpec") or {}).get("ports") or ()
    ]
    if published:
        report_violation(f"{_name(args)} publishes ports {', '.join(published)} (endpointSpec.ports); only nginx may.")


def validate_swarm_stateful_singleton(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    # Its data directory is a local volume on one node: two tasks at once, or a task on
    # another node, would be two servers on one directory or a server on an empty one.
    if args.resource_type != SERVICE or labels(args.props).get(LABEL_SERVICE) not in STATEFUL_SERVICES:
        return
    name = _name(args)
    mode = args.props.get("mode") or {}
    replicas = (mode.get("replicated") or {}).get("replicas")
    if mode.get("global") or isinstance(replicas, bool) or replicas != 1:
        what = "in global mode" if mode.get("global") else f"with replicas={replicas!r}"
        report_violation(f"{name} is stateful but runs {what}; set mode.replicated.replicas to 1.")
    order = (args.props.get("updateConfig") or {}).get("order")
    if order != "stop-first":
        report_violation(f"{name} is stateful but updates with order={order!r}; set updateConfig.order to stop-first.")
    rollback_order = (args.props.get("rollbackConfig") or {}).get("order")
    if rollback_order == "start-first":
        report_violation(f"{name} is stateful but rolls back start-first; set rollbackConfig.order to stop-first.")
    constraints = (_task_spec(args.props).get("placement") or {}).get("constraints") or ()
    if not any(isinstance(c, str) and _NODE_CONSTRAINT_RE.match(c) for c in constraints):
        report_violation(
            f"{name} is stateful but has no placement constraint tying it to its volume's node "
            "(node.labels.<label>==..., node.hostname==... or node.id==...)."
        )


def validate_swarm_app_rollout(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    # A release rolls every app service: `pulumi up` waits for it (convergeConfig) until its
    # tasks run healthy (the healthcheck), and swarm undoes a release whose tasks do not.
    if args.resource_type != SERVICE or not is_app(args.props):
        return
    name = _name(args)
    if not isinstance(args.props.get("convergeConfig"), Mapping):
        report_violation(
            f"{name} has no convergeConfig: pulumi up would neither wait for its tasks to turn healthy nor fail "
            "when they do not; set one."
        )
    action = (args.props.get("updateConfig") or {}).get("failureAction")
    if action != "rollback":
        report_violation(
            f"{name} has updateConfig.failureAction={action!r}; set rollback, so swarm undoes a failed release."
        )
    healthcheck = _container_spec(args.props).get("healthcheck") or {}
    tests = list(healthcheck.get("tests") or ())
    if not tests or tests[0] == "NONE":
        report_violation(
            f"{name} has no healthcheck, so a task counts as up before it serves; "
            "give taskSpec.containerSpec.healthcheck a test command."
        )


# --- the policies ------------------------------------------------------------

_PRODUCTION_STACKS_SCHEMA = PolicyConfigSchema(
    properties={
        "productionStacks": {
            "type": "array",
            "items": {"type": "string"},
            "default": list(DEFAULT_PRODUCTION_STACKS),
            "description": "Stack names held to the production rules.",
        }
    }
)

_CIS = "CIS Docker Benchmark, container runtime: "


def _policy(name, description, validate, level, config_schema=None) -> ResourceValidationPolicy:
    return ResourceValidationPolicy(
        name=name,
        description=description,
        validate=validate,
        enforcement_level=level,
        config_schema=config_schema,
    )


MANDATORY = EnforcementLevel.MANDATORY
ADVISORY = EnforcementLevel.ADVISORY

POLICIES: list[ResourceValidationPolicy] = [
    _policy(
        "image-pinned",
        "Containers (and pulled images) run a version tag or a digest, never latest or an untagged name.",
        validate_image_pinned,
        MANDATORY,
    ),
    _policy(
        "app-image-by-digest",
        "App containers run the app image by digest, so prod runs exactly what dev proved.",
        validate_app_image_by_digest,
        MANDATORY,
    ),
    _policy(
        "resources-labelled",
        "Containers carry django-docker.service and .role; networks and volumes their name label.",
        validate_resources_labelled,
        MANDATORY,
    ),
    _policy(
        "app-memory-limit",
        "Every app container (one-shots too) has a memory limit.",
        validate_app_memory_limit,
        MANDATORY,
    ),
    _policy(
        "app-restart-policy",
        "Long-running app containers restart (always/unless-stopped/on-failure); one-shots do not.",
        validate_app_restart_policy,
        MANDATORY,
    ),
    _policy(
        "app-healthcheck",
        "Long-running app containers have a healthcheck (one-shots are exempt).",
        validate_app_healthcheck,
        MANDATORY,
    ),
    _policy(
        "app-non-root",
        "App containers (one-shots too) run as an explicit non-root user.",
        validate_app_non_root,
        MANDATORY,
    ),
    _policy(
        "only-nginx-publishes-ports",
        "No container but nginx publishes host ports.",
        validate_only_nginx_publishes_ports,
        MANDATORY,
    ),
    _policy(
        "backend-network-internal",
        "The backend network is internal: no route out of it.",
        validate_backend_network_internal,
        MANDATORY,
    ),
    _policy(
        "prod-data-volumes-protected",
        "In production stacks the postgres and redis data volumes are protected from deletion.",
        validate_prod_data_volumes_protected,
        MANDATORY,
        _PRODUCTION_STACKS_SCHEMA,
    ),
    _policy(
        "prod-never-builds",
        "Production stacks build no image: they promote the digest proven in dev.",
        validate_prod_never_builds,
        MANDATORY,
        _PRODUCTION_STACKS_SCHEMA,
    ),
    _policy(
        "swarm-service-labelled",
        "Swarm services carry django-docker.service and .role, as containers do.",
        validate_swarm_service_labelled,
        MANDATORY,
    ),
    _policy(
        "swarm-image-pinned",
        "Swarm services run a version tag or a digest, never latest or an untagged name.",
        validate_swarm_image_pinned,
        MANDATORY,
    ),
    _policy(
        "swarm-app-image-by-digest",
        "App services run the app image by digest, so prod runs exactly what dev proved.",
        validate_swarm_app_image_by_digest,
        MANDATORY,
    ),
    _policy(
        "swarm-memory-limit",
        "Every swarm service has a memory limit (taskSpec.resources.limits.memoryBytes).",
        validate_swarm_memory_limit,
        MANDATORY,
    ),
    _policy(
        "swarm-app-non-root",
        "App services run as an explicit non-root user.",
        validate_swarm_app_non_root,
        MANDATORY,
    ),
    _policy(
        "swarm-app-read-only-root",
        "App services mount their root filesystem read-only.",
        validate_swarm_app_read_only_root,
        MANDATORY,
    ),
    _policy(
        "swarm-app-capabilities-dropped",
        "App services drop ALL Linux capabilities.",
        validate_swarm_app_capabilities_dropped,
        MANDATORY,
    ),
    _policy(
        "swarm-no-secret-in-env",
        "No swarm service has a secret in its environment (secrets are mounted as swarm secret files).",
        validate_swarm_no_secret_in_env,
        MANDATORY,
    ),
    _policy(
        "swarm-secret-data-secret",
        "A swarm secret's data is a Pulumi secret, never plain text in the state.",
        validate_swarm_secret_data_secret,
        MANDATORY,
    ),
    _policy(
        "swarm-only-nginx-publishes-ports",
        "No swarm service but nginx publishes ports.",
        validate_swarm_only_nginx_publishes_ports,
        MANDATORY,
    ),
    _policy(
        "swarm-stateful-singleton",
        "Postgres and redis services run one replica, update stop-first and are placed on their volume's node.",
        validate_swarm_stateful_singleton,
        MANDATORY,
    ),
    _policy(
        "swarm-app-rollout",
        "App services are health-checked, awaited by pulumi up (convergeConfig) and rolled back by swarm on failure.",
        validate_swarm_app_rollout,
        MANDATORY,
    ),
    _policy(
        "cis-read-only-root-filesystem",
        _CIS + "the container's root filesystem is mounted read-only.",
        validate_cis_read_only_root,
        ADVISORY,
    ),
    _policy(
        "cis-capabilities-dropped",
        _CIS + "Linux kernel capabilities are restricted (drop ALL).",
        validate_cis_capabilities_dropped,
        ADVISORY,
    ),
    _policy(
        "cis-no-new-privileges",
        _CIS + "the container is restricted from acquiring additional privileges.",
        validate_cis_no_new_privileges,
        ADVISORY,
    ),
    _policy("cis-not-privileged", _CIS + "privileged containers are not used.", validate_cis_not_privileged, ADVISORY),
    _policy(
        "cis-host-namespaces-not-shared",
        _CIS + "the host's network, PID, IPC and user namespaces are not shared.",
        validate_cis_host_namespaces,
        ADVISORY,
    ),
    _policy(
        "cis-docker-socket-not-mounted",
        _CIS + "the Docker socket is not mounted inside any container.",
        validate_cis_docker_socket,
        ADVISORY,
    ),
    _policy(
        "cis-accessory-memory-limit",
        _CIS + "memory usage is limited (accessory containers; app containers: app-memory-limit).",
        validate_cis_accessory_memory_limit,
        ADVISORY,
    ),
    _policy(
        "cis-accessory-healthcheck",
        _CIS + "container health is checked at runtime (accessories; app containers: app-healthcheck).",
        validate_cis_accessory_healthcheck,
        ADVISORY,
    ),
]
