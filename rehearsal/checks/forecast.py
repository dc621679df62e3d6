"""Whether an up did what its release forecast said (planning/forecast.py), seen on
the Docker engine rather than in the plan: the stack's containers by service before and after.
Each service loses exactly the containers the forecast removes (the replaced, the deleted, and
what a failed release left) and gains exactly those it starts; every other service keeps its
containers (nginx too, when the forecast says a reload: the same container, its configuration
written again)."""

from __future__ import annotations

from collections import defaultdict
from typing import Mapping

from ops.stack import ONE_OFF, ROLE, SERVICE
from planning.forecast import GATE_JOB, Forecast


def containers_by_service(client, labels: Mapping[str, str]) -> dict[str, set[str]]:
    """service -> ids of the run's containers (a release job's and a one-off's left out: they
    are gone by the end of the up that ran them)."""
    found: dict[str, set[str]] = defaultdict(set)
    for c in client.api.containers(all=True, filters={"label": [f"{k}={v}" for k, v in labels.items()]}):
        service = (c.get("Labels") or {}).get(SERVICE)
        if service and (c.get("Labels") or {}).get(ROLE) != ONE_OFF:
            found[service].add(c["Id"])
    return dict(found)


def differences(told: Forecast, before: Mapping[str, set[str]], after: Mapping[str, set[str]]) -> list[str]:
    """One line per service whose containers did not change as the forecast said."""
    problems = []
    for service in sorted((set(before) | set(after)) - set(told.jobs)):
        old, new = before.get(service, set()), after.get(service, set())
        gone, came = len(old - new), len(new - old)
        want = (told.removed.get(service, 0), told.started.get(service, 0))
        if (gone, came) != want:
            problems.append(
                f"{service}: {gone} container(s) gone and {came} new; the forecast said {want[0]} and {want[1]}"
            )
    return problems


def gate_agrees(verdict: str, error: str | None) -> str | None:
    """Whether the forecast's gate verdict (its last line, ops/forecast.py gate_lines) is what the
    up's own gate job then did: a refusal fails the up at the gate job, a pass lets it past."""
    stopped_at_gate = (error or "").split(":", 1)[0].endswith(GATE_JOB)
    if verdict.startswith("gate: refuses") and not stopped_at_gate:
        return f"the forecast's gate refused, and the up's gate job did not: {error or 'the up succeeded'}"
    if verdict.startswith("gate: passes") and stopped_at_gate:
        return f"the forecast's gate passed, and the up's gate job refused: {error}"
    if not verdict.startswith(("gate: passes", "gate: refuses")):
        return f"the forecast's gate gave no verdict: {verdict}"
    return None
