"""Backups as settings and as a plan: every `backup*` key's bad input refused in one line naming
it (no secret quoted), and what a stack with backups plans: the accessory, its image, the egress
network, PostgreSQL archiving its WAL unchanged, the release's backup job in the agent's image."""

from __future__ import annotations

import pyrage
import pytest

from components.settings.backups import (
    age_identity,
    age_recipient,
    archive_passphrase,
    backup_image_tag,
    bucket_problem,
    check_endpoint,
    parse_schedule,
)
from components.settings.values import SettingsError
from planning.harness import CONTAINER, IMAGE, NETWORK, VOLUME, PlanError
from tests.program_fixtures import PROD_SECRETS, env_of, plan_prod

IDENTITY = str(pyrage.x25519.Identity.generate())
OFFSITE = {"backupS3Endpoint": "https://s3.eu-central-1.amazonaws.com", "backupS3Bucket": "acme-prod-backups"}
CREDENTIALS = {
    "backupS3AccessKeyId": "AKIAEXAMPLEKEYID0001",
    "backupS3SecretAccessKey": "not-really-a-secret-0123456789",
}


def refused(overrides: dict, secrets: dict | None = None) -> list[str]:
    with pytest.raises(PlanError) as error:
        plan_prod(overrides=overrides, secrets={**PROD_SECRETS, **(secrets or {})})
    return str(error.value).splitlines()


# --- pure parts ---------------------------------------------------------------------------------


def test_a_schedule_is_a_time_of_day_or_an_interval_in_utc():
    daily = parse_schedule("daily 3:05")
    assert daily is not None and (daily.interval, daily.offset, daily.text) == (
        86400,
        3 * 3600 + 300,
        "daily 03:05 UTC",
    )
    every = parse_schedule("every 6h")
    assert every is not None and (every.interval, every.offset, every.text) == (21600, 0, "every 6h")
    assert parse_schedule("") is None
    for bad, why in (
        ("hourly", "does not parse; expected daily HH:MM (UTC) or every <duration> like every 6h"),
        ("daily 24:00", "is not a time of day"),
        ("every 5s", "is out of range; expected every 10s to every 7d"),
        ("every 8d", "is out of range"),
        ("0 3 * * *", "does not parse"),
    ):
        with pytest.raises(SettingsError) as error:
            parse_schedule(bad)
        assert str(error.value).startswith(f"backupSchedule: '{bad}' {why}")


def test_an_endpoint_is_an_https_url_and_one_with_credentials_is_never_shown():
    assert check_endpoint("https://s3.example.com:9000/") == "https://s3.example.com:9000"
    for bad, why in (
        ("s3.example.com", "is not an https:// URL"),
        ("http://minio.lan:9000", "is plain HTTP"),
        ("https://s3.example.com/bucket", "has a path"),
    ):
        with pytest.raises(SettingsError) as error:
            check_endpoint(bad)
        assert why in str(error.value)
    with pytest.raises(SettingsError) as error:
        check_endpoint("https://AKIA:hunter2@s3.example.com")
    assert "hunter2" not in str(error.value) and "AKIA" not in str(error.value)
    assert str(error.value).startswith("backupS3Endpoint: holds credentials")


def test_a_bucket_name_s3_refuses_is_refused_here():
    assert bucket_problem("acme-prod-backups") is None and bucket_problem("a.b.c") is None
    for bad in ("ab", "Acme", "acme_backups", "-acme", "acme..x", "192.168.1.1", "xn--acme", "acme-s3alias", "a" * 64):
        assert bucket_problem(bad) is not None, bad


def test_the_age_identity_gives_its_recipient_and_the_archive_passphrase_and_a_keygen_file_is_taken():
    keygen_file = f"# created: 2026-12-07T00:00:00Z\n# public key: x\n{IDENTITY}\n"
    assert age_identity(keygen_file) == IDENTITY
    assert age_recipient(IDENTITY) == str(pyrage.x25519.Identity.from_str(IDENTITY).to_public())
    assert age_identity("AGE-SECRET-KEY-1NOTAKEY") is None and age_identity(f"{IDENTITY}\n{IDENTITY}") is None
    passphrase = archive_passphrase(IDENTITY)
    assert len(passphrase) == 64 and passphrase == archive_passphrase(IDENTITY) and IDENTITY not in passphrase


