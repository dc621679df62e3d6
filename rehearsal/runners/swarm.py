"""`python -m rehearsal swarm STACK [--engine pulumi]`: the stack with `target: swarm`, on a single-node swarm.

The swarm runs on a private engine (rehearsal.hosts.swarm_engine): a second dockerd with its own data
root, socket and bridge, because entering and leaving swarm mode on this Docker 20.10 broke
embedded DNS for containers already running on the main engine. A probe on the main engine
(two containers that resolve and call each other) must keep answering before, during and
after. The app's images are built on the main engine (where the stand-ins and the build cache
are) and copied over; the program is planned with `docker:host` naming the private engine's
socket, as a user names a manager.

The accessories (postgres, redis, nginx) come from a registry, as on a real swarm: a private
one on loopback (rehearsal.drivers.registry, basic auth) that the stand-ins are pushed to, the
stack's postgresImage/redisImage/nginxImage naming them there. So the Docker client's registry
query on a service create really answers, and would pin a tag to its digest
(components/swarm.py pinned_image): the smoke checks that the program pinned each to exactly
that digest, and the preview after every `pulumi up` that nothing would change.

Two engines carry out each `pulumi up`, as for the release rehearsal: the emulation (the model
plans it, rehearsal/emulation carries it out; the app's image copied, the accessories pulled as
the provider's RemoteImage pulls them) or, with `--engine pulumi`, the real Pulumi CLI on PATH
(rehearsal/runners/real_session.py: prod promotes dev's build, which the source stack pushes to
the same registry; the provider pulls everything itself). The real engine's run ends with
`pulumi refresh`, the provider's Read of every service, network, config and secret compared
with readback.py's, `pulumi preview --expect-no-changes` and `pulumi destroy`.

Phases, as the other rehearsals print them: the boot (plan, images, apply, preview, smoke),
then the scenarios under steady load through nginx (new-commit, unhealthy-release,
nginx-config, backend-network), each with the release rehearsal's line under the name
`<stack>-swarm`, then the probe again and a total against the 5-minute target. Exit 1 on any
failure; without swarm support, exit 0 and say why.
"""

from __future__ import annotations

import secrets
import shutil
import signal
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

import docker.errors
from docker.errors import APIError

from planning.harness import JOB, SERVICE, label_in, stack_config
from rehearsal.checks.smoke import (
    STATIC_ASSET,
    Check,
    healthy_answer,
    http_session,
    read_file,
    require,
    run_checks,
)
from rehearsal.drivers import registry as private_registry
from rehearsal.emulation.engine import RUN_LABEL, STACK_LABEL, live
from rehearsal.errors import RehearsalError
from rehearsal.hosts.private_engine import free_port
from rehearsal.hosts.swarm_engine import BesideProbe, PrivateEngine, start_private_engine, why_unavailable
from rehearsal.runners.real_session import RealSession
from rehearsal.runners.release import LOOPBACK, Context, run_scenario
from rehearsal.runners.session import ElsewhereSession, Session
from rehearsal.scenarios import Scenario, Up, backend_network, expect

TARGET_SECONDS = 300  # the whole swarm rehearsal on a 2-core machine (the emulation)
WHOAMI_REQUESTS = 60
OLD_TASK_GONE_SECONDS = 15
NGINX_GAP_SECONDS = 5  # nginx stop-first on its node: the old task stops, then the new one starts
SERVICE_LABEL = "django-docker.service"
# The program's own label (render.labels): the real engine's services carry no rehearsal label.
PROGRAM_STACK_LABEL = "django-docker.stack"
# The accessories' config keys, whose images the run's registry serves.
ACCESSORY_KEYS = ("postgresImage", "redisImage", "nginxImage")


# --------------------------------------------------------------------------- the session


