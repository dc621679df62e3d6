"""The release forecast (planning/forecast.py) of the model's plan of an update: what the
emulation prints before each `pulumi up` of the release rehearsal, and holds against what the
engine then shows (rehearsal/checks/forecast.py)."""

from __future__ import annotations

from planning.forecast import Forecast, forecast_steps
from rehearsal.emulation.model import UpdatePlan

__all__ = ["Forecast", "forecast"]


def forecast(update: UpdatePlan) -> Forecast:
    return forecast_steps(update.steps, _service)


def _service(step) -> str:
    resource = step.new if step.new is not None else step.old
    return resource.label("django-docker.service") or step.name
