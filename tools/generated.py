"""What the doc generators share (tools/topology.py, tools/config_reference.py): a generated
block between two marker lines in a committed file, and the --write / --check of those files."""

from __future__ import annotations

import sys
from pathlib import Path


def replace_block(text: str, begin: str, end: str, inner: str, *, tool: str, name: str, what: str) -> str:
    """`text` with what stands between the `begin` and `end` markers replaced by `inner`."""
    head, found_begin, rest = text.partition(begin)
    if not found_begin:
        raise SystemExit(f"{tool}: {name} has no line {begin!r} to put the {what} after")
    _, found_end, tail = rest.partition(end)
    if not found_end:
        raise SystemExit(f"{tool}: {name} has no line {end!r} closing the {what}")
    return f"{head}{begin}\n{inner}{end}{tail}"


def write_or_check(wanted: dict[Path, str], *, root: Path, tool: str, source: str, write: bool) -> int:
    """Write the files (--write), or exit 1 naming those that differ from what `source` gives (--check)."""
    names = [path.relative_to(root).as_posix() for path in wanted]
    if write:
        for path, text in wanted.items():
            path.write_text(text)
        print(f"{tool}: wrote {', '.join(names)}")
        return 0
    stale = [name for name, (path, text) in zip(names, wanted.items()) if not path.exists() or path.read_text() != text]
    if stale:
        verb = "differ" if len(stale) > 1 else "differs"
        print(f"{tool}: {', '.join(stale)} {verb} from {source}; run `make docs`", file=sys.stderr)
        return 1
    print(f"{tool}: {', '.join(names)} {'match' if len(names) > 1 else 'matches'} {source}")
    return 0
