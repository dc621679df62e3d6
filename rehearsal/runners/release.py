"""Boot a stack and, for the release rehearsal, change it the ways a team does, under load.

`boot()` is the first `pulumi up` of a stack (every step a create, planned by the same model
as every later update) and its smoke checks. `run_scenarios()` then takes the running stack
through each scenario (rehearsal/scenarios/) while a bounded load generator sends steady
requests through nginx on 127.0.0.1, and prints exactly one line per scenario:

    release <stack> <scenario>: <N> requests, <F> failed, longest gap <S>s
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional, Protocol, TypeVar, Union

import requests

from ops.forecast import gate_lines
from ops.stack import STACK as STACK_LABEL
from ops.stack import StackOnHost
from planning.forecast import GATE_JOB, Forecast, read_preview, tell
from planning.harness import JOB
from planning.harness import SERVICE as SWARM_SERVICE
from rehearsal.checks import smoke
from rehearsal.checks.day2 import Day2
from rehearsal.checks.forecast import containers_by_service, differences, gate_agrees
from rehearsal.checks.load import Load, Report, combined
from rehearsal.checks.samples import sample_checks
from rehearsal.checks.smoke import Smoke, app_kind, front_door, http_session
from rehearsal.emulation.engine import LOOPBACK, UpdateResult, brief
from rehearsal.emulation.forecast import forecast
from rehearsal.emulation.model import plan_update
from rehearsal.errors import RehearsalError
from rehearsal.images.samples import SAMPLES
from rehearsal.images.variants import VARIANTS, scratch_dir
from rehearsal.runners.real_session import RealSession
from rehearsal.runners.session import Session
from rehearsal.runners.stacks import RehearsalPlan, plan_for_rehearsal, promoted_ref
from rehearsal.scenarios import Scenario, ScenarioFailed, Up, all_scenarios

RELEASE_TARGET_SECONDS = 30  # a new-commit release, start of the update to the old replicas gone
LOAD_RATE = 20  # requests per second through nginx while a scenario runs
LOAD_WORKERS = 4
# A scenario with `pages`: reads of the app's table (the ten latest visits: every column of the
# release's model selected) and writes to it, beside /health/. A write is a POST, which nginx
# never repeats once sent: it goes over a connection of its own (components/render.py nginx_conf;
# on reused keep-alive connections 3 of 260 failed in the first expand-contract run, one per
# release, each as an old replica exited).
PAGE_LOADS = (("GET", "/visits/", 200, 10.0), ("POST", "/visits/", 201, 4.0))
LOAD_MAX_SECONDS = 900  # a scenario's load stops by itself after this, whatever happens
SETTLE_SECONDS = 1.0  # load before the first and after the last `pulumi up` of a scenario


@dataclass
class Context:
    """What a scenario's checks see: the session, the front door, the images by variant."""

    session: Union[Session, RealSession]
    stack: str
    say: Callable[[str], None]
    overrides: dict = field(default_factory=dict)
    variant: str = "current"
    rp: Optional[RehearsalPlan] = None
    images: dict[str, str] = field(default_factory=dict)  # variant -> image id
    shas: dict[str, str] = field(default_factory=dict)  # variant -> GIT_SHA baked into its image
    tags: dict[str, str] = field(default_factory=dict)  # variant -> image tag the plan built
    serving_before: str = ""
    scratch: Path = field(default_factory=scratch_dir)
    secrets: dict = field(default_factory=dict)
    """Secret config for the plan, as `pulumi config set --secret` would give it."""
    tls_ca: Optional[str] = None
    """CA bundle (a file) the stack's HTTPS certificate is verified against, when TLS is on."""
    probe_host: bool = False
    """Plan as `pulumi up` runs the program: connecting to its Docker host first (remote hosts)."""
    ops_env: Optional[dict[str, str]] = None
    """The environment the day-2 commands run in (None: ours), e.g. DOCKER_HOST of a remote host."""
    ops_runs: int = 3
    """Runs of each day-2 command the benchmark times."""
    engine_restart: Optional[Callable[[], tuple[float, float]]] = None
    """Restarts the engine the stack runs on (a private one only): the restart-engine fault."""
    registry_digests: dict[str, str] = field(default_factory=dict)
    """Image name -> the repository@sha256 a registry gave for it (planning.harness.plan_stack)."""
    offsite: Any = None
    """The backups rehearsal's off-host storage (rehearsal.faults.actions.Offsite), when it runs."""

    # -- planning

    def plan(self, variant: str) -> RehearsalPlan:
        """Plan the stack with the current config for `variant` and make its images exist."""
        rp = self.plan_only(variant)
        self.prepare(rp)
        return rp

    def plan_only(self, variant: str) -> RehearsalPlan:
        rp = plan_for_rehearsal(
            self.stack,
            overrides=self.overrides,
            secrets=self.secrets,
            git_sha=VARIANTS[variant].git_sha,
            probe_host=self.probe_host,
            registry_digests=self.registry_digests,
        )
        self.rp, self.variant = rp, variant
        return rp

    def current_plan(self) -> RehearsalPlan:
        """`rp`: the plan made last (by plan or plan_only)."""
        if self.rp is None:  # (what `self.rp.plan` raised)
            raise AttributeError("'NoneType' object has no attribute 'plan'")
        return self.rp

    def prepare(self, rp: RehearsalPlan) -> str:
        note = self.session.prepare(rp, context=VARIANTS[self.variant].context(self.scratch))
        if rp.build is not None:
            tag = rp.build.inputs["imageName"]
            self.tags[self.variant] = tag
            self.shas[self.variant] = rp.build.inputs["build"]["args"]["GIT_SHA"]
            if tag in self.session.built:  # else the real engine builds it in `pulumi up` (image_of)
                self.images[self.variant] = self.session.built[tag]
                # Any image built here can be pinned later (imageSource: pin), as a rollback would.
                self.session.images[promoted_ref(tag)] = self.session.built[tag]
        return note

    # -- looking at the stack

    def front(self) -> tuple[str, str]:
        base, host, _ = front_door(self.current_plan().plan)
        return base, host

    def get(self, path: str) -> requests.Response:
        base, host = self.front()
        with http_session(base, host, self.tls_ca) as session:
            return session.get(base + path, timeout=10, allow_redirects=False)

    def serving_sha(self) -> str:
        response = self.get("/health/")
        if response.status_code != 200:
            raise ScenarioFailed(f"GET /health/ -> {response.status_code}")
        return response.json().get("git_sha") or ""

    def replicas(self) -> int:
        return len(self.current_plan().plan.containers("web"))

    def replicas_answering(self, web: dict[str, dict], requests_count: int = 60) -> str:
        by_host = {c["Config"]["Hostname"]: name for name, c in web.items()}
        seen: Counter = Counter()
        for _ in range(requests_count):
            response = self.get("/whoami/")
            if response.status_code == 200:
                seen[response.json()["hostname"]] += 1
        missing = sorted(name for host, name in by_host.items() if not seen[host])
        stray = sorted(set(seen) - set(by_host))
        if missing or stray:
            raise ScenarioFailed(f"replicas that never answered: {missing}; answers from elsewhere: {stray}")
        return ", ".join(
            f"{by_host[h].rsplit('-', 1)[-1]}: {n}" for h, n in sorted(seen.items(), key=lambda kv: by_host[kv[0]])
        )

    def image_of(self, variant: str) -> str:
        return self.images.get(variant) or self.session.built[self.tags[variant]]

    def sha_of(self, variant: str) -> str:
        return self.shas[variant]

    def ref_of(self, variant: str) -> str:
        return promoted_ref(self.tags[variant])

    def psql(self, sql: str) -> str:
        (postgres,) = self.session.containers_of("postgres").values()
        return smoke.psql(self.session.client.api, postgres["Id"], sql)

    def read_file(self, cid: str, path: str) -> str:
        return smoke.read_file(self.session.client.api, cid, path).decode()

    def nginx_errors(self, since: float, report: Report, lines: int = 40) -> str:
        """nginx's own account of the failed requests: what it logged in the seconds around each."""
        moments = {
            time.strftime(fmt, time.gmtime(since + f.at + d))
            for f in report.failures
            for d in (-2, -1, 0, 1)
            for fmt in ("%Y/%m/%d %H:%M:%S", "%d/%b/%Y:%H:%M:%S")
        }
        text = []
        for c in self.session.containers_of("nginx").values():
            raw = self.session.client.api.logs(c["Id"], since=int(since), stdout=True, stderr=True).decode(
                errors="replace"
            )
            text += [
                f"    | {line}"
                for line in raw.splitlines()
                if any(m in line for m in moments) and ("[error]" in line or "[warn]" in line or '" 50' in line)
            ]
        return "  nginx logged around the failures:\n" + ("\n".join(text[-lines:]) or "    | (nothing)")

    def engine_containers(self) -> list[dict]:
        labels = [f"{k}={v}" for k, v in self.session.run_labels.items()]
        return [
            {"Name": c["Names"][0].lstrip("/"), "Image": c["ImageID"]}
            for c in self.session.client.api.containers(all=True, filters={"label": labels})
        ]


