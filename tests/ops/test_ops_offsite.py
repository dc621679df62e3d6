"""ops' side of the backup accessory that needs no engine: AT= parsing, the age identity's
sources (a file, never printed), make restore's argument rules."""

from __future__ import annotations

from datetime import datetime, timezone

import pyrage
import pytest

from ops.__main__ import main
from ops.offsite import identity_for, keep_pitr_copy, parse_at
from ops.stack import OpsError

IDENTITY = str(pyrage.x25519.Identity.generate())


def test_at_is_an_iso_time_in_utc_or_latest_and_anything_else_is_one_line():
    assert parse_at("2026-12-07T14:32:05Z") == datetime(2026, 12, 7, 14, 32, 5, tzinfo=timezone.utc)
    assert parse_at("2026-12-07 14:32:05") == datetime(2026, 12, 7, 14, 32, 5, tzinfo=timezone.utc)  # UTC
    assert parse_at("2026-12-07T15:32:05+01:00") == datetime(2026, 12, 7, 14, 32, 5, tzinfo=timezone.utc)
    assert parse_at("latest") is None
    for bad in ("yesterday", "2026-13-01", "1701949925"):
        with pytest.raises(OpsError) as error:
            parse_at(bad)
        assert str(error.value) == (
            f"AT={bad}: not a time; expected e.g. 2026-12-07T03:15:00Z (UTC) or latest; nothing changed"
        )


def test_the_identity_comes_from_a_keygen_file_and_a_wrong_one_is_refused_without_showing_it(tmp_path, monkeypatch):
    keyfile = tmp_path / "key.txt"
    keyfile.write_text(
        f"# created: now\n# public key: {pyrage.x25519.Identity.from_str(IDENTITY).to_public()}\n{IDENTITY}\n"
    )
    assert identity_for("prod", str(keyfile)) == IDENTITY
    monkeypatch.setenv("BACKUP_IDENTITY_FILE", str(keyfile))
    assert identity_for("prod", None) == IDENTITY
    keyfile.write_text("AGE-SECRET-KEY-1NOTONE\n")
    with pytest.raises(OpsError) as error:
        identity_for("prod", str(keyfile))
    assert "NOTONE" not in str(error.value)
    monkeypatch.delenv("BACKUP_IDENTITY_FILE")
    monkeypatch.setenv("PATH", str(tmp_path))  # no Pulumi CLI
    with pytest.raises(OpsError, match="backupEncryptionKey: needed to decrypt"):
        identity_for("prod", None)


def test_restore_wants_a_backup_an_off_host_copy_or_a_moment_and_not_two(capsys, monkeypatch):
    import ops.__main__ as cli

    class Stack:
        stack = "prod"
        boxes: list = []

    monkeypatch.setattr(cli, "StackOnHost", lambda name: Stack())
    assert main(["restore", "prod"]) == 2
    assert "set BACKUP=<name>" in capsys.readouterr().err
    assert main(["restore", "prod", "x.dump", "--at", "latest"]) == 2
    assert "AT= restores to a moment from the WAL archive: give it without BACKUP= or FROM=" in capsys.readouterr().err
    assert main(["restore", "prod", "--from", "elsewhere"]) == 2
    assert "FROM=elsewhere: expected local or offsite" in capsys.readouterr().err
    assert main(["restore", "prod", "--at", "soon"]) == 2
    assert "AT=soon: not a time" in capsys.readouterr().err


def test_the_pitr_copy_is_kept_only_while_it_may_be_the_one_intact_copy_of_the_data():
    # The copy failed (a full disk): a partial copy, removed; the data directory was never touched.
    assert not keep_pitr_copy(copied=False, restored=False, put_back=None)
    # Restored: the copy is the old data, and `make restore` of the pre-restore backup undoes it.
    assert not keep_pitr_copy(copied=True, restored=True, put_back=None)
    # The restore failed and the data was put back from the copy: the database is as it was.
    assert not keep_pitr_copy(copied=True, restored=False, put_back=True)
    # Putting it back failed too, or the restore was interrupted: the copy may be all there is.
    assert keep_pitr_copy(copied=True, restored=False, put_back=False)
    assert keep_pitr_copy(copied=True, restored=False, put_back=None)
