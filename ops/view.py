"""Pure rendering of `status` and `ps`: Boxes in, lines out (tested with plain asserts)."""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import Optional, Sequence

from ops.stack import ONE_OFF, Box

SHORT_SHA = 12


def ago(then: Optional[datetime], now: datetime) -> str:
    """`41s`, `12m`, `3h05m`, `2d04h`: how long ago, to the precision people read."""
    if then is None:
        return "-"
    seconds = max(0, int((now - then).total_seconds()))
    if seconds < 60:
        return f"{seconds}s"
    minutes = seconds // 60
    if minutes < 60:
        return f"{minutes}m"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours}h{minutes:02d}m"
    days, hours = divmod(hours, 24)
    return f"{days}d{hours:02d}h"


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows)]
    return ["  ".join(str(cell).ljust(width) for cell, width in zip(row, widths)).rstrip() for row in (header, *rows)]


def _short(sha: Optional[str]) -> str:
    return (sha or "-")[:SHORT_SHA]


def _image(box: Box) -> str:
    """Short enough for a table: repo@sha256:<first 12>, sha256:<first 12>, or the tag as created."""
    ref = box.image_ref
    if "@sha256:" in ref:
        repo, digest = ref.split("@sha256:", 1)
        return f"{repo}@sha256:{digest[:SHORT_SHA]}"
    if ref.startswith("sha256:"):
        return ref[: len("sha256:") + SHORT_SHA]
    return ref


def release_lines(boxes: Sequence[Box], now: datetime) -> list[str]:
    """What release runs: its commit, image, when it was deployed; every release when several run."""
    app = [b for b in boxes if b.role == "app" and b.git_sha]
    if not app:
        return ["release: none (no container of the app image is running)"]
    releases = Counter((b.git_sha, b.image_ref, b.release) for b in app)
    lines = []
    for (git_sha, image_ref, release), _ in sorted(releases.items(), key=lambda item: -item[1]):
        members = [b for b in app if (b.git_sha, b.image_ref, b.release) == (git_sha, image_ref, release)]
        deployed = min(b.created for b in members)
        lines.append(
            f"release: {git_sha} deployed {deployed:%Y-%m-%d %H:%M:%S} UTC ({ago(deployed, now)} ago) "
            f"on {', '.join(b.label for b in members)}"
        )
        first = members[0]
        same = first.image_ref == first.image_id
        lines.append(
            f"  image: {first.image_ref}" + ("" if same else f" (id {first.image_id[: len('sha256:') + SHORT_SHA]})")
        )
    if len(releases) > 1:
        lines.append(f"  {len(releases)} releases run side by side: a release is under way, or one stopped half-way")
    return lines


def status_lines(stack: str, where: str, boxes: Sequence[Box], now: datetime) -> tuple[list[str], bool]:
    """The lines of `ops status`, and whether every container of the stack is running and healthy."""
    members = [b for b in boxes if b.role != ONE_OFF]
    urls = sorted({b.url for b in members if b.url})
    lines = [f"stack {stack} on {where}", *release_lines(members, now)]
    lines.append(f"url: {', '.join(urls) if urls else 'unknown (no app container carries its label)'}")
    rows = [
        (b.label, b.condition, str(b.restarts), _short(b.git_sha), ago(b.started, now) if b.started else "-", b.name)
        for b in members
    ]
    lines += table(("SERVICE", "HEALTH", "RESTARTS", "RELEASE", "UP", "CONTAINER"), rows)
    bad = [b for b in members if not b.ok]
    one_offs = [b for b in boxes if b.role == ONE_OFF]
    if one_offs:
        lines.append(f"one-off: {', '.join(b.name for b in one_offs)} (ops manage)")
    if bad:
        lines.append(
            f"{stack}: {len(bad)} of {len(members)} containers not healthy: "
            + ", ".join(f"{b.label} ({b.condition})" for b in bad)
        )
    else:
        restarted = sum(b.restarts for b in members)
        lines.append(
            f"{stack}: all {len(members)} containers healthy"
            + (f" ({restarted} restarts in all: `ops logs` says why)" if restarted else "")
        )
    return lines, not bad


def ps_lines(boxes: Sequence[Box], now: datetime) -> list[str]:
    """`docker compose ps` for the stack: one row per container, one-offs included."""
    rows = [(b.label, b.name, b.condition, ago(b.created, now), _image(b), ", ".join(b.ports) or "-") for b in boxes]
    return table(("SERVICE", "CONTAINER", "STATE", "CREATED", "IMAGE", "PORTS"), rows)