# --------------------------------------------------------------------------- boot


def boot(ctx: Context, phase) -> list:
    """The stack's first `pulumi up`, its smoke checks and the day-2 commands on it; returns the checks."""
    info: dict = {}
    with phase("plan", info):
        rp = ctx.plan_only("current")
        kinds = Counter(r.type.rsplit(":", 1)[-1] for r in rp.plan.resources if r.custom)
        info["text"] = (
            f"{ctx.stack}: {len(rp.plan.resources)} resources ("
            + ", ".join(f"{n} {k}" for k, n in kinds.most_common())
            + ")"
        )
        if rp.build_stack != ctx.stack:
            info["text"] += (
                f"; promotes {rp.build_stack}'s image (rehearsed with the image that plan builds, not pushed)"
            )
        published = [p for r in rp.plan.containers("nginx") for p in r.inputs.get("ports") or []]
        info["text"] += "; publishes " + ", ".join(f"{p.get('ip', '0.0.0.0')}:{int(p['external'])}" for p in published)
        info["text"] += f", rehearsed on {LOOPBACK} only"
    with phase("images", info):
        info["text"] = ctx.prepare(rp)
    with phase("apply", info):
        result = ctx.session.up(rp)  # rp is ctx.rp: the plan made above
        if not result.ok:
            raise RehearsalError(f"the first `pulumi up` failed: {result.error}")
        created = Counter(r.step.type.rsplit(":", 1)[-1] for r in result.reports if r.step.op == "create")
        info["text"] = ", ".join(f"{n} {k}" for k, n in created.most_common()) + f" created in {result.seconds:.1f}s"
    with phase("preview", info):
        info["text"] = ctx.session.preview_after(rp)
    with phase("smoke", info):
        smoke = Smoke(
            ctx.session.client,
            rp.plan,
            ctx.session.state,
            app_image=ctx.image_of("current"),
            run_labels=ctx.session.run_labels,
            say=ctx.say,
            tls_ca=ctx.tls_ca,
            # a sample project's own checks (the example's are Smoke's; any other app: none)
            own_checks=sample_checks if app_kind(rp.plan) in SAMPLES else None,
        )
        checks = smoke.run()
        info["text"] = (
            f"{sum(c.ok for c in checks)} of {len(checks)} checks passed through {smoke.base} (Host: {smoke.host})"
        )
    with phase("ops", info):
        day2 = Day2(ctx, ctx.say).run()
        info["text"] = (
            f"{sum(c.ok for c in day2)} of {len(day2)} day-2 command checks passed (python -m ops, as a user runs it)"
        )
    return checks + day2


