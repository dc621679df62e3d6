"""The backup agent's WAL position query (backup/django_docker_backup/wal.py) on a real PostgreSQL."""

from __future__ import annotations

import os

import pytest

from django_docker_backup import wal


def test_the_position_query_names_the_segments_on_a_real_postgresql():
    """wal.POSITION_SQL on the loopback PostgreSQL the Django tests use (make services): it needs
    no privilege, writes no WAL, and names segments as the archive does."""
    psycopg = pytest.importorskip("psycopg")
    url = os.environ.get("DATABASE_URL", "postgres://django_app:django_app@127.0.0.1:5432/django_app")
    try:
        connection = psycopg.connect(url, connect_timeout=5, autocommit=True)
    except psycopg.OperationalError as error:
        pytest.skip(f"no PostgreSQL at {url.split('@')[-1]} (make services): {error}")
    with connection:
        before = connection.execute("select pg_current_wal_insert_lsn()").fetchone()[0]
        current, previous, offset, next_xid, running, at = connection.execute(wal.POSITION_SQL).fetchone()
        size, lsn = connection.execute(
            "select setting::bigint, pg_current_wal_insert_lsn() from pg_settings where name = 'wal_segment_size'"
        ).fetchone()
        expected = connection.execute("select pg_walfile_name(pg_current_wal_insert_lsn())").fetchone()[0]
    assert lsn == before  # asking wrote no WAL
    assert wal.is_segment(current) and wal.is_segment(previous) and 0 < offset < size
    assert isinstance(next_xid, int) and next_xid > 0 and running in (True, False)
    per_log = 0x100000000 // size  # segments per "log" (the name's middle 8 digits)

    def number(name: str) -> int:
        return int(name[8:16], 16) * per_log + int(name[16:], 16)

    assert current == expected and number(previous) == number(current) - 1 and at.tzinfo is not None
