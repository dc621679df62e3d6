"""`make check STACK=<name>`: is this stack's configuration one `pulumi up` would take?

    python -m planning.check STACK

No Pulumi CLI, no state backend, no Docker engine. The stack file is read as the CLI reads it
(planning/stackfile.py: its YAML, its keys, Pulumi.yaml's defaults and declared types, its
secrets), then the program runs under the SDK's mocks (planning/harness.py) with that config, so
every check the program makes before creating anything runs too. Prints every problem, one line
each, and exits 1; or one `ok` line with the number of resources the program would manage.

Secrets: decrypted when the stack uses the passphrase provider and PULUMI_CONFIG_PASSPHRASE (or
PULUMI_CONFIG_PASSPHRASE_FILE) is set, so their contents are checked too (a TLS certificate that
does not cover serverName, a whitespace password). Otherwise, and for other secrets providers
(a KMS, Pulumi Cloud), a secret is present-but-encrypted: the program is told it is there, and
only what does not need its value is checked; the ok line says how many were not decrypted.

What it cannot know without the backend: another stack's outputs. With `imageSource: stack` a
stand-in digest takes the place of the source stack's imageRef, and the ok line says so.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Optional

from components.settings.values import OPAQUE_SECRET
from planning.harness import PROJECT_ROOT, PlanError, plan_stack
from planning.stackfile import StackFileError, passphrase_from_environment, read_stack

STAND_IN_DIGEST = "registry.invalid/stand-in/web@sha256:" + "0" * 64


def check(stack: str, root: Path = PROJECT_ROOT, *, passphrase: Optional[str] = None) -> tuple[int, list[str]]:
    """(exit code, lines): every problem of the stack, or its one ok line."""
    file_name = f"Pulumi.{stack}.yaml"
    if not (root / file_name).exists():
        stacks = sorted(p.name[len("Pulumi.") : -len(".yaml")] for p in root.glob("Pulumi.*.yaml"))
        return 2, [f"{file_name}: no such stack file; stacks: {', '.join(stacks) or 'none'}"]
    try:
        loaded = read_stack(stack, root, opaque=OPAQUE_SECRET, passphrase=passphrase)
    except StackFileError as error:
        return 1, [f"{file_name}: {error}" if not str(error).startswith(file_name) else str(error)]
    problems = [f"{file_name}: {problem}" for problem in loaded.problems]
    reported = {problem.split(":", 2)[1].strip() for problem in loaded.problems if problem.count(":") >= 2}

    namespace = loaded.namespace
    source = loaded.config.get(f"{namespace}:imageSource", "")
    source_stack = loaded.config.get(f"{namespace}:imageSourceStack", "")
    references = {}
    if source == "stack" and source_stack:
        references = {source_stack: {"imageRef": STAND_IN_DIGEST, "imagePushed": True, "gitSha": "0" * 40}}
    try:
        plan = plan_stack(stack, root=root, loaded=loaded, stack_references=references)
    except PlanError as error:
        for line in str(error).splitlines():
            key = line.split(":", 1)[0]
            # The CLI's own refusal of a key already says it; the program's would repeat it.
            if key not in reported:
                problems.append(f"{file_name}: {line}")
        return 1, problems
    except Exception as error:  # a bug in the program, not in the config: still one line
        first = (str(error).splitlines() or [""])[0]
        problems.append(f"{file_name}: the program failed: {type(error).__name__}: {first[:300]}")
        return 1, problems
    if problems:
        return 1, problems

    managed = [r for r in plan.resources if not r.options.get("read")]
    notes = []
    if loaded.decrypted:
        notes.append(f"{loaded.decrypted} secret{'s' if loaded.decrypted != 1 else ''} decrypted and checked")
    if loaded.opaque:
        count = len(loaded.opaque)
        notes.append(
            f"{count} secret{'s' if count != 1 else ''} encrypted, present but not checked "
            f"({loaded.opaque_reason}: {', '.join(loaded.opaque)})"
        )
    if references:
        notes.append(f"{source_stack}'s imageRef not read (no backend): a stand-in digest")
    return 0, [f"{file_name}: ok, {len(managed)} resources" + (f" ({'; '.join(notes)})" if notes else "")]


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m planning.check", description="Check a stack's configuration without the Pulumi CLI."
    )
    parser.add_argument("stack")
    args = parser.parse_args(argv)
    try:
        passphrase = passphrase_from_environment()
    except StackFileError as error:
        print(error)
        return 1
    code, lines = check(args.stack, passphrase=passphrase)
    print("\n".join(lines))
    return code


if __name__ == "__main__":
    sys.exit(main())