class ServiceTasks:
    """The running tasks of the stack's services, from the session's state (either engine's)."""

    client: docker.DockerClient
    state: Any
    run_labels: dict[str, str]

    def service_tasks(self, service: str) -> list[dict]:
        """Inspect of the containers of the running tasks of one of the stack's services."""
        found = []
        for logical, real in live(self.state, SERVICE).items():
            entry = next(e for e in self.state.entries if e.name == logical and e.type == SERVICE and not e.delete)
            if entry.label(SERVICE_LABEL) != service:
                continue
            # The tasks swarm wants running: one on its way out (a release's old task, stopping
            # gracefully) is not the service any more.
            for task in self.client.api.tasks(filters={"service": real["id"], "desired-state": "running"}):
                cid = ((task.get("Status") or {}).get("ContainerStatus") or {}).get("ContainerID")
                if cid and (task.get("Status") or {}).get("State") == "running":
                    found.append(self.client.api.inspect_container(cid))
        return found

    def containers_of(self, service: str) -> dict[str, dict]:
        return {c["Name"].lstrip("/"): c for c in self.service_tasks(service)}


@dataclass
class SwarmSession(ServiceTasks, ElsewhereSession):
    """A Session on the private swarm engine whose images are made on the main one."""


@dataclass
class RealSwarmSession(ServiceTasks, RealSession):
    """The real engine's session on the private swarm engine: `pulumi up` with docker:host naming
    it; the source stack builds on the main engine (build_client) and pushes to the run's
    registry, which the provider pulls the promoted digest and the accessories from."""


@dataclass
class SwarmContext(Context):
    """The release rehearsal's Context, for a stack of services."""

    kept_rows: str = ""
    """backend-network: the rows' count, last id and digest before the change."""
    watch: Optional[Any] = None
    """backend-network: the watch on postgres's tasks during the change."""

    def replicas(self) -> int:
        (web,) = [r for r in self.current_plan().plan.of_type(SERVICE) if label_in(r.inputs, SERVICE_LABEL) == "web"]
        return int(web.inputs["mode"]["replicated"]["replicas"])


# --------------------------------------------------------------------------- the smoke