def test_the_backup_image_tag_follows_its_files_and_the_postgres_image():
    a = backup_image_tag("postgres:15.14-bookworm")
    assert a.startswith("django-docker-backup:") and a == backup_image_tag("postgres:15.14-bookworm")
    assert a != backup_image_tag("postgres:15.15-bookworm")


# --- bad input in the stack's config: one line naming the key ------------------------------------


@pytest.mark.parametrize(
    "overrides, secrets, line",
    [
        ({"backupSchedule": "nightly"}, {}, "backupSchedule: 'nightly' does not parse;"),
        ({"backupRetention": 0}, {}, "backupRetention: 0 is out of range; expected 1 to 1000"),
        ({"backupRetentionDays": 0}, {}, "backupRetentionDays: 0 is out of range; expected 1 to 3650"),
        ({"backupS3Endpoint": "ftp://x"}, {}, "backupS3Endpoint: 'ftp://x' is not an https:// URL"),
        (
            {**OFFSITE, "backupS3Bucket": "My_Bucket"},
            CREDENTIALS,
            "backupS3Bucket: 'My_Bucket' is not a bucket name S3 takes",
        ),
        ({**OFFSITE, "backupS3Bucket": ""}, CREDENTIALS, "backupS3Bucket: empty;"),
        (
            {**OFFSITE},
            {"backupS3SecretAccessKey": CREDENTIALS["backupS3SecretAccessKey"]},
            "backupS3AccessKeyId: not set; set it with `pulumi config set --secret backupS3AccessKeyId`",
        ),
        (
            {**OFFSITE, "backupS3AccessKeyId": CREDENTIALS["backupS3AccessKeyId"]},
            {"backupS3SecretAccessKey": CREDENTIALS["backupS3SecretAccessKey"]},
            "backupS3AccessKeyId: stored in plain text; set it with `pulumi config set --secret",
        ),
        ({**OFFSITE, "backupS3Address": "nas"}, CREDENTIALS, "backupS3Address: 'nas' is not an IP address"),
        ({**OFFSITE, "backupS3CaCertificate": "nope"}, CREDENTIALS, "backupS3CaCertificate: not a PEM certificate"),
        ({**OFFSITE, "backupS3Prefix": "a/../b"}, CREDENTIALS, "backupS3Prefix: 'a/../b' is not a key prefix"),
        ({"backupPitr": True}, {}, "backupPitr: set, but backupS3Endpoint is empty (no off-host copies)"),
        ({}, {"backupEncryptionKey": IDENTITY}, "backupEncryptionKey: set, but backupS3Endpoint is empty"),
        (
            {**OFFSITE},
            {**CREDENTIALS, "backupEncryptionKey": "AGE-SECRET-KEY-1XYZ"},
            "backupEncryptionKey: not an age identity",
        ),
        ({**OFFSITE, "backupArchiveTimeout": "30s"}, CREDENTIALS, "backupArchiveTimeout: set, but backupPitr is false"),
        (
            {**OFFSITE, "backupPitr": True, "backupArchiveTimeout": "2h"},
            CREDENTIALS,
            "backupArchiveTimeout: '2h0m0s' is out of range",
        ),
        (
            {"backupBeforeMigrate": False, "backupRetentionDays": 3},
            {},
            "backupRetentionDays: set, but no automatic backup",
        ),
    ],
)
def test_bad_backup_input_is_one_line_naming_the_key_before_anything_is_created(overrides, secrets, line):
    lines = refused(overrides, secrets)
    assert len(lines) == 1 and lines[0].startswith(line), lines
    for value in {**CREDENTIALS, "backupEncryptionKey": IDENTITY}.values():
        assert value not in lines[0]


# --- the plan -------------------------------------------------------------------------------------


def full_plan():
    return plan_prod(
        overrides={**OFFSITE, "backupSchedule": "daily 03:00", "backupPitr": True, "backupS3Address": "10.0.0.9"},
        secrets={**PROD_SECRETS, **CREDENTIALS, "backupEncryptionKey": IDENTITY},
    )


