"""The emulation's read-back (rehearsal/emulation/readback.py) against the real provider's Read.

After the release scenarios, the real-engine run refreshes the stack (`pulumi refresh`: the
provider's Read of every container into the state) and keeps, per container, the `docker inspect`
fields `provider_view` reads and what the real Read stored for the same inputs (the fixture's
`readback`). `provider_view` must compute exactly that from the inspect: it is what the
emulation's second-up check (`Session.preview_after`) trusts to find a perpetual diff.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rehearsal.emulation.readback import VIEWS, config_view, provider_view, read_differs, readback_normal

FIXTURES = sorted(Path(__file__).resolve().parent.glob("*.json"))
READ = [(path.stem, c) for path in FIXTURES for c in json.loads(path.read_text()).get("readback") or []]
CONTAINERS = [(f, c) for f, c in READ if c.get("kind", "container") == "container"]
SWARM = [(f, c) for f, c in READ if c.get("kind", "container") != "container"]


def test_some_fixture_compares_every_kind_of_container():
    services = {c["name"].removeprefix("django-docker-").rstrip("0123456789-") for _, c in CONTAINERS}
    assert {"web", "nginx", "postgres", "redis", "celery-worker"} <= services, services


@pytest.mark.parametrize("fixture, container", CONTAINERS, ids=[f"{f}:{c['name']}" for f, c in CONTAINERS])
def test_provider_view_is_what_the_real_read_stored(fixture, container):
    inspect, read = container["inspect"], container["read"]
    view = provider_view(inspect, container["image"])  # the image as the program configured it
    assert set(view) == set(read)
    differs = {k: (view[k], read[k]) for k in view if readback_normal(view[k], k) != readback_normal(read[k], k)}
    assert differs == {}


def test_readback_normal_keeps_a_value_and_empties_none():
    # A merge once dropped its last line: every value then read as None and every comparison
    # above passed whatever the Read said.
    assert readback_normal(["gunicorn"], "command") == ["gunicorn"]
    assert readback_normal(512.0, "memory") == 512
    assert readback_normal([], "command") is None and readback_normal({}, "logOpts") is None
    assert readback_normal({"tests": ["CMD"]}, "healthcheck")["interval"] == "0s"


def test_some_fixture_compares_every_kind_of_swarm_object():
    kinds = {c["kind"] for _, c in SWARM}
    assert {"service", "network", "config", "secret"} <= kinds, kinds
    services = {c["name"].removeprefix("django-docker-") for _, c in SWARM if c["kind"] == "service"}
    assert {"web", "celery-worker", "postgres", "redis", "nginx"} <= services, services


@pytest.mark.parametrize("fixture, found", SWARM, ids=[f"{f}:{c['kind']}:{c['name']}" for f, c in SWARM])
def test_the_swarm_views_are_what_the_real_read_stored(fixture, found):
    """readback.py's service, network, config and secret views (what the second-up check of the
    swarm rehearsal trusts) against what the real provider's Read stored after a refresh."""
    kind, inspect = found["kind"], found["inspect"]
    view = config_view(inspect, raw=bool(found.get("raw"))) if kind == "config" else VIEWS[kind](inspect)
    assert set(view) == set(found["read"])
    assert read_differs(view, found["read"]) == []