class SwarmSmoke:
    """The smoke checks of rehearsal.checks.smoke, on services: through nginx's published port, and
    into the tasks' containers for what only they can tell (uid, image, files)."""

    def __init__(
        self,
        ctx: Context,
        session: ServiceTasks,
        say: Callable[[str], None],
        auth: Optional[dict[str, dict[str, str]]] = None,
    ):
        self.ctx, self.session, self.say = ctx, session, say
        self.api = session.client.api
        self.auth = auth or {}
        """Registry address -> credentials, for the registry query of check_pinned."""

    def run(self) -> list[Check]:
        return run_checks(
            [
                ("health", self.check_health),
                ("replicas", self.check_replicas),
                ("visit", self.check_visit),
                ("upload", self.check_upload),
                ("static", self.check_static),
                ("migrate", self.check_migrate),
                ("non-root", self.check_non_root),
                ("app image", self.check_app_image),
                ("published ports", self.check_ports),
                ("secrets", self.check_secrets),
                ("pinned images", self.check_pinned),
                ("status", self.check_status),
            ],
            self.say,
        )

    def one(self, service: str) -> dict:
        tasks = self.session.service_tasks(service)
        require(len(tasks) == 1, f"{service}: {len(tasks)} running tasks, expected 1")
        return tasks[0]

    def check_health(self) -> str:
        return healthy_answer(self.ctx.get("/health/"), "/health/")

    def check_replicas(self) -> str:
        expected = {c["Config"]["Hostname"]: c["Name"].lstrip("/") for c in self.session.service_tasks("web")}
        require(len(expected) == self.ctx.replicas(), f"{len(expected)} web tasks, expected {self.ctx.replicas()}")
        seen: Counter = Counter()
        for _ in range(WHOAMI_REQUESTS):
            response = self.ctx.get("/whoami/")
            require(response.status_code == 200, f"GET /whoami/ -> {response.status_code}")
            seen[response.json()["hostname"]] += 1
        require(set(seen) == set(expected), f"answered by {sorted(seen)}, tasks are {sorted(expected)}")
        return f"{WHOAMI_REQUESTS} x GET /whoami/: all {len(expected)} web tasks answered (nginx re-resolves `web`)"

    def check_visit(self) -> str:
        base, host = self.ctx.front()
        with http_session(base, host) as http:
            response = http.post(base + "/visits/", timeout=10)
            require(response.status_code == 201, f"POST /visits/ -> {response.status_code}: {response.text[:200]}")
            body = response.json()
            started = time.monotonic()
            while not http.get(base + body["status_url"], timeout=10).json().get("processed"):
                require(time.monotonic() - started < 60, f"visit {body['id']}: Celery task not done within 60s")
                time.sleep(0.25)
        row = self.ctx.psql(f"select served_by from visits_visit where id = {int(body['id'])}")
        require(row, f"visit {body['id']} is not in PostgreSQL")
        return (
            f"POST /visits/ 201 id {body['id']}, in PostgreSQL, Celery task done in {time.monotonic() - started:.1f}s"
        )

    def check_upload(self) -> str:
        base, host = self.ctx.front()
        content = f"swarm rehearsal {secrets.token_hex(8)}\n".encode()
        with http_session(base, host) as http:
            response = http.post(base + "/uploads/", files={"file": ("s.txt", content, "text/plain")}, timeout=10)
            require(response.status_code == 201, f"POST /uploads/ -> {response.status_code}")
            url = response.json()["url"]
            served = http.get(base + url, timeout=10)
        require(served.status_code == 200 and served.content == content, f"GET {url} -> {served.status_code}")
        return f"POST /uploads/ 201 (web task), GET {url} returns it (nginx task, same media volume)"

    def check_static(self) -> str:
        response = self.ctx.get(f"/static/{STATIC_ASSET}")
        require(response.status_code == 200, f"GET /static/{STATIC_ASSET} -> {response.status_code}")
        on_disk = read_file(self.api, self.one("nginx")["Id"], f"/var/www/static/{STATIC_ASSET}")
        require(response.content == on_disk, "the static file differs from nginx's static volume")
        return f"GET /static/{STATIC_ASSET} 200, identical to the file collectstatic put in the volume"

    def check_migrate(self) -> str:
        ran = {e.name for e in self.session.state.entries if e.type == JOB and e.real}
        require({"migrate", "collectstatic"} <= {n.rsplit("-", 1)[1] for n in ran}, f"jobs that ran: {sorted(ran)}")
        applied = self.ctx.psql("select count(*) from django_migrations where app = 'visits'")
        require(applied.isdigit() and int(applied) >= 1, f"no visits migration recorded ({applied!r})")
        return f"{', '.join(sorted(n.rsplit('-', 1)[1] for n in ran))} ran as containers on the backend overlay"

    def check_non_root(self) -> str:
        uids = {}
        for service in ("web", "celery-worker"):
            for c in self.session.service_tasks(service):
                exec_id = self.api.exec_create(c["Id"], ["id", "-u"])["Id"]
                uids[c["Name"].lstrip("/")] = self.api.exec_start(exec_id).decode().strip()
        require(uids and all(uid not in ("0", "") for uid in uids.values()), f"uids {uids}")
        return f"{len(uids)} app tasks, uids {sorted(set(uids.values()))}"

    def check_app_image(self) -> str:
        image = self.ctx.image_of(self.ctx.variant)
        wrong = {
            c["Name"]: c["Image"]
            for service in ("web", "celery-worker")
            for c in self.session.service_tasks(service)
            if c["Image"] != image
        }
        require(not wrong, f"not running {image[:19]}: {wrong}")
        return f"every app task runs the built image {image[:19]}"

    def check_ports(self) -> str:
        published = {}
        for svc in self.api.services(filters={"label": f"{PROGRAM_STACK_LABEL}={self.ctx.stack}"}):
            ports = (svc.get("Endpoint") or {}).get("Ports") or []
            if ports:
                published[svc["Spec"]["Labels"].get(SERVICE_LABEL)] = [
                    f"{p['PublishMode']}:{p['PublishedPort']}->{p['TargetPort']}" for p in ports
                ]
        require(list(published) == ["nginx"], f"services that publish: {published}")
        return f"only nginx publishes ({', '.join(published['nginx'])})"

    def check_secrets(self) -> str:
        c = self.session.service_tasks("web")[0]
        env = dict(item.split("=", 1) for item in c["Config"]["Env"])
        require("DJANGO_SECRET_KEY" not in env and "DATABASE_URL" not in env, "a secret is in the environment")
        exec_id = self.api.exec_create(c["Id"], ["stat", "-c", "%a %u", "/run/secrets/database-url"])["Id"]
        mode = self.api.exec_start(exec_id).decode().strip()
        require(mode == "400 10001", f"/run/secrets/database-url is {mode!r}, expected 400 10001")
        return "no secret in any app task's environment; /run/secrets/database-url 0400, owned by the app user"

    def check_pinned(self) -> str:
        """Each accessory runs the tag its config names pinned to the digest the registry gives
        for that tag now: what the Docker client would have pinned, written by the program
        itself (so the provider reads back what it wrote)."""
        pinned = []
        for service in ("postgres", "redis", "nginx"):
            spec = self.api.inspect_service(self.one_service(service))["Spec"]
            image = spec["TaskTemplate"]["ContainerSpec"]["Image"]
            tag = image.split("@", 1)[0]
            require("@sha256:" in image, f"{service} runs {image}: not pinned to a digest")
            found = self.api.inspect_distribution(tag, auth_config=self.session_auth(tag))
            digest = found["Descriptor"]["digest"]
            require(image == f"{tag}@{digest}", f"{service} runs {image}; the registry gives {tag}@{digest}")
            pinned.append(f"{service} {digest[7:19]}")
        return "postgres, redis, nginx: tag@digest the registry gives for the tag (" + ", ".join(pinned) + ")"

    def check_status(self) -> str:
        """`make status`'s view (ops) of the tasks on the manager: each app task's release is its
        service's (a task's own labels never change: components/swarm.py task_labels)."""
        from ops.stack import StackOnHost

        boxes = [b for b in StackOnHost(self.ctx.stack, client=self.session.client).boxes if b.role == "app"]
        sha = self.ctx.sha_of(self.ctx.variant)
        wrong = sorted(f"{b.name}: {b.git_sha}" for b in boxes if b.git_sha != sha or not b.release)
        require(boxes and not wrong, f"ops status: app tasks without this release's commit or gate: {wrong}")
        return f"ops status: {len(boxes)} app tasks, each on commit {sha[:12]} with its release gate"

    def one_service(self, service: str) -> str:
        ids = [
            real["id"]
            for logical, real in live(self.session.state, SERVICE).items()
            if next(e for e in self.session.state.entries if e.name == logical and e.type == SERVICE).label(
                SERVICE_LABEL
            )
            == service
        ]
        require(len(ids) == 1, f"{service}: {len(ids)} services")
        return ids[0]

    def session_auth(self, image: str) -> Optional[dict]:
        return self.auth.get(image.split("/", 1)[0]) if "/" in image else None


