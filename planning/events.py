"""A real `pulumi up`'s engine events -> its steps, in the update model's words.

Pure: the input is the engine's event log (`pulumi up --event-log FILE`, one JSON EngineEvent a
line: pulumi/pulumi sdk/go/common/apitype/events.go), the output the steps the engine took, named
as `rehearsal.emulation.model` names them, with the order the engine took them in. The
real-engine driver (`rehearsal.drivers.pulumi_cli`), the calibration test (tests/calibration/)
and `make forecast` (tools/forecast.py, a preview's events) read events through here, so the
fixtures, the driver's output and the forecast mean the same thing. Here, below both ops and
the rehearsal, because the product's forecast reads it too.

How the engine's operations map (pulumi/pulumi pkg/resource/deploy/step.go, the OpType constants):
- `create`, `update`, `same`, `delete` are the model's create, update, same, delete;
- a replacement is three engine steps on one URN: `create-replacement` (the new one), `replace`
  (a marker) and `delete-replaced` (the old one). The model's one `replace` step is the
  `create-replacement`; its mode is delete-before-replace when the old one's delete started
  first, else create-before-delete. A `delete-replaced` that started before the create is the
  model's `delete-before-replace` step (also for a dependent deleted first: it is not replaced
  by its own change, `keys` is empty), one after it the model's `delete-replaced`;
- `read` (StackReference) and provider resources are not steps the model plans; a component
  (`custom` false) is not either.

A step's `start` and `end` are the event log's sequence numbers of its resourcePreEvent and of
its resOutputsEvent or resOpFailedEvent (the engine numbers events in the order it emits them),
so "A ended before B started" is `A.end < B.start`.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from typing import Iterable, Optional

# The update model's operation names (rehearsal.emulation.model imports them from here).
CREATE, SAME, UPDATE, REPLACE, DELETE_FIRST, DELETE_REPLACED, DELETE = (
    "create",
    "same",
    "update",
    "replace",
    "delete-before-replace",
    "delete-replaced",
    "delete",
)
CBD, DBR = "create-before-delete", "delete-before-replace"

# pulumi/pulumi sdk/go/common/resource/resource_status.go: 0 ok, 1 partial failure (the
# resource exists, with an initialization error), 2 unknown.
STATUS_PARTIAL = 1
# Not steps the model plans: `read` and `discard` (a StackReference read, and dropped from the state
# when the program no longer declares it: step.go ReadStep, ReadDiscardStep), `replace` (the
# marker between a replacement's create and delete), and the rest that `pulumi up` does not emit
# for this program.
SKIPPED_OPS = {"read", "discard", "replace", "refresh", "discard-replaced", "remove-pending-replace", "import"}


class EventLogError(Exception):
    """The event log cannot be read as a `pulumi up`'s; one line."""


def step_text(op: str, name: str, mode: str, keys: Iterable[str]) -> str:
    """A step in one line, the model's and the engine's alike: `replace web-1 (create-before-delete) [image]`."""
    text = f"{op} {name}"
    if mode:
        text += f" ({mode})"
    keys = list(keys)
    if keys:
        text += f" [{', '.join(keys)}]"
    return text


@dataclass
class RealStep:
    op: str
    name: str
    type: str
    start: int
    urn: str = ""
    end: Optional[int] = None
    """Sequence number of the step's last event; None: it never finished (the update was cancelled)."""
    ok: bool = True
    mode: str = ""
    keys: tuple[str, ...] = ()
    """The inputs that decided a replacement (`keys`), else those that changed (`diffs`)."""
    partial: bool = False
    """Failed with the resource created (an initialization error: e.g. never healthy)."""
    error: str = ""
    started_at: int = 0
    ended_at: int = 0
    """The events' timestamps (whole seconds): only for the driver's output, not the calibration."""

    def describe(self) -> str:
        """As rehearsal.emulation.model.Step.describe puts it (the driver prints it)."""
        return step_text(self.op, self.name, self.mode, self.keys)

    def fixture(self) -> dict:
        data = asdict(self)
        data["keys"] = list(self.keys)
        for key in ("urn", "started_at", "ended_at"):  # the stack's name; times that differ on each run
            del data[key]
        return {k: v for k, v in data.items() if v not in ("", False, None, []) or k in ("ok", "start")}


@dataclass
class RealUpdate:
    steps: list[RealStep] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    """`<logical name>: <message>` for each error the engine reported on a resource, in order."""
    summary: dict = field(default_factory=dict)
    """The summaryEvent: resourceChanges (op -> count), durationSeconds, maybeCorrupt."""

    @property
    def ok(self) -> bool:
        return all(s.ok for s in self.steps) and not self.errors

    @property
    def error(self) -> Optional[str]:
        """The first failure, in one line that starts with the resource's logical name."""
        failed = [s for s in self.steps if not s.ok]
        if failed:
            first = min(failed, key=lambda s: s.end if s.end is not None else s.start)
            return f"{first.name}: {first.error or 'failed'}"
        return self.errors[0] if self.errors else None

    def of(self, op: str) -> list[RealStep]:
        return [s for s in self.steps if s.op == op]

    @property
    def changes(self) -> list[RealStep]:
        return [s for s in self.steps if s.op != SAME]


