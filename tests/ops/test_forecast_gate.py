"""The verdict `make forecast` reads from the gate's one-off (ops/forecast.py): its exit code,
believed only with the gate's own words."""

from django_docker_runtime.migration_gate import PREFIX
from ops.forecast import GATE_PREFIX, GATE_TIMEOUT, verdict
from ops.run import TIMED_OUT


def test_the_prefix_is_the_gates():
    assert GATE_PREFIX == PREFIX


def test_exit_codes_with_the_gates_own_lines():
    assert verdict(0, ["migration-gate: no new migration for this database"]) == "passes"
    refused = ["migration-gate: x operation 1: DROPPING columns", "migration-gate: refused: 1 operation(s) in x"]
    assert verdict(1, refused) == "refuses this release"
    assert verdict(2, ["migration-gate: cannot check: the database does not answer"]).startswith("could not check")


def test_an_image_without_the_gate_is_no_refusal():
    # Python's own exit 1, which the gate's refusal shares.
    said = verdict(1, ["/opt/venv/bin/python: No module named django_docker_runtime.migration_gate"])
    assert said == "could not check: /opt/venv/bin/python: No module named django_docker_runtime.migration_gate"
    assert verdict(0, []) == "could not check: no output"


def test_a_gate_that_did_not_end_is_no_verdict():
    # run_to_end stopped it: whatever it printed so far is no verdict, even a pass line.
    said = verdict(TIMED_OUT, ["migration-gate: no new migration for this database"])
    assert said == f"could not check: it had not ended after {GATE_TIMEOUT}s (stopped)"
