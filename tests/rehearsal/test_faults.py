"""The fault rehearsal's pure parts: its line, its verdicts, what it counts as lost (no Docker)."""

from __future__ import annotations

import pytest

from rehearsal.faults import (
    BACKUP_FAULTS,
    PAGES,
    READS,
    WRITES,
    Fault,
    Trial,
    all_faults,
    difference,
    fault_line,
    parse_backup,
    parse_ids,
    parse_rows,
    rows_difference,
    summary_line,
    verdict,
)


def fault(**kwargs) -> Fault:
    return Fault("f", "what", "expectation", lambda ctx, trial: None, **kwargs)


def trial(lost=0, recovery=5.0, problems=()) -> Trial:
    t = Trial(say=lambda line: None, recovery_seconds=recovery, lost=lost)
    t.problems.extend(problems)
    return t


# -- the line


def test_fault_line_is_exactly_the_issues():
    assert fault_line("prod", "kill-web", 412, 0, 0) == "fault prod kill-web: 412 requests, 0 failed, 0 lost"
    assert (
        fault_line("prod", "restart-postgres", 240, 37, 2)
        == "fault prod restart-postgres: 240 requests, 37 failed, 2 lost"
    )
    assert fault_line("dev", "restore", 9, 1, None) == "fault dev restore: 9 requests, 1 failed, ? lost"


def test_summary_line():
    assert summary_line("prod", 5, 5) == "faults prod: 5 run, 5 as expected, 0 not"
    assert summary_line("prod", 5, 5, 5) == "faults prod: 5 run, 5 as expected, 0 not"
    assert summary_line("prod", 2, 1, 5) == "faults prod: 2 run, 1 as expected, 1 not, 3 not reached"


# -- verdicts


def test_nothing_lost_nothing_failed_is_as_expected():
    assert verdict(fault(), trial(), requests=300, failed=0, failed_seconds=0) == []


def test_any_loss_is_a_failure_whatever_the_fault_allows():
    assert verdict(fault(max_failed_seconds=None), trial(lost=1), 300, 0, 0) == ["1 lost (none may be)"]
    assert verdict(fault(), trial(lost=None), 300, 0, 0) == ["nothing was counted"]


def test_zero_failed_means_not_one_request():
    assert verdict(fault(max_failed_seconds=0), trial(), 300, 1, 1) == ["1 requests failed (none may)"]


def test_failed_seconds_against_the_target():
    assert verdict(fault(max_failed_seconds=30), trial(), 600, 140, 30) == []
    assert verdict(fault(max_failed_seconds=30), trial(), 900, 400, 31) == [
        "requests failed in 31 seconds (at most 30)"
    ]
    # None: failures allowed (restore's stopped window), however many.
    assert verdict(fault(max_failed_seconds=None), trial(), 600, 500, 40) == []


def test_recovery_against_its_target():
    assert verdict(fault(recovery_target=30), trial(recovery=30.0), 10, 0, 0) == []
    assert verdict(fault(recovery_target=30), trial(recovery=31.2), 10, 0, 0) == ["recovered in 31.2s (target <= 30s)"]
    assert verdict(fault(), trial(recovery=None), 10, 0, 0) == ["no recovery was measured"]


def test_a_fault_that_broke_off_says_why_and_counts_no_load():
    assert verdict(
        fault(), trial(lost=None, recovery=None, problems=["redis healthy again: not within 90s"]), 0, 0, 0
    ) == ["redis healthy again: not within 90s", "nothing was counted", "the load sent no request"]


# -- counting


def test_lost_writes_are_acknowledged_ids_missing_from_the_database():
    diff = difference(acknowledged := [11, 12, 13, 15], present=[11, 12, 14, 15, 16])
    assert (diff.missing, diff.extra) == ((13,), (14, 16))
    assert len(diff.missing) == 1  # what restart-postgres reports as lost: 14 and 16 were committed, never answered
    assert difference(acknowledged, acknowledged).count == 0
    assert difference([], []).describe() == "missing [], extra []"


def test_rows_that_differ_from_a_backup_missing_extra_or_changed():
    backed_up = {1: "a", 2: "b", 3: "c"}
    assert rows_difference(backed_up, dict(backed_up)).count == 0
    diff = rows_difference(backed_up, {1: "a", 3: "C", 4: "d"})
    assert (diff.missing, diff.extra) == ((2, 3), (3, 4))
    assert diff.count == 4
    assert diff.describe(limit=1) == "missing [2, ... (2)], extra [3, ... (2)]"