# --------------------------------------------------------------------------- the scenarios


def _serving_unchanged(ctx: Context) -> str:
    sha = ctx.serving_sha()
    expect(sha == ctx.serving_before, f"/health/ reports {sha}, not the release that ran before")
    return sha


def _runs(ctx: Context, variant: str) -> str:
    image = ctx.image_of(variant)
    tasks = {**ctx.session.containers_of("web"), **ctx.session.containers_of("celery-worker")}
    stale = sorted(name for name, c in tasks.items() if c["Image"] != image)
    expect(not stale, f"tasks not on the {variant} image: {stale}")
    # swarm reports the update complete once the last new task runs; the last old task is
    # stopping then, and nginx may still reach it for a moment: wait for the new release alone.
    started, sha = time.monotonic(), ""
    while time.monotonic() - started < OLD_TASK_GONE_SECONDS:
        shas = {ctx.serving_sha() for _ in range(10)}
        if shas == {ctx.sha_of(variant)}:
            sha = shas.pop()
            break
        time.sleep(0.5)
    expect(sha, f"/health/ still answered by another release {OLD_TASK_GONE_SECONDS}s after the update")
    return (
        f"{len(tasks)} web and worker tasks run {variant}; /health/ reports {sha[:12]} alone "
        f"{time.monotonic() - started:.1f}s after `pulumi up` returned"
    )


