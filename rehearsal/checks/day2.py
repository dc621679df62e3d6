"""The day-2 commands (`python -m ops`, the make targets status/ps/logs/manage/exec) on the
booted stack, each run as a user runs it: a new process, stdin closed, its output read.

One Check per command, then the benchmark's figures (ops.benchmark). None of them may change
the stack's containers, leave a one-off behind, or print a secret of the stack.
"""

from __future__ import annotations

import re
import time
from typing import Callable, Optional
from urllib.parse import urlsplit

from ops.benchmark import measure, run_ops
from ops.stack import STACK
from planning.harness import CONTAINER
from rehearsal.checks.smoke import Check, require, run_checks
from rehearsal.emulation.engine import live

OPS_SECONDS = 120  # any one command; they answer in about a second


class Day2:
    def __init__(self, ctx, say: Callable[[str], None]):
        self.ctx = ctx
        self.stack = ctx.stack
        self.say = say
        self.outputs: list[str] = []

    def ops(self, *args: str, pipe: Optional[str] = None) -> tuple[int, str, str]:
        code, out, err, _ = run_ops(
            [args[0], self.stack, *args[1:]], timeout=OPS_SECONDS, env=self.ctx.ops_env, pipe=pipe
        )
        self.outputs.append(out + err)
        return code, out, err

    def stack_ids(self) -> set[str]:
        api = self.ctx.session.client.api
        return {c["Id"] for c in api.containers(all=True, filters={"label": f"{STACK}={self.stack}"})}

    def secrets(self) -> list[str]:
        """Every secret the stack's containers hold: DJANGO_SECRET_KEY, the database password."""
        found = []
        for service in ("web", "postgres"):
            for c in self.ctx.session.containers_of(service).values():
                env = dict(item.split("=", 1) for item in c["Config"]["Env"] or [])
                found += [
                    env.get("DJANGO_SECRET_KEY"),
                    env.get("POSTGRES_PASSWORD"),
                    urlsplit(env.get("DATABASE_URL", "")).password,
                ]
        return sorted({s for s in found if s})

    # -- the checks

    def check_status(self) -> str:
        code, out, err = self.ops("status")
        require(code == 0, f"exit {code}: {(out + err).strip().splitlines()[-1:]}")
        serving = self.ctx.serving_sha()
        require(f"release: {serving} deployed" in out, f"status does not name the release /health/ serves ({serving})")
        url = self.ctx.rp.plan.outputs.get("url")
        require(f"url: {url}" in out, f"status does not show the stack's url {url}")
        expected = len(live(self.ctx.session.state, CONTAINER))
        last = out.strip().splitlines()[-1]
        require(last == f"{self.stack}: all {expected} containers healthy", f"last line: {last!r}")
        return f"exit 0, release {serving[:12]}, {url}, '{last}'"

    def check_ps(self) -> str:
        code, out, _ = self.ops("ps")
        require(code == 0, f"exit {code}")
        names = {
            c["Name"].lstrip("/")
            for s in ("web", "nginx", "postgres", "redis")
            for c in self.ctx.session.containers_of(s).values()
        }
        missing = sorted(n for n in names if n not in out)
        require(not missing, f"ps does not list {missing}")
        return f"{len(out.strip().splitlines()) - 1} containers listed, the {len(names)} of web, nginx, postgres, redis among them"

    def check_logs(self) -> str:
        code, out, _ = self.ops("logs", "--service", "web", "--tail", "50")
        require(code == 0, f"exit {code}")
        prefixes = {line.split(" | ", 1)[0].strip() for line in out.splitlines() if " | " in line}
        wanted = {f"web-{n}" for n in range(1, self.ctx.replicas() + 1)}
        require(prefixes == wanted, f"lines from {sorted(prefixes)}, expected every replica {sorted(wanted)}")
        return f"{len(out.splitlines())} lines from {', '.join(sorted(prefixes))}"

    def check_manage(self) -> str:
        before = self.stack_ids()
        code, out, err = self.ops("manage", "--", "check", "--deploy")
        require(code == 0, f"`manage check --deploy` exit {code}: {(out + err).strip().splitlines()[-3:]}")
        summary = re.search(r"System check identified (no issues|\d+ issues?)", out + err)
        warnings = sorted(set(re.findall(r"\(security\.(W\d+)\)", out + err)))
        code, out, err = self.ops("manage", "--", "shell", "--command", "import sys; sys.exit(3)")
        require(code == 3, f"`manage shell -c 'sys.exit(3)'` exit {code}, expected 3 passed through")
        # A pipe into the one-off, ended: the shell reads it to its end and exits by itself.
        started = time.monotonic()
        code, out, err = self.ops("manage", "--", "shell", pipe="print(6 * 7)\n")
        piped = time.monotonic() - started
        require(
            code == 0 and "42" in out.split(),
            f"`echo 'print(6 * 7)' | manage shell`: exit {code}, {out.strip()[-80:]!r}",
        )
        after = self.stack_ids()
        require(after == before, f"manage changed the stack's containers: {len(before)} before, {len(after)} after")
        return (
            f"check --deploy exit 0 ({summary.group(0) if summary else 'no summary'}"
            + (f": {', '.join(warnings)}" if warnings else "")
            + "); a failing command's exit 3 passed through; "
            f"a pipe into `manage shell` answered 42 and ended ({piped:.1f}s); no one-off left"
        )

    def check_exec(self) -> str:
        replica = str(self.ctx.replicas())
        code, out, _ = self.ops("exec", "--service", "web", "--replica", replica, "--", "id", "-u")
        require((code, out.strip()) == (0, "10001"), f"`exec id -u` in web-{replica}: exit {code}, {out.strip()!r}")
        code, _, _ = self.ops("exec", "--service", "web", "--", "sh", "-c", "exit 5")
        require(code == 5, f"`exec sh -c 'exit 5'`: exit {code}")
        return f"`id -u` in web-{replica} is 10001; exit 5 passed through"

    def check_refusals(self) -> str:
        code, _, err = self.ops("logs", "--service", "wbe")
        require(code == 2 and err.count("\n") == 1 and "services: " in err and "web" in err, f"exit {code}: {err!r}")
        return err.strip().split(": ", 1)[1]

    def check_secrets(self) -> str:
        secrets = self.secrets()
        require(secrets, "found no secret in the stack's environment to look for")
        leaked = [n for n, text in enumerate(self.outputs) if any(s in text for s in secrets)]
        require(not leaked, f"a secret appears in the output of {len(leaked)} command(s)")
        return f"none of the stack's {len(secrets)} secrets in any of {len(self.outputs)} outputs"

    def run(self) -> list[Check]:
        checks = run_checks(
            [
                ("ops status", self.check_status),
                ("ops ps", self.check_ps),
                ("ops logs", self.check_logs),
                ("ops manage", self.check_manage),
                ("ops exec", self.check_exec),
                ("ops refusal", self.check_refusals),
                ("ops secrets", self.check_secrets),
            ],
            self.say,
        )
        for figure in measure(self.stack, runs=self.ctx.ops_runs, env=self.ctx.ops_env):
            self.say("  " + figure.line(self.stack))
            if figure.failed:
                checks.append(Check(f"ops benchmark {figure.command}", False, figure.failed))
        return checks
