"""The stack configuration reference (docs/configuration.md's key table), generated from Pulumi.yaml.

    python -m tools.config_reference            print the table
    python -m tools.config_reference --write    rewrite the table in docs/configuration.md
    python -m tools.config_reference --check    exit 1 when the committed table differs

Each key declared in `Pulumi.yaml` is one row: its type, its one default, the value each stack
file (`Pulumi.dev.yaml`, `Pulumi.prod.yaml`) sets (empty: the default), and its description.
Nothing is written by hand, so a key added, removed or changed in those files changes the table,
and the test (tests/test_docs.py) fails until it is regenerated.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import yaml

from tools.generated import replace_block, write_or_check

ROOT = Path(__file__).resolve().parent.parent
PROJECT = ROOT / "Pulumi.yaml"
DOC = ROOT / "docs" / "configuration.md"
STACKS = ("dev", "prod")
BEGIN, END = "<!-- config:begin (make docs) -->", "<!-- config:end -->"


def _load(path: Path) -> dict[str, Any]:
    loaded = yaml.safe_load(path.read_text()) or {}
    return dict(loaded.get("config") or {})


def _value(value: Any) -> str:
    """A value as the table shows it: `""` for empty, else in backticks (booleans lowercase)."""
    if isinstance(value, dict) and "secure" in value:
        return "(secret)"
    if value == "" or value is None:
        return '""'
    shown = str(value).lower() if isinstance(value, bool) else str(value)
    return f"`{shown}`"


def declared(root: Path = ROOT) -> dict[str, dict[str, Any]]:
    """Every key Pulumi.yaml declares, in its order."""
    return {key: dict(declaration) for key, declaration in _load(root / PROJECT.name).items()}


def stack_values(stack: str, root: Path = ROOT) -> dict[str, Any]:
    """What Pulumi.<stack>.yaml sets in the project's namespace, by bare key."""
    project = yaml.safe_load((root / PROJECT.name).read_text())["name"]
    prefix = f"{project}:"
    return {
        key.removeprefix(prefix): value
        for key, value in _load(root / f"Pulumi.{stack}.yaml").items()
        if key.startswith(prefix)
    }


def table(root: Path = ROOT) -> str:
    """The Markdown table of every declared key."""
    keys = declared(root)
    per_stack = {stack: stack_values(stack, root) for stack in STACKS}
    lines = [
        f"| key | type | default | {' | '.join(STACKS)} | what |",
        f"|---|---|---|{'---|' * len(STACKS)}---|",
    ]
    for key, declaration in keys.items():
        stacks = " | ".join(_value(per_stack[s][key]) if key in per_stack[s] else "" for s in STACKS)
        description = " ".join(str(declaration.get("description", "")).split()).replace("|", "\\|")
        lines.append(
            f"| `{key}` | {declaration['type']} | {_value(declaration.get('default'))} | {stacks} | {description} |"
        )
    return "\n".join(lines) + "\n"


def doc_text(doc: str, generated: str) -> str:
    """The doc with the block between the markers replaced by the generated table."""
    return replace_block(doc, BEGIN, END, generated, tool="config_reference", name=DOC.name, what="table")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.config_reference", description=__doc__.split("\n\n")[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--write", action="store_true", help="rewrite the table in docs/configuration.md")
    mode.add_argument("--check", action="store_true", help="exit 1 when the committed table differs")
    args = parser.parse_args(argv)
    generated = table()
    if not (args.write or args.check):
        print(generated, end="")
        return 0
    return write_or_check(
        {DOC: doc_text(DOC.read_text(), generated)},
        root=ROOT,
        tool="config_reference",
        source="Pulumi.yaml and the stack files",
        write=args.write,
    )


if __name__ == "__main__":
    sys.exit(main())