def _rolled_back(ctx: Context, result) -> str:
    expect("rollback completed" in (result.error or ""), f"failed otherwise: {result.error}")
    sha = _serving_unchanged(ctx)
    return f"`pulumi up` failed ({result.error.splitlines()[0][:80]}); swarm rolled back, {sha[:12]} serves"


def _new_config(ctx: Context, result) -> str:
    rotated = [r.step.name for r in result.reports if r.step.op in ("replace", "delete-replaced")]
    expect(any(name.endswith("-conf") for name in rotated), f"the nginx config was not replaced: {rotated}")
    (nginx,) = ctx.session.containers_of("nginx").values()
    # exec, not the archive API: `docker cp` reads the image's file under a swarm config's mount
    # (seen on this engine: it returned the image's own nginx.conf)
    api = ctx.session.client.api
    conf = api.exec_start(api.exec_create(nginx["Id"], ["cat", "/etc/nginx/nginx.conf"])["Id"]).decode()
    expect("client_max_body_size 20m;" in conf, "nginx.conf in the task does not say client_max_body_size 20m")
    expect(nginx["State"]["Health"]["Status"] == "healthy", f"nginx is {nginx['State']['Health']['Status']}")
    return "a new swarm config; nginx rolled to it, healthy; the old config deleted once unused"


SCENARIOS = (
    Scenario(
        "new-commit",
        (Up("the next commit", image="next-commit", check=lambda ctx, result: _runs(ctx, "next-commit")),),
        timed=True,
    ),
    Scenario(
        "unhealthy-release",
        (
            Up(
                "a release whose WSGI module cannot be imported",
                image="broken-wsgi",
                succeeds=False,
                check=_rolled_back,
            ),
            Up("a good release (the commit before)", image="current", check=lambda ctx, result: _runs(ctx, "current")),
        ),
    ),
    # A config cannot change in place: a new one, nginx rolled to it (stop-first: one host port),
    # then the old one deleted. The seconds without nginx are the price of host-mode ports.
    Scenario(
        "nginx-config",
        (Up("clientMaxBodySize 10m -> 20m", overrides={"clientMaxBodySize": "20m"}, check=_new_config),),
        max_failed_seconds=NGINX_GAP_SECONDS,
    ),
    # A new backend network: postgres and redis delete-before-replace on their volumes, one
    # postgres at a time, the data kept (rehearsal/scenarios/backend_network.py).
    backend_network.SCENARIO,
)


# --------------------------------------------------------------------------- the run