def test_parsing_psql_output():
    assert parse_ids("3\n4\n\n17\n") == [3, 4, 17]
    assert parse_ids("") == []
    assert parse_rows("1|9e107d9d372bb6826bd81d3542a419d6\n2|e4d909c290d0fb1ca068ffaddf22cbd0\n") == {
        1: "9e107d9d372bb6826bd81d3542a419d6",
        2: "e4d909c290d0fb1ca068ffaddf22cbd0",
    }


def test_parsing_the_backup_line():
    assert parse_backup("backup: 20250101T120000Z-abc-manual.dump (48213 bytes)\n") == (
        "20250101T120000Z-abc-manual.dump",
        48213,
    )
    assert parse_backup("taking a backup\nbackup: 20250101T120000Z-x.dump (7 bytes) in 1.2s\n") == (
        "20250101T120000Z-x.dump",
        7,
    )
    for text in ("", "backup: a (7 bytes)\nbackup: b (8 bytes)\n", "backup: a (seven bytes)"):
        with pytest.raises(ValueError):
            parse_backup(text)


# -- the faults themselves


def test_every_fault_the_issue_names_in_order_with_its_target():
    faults = {f.name: f for f in all_faults()}
    assert list(faults) == [
        "kill-web",
        "restart-postgres",
        "restart-redis",
        "kill-worker",
        "restore",
        "scheduled-backup",
        "offsite-failure",
        "restore-offsite",
        "restore-drill",
        "pitr",
        "host-loss",
    ]
    assert set(BACKUP_FAULTS) == set(list(faults)[5:])  # the runner starts the S3 server for these
    for name in ("scheduled-backup", "offsite-failure", "restore-drill"):  # a backup disturbs no page
        assert faults[name].max_failed_seconds == 0 and faults[name].traffic == PAGES, name
    for name in ("restore-offsite", "pitr", "host-loss"):  # the app is stopped, or there is no host
        assert faults[name].max_failed_seconds is None and faults[name].summary is not None, name
    assert faults["kill-web"].max_failed_seconds == 0 and faults["kill-web"].traffic == READS
    # The issue's targets: a database or broker restart fails no page read (0 failed), loses nothing.
    for name in ("restart-postgres", "restart-redis"):
        assert faults[name].max_failed_seconds == 0 and faults[name].recovery_target == 30, name
        assert faults[name].traffic == PAGES, name
    assert PAGES.method == "GET" and PAGES.path == "/visits/" and PAGES.expect == 200
    assert faults["restart-postgres"].count is not None  # acknowledged writes alongside, none missing
    assert WRITES.method == "POST" and WRITES.expect == 201 and WRITES.collect == "id"
    assert faults["restore"].max_failed_seconds is None  # the app is stopped during a restore
    assert all(f.expectation and f.what for f in faults.values())


# -- the command line: one boot serves the release scenarios and the faults


def test_cli_runs_the_faults_through_rehearse_hook(monkeypatch):
    import rehearsal.__main__ as cli
    from rehearsal.runners.faults import FaultRehearsal

    calls = []
    monkeypatch.setattr(
        cli,
        "rehearse",
        lambda stack, keep, scenarios, hook=None, **engine: calls.append((stack, keep, scenarios, hook)) or 0,
    )
    assert cli.main(["faults", "prod", "--fault", "kill-web", "--fault", "restore"]) == 0
    assert cli.main(["release", "prod", "--faults", "--keep"]) == 0
    assert cli.main(["release", "prod"]) == 0
    (s1, k1, sc1, h1), (s2, k2, sc2, h2), (_, _, sc3, h3) = calls
    assert (
        (s1, k1, sc1) == ("prod", False, None)
        and isinstance(h1, FaultRehearsal)
        and h1.names == ["kill-web", "restore"]
    )
    assert (s2, k2, sc2) == ("prod", True, []) and isinstance(h2, FaultRehearsal) and h2.names == []
    assert (sc3, h3) == ([], None)


def test_the_hooks_summary_counts_faults_not_reached():
    from rehearsal.runners.faults import FaultRehearsal

    hook = FaultRehearsal("prod")
    assert hook.summary(phase_failed=True) == ("faults prod: 0 run, 0 as expected, 0 not, 11 not reached", 11)


def test_scenarios_and_faults_are_picked_by_name_in_their_fixed_order():
    from rehearsal.errors import RehearsalError
    from rehearsal.runners.release import selected
    from rehearsal.scenarios import all_scenarios

    assert [s.name for s in selected(all_scenarios(), ["promote", "new-commit"], "scenarios")] == [
        "new-commit",
        "promote",
    ]
    assert selected(all_faults(), None, "faults") == all_faults()
    with pytest.raises(RehearsalError, match=r"^unknown faults \['nope'\]; the faults are: kill-web, "):
        selected(all_faults(), ["nope"], "faults")
