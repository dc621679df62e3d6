"""`python -m rehearsal remote STACK`: the stack on a Docker host reached over ssh, and over TCP
with TLS verification, as a team deploys to a remote server.

The host (rehearsal.hosts.remote_host) is a private engine of this checkout with a TLS listener
on loopback and a real sshd in front of it; the main engine only builds the images (the
stand-ins and the build cache live there) and they are copied over, as the swarm rehearsal
does (the private engine has no route out, so nothing is built or pulled on it). For each
transport, with the `docker:` settings a user sets for it (`docker:host` and `docker:sshOpts`;
`docker:host` and the three TLS PEMs as secret config):

- refusals: wrong settings (a key the host does not accept, a host that does not answer, a
  certificate or host key that does not verify), each refused by the program in one line naming
  the setting, with nothing created on the host (the program connects before it registers
  anything: components.settings.provider.probe_docker_host);
- the boot: plan (the program connecting to the host), images, apply, preview, smoke, and the
  day-2 commands (`python -m ops` status/ps/logs/manage/exec, as `make status` ... runs them)
  with DOCKER_HOST (and DOCKER_SSH_OPTS or DOCKER_CERT_PATH) as a user exports them. Every
  Docker call of the emulated engine, the release jobs and ops goes through
  components.dockerhost over that transport;
- the transport itself: the session's client, the jobs' connection and, for ssh, the logins
  sshd accepted;
- new-commit under load through nginx (the release rehearsal's line);
- on the last transport, the engine restarts under writes (rehearsal/faults/restart_engine.py:
  `fault <stack> restart-engine: <N> requests, <F> failed, <L> lost`), then the provider's
  read-back of everything must still match (what a refresh then a plan would show).

Then `remote <stack> <transport>: <K> checks passed, <M> failed`, one line per transport.
"""

from __future__ import annotations

import functools
import secrets
import signal
import time
from typing import Callable, Optional

import docker
import docker.errors

from components import dockerhost
from planning.harness import JOB
from rehearsal.checks.smoke import Check, CheckFailed, require, run_check
from rehearsal.emulation.engine import RUN_LABEL, STACK_LABEL
from rehearsal.errors import RehearsalError
from rehearsal.faults import fault_line, restart_engine
from rehearsal.hosts.private_engine import free_port, why_unavailable
from rehearsal.hosts.remote_host import TRANSPORTS, Refusal, RemoteHost, start_remote_host
from rehearsal.hosts.ssh_host import SshUnavailable
from rehearsal.runners.faults import run_fault
from rehearsal.runners.release import Context, boot, run_scenarios
from rehearsal.runners.session import ElsewhereSession, Session
from rehearsal.runners.stacks import plan_for_rehearsal

SCENARIOS = ["new-commit"]
TARGET_SECONDS = 600  # both transports on a 2-core machine, images warm


