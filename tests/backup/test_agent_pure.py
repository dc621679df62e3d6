"""The backup agent's pure parts (backup/django_docker_backup): names, the schedule, retention by
count and age, what `make status` warns about, its environment, a drill's comparison, the range a
point-in-time restore can reach."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from django_docker_backup import config, names, report, restore, schedule, wal

UTC = timezone.utc
NOW = datetime(2026, 12, 7, 12, 0, 0, tzinfo=UTC)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


# --- names --------------------------------------------------------------------------------


def test_a_name_says_when_which_stack_and_who_and_sorts_by_time():
    name = names.name_for("prod", "scheduled", at("2026-12-07T03:00:00"))
    assert name == "20261207T030000Z-prod-scheduled.dump"
    backup = names.parse(name, "prod")
    assert backup is not None and backup.taken == at("2026-12-07T03:00:00") and backup.automatic
    assert names.parse(name, "dev") is None  # another stack's
    assert names.parse("20261207T030000Z-prod-before-0123456789ab.dump", "prod").automatic
    assert not names.parse("20261207T030000Z-prod-0123456789ab-manual.dump", "prod").automatic
    assert not names.parse("20261207T030000Z-prod-0123456789ab-pre-restore.dump", "prod").automatic
    assert names.parse("../20261207T030000Z-prod-x.dump", "prod") is None
    with pytest.raises(ValueError):
        names.name_for("prod", "a/b", NOW)


def backups(*specs: tuple[str, str]) -> list[names.Backup]:
    return [names.parse(names.name_for("prod", label, at(when)), "prod") for when, label in specs]  # type: ignore[misc]


def test_retention_keeps_the_newest_count_and_everything_younger_than_the_age_and_the_operators_own():
    found = backups(
        ("2026-10-01T03:00:00", "scheduled"),  # old, beyond the newest 2: removed
        ("2026-10-02T03:00:00", "0123-manual"),  # the operator's: never removed
        ("2026-10-03T03:00:00", "before-abc"),  # old, beyond the newest 2: removed
        ("2026-11-20T03:00:00", "scheduled"),  # beyond the newest 2 but younger than 30 days: kept
        ("2026-12-01T03:00:00", "scheduled"),  # newest 2
        ("2026-12-06T03:00:00", "before-def"),  # newest 2
    )
    removed = names.to_remove(found, keep=2, keep_days=30, now=NOW)
    assert [b.label for b in removed] == ["scheduled", "before-abc"]
    assert [b.taken.date().isoformat() for b in removed] == ["2026-10-01", "2026-10-03"]


def test_retention_never_removes_the_last_ones_when_backups_stopped_long_ago():
    found = backups(("2025-01-01T03:00:00", "scheduled"), ("2025-01-02T03:00:00", "scheduled"))
    assert names.to_remove(found, keep=2, keep_days=1, now=NOW) == []
    with pytest.raises(ValueError):
        names.to_remove(found, keep=0, keep_days=1, now=NOW)


# --- the schedule ------------------------------------------------------------------------


def test_the_schedule_runs_at_offset_plus_multiples_of_the_interval_utc():
    daily = dict(interval=86400, offset=3 * 3600)
    assert schedule.next_run(at("2026-12-07T02:59:59"), **daily) == at("2026-12-07T03:00:00")
    assert schedule.next_run(at("2026-12-07T03:00:00"), **daily) == at("2026-12-08T03:00:00")  # strictly after
    assert schedule.previous_run(at("2026-12-07T12:00:00"), **daily) == at("2026-12-07T03:00:00")
    every6h = dict(interval=6 * 3600, offset=0)
    assert schedule.next_run(at("2026-12-07T13:00:00"), **every6h) == at("2026-12-07T18:00:00")
    with pytest.raises(ValueError):
        schedule.next_run(NOW, interval=0, offset=0)


# --- what status warns about ---------------------------------------------------------------


def status(**extra) -> dict:
    base = {
        "schedule": {"text": "daily 03:00 UTC", "interval": 86400, "offset": 10800},
        "started_at": "2026-11-01T00:00:00+00:00",
        "local": {"newest": {"name": "x", "taken_at": "2026-12-07T03:00:05+00:00"}},
        "drill_days": 30,
    }
    base.update(extra)
    return base


def test_a_backup_as_the_schedule_asks_is_quiet():
    assert report.warnings(status(), NOW) == []


def test_a_backup_older_than_the_schedule_allows_is_warned_about():
    stale = status(local={"newest": {"name": "x", "taken_at": "2026-12-05T03:00:05+00:00"}})
    (line,) = report.warnings(stale, NOW)
    assert line.startswith("the newest backup is 2d08h old; the schedule (daily 03:00 UTC) allows 9h30m")


def test_a_run_still_dumping_leaves_the_run_before_as_the_newest():
    every30s = {"text": "every 30s", "interval": 30, "offset": 0}
    previous = {"newest": {"name": "x", "taken_at": "2026-12-07T11:59:31+00:00"}}
    # One second into the 12:00:00 run: its dump is not done, the 11:59:30 run's is the newest.
    assert report.warnings(status(schedule=every30s, local=previous), at("2026-12-07T12:00:01")) == []
    # Past the grace (15 s for a 30 s schedule), the 12:00:00 run should have made one.
    (line,) = report.warnings(status(schedule=every30s, local=previous), at("2026-12-07T12:00:20"))
    assert line.startswith("the newest backup is 49s old; the schedule (every 30s) allows 35s")


def test_a_new_accessory_or_an_empty_database_is_not_late():
    fresh = status(started_at="2026-12-07T11:59:00+00:00", local={"newest": None})
    assert report.warnings(fresh, NOW) == []
    empty = status(local={"newest": None}, last_scheduled={"at": "x", "skipped": "the database has no table yet"})
    assert report.warnings(empty, NOW) == []


def test_failures_off_host_the_wal_archive_and_the_drill_are_warned_about():
    now_text = "2026-12-07T11:59:50+00:00"
    failing = status(
        last_scheduled={"at": "2026-12-07T03:00:00+00:00", "error": "cannot connect to the database: refused"},
        offsite={
            "where": "s3://b/p",
            "newest": {"name": "x", "taken_at": "2026-12-07T03:00:05+00:00"},
            "failing": [{"name": "n1", "error": "InvalidAccessKeyId (HTTP 403): no such key", "attempts": 4}],
            "error": "EndpointConnectionError: could not connect",
        },
        wal={"until": "2026-12-07T10:00:00+00:00", "archive_timeout": 60, "waiting": 12, "error": None},
        drill={"at": "2026-10-01T00:00:00+00:00", "ok": True},
    )
    lines = report.warnings(failing, NOW)
    assert lines == [
        "the scheduled backup at 2026-12-07T03:00:00+00:00 failed: cannot connect to the database: refused",
        "off-host storage s3://b/p: EndpointConnectionError: could not connect",
        "n1 is not off-host: InvalidAccessKeyId (HTTP 403): no such key (4 attempts)",
        "WAL archive: the newest archived commit is 2h00m old (archive_timeout 60s)",
        "WAL archive: 12 segments waiting in the spool",
        "the last restore drill is 67d12h old; at most 30 days (backupDrillDays; make restore-drill)",
    ]
    ok = status(
        offsite={"where": "s3://b/p", "newest": {"name": "x", "taken_at": "2026-12-07T03:00:05+00:00"}},
        wal={"until": now_text, "archive_timeout": 60, "waiting": 0},
        drill={"at": "2026-12-01T00:00:00+00:00", "ok": True},
    )
    assert report.warnings(ok, NOW) == []
    failed_drill = status(offsite=ok["offsite"], drill={"at": "2026-12-06T00:00:00+00:00", "ok": False, "problem": "p"})
    assert report.warnings(failed_drill, NOW) == ["the last restore drill (1d12h ago) failed: p"]


def test_the_status_lines_say_where_how_old_and_what_is_waiting():
    shown = report.lines(
        {
            **status(),
            "keep": 7,
            "keep_days": 30,
            "offsite": {
                "where": "s3://b/p",
                "encrypted": True,
                "count": 5,
                "pending": [],
                "newest": {
                    "name": "n",
                    "taken_at": "2026-12-07T03:00:05+00:00",
                    "verified_at": "2026-12-07T03:00:09+00:00",
                },
            },
            "warnings": ["w"],
        },
        NOW,
    )
    assert shown[0].startswith("backups: schedule daily 03:00 UTC; keep 7 and every one younger than 30 days")
    assert "  newest local: x (8h59m ago)" in shown
    assert "  newest off-host: n (8h59m ago, verified 8h59m ago)" in shown
    assert "  off-host: s3://b/p, encrypted (age); 5 backups there; 0 waiting to go" in shown
    assert "  restore drill: never (make restore-drill)" in shown
    assert shown[-1] == "  WARNING: w"


# --- the agent's environment ------------------------------------------------------------------


def env(**extra: str) -> dict[str, str]:
    return {
        "BACKUP_STACK": "prod",
        "BACKUP_S3_ENDPOINT": "https://s3.example.com:9000",
        "BACKUP_S3_BUCKET": "b",
        "BACKUP_S3_PREFIX": "/p/q/",
        "AWS_ACCESS_KEY_ID": "k",
        "AWS_SECRET_ACCESS_KEY": "s",
        **extra,
    }


def test_the_environment_is_read_once_and_a_mistake_names_the_variable():
    loaded = config.load(env(BACKUP_PITR="true", BACKUP_INTERVAL_SECONDS="86400"))
    assert loaded.offsite is not None and loaded.offsite.prefix == "p/q" and loaded.offsite.port == 9000
    assert loaded.offsite.key("dumps", "x.dump") == "p/q/dumps/x.dump" and loaded.pitr and loaded.interval == 86400
    for bad, message in (
        ({"BACKUP_STACK": ""}, "BACKUP_STACK: not set"),
        ({"BACKUP_S3_ENDPOINT": "http://s3"}, "BACKUP_S3_ENDPOINT: not an https:// URL"),
        ({"AWS_SECRET_ACCESS_KEY": ""}, "AWS_SECRET_ACCESS_KEY: not set"),
        ({"BACKUP_RETENTION": "0"}, "BACKUP_RETENTION: 0 is below 1"),
        ({"BACKUP_S3_ENDPOINT": "", "BACKUP_PITR": "true"}, "BACKUP_PITR: true needs BACKUP_S3_ENDPOINT"),
    ):
        with pytest.raises(config.ConfigError) as error:
            config.load(env(**bad))
        assert str(error.value).startswith(message)
        assert "s\n" not in str(error.value)


def test_pgbackrest_gets_its_options_from_the_agents_environment_and_never_prints_them():
    loaded = config.load(env(BACKUP_PITR="true", BACKUP_ARCHIVE_PASSPHRASE="pp", BACKUP_S3_CA_FILE="/ca.pem"))
    options = wal.environment(loaded, env())
    assert options["PGBACKREST_REPO1_PATH"] == "/p/q/pgbackrest"
    assert options["PGBACKREST_REPO1_S3_ENDPOINT"] == "s3.example.com"
    assert options["PGBACKREST_REPO1_STORAGE_PORT"] == "9000"
    assert options["PGBACKREST_REPO1_S3_URI_STYLE"] == "path"  # not AWS
    assert options["PGBACKREST_REPO1_CIPHER_TYPE"] == "aes-256-cbc" and options["PGBACKREST_REPO1_CIPHER_PASS"] == "pp"
    assert options["PGBACKREST_REPO1_STORAGE_CA_FILE"] == "/ca.pem"
    assert options["PGBACKREST_REPO1_RETENTION_FULL_TYPE"] == "time"
    aws = config.load(env(BACKUP_S3_ENDPOINT="https://s3.eu-central-1.amazonaws.com"))
    assert wal.environment(aws, env())["PGBACKREST_REPO1_S3_URI_STYLE"] == "host"
    assert (
        wal.error_line("INFO: x\nERROR: [095]: unable to find hostname\n  HINT: y")
        == "ERROR: [095]: unable to find hostname"
    )


# --- a drill's comparison, the range of a point-in-time restore -------------------------------------


def test_a_drill_compares_every_table_and_row_count_with_the_manifest():
    assert restore.compare({"public.a": 3, "public.b": 0}, {"public.a": 3, "public.b": 0}) == []
    assert restore.compare({"public.a": 3, "public.b": 1}, {"public.a": 2, "public.c": 0}) == [
        "public.a: 2 rows restored, 3 in the backup",
        "public.b: in the backup (1 rows), not restored",
        "public.c: restored, not in the backup's manifest",
    ]


def test_the_range_runs_from_the_oldest_base_backup_to_the_newest_archived_commit():
    stop = at("2026-12-07T03:00:00").timestamp()
    info = {"backup": [{"timestamp": {"start": stop - 5, "stop": stop}}, {"timestamp": {"stop": stop + 3600}}]}
    rng = wal.range_of(info, {"until": "2026-12-07T11:00:00+00:00"})
    assert rng.earliest == at("2026-12-07T03:00:00") and rng.latest == at("2026-12-07T11:00:00") and rng.backups == 2
    assert rng.problem(at("2026-12-07T06:00:00")) is None
    assert rng.problem(at("2026-12-07T02:59:59")).startswith("before the oldest base backup (2026-12-07 03:00:00 UTC)")
    assert rng.problem(at("2026-12-07T11:00:01")).startswith(
        "after the newest archived commit (2026-12-07 11:00:00 UTC)"
    )
    assert wal.range_of({}, None).problem(NOW).startswith("nothing is archived yet")
    assert wal.other_cluster("ERROR: [028]: backup and archive info files exist but do not match the database")


def test_the_ca_comes_in_the_environment_and_is_written_to_tmp_once(tmp_path):
    path = str(tmp_path / "ca.pem")
    assert (
        config.ca_file({"BACKUP_S3_CA_PEM": "-----BEGIN CERTIFICATE-----\nx\n-----END CERTIFICATE-----"}, path) == path
    )
    assert open(path).read().endswith("-----END CERTIFICATE-----\n")
    assert (
        config.ca_file({"BACKUP_S3_CA_FILE": "/etc/ssl/mine.pem", "BACKUP_S3_CA_PEM": "y"}, path) == "/etc/ssl/mine.pem"
    )
    assert config.ca_file({}, path) == ""


def test_a_failure_off_host_is_s3s_own_line_also_behind_an_upload_error():
    from django_docker_backup import offsite

    class ClientError(Exception):
        response = {
            "Error": {"Code": "InvalidAccessKeyId", "Message": "The access key ID you provided does not exist."},
            "ResponseMetadata": {"HTTPStatusCode": 403},
        }

    class S3UploadFailedError(Exception):
        pass

    try:
        try:
            raise ClientError("An error occurred (InvalidAccessKeyId) when calling the PutObject operation")
        except ClientError as inner:
            raise S3UploadFailedError(f"Failed to upload /backups/x to b/k: {inner}")  # noqa: B904 (as boto3 does)
    except S3UploadFailedError as error:
        line = offsite.describe(error)
    assert line == "InvalidAccessKeyId (HTTP 403): The access key ID you provided does not exist."
    assert offsite.describe(OSError("connection refused")) == "OSError: connection refused"


# --- how far the WAL archive reaches on a quiet database -------------------------------------------

SEG = "000000010000000000000009"
NEXT = "00000001000000000000000A"
AFTER = "00000001000000000000000B"


def position(current: str, previous: str, offset: int, next_xid: int = 800, running: bool = False, at=NOW):
    return wal.Position(current=current, previous=previous, offset=offset, next_xid=next_xid, running=running, at=at)


def test_a_quiet_database_after_the_pushed_segment_is_caught_up_else_switched_once():
    from datetime import timedelta

    def step(last, where, asked=None):
        return wal.idle_step(last, where, asked, 10)

    # What PostgreSQL 15 answers after a switch and nothing since: the next segment, at its
    # long page header (0/A000028).
    assert step(SEG, position(NEXT, SEG, wal.LONG_PAGE_HEADER)) == wal.CAUGHT_UP
    # A record after SEG (the running-xacts record the bgwriter logs after the last commit)
    # that no switch followed: close the segment.
    assert step(SEG, position(NEXT, SEG, 96)) == wal.SWITCH
    ours = wal.Asked(segment=NEXT, next_xid=800, running=False, at=NOW)
    assert step(SEG, position(NEXT, SEG, 96), ours) == ""  # on its way: not asked again
    # Ours pushed; the bgwriter's running-xacts after it (pg_switch_wal's record is important),
    # and no transaction took an ID since: caught up, no second switch.
    later = NOW + timedelta(seconds=60)
    assert step(NEXT, position(AFTER, NEXT, 96, at=later), ours) == wal.CAUGHT_UP
    # A transaction since (or one running at the switch): PostgreSQL switches a segment with its
    # commit; asked again only after two archive_timeouts.
    assert step(NEXT, position(AFTER, NEXT, 300, next_xid=801, at=NOW + timedelta(seconds=5)), ours) == ""
    assert step(NEXT, position(AFTER, NEXT, 300, next_xid=801, at=NOW + timedelta(seconds=25)), ours) == wal.SWITCH
    running = wal.Asked(segment=NEXT, next_xid=800, running=True, at=NOW)
    assert step(NEXT, position(AFTER, NEXT, 96, at=NOW + timedelta(seconds=5)), running) == ""
    # After a point-in-time restore: the new timeline's WAL, never switched, is closed too.
    assert step(SEG, position("000000020000000000000009", "000000020000000000000008", 256)) == wal.SWITCH
    # Nothing to conclude: no segment pushed yet (a .history or .partial is not one); a segment
    # switched but not pushed yet (NEXT is still on its way); WAL in a segment already pushed.
    quiet = position(NEXT, SEG, wal.LONG_PAGE_HEADER)
    assert step(None, quiet) == ""
    assert step("00000002.history", quiet) == ""
    assert step(f"{SEG}.partial", quiet) == ""
    assert step(SEG, position(AFTER, NEXT, wal.LONG_PAGE_HEADER)) == ""
    assert step(NEXT, position(SEG, "000000010000000000000008", 96)) == ""


def test_the_agent_records_a_quiet_archives_reach_up_to_now_and_asks_for_a_switch_once(tmp_path, monkeypatch):
    """The rehearsal's host-loss measured `the WAL archive to reach past the last write: not
    within 90s`: a switch within a second of the last commit, then nothing PostgreSQL switches for."""
    from datetime import timedelta

    from django_docker_backup import agent, state

    loaded = config.load(env(BACKUP_PITR="true", BACKUP_ARCHIVE_TIMEOUT_SECONDS="10", BACKUP_DIR=str(tmp_path)))
    # The last commit at 11:59:00.5; the archive_timeout switch came 0.4 s later, so the pushed
    # segment's reach (its spool time less the margin, to the second) stays before that commit.
    last_commit = at("2026-12-07T11:59:00.500000")
    state.update_agent(str(tmp_path), wal_archived={"segment": SEG, "until": "2026-12-07T11:58:59+00:00"})
    assert state.parse_stamp("2026-12-07T11:58:59+00:00") < last_commit
    monkeypatch.setattr(state, "now", lambda: NOW)
    monkeypatch.setattr(wal, "spooled", lambda: [])
    answers: dict = {"position": position(NEXT, SEG, wal.LONG_PAGE_HEADER), "asked": 0, "switched": 0, "off-host": []}

    def asked_position():
        answers["asked"] += 1
        return answers["position"]

    monkeypatch.setattr(wal, "position", asked_position)

    def switch():
        answers["switched"] += 1
        return wal.Asked(segment=NEXT, next_xid=800, running=False, at=NOW)

    monkeypatch.setattr(wal, "switch", switch)
    monkeypatch.setattr(wal.offsite, "put_json", lambda off, key, data: answers["off-host"].append((key, data)))

    a = agent.Agent(loaded)
    a.last_segment = SEG
    a.ship()
    archived = state.read(state.agent_path(str(tmp_path)))["wal_archived"]
    assert archived == {"segment": SEG, "until": "2026-12-07T11:59:59+00:00", "idle": True}
    assert state.parse_stamp(archived["until"]) > last_commit
    assert answers["off-host"] == [(wal.ARCHIVED_KEY, archived)]  # what a restore after a host loss reads
    a.ship()  # asked again only an archive_timeout later
    assert len(answers["off-host"]) == 1 and answers["asked"] == 1

    # WAL after the segment that no switch followed: pg_switch_wal(), once.
    answers["position"] = position(NEXT, SEG, 96)
    state.update_agent(str(tmp_path), wal_archived={"segment": SEG, "until": "2026-12-07T11:58:59+00:00"})
    monkeypatch.setattr(state, "now", lambda: NOW + timedelta(seconds=30))
    for _ in range(3):
        a.probed_at = 0.0
        a.ship()
    assert answers["switched"] == 1 and a.asked is not None and a.asked.segment == NEXT
    # A fresh archive (under an archive_timeout old) is not asked about at all.
    state.update_agent(str(tmp_path), wal_archived={"segment": SEG, "until": "2026-12-07T12:00:25+00:00"})
    asked = answers["asked"]
    a.probed_at = 0.0
    a.ship()
    assert answers["asked"] == asked


def test_a_point_in_time_restore_names_its_target_and_promotes():
    at = datetime(2026, 12, 7, 1, 9, 43, 331223, tzinfo=timezone.utc)
    options = restore.pitr_options(at)
    assert "--type=time" in options and "--target=2026-12-07 01:09:43.331223+00" in options
    assert "--target-action=promote" in options


def test_a_restore_to_the_archives_end_has_no_target_action():
    # pgBackRest refuses --target-action with --type=default (the host-loss rehearsal met it).
    options = restore.pitr_options(None)
    assert "--type=default" in options
    assert not any(o.startswith("--target") for o in options)
