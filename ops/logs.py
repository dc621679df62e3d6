"""`docker compose logs` for a stack: every container of a service (or all), interleaved in time
order, each line prefixed with its replica (`web-2 | …`).

Without --follow: each container's lines are read with Docker's timestamps and merged by them.
With --follow: one reader per container; containers that appear while following (a release
creating new replicas) are picked up too, from their first line.
"""

from __future__ import annotations

import heapq
import queue
import sys
import threading
import time
from datetime import datetime, timezone
from typing import Iterable, Iterator, Optional, Sequence, Union

import docker.errors

from ops.stack import Box, OpsError, StackOnHost

RESCAN_SECONDS = 2.0


def parse_since(text: Optional[str], now: Optional[datetime] = None) -> Optional[Union[datetime, int]]:
    """--since as the docker CLI takes it: a duration ago (10m, 1h30m), a unix time, or an RFC 3339 time."""
    if not text:
        return None
    from components.settings import duration_ns  # the one Go-duration parser (imported only when asked)

    ns = duration_ns(text)
    if ns is not None:
        return int((now or datetime.now(timezone.utc)).timestamp() - ns / 1e9)
    if text.isdigit():
        return int(text)
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise OpsError(f"--since {text}: not a duration (10m, 1h30m), a unix time or an RFC 3339 time") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def split_stamp(line: bytes) -> tuple[str, bytes]:
    """Docker's `<RFC 3339 nano> <text>` into (stamp, text)."""
    stamp, _, text = line.partition(b" ")
    return stamp.decode("ascii", "replace"), text


def sort_key(stamp: str) -> str:
    """RFC 3339 nano stamps sort as text once the fraction has all nine digits."""
    head, dot, rest = stamp.partition(".")
    if not dot:
        return stamp
    return f"{head}.{rest.rstrip('Z').ljust(9, '0')}Z"


def merged(per_container: dict[str, bytes]) -> Iterator[tuple[str, str, bytes]]:
    """(prefix, stamp, text) of every line, in time order (stable for lines of one container)."""

    def lines(prefix: str, blob: bytes) -> Iterable[tuple[str, int, str, str, bytes]]:
        for number, line in enumerate(blob.splitlines()):
            stamp, text = split_stamp(line)
            yield sort_key(stamp), number, prefix, stamp, text

    for _, _, prefix, stamp, text in heapq.merge(*(lines(p, b) for p, b in sorted(per_container.items()))):
        yield prefix, stamp, text


def format_line(prefix: str, width: int, stamp: str, text: bytes, timestamps: bool) -> bytes:
    head = f"{prefix.ljust(width)} | " + (f"{stamp} " if timestamps else "")
    return head.encode() + text + b"\n"


def _targets(stack: StackOnHost, service: Optional[str]) -> list[Box]:
    return stack.of_service(service) if service else [b for b in stack.boxes]


def show(
    stack: StackOnHost,
    service: Optional[str],
    *,
    since: Optional[str] = None,
    tail: Optional[int] = None,
    timestamps: bool = False,
    follow: bool = False,
    out=None,
) -> int:
    out = out or sys.stdout.buffer
    since_value = parse_since(since)
    boxes = _targets(stack, service)
    width = max(len(b.label) for b in boxes)
    if not follow:
        blobs = {}
        for b in boxes:
            try:
                blobs[b.label] = stack.client.api.logs(
                    b.id, timestamps=True, since=since_value, tail=tail if tail is not None else "all"
                )
            except docker.errors.NotFound:
                continue
        for prefix, stamp, text in merged(blobs):
            out.write(format_line(prefix, width, stamp, text, timestamps))
        out.flush()
        return 0
    return _follow(stack, service, boxes, width, since_value, tail, timestamps, out)


def _reader(stack: StackOnHost, b: Box, lines: "queue.Queue", since, tail) -> None:
    pending = b""
    try:
        stream = stack.client.api.logs(
            b.id, timestamps=True, stream=True, follow=True, since=since, tail=tail if tail is not None else "all"
        )
        for chunk in stream:
            pending += chunk
            *complete, pending = pending.split(b"\n")
            for line in complete:
                lines.put((b.label, line))
    except docker.errors.APIError:
        pass  # the container went away
    if pending:
        lines.put((b.label, pending))


def _follow(stack, service, boxes: Sequence[Box], width: int, since, tail, timestamps: bool, out) -> int:
    lines: "queue.Queue" = queue.Queue()
    followed: set[str] = set()

    def follow_new(found: Sequence[Box], first: bool) -> None:
        for b in found:
            if b.id not in followed:
                followed.add(b.id)
                # Containers that appear later are read from their first line.
                args = (stack, b, lines, since, tail) if first else (stack, b, lines, None, None)
                threading.Thread(target=_reader, args=args, daemon=True).start()

    follow_new(boxes, True)
    next_scan = time.monotonic() + RESCAN_SECONDS
    try:
        while True:
            try:
                prefix, line = lines.get(timeout=0.5)
                stamp, text = split_stamp(line)
                width = max(width, len(prefix))
                out.write(format_line(prefix, width, stamp, text, timestamps))
                out.flush()
            except queue.Empty:
                pass
            if time.monotonic() >= next_scan:
                stack.boxes = stack.refresh()
                follow_new([b for b in stack.boxes if not service or b.service == service], False)
                next_scan = time.monotonic() + RESCAN_SECONDS
    except KeyboardInterrupt:
        return 0
