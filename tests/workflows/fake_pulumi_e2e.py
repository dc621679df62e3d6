"""A stand-in for the Pulumi CLI, for testing tools/e2e.py (the real CLI is not installed here).

Every call is recorded in the JSON file named by FAKE_PULUMI_STATE with what the runner gave it:
argv, GIT_SHA, the backend URL, whether a passphrase was set, and whether the stack's file
existed. Each call is one step: version, init, up (the first `up`), up2 (the second), preview,
export, destroy, rm. `FAIL` in the state names a step that fails (exit 255, as the CLI does);
`HANG` a step that waits until it is interrupted, then records `cancelled` (as `pulumi up`
cancels on SIGINT). `stack export` prints the deployment in the file named by `EXPORT`.
Like the real CLI, `stack init` adds the passphrase's salt to an existing stack file and
`stack rm` deletes the stack file.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path


def load(path: str) -> dict:
    with open(path) as f:
        return json.load(f)


def save(path: str, state: dict) -> None:
    # Atomic: the test's HTTP stand-in reads this file while a call runs.
    with open(path + ".tmp", "w") as f:
        json.dump(state, f)
    os.replace(path + ".tmp", path)


def step_of(argv: list[str], calls: list[dict]) -> str:
    if argv[:1] == ["up"]:
        return "up2" if any(c["step"] == "up" for c in calls) else "up"
    if argv[:1] == ["stack"]:
        return {"init": "init", "export": "export", "rm": "rm"}.get(argv[1], "stack " + argv[1])
    return argv[0] if argv else "none"


def stack_of(argv: list[str]) -> str | None:
    if "--stack" in argv:
        return argv[argv.index("--stack") + 1]
    if argv[:2] in (["stack", "init"], ["stack", "rm"]):
        return next((a for a in argv[2:] if not a.startswith("-")), None)
    return None


def main(argv: list[str]) -> int:
    path = os.environ["FAKE_PULUMI_STATE"]
    state = load(path)
    calls = state.setdefault("calls", [])
    step = step_of(argv, calls)
    stack = stack_of(argv)
    stack_file = Path.cwd() / f"Pulumi.{stack}.yaml" if stack else None
    calls.append(
        {
            "step": step,
            "argv": argv,
            "GIT_SHA": os.environ.get("GIT_SHA"),
            "backend": os.environ.get("PULUMI_BACKEND_URL"),
            "passphrase": bool(os.environ.get("PULUMI_CONFIG_PASSPHRASE")),
            "stack_file": bool(stack_file and stack_file.exists()),
        }
    )
    save(path, state)

    if state.get("HANG") == step:
        try:
            time.sleep(60)
        except KeyboardInterrupt:  # SIGINT: what the runner sends to cancel
            state = load(path)
            state["cancelled"] = step
            save(path, state)
            print(f"error: {step} cancelled", file=sys.stderr)
            return 255
        return 255
    if state.get("FAIL") == step:
        print(f"error: {step} failed (told to)", file=sys.stderr)
        return 255
    if step == "version":
        print("v3.272.0")
    elif step == "init":
        assert stack_file is not None, f"fake pulumi: no stack named in {argv}"
        if stack_file.exists():
            stack_file.write_text(stack_file.read_text() + "encryptionsalt: v1:ZmFrZQ==:v1:ZmFrZQ==:ZmFrZQ==\n")
        print(f"Created stack '{stack}'")
    elif step == "export":
        print(Path(state["EXPORT"]).read_text())
    elif step == "rm":
        assert stack_file is not None, f"fake pulumi: no stack named in {argv}"
        if "--preserve-config" not in argv and stack_file.exists():
            stack_file.unlink()
        print(f"Stack '{stack}' has been removed!")
    elif step in ("up", "up2", "preview", "destroy"):
        time.sleep(float(state.get("SLEEP", {}).get(step, 0)))
        print(f"{step}: done")
    else:
        print(f"fake pulumi: unexpected call {argv}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