# --------------------------------------------------------------------------- scenarios


@dataclass
class Outcome:
    scenario: Scenario
    report: Report
    problems: list[str]
    release_seconds: Optional[float] = None

    @property
    def ok(self) -> bool:
        return not self.problems


@dataclass
class Foretold:
    """What was said of one up before it ran, to hold against what it then did."""

    mine: dict[str, str]
    """The labels of the containers this rehearsal's stack owns."""
    before: dict[str, set[str]]
    """Their ids by service, before the up."""
    told: Optional[Forecast] = None
    """The release forecast (None: not forecast, a swarm's services, or not read yet)."""
    gate: Optional[str] = None
    """`make forecast`'s gate verdict line, when the scenario asks for it."""


def foretell(ctx: Context, scenario: Scenario, up: Up, rp: RehearsalPlan) -> Foretold:
    """Say what this up will do to the running site, before it runs."""
    # The forecast speaks of containers: a swarm's services roll in place (not forecast).
    forecasting = not rp.plan.of_type(SWARM_SERVICE)
    # The emulation labels what it creates with the run; the real program only with its stack.
    mine = ctx.session.run_labels if isinstance(ctx.session, Session) else {STACK_LABEL: ctx.stack}
    foretold = Foretold(mine, containers_by_service(ctx.session.client, mine))
    if isinstance(ctx.session, Session):
        if forecasting:
            # What the model says this up will do.
            foretold.told = forecast(plan_update(ctx.session.state, rp.plan))
            ctx.say("    forecast: " + "; ".join(foretold.told.lines))
    else:
        # The real engine: `make forecast`'s own reading of the engine's preview of this up (the
        # session runs `pulumi preview` just before it and keeps its events: as_foretold).
        ctx.session.forecasts = forecasting
    if scenario.forecast_gate:
        # `make forecast`'s gate: the release's gate command (from the plan) in a one-off of the
        # new image on the running stack.
        (job,) = [r for r in rp.plan.of_type(JOB) if r.name.endswith(GATE_JOB)]
        stack = StackOnHost(ctx.stack, client=ctx.session.client)
        image = ctx.image_of(up.image or ctx.variant)
        if not isinstance(ctx.session, Session):
            # The real engine pulls the promoted digest in `pulumi up`: pulled first here.
            image = ctx.session.pull_pushed(ctx.tags[up.image or ctx.variant])
        told_gate = gate_lines(stack, image, list(job.inputs["command"]))
        foretold.gate = told_gate[-1]
        ctx.say("    forecast gate: " + " | ".join(told_gate))
    return foretold


