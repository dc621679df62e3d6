"""tools/calibration.py: a real-engine run's records -> a calibration fixture."""

from __future__ import annotations

import pytest

from tools.calibration import CalibrationError, fixture, labels


def test_labels_follow_the_scenarios_ups_in_order():
    assert labels(["new-commit", "failed-migration"], 4) == [
        "boot",
        "new-commit up 1",
        "failed-migration up 1",
        "failed-migration up 2",
    ]
    assert labels(["unhealthy-release"], 3) == ["boot", "unhealthy-release up 1", "unhealthy-release up 2"]
    with pytest.raises(CalibrationError, match="more than"):
        labels(["new-commit"], 3)
    with pytest.raises(CalibrationError, match="does not have"):
        labels(["no-such-scenario"], 1)


def test_a_fixture_names_its_ups_and_engine():
    record = {"stack": "prod", "version": "v3.259.0", "scenarios": ["promote"], "ups": [{"steps": []}, {"steps": []}]}
    made = fixture(record, engine={"docker": "5.1.0"}, date="2026-12-06")
    assert made["engine"] == {"pulumi": "v3.259.0", "docker": "5.1.0"}
    assert [u["label"] for u in made["ups"]] == ["boot", "promote up 1"]
    assert made["date"] == "2026-12-06"


@pytest.mark.parametrize(
    "leak",
    [
        {"ciphertext": "4dabf18193072939515e22adb298388d"},
        {"config": {"secure": "v1:abc"}},
        "-----BEGIN PRIVATE KEY-----",
    ],
)
def test_a_record_that_holds_a_secret_is_refused(leak):
    record = {"stack": "prod", "scenarios": [], "ups": [{"steps": [], "overrides": {"x": leak}}]}
    with pytest.raises(CalibrationError, match="secret"):
        fixture(record, engine={"docker": "5.1.0"})


def test_a_swarm_record_is_labelled_with_the_swarm_rehearsal_s_scenarios():
    assert labels(["nginx-config", "backend-network"], 3, "swarm") == [
        "boot",
        "nginx-config up 1",
        "backend-network up 1",
    ]
    with pytest.raises(CalibrationError, match="does not have"):
        labels(["backend-network"], 2)  # not a release rehearsal scenario
    record = {"stack": "prod", "rehearsal": "swarm", "scenarios": ["unhealthy-release"], "ups": [{"steps": []}] * 3}
    made = fixture(record, engine={"docker": "5.1.0"})
    assert made["rehearsal"] == "swarm"
    assert [u["label"] for u in made["ups"]] == ["boot", "unhealthy-release up 1", "unhealthy-release up 2"]
