"""`python -m rehearsal swarm STACK`: the stack with `target: swarm`, on a single-node swarm.

The swarm runs on a private engine (rehearsal.hosts.swarm_engine): a second dockerd with its own data
root, socket and bridge, because entering and leaving swarm mode on this Docker 20.10 broke
embedded DNS for containers already running on the main engine. A probe on the main engine
(two containers that resolve and call each other) must keep answering before, during and
after. Images are built on the main engine (where the stand-ins and the build cache are) and
copied over; the program is planned with `docker:host` naming the private engine's socket, as a
user names a manager.

Phases, as the other rehearsals print them: the boot (plan, images, apply, preview, smoke),
then `new-commit` and `unhealthy-release` under steady load through nginx, each with the
release rehearsal's line under the name `<stack>-swarm`, then the probe again and a total
against the 5-minute target. Exit 1 on any failure; without swarm support, exit 0 and say why.
"""

from __future__ import annotations

import secrets
import signal
import time
from collections import Counter
from dataclasses import dataclass
from typing import Callable, Optional

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
from rehearsal.emulation.engine import RUN_LABEL, STACK_LABEL, live
from rehearsal.errors import RehearsalError
from rehearsal.hosts.swarm_engine import BesideProbe, PrivateEngine, start_private_engine, why_unavailable
from rehearsal.runners.release import LOOPBACK, Context, run_scenario
from rehearsal.runners.session import ElsewhereSession, Session
from rehearsal.scenarios import Scenario, Up, expect

TARGET_SECONDS = 300  # the whole swarm rehearsal on a 2-core machine
WHOAMI_REQUESTS = 60
OLD_TASK_GONE_SECONDS = 15
NGINX_GAP_SECONDS = 5  # nginx stop-first on its node: the old task stops, then the new one starts
SERVICE_LABEL = "django-docker.service"


# --------------------------------------------------------------------------- the session


@dataclass
class SwarmSession(ElsewhereSession):
    """A Session on the private swarm engine whose images are made on the main one."""

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
class SwarmContext(Context):
    """The release rehearsal's Context, for a stack of services."""

    def replicas(self) -> int:
        (web,) = [r for r in self.current_plan().plan.of_type(SERVICE) if label_in(r.inputs, SERVICE_LABEL) == "web"]
        return int(web.inputs["mode"]["replicated"]["replicas"])


# --------------------------------------------------------------------------- the smoke


class SwarmSmoke:
    """The smoke checks of rehearsal.checks.smoke, on services: through nginx's published port, and
    into the tasks' containers for what only they can tell (uid, image, files)."""

    def __init__(self, ctx: Context, session: SwarmSession, say: Callable[[str], None]):
        self.ctx, self.session, self.say = ctx, session, say
        self.api = session.client.api

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
        for svc in self.api.services(filters={"label": f"{RUN_LABEL}={self.session.run_labels[RUN_LABEL]}"}):
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
)


# --------------------------------------------------------------------------- the run


def _terminate(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def rehearse_swarm(stack: str, say: Callable[[str], None], phase, connect, phase_failed: type[Exception]) -> int:
    """phase, connect, phase_failed: the rehearsal CLI's (rehearsal.__main__), so that every
    rehearsal prints its phases alike."""
    name = f"{stack}-swarm"
    reason = why_unavailable()
    if reason:
        say(f"swarm {name}: not rehearsed: {reason}")
        return 0
    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGINT, _terminate)
    started = time.monotonic()
    run = secrets.token_hex(4)
    checks: list[Check] = []
    outcomes = []
    failed_phase: Optional[BaseException] = None
    private: Optional[PrivateEngine] = None
    beside: Optional[BesideProbe] = None
    info: dict = {}
    try:
        with phase("engines", info):
            main = connect()
            beside = BesideProbe(main).start()
            config, namespace = stack_config(stack)
            private = start_private_engine(say, (config[f"{namespace}:swarmDataLabel"], "true"))
            labels = {STACK_LABEL: name, RUN_LABEL: run}
            builder = Session(main, name, labels, say)
            session = SwarmSession(private.client, name, labels, say, builder=builder)
            builder.images, builder.built = session.images, session.built
            info["text"] = (
                f"main Docker {main.version().get('Version')}; a private single-node swarm up in "
                f"{private.started_seconds:.1f}s at {private.docker_host}; beside it: {beside.check()}"
            )
        ctx = SwarmContext(
            session,
            stack,
            say,
            overrides={"target": "swarm", "bindAddress": "0.0.0.0", "docker:host": private.docker_host},
        )
        checks = boot(ctx, session, phase, say)
        if any(not c.ok for c in checks):
            say("  (the scenarios need a stack that passed its smoke checks)")
        if all(c.ok for c in checks):
            for scenario in SCENARIOS:
                with phase(f"scenario {scenario.name}", info):
                    outcome = run_scenario(ctx, scenario)
                    info["text"] = "as expected" if outcome.ok else "NOT as expected: " + "; ".join(outcome.problems)
                outcomes.append(outcome)
                if outcome.release_seconds is not None:
                    say(f"release {name} {scenario.name}: the rolling update took {outcome.release_seconds:.1f}s")
                say(outcome.report.line(name, scenario.name))
                if not outcome.ok:
                    break
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
        with _quiet_phase(phase, "teardown", info):
            notes = []
            if private is not None:
                private.close()
                notes.append("private engine stopped, its data root and devices removed, host as it was")
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
    failed += len(SCENARIOS) - len(outcomes) if not failed_phase and all(c.ok for c in checks) else 0
    say(f"rehearsal {name}: {sum(c.ok for c in checks)} checks passed, {sum(not c.ok for c in checks)} failed")
    say(f"release {name}: {len(outcomes)} scenarios run, {good} as expected, {len(outcomes) - good} not")
    met = "met" if seconds <= TARGET_SECONDS else "MISSED"
    say(f"swarm {name}: {seconds:.0f}s in all (target <= {TARGET_SECONDS}s: {met})")
    return 1 if failed else 0


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


def boot(ctx: Context, session: SwarmSession, phase, say) -> list[Check]:
    info: dict = {}
    with phase("plan", info):
        rp = ctx.plan_only("current")
        kinds = Counter(r.type.rsplit(":", 1)[-1] for r in rp.plan.resources if r.custom)
        info["text"] = f"{ctx.stack} with target swarm: " + ", ".join(f"{n} {k}" for k, n in kinds.most_common())
        info["text"] += f"; nginx publishes on the node ({LOOPBACK} here)"
    with phase("images", info):
        info["text"] = ctx.prepare(rp)
    with phase("apply", info):
        result = session.up(rp)
        if not result.ok:
            say(diagnose(session))
            raise RehearsalError(f"the first `pulumi up` failed: {result.error}")
        info["text"] = f"{len(result.reports)} steps in {result.seconds:.1f}s (every service converged healthy)"
    with phase("preview", info):
        info["text"] = session.preview_after(rp)
    with phase("smoke", info):
        checks = SwarmSmoke(ctx, session, say).run()
        info["text"] = f"{sum(c.ok for c in checks)} of {len(checks)} checks passed through nginx"
    return checks


def diagnose(session: SwarmSession, lines: int = 8) -> str:
    """What swarm says about every service of the run: its tasks' states and errors, and the
    last log lines of each task's container (v4.5.0 of the provider does not attach them)."""
    api = session.client.api
    out = []
    for svc in api.services(filters={"label": f"{RUN_LABEL}={session.run_labels[RUN_LABEL]}"}):
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
