"""How long evaluating each stack's program takes, for 3 and for 50 web replicas; and the app
image: how much it adds to its base, and how long a code-only rebuild takes.

"program" is plan_stack() in an already-warm interpreter (the program under the SDK's mock
monitor); "process" is a fresh `python -c` doing the same, imports included — what a
`pulumi preview` pays in the language host before the engine does anything. Prints a table.
The image part needs a Docker engine with the base image (real or the rehearsal's stand-in);
without one it says so and skips. Figures only: targets are printed next to them, not asserted.
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

from planning.harness import plan_stack  # noqa: E402

RUNS = 5
FAKE_DEV = {
    "organization/django-docker/dev": {
        "imageRef": "registry.example.com/acme/web@sha256:" + "d" * 64,
        "imagePushed": True,
        "gitSha": "0" * 40,
    }
}


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
    code = f"from planning.harness import plan_stack; plan_stack({stack!r}, **{kwargs_for(stack, replicas)!r})"
    times = []
    for _ in range(RUNS):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, env={**os.environ, "GIT_SHA": "0" * 40})
        times.append(time.perf_counter() - started)
    return statistics.median(times)


IMAGE_TAG = "django-docker/web:benchmark"
IMAGE_TARGET_MB = 60


def image_figures() -> None:
    """The app's layers above the base (target <= 60 MB), and a build after a code-only change."""
    import shutil
    import tempfile

    import docker

    try:
        client = docker.from_env(timeout=600)
        client.ping()
        base_name = next(
            line.split()[1]
            for line in (ROOT / "django_app" / "Dockerfile").read_text().splitlines()
            if line.startswith("FROM ") and " AS " not in line and "$" not in line
        )
        base = client.images.get(base_name)
    except Exception as error:  # no engine or no base image: nothing to measure here
        print(f"image: skipped ({type(error).__name__}: {str(error).splitlines()[0][:120] if str(error) else ''})")
        return
    from tools.runtime_image import build_runtime_image

    runtime = {"DJANGO_DOCKER_RUNTIME": build_runtime_image(client)}
    with tempfile.TemporaryDirectory() as scratch:
        context = Path(scratch) / "django_app"
        shutil.copytree(ROOT / "django_app", context)
        started = time.perf_counter()
        image, _ = client.images.build(
            path=str(context), tag=IMAGE_TAG, rm=True, buildargs={"GIT_SHA": "0" * 40, **runtime}
        )
        first = time.perf_counter() - started
        added_mb = (image.attrs["Size"] - base.attrs["Size"]) / 1e6
        (context / "config" / "benchmark_touch.py").write_text(f"# {time.time()}\n")
        started = time.perf_counter()
        client.images.build(path=str(context), tag=IMAGE_TAG, rm=True, buildargs={"GIT_SHA": "1" * 40, **runtime})
        code_only = time.perf_counter() - started
    print(
        f"image: {added_mb:.1f} MB above {base_name} (target <= {IMAGE_TARGET_MB} MB); "
        f"build {first:.1f}s (layers cached as they were), after a code-only change {code_only:.1f}s"
    )


def main() -> None:
    os.environ.setdefault("GIT_SHA", "0" * 40)
    print(f"median of {RUNS} runs each")
    print(f"{'stack':<6} {'replicas':>8} {'resources':>9} {'program s':>10} {'process s':>10}")
    for stack in ("dev", "prod"):
        for replicas in (3, 50):
            program, count = program_seconds(stack, replicas)
            process = process_seconds(stack, replicas)
            print(f"{stack:<6} {replicas:>8} {count:>9} {program:>10.3f} {process:>10.3f}")
    image_figures()


if __name__ == "__main__":
    main()