def _terminate(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def rehearse_swarm(
    stack: str,
    say: Callable[[str], None],
    phase,
    connect,
    phase_failed: type[Exception],
    *,
    engine: str = "emulation",
    record: Optional[Path] = None,
    scenarios: Optional[list[str]] = None,
) -> int:
    """phase, connect, phase_failed: the rehearsal CLI's (rehearsal.__main__), so that every
    rehearsal prints its phases alike. engine: "emulation" or "pulumi" (the real CLI on PATH);
    record: with the real engine, where every `pulumi up`'s calibration record goes (JSON);
    scenarios: only these (names), in their fixed order."""
    name = f"{stack}-swarm"
    reason = why_unavailable()
    if reason:
        say(f"swarm {name}: not rehearsed: {reason}")
        return 0
    chosen = [s for s in SCENARIOS if not scenarios or s.name in scenarios]
    unknown = sorted(set(scenarios or ()) - {s.name for s in SCENARIOS})
    if unknown:
        say(f"rehearsal: unknown scenarios {unknown}; the swarm's are: {', '.join(s.name for s in SCENARIOS)}")
        return 1
    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGINT, _terminate)
    started = time.monotonic()
    run = secrets.token_hex(4)
    work = Path(tempfile.mkdtemp(prefix="rehearsal-swarm-"))
    checks: list[Check] = []
    outcomes = []
    failed_phase: Optional[BaseException] = None
    private: Optional[PrivateEngine] = None
    beside: Optional[BesideProbe] = None
    registry: Optional[private_registry.Registry] = None
    session: Any = None
    main: Optional[docker.DockerClient] = None
    info: dict = {}
    try:
        with phase("engines", info):
            main = connect()
            if engine == "pulumi" and not _pulumi_version():
                raise RehearsalError(
                    "ENGINE=pulumi needs the Pulumi CLI and its plugins (pulumi-language-python, "
                    "pulumi-resource-docker, pulumi-resource-random) on PATH; none found"
                )
            beside = BesideProbe(main).start()
            config, namespace = stack_config(stack)
            private = start_private_engine(say, (config[f"{namespace}:swarmDataLabel"], "true"))
            registry = private_registry.start(work / "registry")
            labels = {STACK_LABEL: name, RUN_LABEL: run}
            if engine == "pulumi":
                session = RealSwarmSession(private.client, stack, labels, say, work=work / "real", build_client=main)
                session.version = _pulumi_version()
                session.registry = registry  # the promotion's and the accessories' registry
                session.provided = (f"{registry.address}/",)
            else:
                builder = Session(main, name, labels, say)
                session = SwarmSession(private.client, name, labels, say, builder=builder)
                builder.images, builder.built = session.images, session.built
                session.provided = (f"{registry.address}/",)
                session.engine.registry_auth = {registry.address: _auth(registry)}
            info["text"] = (
                f"main Docker {main.version().get('Version')}; a private single-node swarm up in "
                f"{private.started_seconds:.1f}s at {private.docker_host}; a private registry at "
                f"{registry.address}; beside it: {beside.check()}"
                + (f"; the real engine: Pulumi CLI {session.version}" if engine == "pulumi" else "")
            )
        # A free loopback port for nginx, as the remote rehearsal's: the stack's own (prod's 80)
        # may be held by another rehearsal on this host at any moment.
        overrides: dict[str, Any] = {
            "target": "swarm",
            "bindAddress": "0.0.0.0",
            "docker:host": private.docker_host,
            "httpPort": free_port(),
        }
        ctx = SwarmContext(session, stack, say, overrides=overrides)
        if isinstance(session, RealSession):
            session.registry_digests = ctx.registry_digests  # kept in each up's record (the same dict)
        images = {key: str(config[f"{namespace}:{key}"]) for key in ACCESSORY_KEYS}
        served = Accessories(ctx, main, private, registry, images, pull=engine != "pulumi").start()
        checks = boot(ctx, session, phase, say, auth={registry.address: _auth(registry)}, accessories=served)
        if any(not c.ok for c in checks):
            say("  (the scenarios need a stack that passed its smoke checks)")
        if all(c.ok for c in checks):
            for scenario in chosen:
                with phase(f"scenario {scenario.name}", info):
                    outcome = run_scenario(ctx, scenario)
                    info["text"] = "as expected" if outcome.ok else "NOT as expected: " + "; ".join(outcome.problems)
                outcomes.append(outcome)
                if outcome.release_seconds is not None:
                    say(f"release {name} {scenario.name}: the rolling update took {outcome.release_seconds:.1f}s")
                say(outcome.report.line(name, scenario.name))
                if not outcome.ok:
                    break
        if isinstance(session, RealSession) and all(c.ok for c in checks) and all(o.ok for o in outcomes):
            with phase("refresh", info):  # the provider's Read of every resource against the state
                info["text"] = session.refresh_then_preview(ctx.current_plan())
        with phase("beside", info):
            info["text"] = "the main engine's probe, after: " + beside.check()
    except phase_failed as failure:
        failed_phase = failure
    except KeyboardInterrupt:
        say("interrupted: tearing down")
        failed_phase = RehearsalError("interrupted")
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if record is not None and isinstance(session, RealSession):
            say(session.write_record(record, stack, [o.scenario.name for o in outcomes], "swarm"))
        with _quiet_phase(phase, "teardown", info):
            notes = []
            if isinstance(session, RealSession):
                left = session.teardown(run)  # pulumi destroy of both stacks, then a sweep
                notes.append("pulumi destroy; left for the sweep: %d containers, %d networks, %d volumes" % left)
            if private is not None:
                private.close()
                notes.append("private engine stopped, its data root and devices removed, host as it was")
            if registry is not None:
                registry.stop()
                if main is not None:
                    private_registry.forget(main, registry)
                shutil.rmtree(work / "registry", ignore_errors=True)
            if beside is not None:
                try:
                    # after the swarm left: the moment the main engine's DNS broke before
                    notes.append("probe after: " + beside.check())
                except (RehearsalError, docker.errors.DockerException) as error:
                    failed_phase = failed_phase or error
                    notes.append(f"PROBE FAILED after the swarm engine stopped: {error}")
                finally:
                    beside.close()
            info["text"] = "; ".join(notes) or "nothing to remove"
    seconds = time.monotonic() - started
    good = sum(o.ok for o in outcomes)
    failed = sum(not c.ok for c in checks) + (len(outcomes) - good) + (1 if failed_phase else 0)
    failed += len(chosen) - len(outcomes) if not failed_phase and all(c.ok for c in checks) else 0
    say(f"rehearsal {name}: {sum(c.ok for c in checks)} checks passed, {sum(not c.ok for c in checks)} failed")
    say(f"release {name}: {len(outcomes)} scenarios run, {good} as expected, {len(outcomes) - good} not")
    if engine == "pulumi":
        say(f"swarm {name}: {seconds:.0f}s in all, with the real Pulumi CLI")
    else:
        met = "met" if seconds <= TARGET_SECONDS else "MISSED"
        say(f"swarm {name}: {seconds:.0f}s in all (target <= {TARGET_SECONDS}s: {met})")
    return 1 if failed else 0


