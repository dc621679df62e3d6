"""Release scenarios: one small module each, data plus an expectation.

A scenario is a list of `Up`s, each one `pulumi up` of the running stack with a change (new
config, another app image) and what must come of it (success or failure, and a check of the
result on the engine). `rehearsal.runners.release` runs them in this order on one booted stack, under
steady load through nginx, and prints one line per scenario.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Mapping, Optional, Union

if TYPE_CHECKING:  # pragma: no cover
    from rehearsal.emulation.engine import UpdateResult
    from rehearsal.runners.release import Context


class ScenarioFailed(Exception):
    """The stack did not do what the scenario expects; one line."""


def expect(condition: object, message: str) -> None:
    if not condition:
        raise ScenarioFailed(message)


@dataclass(frozen=True)
class Up:
    """One `pulumi up` within a scenario."""

    what: str
    """What changes, for the output."""
    overrides: Union[Mapping[str, Any], Callable[["Context"], Mapping[str, Any]]] = field(default_factory=dict)
    """Stack config set before this up (and kept for the ones after), or a function of the Context giving it."""
    image: Optional[str] = None
    """The app image variant to deploy (rehearsal.images.variants); None keeps the current one."""
    succeeds: bool = True
    """Whether `pulumi up` must succeed."""
    before: Optional[Callable[["Context"], str]] = None
    """Something done to the running stack first (e.g. the data a migration trips on)."""
    check: Optional[Callable[["Context", "UpdateResult"], str]] = None
    """What must be true afterwards; returns a line for the output, raises ScenarioFailed."""


@dataclass(frozen=True)
class Scenario:
    name: str
    ups: tuple[Up, ...]
    max_failed_seconds: int = 0
    """Whole seconds with failed requests allowed (0: no failed request at all)."""
    timed: bool = False
    """Report the first up against the release-time target."""
    pages: bool = False
    """Also read the app's table through nginx while it runs (GET /visits/, beside the steady
    /health/): what a migration the old code cannot survive breaks."""
    maintenance: bool = False
    """nginx's maintenance page (503 with Retry-After) may answer: counted apart, not as failed,
    and the window printed in the scenario's line."""
    forecast_gate: bool = False
    """Before each up, also run the migration gate on the new image as `make forecast` does
    (ops/forecast.py gate_lines), and hold its verdict against what the up's gate job then said."""
