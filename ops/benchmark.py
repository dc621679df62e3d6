"""How long each day-2 command takes on a running stack, as a user starts it (a new process).

    python -m ops.benchmark STACK [--runs N]      (make benchmark-ops STACK=prod)

One line per command, `ops <stack> <command>: median <s>s (runs …), target < 2s`; figures only,
no verdict on speed (it depends on the machine). Exits 1 when a command itself fails.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Optional

PROJECT_ROOT = Path(__file__).resolve().parent.parent
TARGET_SECONDS = 2.0
# What an on-call developer types first; manage and exec start a process in a container.
COMMANDS = {
    "status": ["status"],
    "ps": ["ps"],
    "logs": ["logs", "--service", "web", "--tail", "200"],
    "manage": ["manage", "-T", "--", "check"],
    "exec": ["exec", "-T", "--service", "web", "--", "true"],
}


@dataclass
class Figure:
    command: str
    seconds: list[float]
    failed: str = ""

    @property
    def median(self) -> float:
        return statistics.median(self.seconds) if self.seconds else float("nan")

    def line(self, stack: str) -> str:
        if self.failed:
            return f"ops {stack} {self.command}: FAILED ({self.failed})"
        runs = ", ".join(f"{s:.2f}" for s in self.seconds)
        return f"ops {stack} {self.command}: median {self.median:.2f}s (runs {runs}), target < {TARGET_SECONDS:.0f}s"


def run_ops(
    args: list[str], timeout: float = 120, env: Optional[Mapping[str, str]] = None, pipe: Optional[str] = None
) -> tuple[int, str, str, float]:
    """`python -m ops ARGS` from the project root, in `env` (default: ours), its stdin /dev/null
    or a pipe carrying `pipe`; (exit code, stdout, stderr, seconds)."""
    started = time.monotonic()
    command = [sys.executable, "-m", "ops", *args]
    environment = None if env is None else dict(env)
    if pipe is None:
        done = subprocess.run(
            command,
            cwd=PROJECT_ROOT,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            env=environment,
        )
    else:
        done = subprocess.run(
            command, cwd=PROJECT_ROOT, input=pipe, capture_output=True, text=True, timeout=timeout, env=environment
        )
    return done.returncode, done.stdout, done.stderr, time.monotonic() - started


def measure(stack: str, runs: int = 3, env: Optional[Mapping[str, str]] = None) -> list[Figure]:
    figures = []
    for name, args in COMMANDS.items():
        figure = Figure(name, [])
        for _ in range(runs):
            code, _, err, seconds = run_ops([args[0], stack, *args[1:]], env=env)
            if code != 0:
                figure.failed = f"exit {code}: {(err.strip().splitlines() or ['no output'])[-1][:160]}"
                break
            figure.seconds.append(seconds)
        figures.append(figure)
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ops.benchmark", description=__doc__.split("\n\n")[0])
    parser.add_argument("stack")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args(argv)
    figures = measure(args.stack, args.runs)
    for figure in figures:
        print(figure.line(args.stack), flush=True)
    return 1 if any(f.failed for f in figures) else 0


if __name__ == "__main__":
    sys.exit(main())