def _auth(registry: private_registry.Registry) -> dict[str, str]:
    return {"username": registry.username, "password": registry.password}


def _pulumi_version() -> str:
    from rehearsal.drivers.pulumi_cli import cli_version

    return cli_version() or ""


class Accessories:
    """The accessories' images served by the run's registry, as a swarm's are by the one every
    node pulls from: the stand-ins made on the main engine and pushed there, the stack's
    postgresImage/redisImage/nginxImage naming them there (set at once: the names are known),
    the digests the registry gave planned as what the program's RemoteImages read
    (registry_digests, once `wait` returned). `pull`: put them on the private engine as the
    provider's RemoteImage would (the emulation; the real provider pulls them itself). The
    pushes run beside the app image's build and copy (`start`, then `wait`)."""

    def __init__(
        self,
        ctx: SwarmContext,
        main: docker.DockerClient,
        private: PrivateEngine,
        registry: private_registry.Registry,
        images: dict[str, str],
        *,
        pull: bool,
    ):
        self.ctx, self.main, self.private, self.registry, self.pull = ctx, main, private, registry, pull
        self.images = images
        """Config key -> the stand-in's name (the stack's own value of the key)."""
        ctx.overrides.update({key: f"{registry.address}/{image}" for key, image in images.items()})
        self.pool = ThreadPoolExecutor(max_workers=len(images), thread_name_prefix="accessory")
        self.work: Optional[Any] = None
        self.seconds = (0.0, 0.0)

    def start(self) -> "Accessories":
        from rehearsal.images.standins import ensure_images

        ensure_images(self.main, list(self.images.values()), self.ctx.say)  # stand-ins, usually cached
        self.work = ThreadPoolExecutor(max_workers=1).submit(self._publish)
        return self

    def _publish(self) -> list[tuple[str, str]]:
        began = time.monotonic()
        # gzip per layer: one core each
        pushed = list(
            self.pool.map(lambda image: private_registry.push(self.main, self.registry, image), self.images.values())
        )
        pushed_at = time.monotonic()
        if self.pull:
            list(self.pool.map(lambda p: private_registry.pull(self.private.client, self.registry, p[0]), pushed))
        self.seconds = (pushed_at - began, time.monotonic() - pushed_at)
        return pushed

    def wait(self) -> str:
        assert self.work is not None
        pushed = self.work.result()
        self.pool.shutdown()
        self.ctx.registry_digests.update({name: digest for name, digest in pushed})
        push, pull = self.seconds
        note = f"accessories pushed to {self.registry.address} in {push:.1f}s"
        if self.pull:
            note += f", pulled onto the private engine in {pull:.1f}s"
        return note + " (" + ", ".join(f"{name.split('/', 1)[1]} {digest[-64:-52]}" for name, digest in pushed) + ")"