def _terminate(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def _objects(client: docker.DockerClient) -> tuple[int, int, int]:
    api = client.api
    return len(api.containers(all=True)), len(api.networks()), len((api.volumes() or {}).get("Volumes") or [])


class Transport:
    """One transport's rehearsal on the shared host."""

    def __init__(
        self,
        stack: str,
        transport: str,
        host: RemoteHost,
        builder: Session,
        run: str,
        say,
        phase,
        restart_engine: bool = False,
    ):
        self.stack, self.transport, self.host, self.builder, self.say, self.phase = (
            stack,
            transport,
            host,
            builder,
            say,
            phase,
        )
        self.run = f"{run}-{transport}"
        settings, self.secrets = host.settings(transport)
        octet = host.layout.octet
        # The host's own choices, as `pulumi config set` on the stack: a port nothing else on
        # this machine listens on, a frontend subnet inside the private engine's addresses.
        self.overrides = {**settings, "httpPort": free_port(), "frontendSubnet": f"10.{octet}.200.0/24"}
        self.checks: list[Check] = []
        self.session: Optional[ElsewhereSession] = None
        self.restart_engine = restart_engine
        """After the scenarios: the engine restarts under load (once, on the last transport)."""

    # -- refusals

    def refusals(self) -> None:
        info: dict = {}
        with self.phase(f"{self.transport} refusals", info):
            for refusal in self.host.refusals(self.transport):
                self.checks.append(run_check(f"refused: {refusal.what}", functools.partial(self._refused, refusal)))
                self.say(self.checks[-1].line())
            good = sum(c.ok for c in self.checks)
            info["text"] = f"{good} of {len(self.checks)} wrong settings refused in one line, nothing created"

    def _refused(self, refusal: Refusal) -> str:
        before = _objects(self.host.engine.client)
        overrides = {k: v for k, v in self.overrides.items() if not k.startswith("docker:")}
        try:
            plan_for_rehearsal(
                self.stack, overrides={**overrides, **refusal.settings}, secrets=refusal.secrets, probe_host=True
            )
        except RehearsalError as error:
            message = str(error).removeprefix(f"plan {self.stack}: ")
        else:
            raise RehearsalError(f"the program went on with {refusal.what}")
        after = _objects(self.host.engine.client)
        require("\n" not in message, f"more than one line: {message!r}")
        require(message.startswith(f"{refusal.names}:"), f"does not name {refusal.names}: {message}")
        require(after == before, f"the host changed: containers, networks, volumes {before} -> {after}")
        key = self.host.tls.client.key_pem.strip().splitlines()[1]
        require(key not in message, "the message holds the private key")
        return message

    # -- the stack over the transport

    def connect(self) -> docker.DockerClient:
        try:
            return dockerhost.connect(dockerhost.resolve(self._config(), {}), timeout=300)
        except dockerhost.HostError as error:
            raise RehearsalError(str(error)) from None

    def rehearse(self, shared: dict) -> None:
        info: dict = {}
        with self.phase(f"{self.transport} connect", info):
            client = self.connect()
            labels = {STACK_LABEL: self.stack, RUN_LABEL: self.run}
            self.session = ElsewhereSession(
                client,
                self.stack,
                labels,
                self.say,
                images=shared["images"],
                built=shared["built"],
                builder=self.builder,
                copy_to=self.host.engine.client,
                copied=shared["copied"],
            )
            info["text"] = f"the emulated engine reaches {dockerhost.resolve(self._config(), {}).describe()}"
        ctx = Context(
            self.session,
            self.stack,
            self.say,
            overrides=dict(self.overrides),
            secrets=dict(self.secrets),
            probe_host=True,
            ops_env=self.host.environment(self.transport),
            ops_runs=1,
        )
        logins = self.host.ssh.logins()
        self.checks += boot(ctx, self.phase)
        check = run_check(f"{self.transport} transport", lambda: self._transport(ctx, logins))
        self.say(check.line())
        self.checks.append(check)
        if all(c.ok for c in self.checks):
            for outcome in run_scenarios(ctx, self.phase, SCENARIOS):
                self.checks.append(
                    Check(f"scenario {outcome.scenario.name}", outcome.ok, "; ".join(outcome.problems) or "as expected")
                )
        if self.restart_engine and all(c.ok for c in self.checks):
            self.engine_restart(ctx)

    def engine_restart(self, ctx: Context) -> None:
        """The engine restarts under writes (rehearsal/faults/restart_engine.py), then what a
        `pulumi refresh` reads back and a plan must change nothing."""
        ctx.engine_restart = self.host.engine.restart
        info: dict = {}
        with self.phase("fault restart-engine", info):
            outcome = run_fault(ctx, restart_engine.FAULT)
            info["text"] = "as expected" if outcome.ok else "NOT as expected: " + "; ".join(outcome.problems)
        report = outcome.report
        self.say(fault_line(self.stack, "restart-engine", report.requests, report.failed, outcome.trial.lost))
        self.checks.append(Check("fault restart-engine", outcome.ok, "; ".join(outcome.problems) or "as expected"))
        check = run_check(
            "refresh and plan after the restart",
            lambda: self.session.preview_after(ctx.current_plan()),  # type: ignore[union-attr]
        )
        self.say(check.line())
        self.checks.append(check)

    def _preview(self, ctx: Context) -> str:
        """What a refresh (the provider's read, replayed) and then a plan would show: a line, or
        the changes as a failed check (CheckFailed) rather than an error that ends the run."""
        assert self.session is not None
        try:
            return self.session.preview_after(ctx.current_plan())
        except RehearsalError as error:
            raise CheckFailed(str(error)) from None

    def _config(self) -> dict:
        return {
            k.removeprefix("docker:"): v
            for k, v in {**self.overrides, **self.secrets}.items()
            if k.startswith("docker:")
        }

    def _transport(self, ctx: Context, logins_before: int) -> str:
        assert self.session is not None
        adapter = getattr(self.session.client.api, "_custom_adapter", None)
        jobs = ctx.current_plan().plan.of_type(JOB)
        hosts = {j.inputs.get("dockerHost") for j in jobs}
        wanted = self.overrides["docker:host"]
        require(hosts == {wanted}, f"the release jobs reach {sorted(map(str, hosts))}, not {wanted}")
        if self.transport == "ssh":
            require(isinstance(adapter, dockerhost.SSHAdapter), f"the session's client is not over ssh ({adapter})")
            logins = self.host.ssh.logins() - logins_before
            require(logins > 0, "sshd accepted no login during the boot")
            return f"session, release jobs and ops over ssh to {wanted}: sshd accepted {logins} key logins"
        require(isinstance(adapter, dockerhost.TLSAdapter), f"the session's client is not over TLS ({adapter})")
        require(
            self.session.client.api.base_url == f"https://{self.host.tcp}",
            "the session's client is not on the TLS port",
        )
        return f"session, release jobs and ops over TLS to {wanted}, the engine verified against docker:caMaterial"

    def teardown(self) -> None:
        if self.session is None:
            return
        info: dict = {}
        try:
            with self.phase(f"{self.transport} teardown", info):
                removed = self.session.teardown(self.run)
                self.session.engine.join()
                info["text"] = "removed %d containers, %d networks, %d volumes (over the transport)" % removed
        except Exception:  # noqa: BLE001 - reported by the phase's line; the host goes anyway
            pass
        finally:
            self.session.client.close()

    def line(self, failed_phase: bool) -> tuple[str, int]:
        passed = sum(c.ok for c in self.checks)
        failed = sum(not c.ok for c in self.checks) + (1 if failed_phase else 0)
        return f"remote {self.stack} {self.transport}: {passed} checks passed, {failed} failed", failed


def rehearse_remote(
    stack: str, say: Callable[[str], None], phase, connect, phase_failed: type[Exception], transports=TRANSPORTS
) -> int:
    """phase, connect, phase_failed: the rehearsal CLI's (rehearsal.__main__)."""
    reason = why_unavailable()
    if reason:
        say(f"remote {stack}: not rehearsed: {reason}")
        for transport in transports:
            say(f"remote {stack} {transport}: 0 checks passed, 1 failed")
        return 1
    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGINT, _terminate)
    started = time.monotonic()
    run = secrets.token_hex(4)
    host: Optional[RemoteHost] = None
    done: list[tuple[Transport, bool]] = []
    failed_setup: Optional[BaseException] = None
    info: dict = {}
    try:
        with phase("hosts", info):
            main = connect()
            try:
                host = start_remote_host(say)
            except SshUnavailable as error:
                raise RehearsalError(str(error)) from None
            builder = Session(main, stack, {STACK_LABEL: stack, RUN_LABEL: run}, say)
            info["text"] = (
                f"main Docker {main.version().get('Version')} builds; the host: {host.engine.docker_host}, "
                f"tcp://{host.tcp} (TLS), ssh on 127.0.0.1:{host.ssh.port}"
            )
        shared: dict = {"images": builder.images, "built": builder.built, "copied": set()}
        for name in transports:
            last = name == transports[-1]
            transport = Transport(stack, name, host, builder, run, say, phase, restart_engine=last)
            failed = False
            try:
                transport.refusals()
                transport.rehearse(shared)
            except phase_failed:
                failed = True
            finally:
                transport.teardown()
            done.append((transport, failed))
    except phase_failed as failure:
        failed_setup = failure
    except KeyboardInterrupt:
        say("interrupted: tearing down")
        failed_setup = RehearsalError("interrupted")
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if host is not None:
            with phase("host teardown", info):
                host.close()
                info["text"] = "sshd stopped, the private engine stopped and removed" + (
                    f"; LEFT BEHIND: {'; '.join(host.engine.leftovers)}"
                    if host.engine.leftovers
                    else ", host as it was"
                )
    total = 0
    for transport, failed in done:
        line, count = transport.line(failed)
        say(line)
        total += count
    for name in transports[len(done) :]:
        say(f"remote {stack} {name}: 0 checks passed, 1 failed (not reached)")
        total += 1
    seconds = time.monotonic() - started
    met = "met" if seconds <= TARGET_SECONDS else "MISSED"
    say(f"remote {stack}: {seconds:.0f}s in all (target <= {TARGET_SECONDS}s: {met})")
    return 1 if total or failed_setup else 0
