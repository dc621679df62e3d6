"""How long evaluating each stack's program takes, for 3 and for 50 web replicas.

"program" is plan_stack() in an already-warm interpreter (the program under the SDK's mock
monitor); "process" is a fresh `python -c` doing the same, imports included — what a
`pulumi preview` pays in the language host before the engine does anything. Prints a table.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rehearsal.plan import plan_stack  # noqa: E402

RUNS = 5
FAKE_DEV = {"organization/django-docker/dev": {"imageRef": "registry.example.com/acme/web@sha256:" + "d" * 64, "imagePushed": True, "gitSha": "0" * 40}}


def kwargs_for(stack: str, replicas: int) -> dict:
    kwargs: dict = {"overrides": {"webReplicas": replicas}}
    if stack == "prod":
        kwargs["stack_references"] = FAKE_DEV
    return kwargs


def program_seconds(stack: str, replicas: int) -> tuple[float, int]:
    times, count = [], 0
    for _ in range(RUNS):
        started = time.perf_counter()
        plan = plan_stack(stack, **kwargs_for(stack, replicas))
        times.append(time.perf_counter() - started)
        count = len(plan.resources)
    return statistics.median(times), count


def process_seconds(stack: str, replicas: int) -> float:
    code = f"from rehearsal.plan import plan_stack; plan_stack({stack!r}, **{kwargs_for(stack, replicas)!r})"
    times = []
    for _ in range(RUNS):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, env={**os.environ, "GIT_SHA": "0" * 40})
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    os.environ.setdefault("GIT_SHA", "0" * 40)
    print(f"median of {RUNS} runs each")
    print(f"{'stack':<6} {'replicas':>8} {'resources':>9} {'program s':>10} {'process s':>10}")
    for stack in ("dev", "prod"):
        for replicas in (3, 50):
            program, count = program_seconds(stack, replicas)
            process = process_seconds(stack, replicas)
            print(f"{stack:<6} {replicas:>8} {count:>9} {program:>10.3f} {process:>10.3f}")


if __name__ == "__main__":
    main()
