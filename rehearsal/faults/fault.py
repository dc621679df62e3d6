"""Fault scenarios: one small module each, data plus an expectation.

A fault is something that happens to a running stack without anyone deploying: a replica
killed, the database restarted, the broker restarted with work queued, the worker killed
mid-task, a backup restored. `rehearsal.runners.faults` runs them in this order on one booted stack,
each under steady load through nginx, and prints exactly one line per fault:

    fault <stack> <fault>: <N> requests, <F> failed, <L> lost

N and F are the load's; L is what the fault counts as lost (acknowledged writes missing from
PostgreSQL, queued or running tasks never processed, rows that differ from a backup). Every
fault must lose nothing; how many requests may fail is the fault's own.

The pure parts (the line, the verdict, the counting) live here and are unit-tested.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Iterable, Mapping, Optional

if TYPE_CHECKING:  # pragma: no cover
    from rehearsal.checks.load import Report
    from rehearsal.runners.release import Context


@dataclass(frozen=True)
class Traffic:
    """The steady load through nginx while a fault runs."""

    path: str = "/health/"
    method: str = "GET"
    expect: int = 200
    collect: Optional[str] = None
    """A JSON key kept from every expected answer (the ids of acknowledged writes)."""


READS = Traffic()
WRITES = Traffic(path="/visits/", method="POST", expect=201, collect="id")
# A page: the latest visits, read from PostgreSQL (no broker, no cache). Unlike /health/, which
# reports every dependency, it must keep answering while Redis restarts.
PAGES = Traffic(path="/visits/")


@dataclass
class Trial:
    """One run of a fault: what it found, as it goes."""

    say: Callable[[str], None]
    recovery_seconds: Optional[float] = None
    """From the injection to the stack healthy again (the fault's own measure)."""
    lost: Optional[int] = None
    """Set by the fault (or by its count after the load stopped)."""
    problems: list[str] = field(default_factory=list)
    data: dict = field(default_factory=dict)

    def note(self, line: str) -> None:
        self.say(f"    {line}")


@dataclass(frozen=True)
class Fault:
    name: str
    what: str
    """What is done to the stack, for the output."""
    expectation: str
    """What must hold, for the output."""
    inject: Callable[["Context", Trial], None]
    """Set up, inject, wait (bounded) for recovery, under the load; notes what it saw; sets
    trial.recovery_seconds (and trial.lost when it can count before the load stops)."""
    count: Optional[Callable[["Context", Trial, "Report"], int]] = None
    """After the load stopped: how many were lost (when that needs the load's report)."""
    traffic: Traffic = READS
    max_failed_seconds: Optional[int] = 0
    """Whole seconds with failed requests allowed; 0: none may fail; None: any may (the
    expectation says why)."""
    recovery_target: float = 30.0
    """Seconds from the injection to healthy again."""
    summary: Optional[Callable[[str, "Trial"], Optional[str]]] = None
    """A line of the fault's own after the fault line (stack, trial -> line; None: nothing)."""


def fault_line(stack: str, fault: str, requests: int, failed: int, lost: Optional[int]) -> str:
    shown = "?" if lost is None else str(lost)
    return f"fault {stack} {fault}: {requests} requests, {failed} failed, {shown} lost"


def summary_line(stack: str, run: int, good: int, wanted: Optional[int] = None) -> str:
    line = f"faults {stack}: {run} run, {good} as expected, {run - good} not"
    return line if wanted is None or wanted == run else line + f", {wanted - run} not reached"


def verdict(fault: Fault, trial: Trial, requests: int, failed: int, failed_seconds: int) -> list[str]:
    """Everything that is not as the fault expects; empty when it is."""
    problems = list(trial.problems)
    if trial.lost is None:
        problems.append("nothing was counted")
    elif trial.lost:
        problems.append(f"{trial.lost} lost (none may be)")
    if requests == 0:
        problems.append("the load sent no request")
    if fault.max_failed_seconds == 0 and failed:
        problems.append(f"{failed} requests failed (none may)")
    elif fault.max_failed_seconds is not None and failed_seconds > fault.max_failed_seconds:
        problems.append(f"requests failed in {failed_seconds} seconds (at most {fault.max_failed_seconds})")
    if trial.recovery_seconds is None:
        if not trial.problems:
            problems.append("no recovery was measured")
    elif trial.recovery_seconds > fault.recovery_target:
        problems.append(f"recovered in {trial.recovery_seconds:.1f}s (target <= {fault.recovery_target:.0f}s)")
    return problems


@dataclass(frozen=True)
class Difference:
    missing: tuple[int, ...]
    """Expected and absent."""
    extra: tuple[int, ...]
    """Present and not expected."""

    @property
    def count(self) -> int:
        return len(self.missing) + len(self.extra)

    def describe(self, limit: int = 8) -> str:
        def ids(values: tuple[int, ...]) -> str:
            shown = ", ".join(str(v) for v in values[:limit])
            return shown + (f", ... ({len(values)})" if len(values) > limit else "")

        return f"missing [{ids(self.missing)}], extra [{ids(self.extra)}]"


def difference(expected: Iterable[int], present: Iterable[int]) -> Difference:
    expected, present = set(expected), set(present)
    return Difference(tuple(sorted(expected - present)), tuple(sorted(present - expected)))


def rows_difference(expected: Mapping[int, str], present: Mapping[int, str]) -> Difference:
    """Rows by id -> content: a row whose content changed counts as missing (its backed-up
    version) and extra (what is there instead)."""
    changed = {i for i in set(expected) & set(present) if expected[i] != present[i]}
    plain = difference(expected, present)
    return Difference(tuple(sorted({*plain.missing, *changed})), tuple(sorted({*plain.extra, *changed})))


def parse_rows(psql_output: str) -> dict[int, str]:
    """`id|digest` lines (psql -tA) -> {id: digest}."""
    rows = {}
    for line in psql_output.splitlines():
        if line.strip():
            key, _, value = line.strip().partition("|")
            rows[int(key)] = value
    return rows


def parse_ids(psql_output: str) -> list[int]:
    """One integer per line (psql -tA), blank lines ignored."""
    return [int(line) for line in psql_output.split() if line.strip()]


BACKUP_LINE = re.compile(r"^backup: (?P<name>\S+) \((?P<size>\d+) bytes\)", re.MULTILINE)  # then maybe " in 1.2s"


def parse_backup(output: str) -> tuple[str, int]:
    """`python -m ops backup STACK`'s line `backup: <name> (<size> bytes)` -> (name, size)."""
    found = BACKUP_LINE.findall(output)
    if len(found) != 1:
        raise ValueError(f"expected one line `backup: <name> (<size> bytes)`, found {len(found)}")
    name, size = found[0]
    return name, int(size)