def logical_name(urn: str) -> str:
    """urn:pulumi:<stack>::<project>::<parent types$type>::<name> -> name."""
    return urn.split("::", 3)[3]


def read_events(lines: Iterable[str]) -> list[dict]:
    events = []
    for number, line in enumerate(lines, start=1):
        line = line.strip()
        if not line:
            continue
        try:
            events.append(json.loads(line))
        except ValueError:
            raise EventLogError(f"event log line {number} is not JSON: {line[:80]}") from None
    return events


def _counts(metadata: dict) -> bool:
    """Whether the step is one the model plans: a custom resource, not a provider, not a read."""
    state = metadata.get("new") or metadata.get("old") or {}
    return bool(state.get("custom")) and not metadata.get("type", "").startswith("pulumi:providers:")


EXCEPTION_LINE = re.compile(r"^[A-Za-z_][\w.]*: ")


def _error_text(message: str) -> str:
    """A diagnostic's message in one line, without the provider's decoration.

    A dynamic provider's failure arrives as the Python traceback of its exception (the SDK aborts
    the gRPC call with traceback.format_exc(): pulumi sdk/python/lib/pulumi/dynamic/__main__.py,
    _abort_with_traceback); what it says is its last exception line, kept from there on.
    """
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    lines = [line for line in lines if line not in ("1 error occurred:",)]
    if any(line.startswith("Traceback (most recent call last)") for line in lines):
        frames = [i for i, line in enumerate(lines) if line.startswith('File "')]
        after = frames[-1] + 1 if frames else 0
        first = next((i for i in range(after, len(lines)) if EXCEPTION_LINE.match(lines[i])), after)
        lines = lines[first:]
    return " ".join(line.lstrip("* ") for line in lines)[:600]


def steps_of(events: list[dict]) -> RealUpdate:
    """The steps of one `pulumi up` (or preview, refresh, destroy) from its events."""
    update = RealUpdate()
    open_steps: dict[tuple[str, str], RealStep] = {}
    errors_by_urn: dict[str, list[str]] = {}
    creates: dict[str, RealStep] = {}  # urn -> its create-replacement step
    first_deletes: dict[str, int] = {}  # urn -> start of a delete-replaced before its create-replacement
    for event in sorted(events, key=lambda e: e.get("sequence", 0)):
        seq = int(event.get("sequence", 0))
        if "diagnosticEvent" in event:
            d = event["diagnosticEvent"]
            if d.get("severity") == "error" and d.get("urn"):
                text = _error_text(d.get("message") or "")
                if text:
                    errors_by_urn.setdefault(d["urn"], []).append(text)
            continue
        if "summaryEvent" in event:
            update.summary = event["summaryEvent"]
            continue
        kind = next((k for k in ("resourcePreEvent", "resOutputsEvent", "resOpFailedEvent") if k in event), None)
        if kind is None:
            continue
        metadata = event[kind]["metadata"]
        op, urn = metadata.get("op", ""), metadata.get("urn", "")
        if op in SKIPPED_OPS or not _counts(metadata):
            continue
        key = (op, urn)
        if kind == "resourcePreEvent":
            step = RealStep(
                op=op,
                name=logical_name(urn),
                urn=urn,
                type=metadata.get("type", ""),
                start=seq,
                started_at=int(event.get("timestamp", 0)),
                keys=tuple(metadata.get("keys") or metadata.get("diffs") or ()),
            )
            open_steps[key] = step
            update.steps.append(step)
            if op == "create-replacement":
                creates[urn] = step
            elif op == "delete-replaced" and urn not in creates:
                first_deletes.setdefault(urn, seq)  # first, if a create-replacement follows (below)
            continue
        found = open_steps.pop(key, None)
        if found is None:
            continue  # an outputs event without its pre event (not emitted by up; be lenient)
        found.end = seq
        found.ended_at = int(event.get("timestamp", 0))
        if kind == "resOpFailedEvent":
            found.ok = False
            found.partial = event[kind].get("status") == STATUS_PARTIAL
    # A delete-replaced is the first half of a delete-before-replace only when this update then
    # creates the replacement; otherwise it deletes what a failed update left for deletion, at
    # the end (step_generator.go GenerateDeletes: `res.Delete`).
    first_deletes = {u: s for u, s in first_deletes.items() if u in creates and creates[u].start > s}
    # Name them as the model does.
    for step in update.steps:
        if step.op == "create-replacement":
            step.op = REPLACE
            step.mode = DBR if step.urn in first_deletes else CBD
        elif step.op == "delete-replaced":
            step.op = DELETE_FIRST if first_deletes.get(step.urn) == step.start else DELETE_REPLACED
    for urn, texts in errors_by_urn.items():
        name = logical_name(urn)
        failed = [s for s in update.steps if s.name == name and not s.ok]
        for s in failed:
            s.error = s.error or texts[0]
        if not failed:
            update.errors += [f"{name}: {t}" for t in texts]
    return update