def test_prod_as_committed_has_no_accessory_and_its_job_uses_the_postgres_image():
    plan = plan_prod()
    assert not [c for c in plan.of_type(CONTAINER) if c.label("django-docker.service") == "backup-agent"]
    (job,) = [r for r in plan.resources if r.name == "django-docker-release-backup"]
    assert job.inputs["image"] == "postgres:15.14-bookworm" and job.inputs["command"][0] == "sh"


def test_backups_plan_the_accessory_its_image_its_way_out_and_postgres_archiving():
    plan = full_plan()
    (image,) = [i for i in plan.of_type(IMAGE) if i.inputs["imageName"].startswith("django-docker-backup:")]
    assert image.inputs["build"]["args"] == {"POSTGRES_IMAGE": "postgres:15.14-bookworm"}
    assert image.inputs["skipPush"] is True
    (agent,) = [c for c in plan.of_type(CONTAINER) if c.label("django-docker.service") == "backup-agent"]
    assert agent.options["delete_before_replace"] is True  # a singleton: one schedule, one WAL shipper
    env = env_of(agent)
    assert env["BACKUP_SCHEDULE"] == "daily 03:00 UTC" and env["BACKUP_INTERVAL_SECONDS"] == "86400"
    assert env["BACKUP_OFFSET_SECONDS"] == "10800" and env["BACKUP_PITR"] == "true"
    assert env["BACKUP_S3_PREFIX"] == "django-docker/prod"  # the default: the stack's own
    assert env["BACKUP_AGE_RECIPIENT"] == age_recipient(IDENTITY)
    assert IDENTITY not in str(agent.inputs)  # the host gets the recipient only
    assert env["BACKUP_ARCHIVE_PASSPHRASE"] == archive_passphrase(IDENTITY)
    assert env["AWS_SECRET_ACCESS_KEY"] == CREDENTIALS["backupS3SecretAccessKey"]
    assert "envs" in agent.secret_paths  # the whole environment is secret
    assert agent.inputs["hosts"] == [{"host": "s3.eu-central-1.amazonaws.com", "ip": "10.0.0.9"}]
    # As Docker reads them back (CAP_...): another spelling would replace it on every `pulumi up`.
    assert agent.inputs["capabilities"] == {"drops": ["ALL"], "adds": ["CAP_CHOWN", "CAP_SETGID", "CAP_SETUID"]}
    mounts = {v["containerPath"]: v.get("readOnly", False) for v in agent.inputs["volumes"]}
    assert mounts == {"/backups": False, "/var/lib/postgresql/data": True, "/var/run/postgresql": False}
    networks = {n.label("django-docker.network"): n for n in plan.of_type(NETWORK)}
    assert set(networks) == {"frontend", "backend", "egress"} and not networks["egress"].inputs.get("internal")
    assert {v.label("django-docker.volume") for v in plan.of_type(VOLUME)} >= {"postgres-run", "backups"}
    (postgres,) = [c for c in plan.of_type(CONTAINER) if c.label("django-docker.service") == "postgres"]
    assert postgres.inputs["image"] == "postgres:15.14-bookworm"  # unchanged: nothing installed in it
    command = postgres.inputs["command"]
    assert command[:3] == ["postgres", "-c", "archive_mode=on"] and "archive_timeout=60s" in command
    assert "pgbackrest-spool" in command[4]
    (job,) = [r for r in plan.resources if r.name == "django-docker-release-backup"]
    assert job.inputs["command"][:4] == ["python3", "-m", "django_docker_backup", "take"]
    assert job.inputs["command"][-1] == "--skip-empty"


def test_the_backup_accessory_is_refused_on_swarm_in_one_line_naming_the_key():
    lines = refused({"target": "swarm", "bindAddress": "0.0.0.0", "backupSchedule": "daily 03:00"})
    assert lines == [
        "backupSchedule: the backup accessory does not run on swarm yet (target: swarm); take backups with "
        "make backup, or run the stack with target: containers"
    ]