def as_foretold(ctx: Context, foretold: Foretold, result: UpdateResult) -> list[str]:
    """Where the up did other than was said of it (each line also said as FAILED): the gate's
    verdict against the up's gate job, and the forecast against the containers on the engine."""
    unlike: list[str] = []
    if foretold.gate is not None:
        disagreement = gate_agrees(foretold.gate, result.error)
        if disagreement:
            unlike.append(disagreement)
    if not isinstance(ctx.session, Session) and ctx.session.last_preview:
        foretold.told = tell(read_preview(ctx.session.last_preview))
        ctx.session.last_preview = []
        ctx.say("    forecast (make forecast, from the preview before this up): " + "; ".join(foretold.told.lines))
    if foretold.told is not None and result.ok:
        after = containers_by_service(ctx.session.client, foretold.mine)
        changed = differences(foretold.told, foretold.before, after)
        if changed:
            unlike.append("not as forecast: " + "; ".join(changed))
    for line in unlike:
        ctx.say(f"    FAILED: {line}")
    return unlike


def run_scenario(ctx: Context, scenario: Scenario) -> Outcome:
    say = ctx.say
    problems: list[str] = []
    release_seconds = None
    base, host = ctx.front()
    ctx.serving_before = ctx.serving_sha()
    started_at = time.time()
    load = Load(
        base,
        host=host,
        path="/health/",
        rate=LOAD_RATE,
        workers=LOAD_WORKERS,
        max_seconds=LOAD_MAX_SECONDS,
        maintenance=scenario.maintenance,
    )
    pages = [
        Load(
            base,
            host=host,
            path=path,
            method=method,
            expect=expect,
            rate=rate,
            workers=2,
            max_seconds=LOAD_MAX_SECONDS,
            maintenance=scenario.maintenance,
        )
        for method, path, expect, rate in (PAGE_LOADS if scenario.pages else ())
    ]
    load.start()
    for page in pages:
        page.start()
    windows_forecast = 0
    try:
        time.sleep(SETTLE_SECONDS)
        for number, up in enumerate(scenario.ups, start=1):
            if up.image:
                # Deploying another image is promoting it: a pin (the promote scenario) no longer holds.
                ctx.overrides.pop("imageSource", None)
                ctx.overrides.pop("imagePin", None)
            if up.overrides:
                ctx.overrides.update(up.overrides(ctx) if callable(up.overrides) else up.overrides)
            rp = ctx.plan(up.image or ctx.variant)
            say(f"  up {number}: {up.what}")
            if up.before is not None:
                say(f"    before: {up.before(ctx)}")
            foretold = foretell(ctx, scenario, up, rp)
            result = ctx.session.up(rp)
            problems += [f"up {number}: {unlike}" for unlike in as_foretold(ctx, foretold, result)]
            windows_forecast += bool(foretold.told and foretold.told.maintenance)
            if number == 1 and scenario.timed:
                release_seconds = result.seconds
            outcome = "succeeded" if result.error is None else f"failed: {brief(result.error)}"
            say(f"    `pulumi up` {outcome} ({result.seconds:.1f}s)")
            if result.ok != up.succeeds:
                problems.append(
                    f"up {number} {'succeeded' if result.ok else 'failed'}, expected the opposite"
                    + ("" if result.error is None else f": {brief(result.error)}")
                )
                break
            try:
                if up.check is not None:
                    say(f"    check: {up.check(ctx, result)}")
                if result.ok:
                    say(f"    preview: {ctx.session.preview_after(rp)}")
            except (ScenarioFailed, RehearsalError) as failure:
                problems.append(f"up {number}: {failure}")
                say(f"    FAILED: {failure}")
                break
            ctx.serving_before = ctx.serving_sha() if result.ok else ctx.serving_before
        time.sleep(SETTLE_SECONDS)
    finally:
        report = load.stop()
        if pages:
            page_reports = [page.stop() for page in pages]
            for (method, path, _, _), page_report in zip(PAGE_LOADS, page_reports):
                say(f"  {method} {path}: {page_report.requests} requests, {page_report.failed} failed")
            report = combined([report, *page_reports])
    say(report.details())
    if report.failed:
        say(ctx.nginx_errors(since=started_at, report=report))
    if windows_forecast and not report.maintenance:
        problems.append("a maintenance window was forecast, and no request saw the maintenance page")
    if scenario.max_failed_seconds == 0 and report.failed:
        problems.append(f"{report.failed} requests failed (none may)")
    elif report.failed_seconds > scenario.max_failed_seconds:
        problems.append(f"requests failed in {report.failed_seconds} seconds (at most {scenario.max_failed_seconds})")
    return Outcome(scenario, report, problems, release_seconds)


