"""A stand-in for the Pulumi CLI, for testing scripts/promote.sh and rollback.sh.

The real CLI is not installed here. This one keeps a small world in the JSON
file named by FAKE_PULUMI_STATE: each stack's outputs and config, and every
call made. `up` "deploys" what the stack's config says prod runs (the pin, or
dev's imageRef), so a script's final check against prod's outputs means
something. `FAIL` in the state names a command ("preview", "up") that fails;
`DEV_AFTER_PREVIEW` is an imageRef dev moves to while a preview runs. Each call's
environment as the CLI reads it (backend, passphrase, the first PATH entry) goes to `envs`.
"""

from __future__ import annotations

import json
import os
import sys

PROJECT = "django-docker"


def main(argv: list[str]) -> int:
    path = os.environ["FAKE_PULUMI_STATE"]
    with open(path) as f:
        state = json.load(f)
    state.setdefault("calls", []).append(argv)
    state.setdefault("envs", []).append(
        {
            "PULUMI_BACKEND_URL": os.environ.get("PULUMI_BACKEND_URL"),
            "PULUMI_CONFIG_PASSPHRASE": os.environ.get("PULUMI_CONFIG_PASSPHRASE"),
            "PATH0": os.environ.get("PATH", "").split(os.pathsep)[0],
        }
    )
    try:
        return run(state, argv)
    finally:
        with open(path, "w") as f:
            json.dump(state, f)


def _take_stack(args: list[str]) -> tuple[str, list[str]]:
    rest, stack = [], None
    it = iter(args)
    for arg in it:
        if arg in ("--stack", "-s"):
            stack = next(it)
        else:
            rest.append(arg)
    if stack is None:
        raise SystemExit("fake pulumi: every call in these scripts names its --stack")
    return stack, rest


def _key(name: str) -> str:
    return name if ":" in name else f"{PROJECT}:{name}"


def run(state: dict, argv: list[str]) -> int:
    command, args = argv[:2], argv[2:]
    if argv[:1] in (["preview"], ["up"], ["destroy"]):
        command, args = argv[:1], argv[1:]
    stack, rest = _take_stack(args)
    config = state.setdefault("config", {}).setdefault(stack, {})
    outputs = state.setdefault("outputs", {})

    if command == ["stack", "output"]:
        if stack not in outputs:
            print(f"error: no stack named '{stack}' found", file=sys.stderr)
            return 255
        if "--json" in rest:
            print(json.dumps(outputs[stack]))
        else:
            print(outputs[stack][rest[0]])
        return 0
    if command == ["config", "get"]:
        key = _key(rest[0])
        if key not in config:
            print(f"error: configuration key '{key}' not found for stack '{stack}'", file=sys.stderr)
            return 255
        print(config[key])
        return 0
    if command == ["config", "set"]:
        config[_key(rest[0])] = rest[1]
        return 0
    if command == ["config", "rm"]:
        config.pop(_key(rest[0]), None)
        return 0
    if command == ["stack", "select"]:
        if stack not in state["config"] and "--create" not in rest:
            print(f"error: no stack named '{stack}' found", file=sys.stderr)
            return 255
        return 0
    if command == ["destroy"]:
        outputs.pop(stack, None)
        return 0
    if command in (["preview"], ["up"]):
        if state.get("FAIL") == command[0]:
            print(f"error: {command[0]} failed", file=sys.stderr)
            return 1
        if command == ["preview"] and "DEV_AFTER_PREVIEW" in state:
            # Simulates a dev deploy landing while prod's preview runs.
            outputs["dev"]["imageRef"] = state.pop("DEV_AFTER_PREVIEW")
        if command == ["up"]:
            source = config.get(_key("imageSource"))
            if source == "pin":
                deployed = config[_key("imagePin")]
            elif source in (None, "build"):
                deployed = f"django-docker/web@sha256:{'e' * 64}"
            else:
                source_stack = config[_key("imageSourceStack")].rsplit("/", 1)[-1]
                deployed = outputs[source_stack]["imageRef"]
            outputs.setdefault(stack, {})["imageRef"] = deployed
        return 0
    print(f"fake pulumi: unexpected call {argv}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