class _quiet_phase:
    """A teardown phase that reports its failure but never raises over the original one."""

    def __init__(self, phase, name: str, info: dict):
        self.cm = phase(name, info)

    def __enter__(self):
        return self.cm.__enter__()

    def __exit__(self, *exc):
        try:
            self.cm.__exit__(*exc)
        except Exception:  # reported by the phase's own line; the original failure stays the one
            pass
        return True


def boot(
    ctx: Context,
    session: Any,
    phase,
    say,
    auth: Optional[dict[str, dict[str, str]]] = None,
    accessories: Optional[Accessories] = None,
) -> list[Check]:
    """The first `pulumi up` and the smoke checks. accessories: their pushes run beside the app
    image's build and copy; the plan is made again with their digests before the apply."""
    info: dict = {}
    with phase("plan", info):
        rp = ctx.plan_only("current")
        kinds = Counter(r.type.rsplit(":", 1)[-1] for r in rp.plan.resources if r.custom)
        info["text"] = f"{ctx.stack} with target swarm: " + ", ".join(f"{n} {k}" for k, n in kinds.most_common())
        info["text"] += f"; nginx publishes on the node ({LOOPBACK} here)"
    with phase("images", info):
        info["text"] = ctx.prepare(rp)
        if accessories is not None:
            info["text"] += "; " + accessories.wait()
            rp = ctx.plan_only("current")  # now with the digests the registry gave
            ctx.prepare(rp)
    with phase("apply", info):
        result = session.up(rp)
        if not result.ok:
            say(diagnose(session))
            raise RehearsalError(f"the first `pulumi up` failed: {result.error}")
        info["text"] = f"{len(result.reports)} steps in {result.seconds:.1f}s (every service converged healthy)"
    with phase("preview", info):
        info["text"] = session.preview_after(rp)
    with phase("smoke", info):
        checks = SwarmSmoke(ctx, session, say, auth).run()
        info["text"] = f"{sum(c.ok for c in checks)} of {len(checks)} checks passed through nginx"
    return checks


def diagnose(session: SwarmSession, lines: int = 8) -> str:
    """What swarm says about every service of the run: its tasks' states and errors, and the
    last log lines of each task's container (v4.5.0 of the provider does not attach them)."""
    api = session.client.api
    out = []
    for svc in api.services():  # the private engine runs this run's stack alone
        name = svc["Spec"]["Name"]
        for task in api.tasks(filters={"service": svc["ID"]}):
            status = task.get("Status") or {}
            out.append(
                f"  {name} task {task['ID'][:12]}: desired {task.get('DesiredState')}, {status.get('State')}"
                f" {status.get('Err') or status.get('Message') or ''}".rstrip()
            )
            cid = (status.get("ContainerStatus") or {}).get("ContainerID")
            if cid:
                try:
                    tail = api.logs(cid, tail=lines, stdout=True, stderr=True).decode(errors="replace").strip()
                    health = (api.inspect_container(cid)["State"].get("Health") or {}).get("Log") or []
                except APIError:
                    continue
                out += [f"    | {line}" for line in tail.splitlines()[-lines:]]
                if health:
                    out.append(f"    health: {health[-1].get('Output', '').strip()[:300]}")
    return "\n".join(out) or "  (no service)"