class _Named(Protocol):
    @property
    def name(self) -> str: ...


T = TypeVar("T", bound=_Named)


def selected(items: list[T], names: Optional[list[str]], kind: str) -> list[T]:
    """The scenarios (or faults) named, in their fixed order; all of them without names. An
    unknown name is refused with the list of the known ones."""
    if not names:
        return items
    unknown = sorted(set(names) - {item.name for item in items})
    if unknown:
        raise RehearsalError(f"unknown {kind} {unknown}; the {kind} are: {', '.join(item.name for item in items)}")
    return [item for item in items if item.name in names]


def run_scenarios(ctx: Context, phase, names: Optional[list[str]] = None) -> list[Outcome]:
    outcomes = []
    for scenario in selected(all_scenarios(), names, "scenarios"):
        info: dict = {}
        with phase(f"scenario {scenario.name}", info):
            outcome = run_scenario(ctx, scenario)
            info["text"] = "as expected" if outcome.ok else "NOT as expected: " + "; ".join(outcome.problems)
        outcomes.append(outcome)
        if outcome.release_seconds is not None:
            met = "met" if outcome.release_seconds <= RELEASE_TARGET_SECONDS else "MISSED"
            ctx.say(
                f"release {ctx.stack} {scenario.name}: update took {outcome.release_seconds:.1f}s, from its start to every "
                f"new replica healthy and the old ones gone (target <= {RELEASE_TARGET_SECONDS}s: {met})"
            )
        ctx.say(outcome.report.line(ctx.stack, scenario.name))
        if not outcome.ok:
            break  # the stack is not in the state the next scenario starts from
    return outcomes
