"""Backups on demand and restore, on a real PostgreSQL (the stack's postgres image) in a small
stack labelled as the program labels one: a backend network, a backups volume, postgres and a
running app container.

What must hold: a backup is a complete pg_dump archive named by time, stack and release; a
restore gives exactly the backed-up data (also when tables were added since), takes a
pre-restore backup first, refuses under a running app unless told, and refuses a missing or
corrupt backup with one line, changing nothing.
"""

from __future__ import annotations

import io
import re
import secrets
import tarfile
import time

import pytest

from components import render
from ops.__main__ import main
from ops.backup import Backup, parse_listing
from ops.stack import GIT_SHA, NETWORK, REPLICA, ROLE, SERVICE, STACK
from tests.conftest import PYTHON_BASE_IMAGE

pytestmark = pytest.mark.docker
POSTGRES_IMAGE = "postgres:15.14-bookworm"
SHA = "abcdef012345" + "6" * 28
PASSWORD = "pw-" + secrets.token_hex(8)


@pytest.fixture(scope="module")
def db_stack(python_engine, tmp_path_factory):
    client = python_engine
    try:
        client.images.get(POSTGRES_IMAGE)
    except Exception:
        pytest.skip(f"{POSTGRES_IMAGE} is not on the engine (the rehearsal builds its stand-in)")
    name = "opsdb" + secrets.token_hex(3)
    root = tmp_path_factory.mktemp("project")
    (root / f"Pulumi.{name}.yaml").write_text("config: {}\n")
    try:
        backend = client.networks.create(f"{name}-backend", labels={STACK: name, NETWORK: "backend"})
        client.volumes.create(f"{name}-backups", labels={STACK: name, f"{render.LABEL_PREFIX}.volume": "backups"})
        health = {
            "test": ["CMD", "pg_isready", "-U", "app", "-d", "app", "-h", "127.0.0.1"],
            "interval": 500_000_000,
            "retries": 60,
        }
        postgres = client.containers.run(
            POSTGRES_IMAGE,
            name=f"{name}-postgres",
            detach=True,
            healthcheck=health,
            environment={"POSTGRES_USER": "app", "POSTGRES_PASSWORD": PASSWORD, "POSTGRES_DB": "app"},
            labels={STACK: name, SERVICE: "postgres", ROLE: "accessory"},
            network=backend.name,
        )
        backend.disconnect(postgres)
        backend.connect(postgres, aliases=[render.POSTGRES_HOST])
        web = client.containers.run(
            PYTHON_BASE_IMAGE,
            ["python", "-c", "import time; time.sleep(3600)"],
            name=f"{name}-web-1",
            detach=True,
            labels={STACK: name, SERVICE: "web", ROLE: "app", REPLICA: "1", GIT_SHA: SHA},
            network=backend.name,
            healthcheck={"test": ["CMD", "python", "-c", "pass"], "interval": 500_000_000, "retries": 3},
            init=True,
        )
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            states = [
                client.api.inspect_container(c.id)["State"].get("Health", {}).get("Status") for c in (postgres, web)
            ]
            if states == ["healthy", "healthy"]:
                break
            time.sleep(0.5)
        else:
            pytest.fail(f"the test stack never turned healthy: {states}")
        yield name, root, client, postgres, web
    finally:
        for container in client.containers.list(all=True, filters={"label": f"{STACK}={name}"}):
            container.remove(force=True, v=True)
        for volume in client.volumes.list(filters={"label": f"{STACK}={name}"}):
            volume.remove(force=True)
        for network in client.networks.list(filters={"label": f"{STACK}={name}"}):
            network.remove()


@pytest.fixture
def stack(db_stack, monkeypatch):
    name, root, client, postgres, web = db_stack
    monkeypatch.setattr("ops.stack.PROJECT_ROOT", root)
    return db_stack


def sql(postgres, statement: str) -> str:
    result = postgres.exec_run(["psql", "-U", "app", "-d", "app", "-tAc", statement])
    assert result.exit_code == 0, result.output
    return result.output.decode().strip()


def names(client, name) -> list[str]:
    volume = f"{name}-backups"
    out = client.containers.run(
        POSTGRES_IMAGE,
        render.list_backups_command(),
        remove=True,
        volumes={volume: {"bind": render.BACKUP_DIR, "mode": "ro"}},
    )
    return [b.name for b in parse_listing(out.decode())]


def test_listing_and_names():
    listing = "20261125T231557Z-prod-before-abc.dump 847\n.partial-x.dump 3\nREADME 5\n20261125T101010Z-prod-x-manual.dump 12\n"
    assert parse_listing(listing) == [
        Backup("20261125T101010Z-prod-x-manual.dump", 12),
        Backup("20261125T231557Z-prod-before-abc.dump", 847),
    ]
    assert Backup("20261125T101010Z-prod-x.dump", 1).taken.isoformat() == "2026-11-25T10:10:10+00:00"


def test_backup_then_restore_gives_exactly_the_backed_up_data(stack, capsys):
    name, _, client, postgres, web = stack
    sql(
        postgres,
        "create table if not exists t (id int primary key); truncate t; insert into t select generate_series(1, 100)",
    )
    assert main(["backup", name]) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith("backup: ") and f"-{name}-{SHA[:12]}-manual.dump (" in line, line
    taken = line.split()[1]
    assert taken in names(client, name)
    # After the backup: more rows, and a table a later migration would add.
    sql(postgres, "insert into t select generate_series(101, 150); create table added_later (x int)")
    # The app is running: refused, one line, nothing changed.
    assert main(["restore", name, taken]) == 2
    err = capsys.readouterr().err
    assert err == (
        f"ops restore: stack {name}'s app is running against the database (web-1); add --stop-app to stop it "
        "for the restore and start it again (ARGS=--stop-app), or --force to restore under it\n"
    )
    assert sql(postgres, "select count(*) from t") == "150"
    started = time.monotonic()
    assert main(["restore", name, taken, "--stop-app"]) == 0
    seconds = time.monotonic() - started
    out = capsys.readouterr().out
    assert sql(postgres, "select count(*), min(id), max(id) from t") == "100|1|100"
    assert sql(postgres, "select count(*) from information_schema.tables where table_name = 'added_later'") == "0"
    # The state before the restore was kept, and the app runs again.
    (pre,) = [n for n in names(client, name) if n.endswith("-pre-restore.dump")]
    assert f"undo: make restore STACK={name} BACKUP={pre}" in out
    assert re.search(rf"restored: {taken} into stack {name}'s database, replayed in \d+\.\ds, \d+\.\ds in all", out), (
        out
    )
    assert client.api.inspect_container(web.id)["State"]["Health"]["Status"] == "healthy"
    print(f"restore round trip of a 100-row table: {seconds:.1f}s")
    # And undoing it brings the 150 rows back.
    assert main(["restore", name, pre, "--force"]) == 0
    assert sql(postgres, "select count(*) from t") == "150"


def test_a_corrupt_or_missing_backup_is_refused_and_nothing_changes(stack, capsys):
    name, _, client, postgres, _ = stack
    sql(postgres, "create table if not exists t (id int primary key); truncate t; insert into t values (1), (2)")
    corrupt = f"20260101T000000Z-{name}-corrupt.dump"
    payload = io.BytesIO()
    with tarfile.open(fileobj=payload, mode="w") as tar:
        data = b"PGDMP this is not an archive"
        info = tarfile.TarInfo(corrupt)
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    helper = client.containers.create(
        POSTGRES_IMAGE, ["true"], volumes={f"{name}-backups": {"bind": render.BACKUP_DIR}}
    )
    try:
        helper.put_archive(render.BACKUP_DIR, payload.getvalue())
    finally:
        helper.remove()
    before = names(client, name)
    assert main(["restore", name, corrupt, "--force"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"ops restore: BACKUP={corrupt}: not a readable pg_dump archive (") and err.endswith(
        "; nothing changed\n"
    )
    assert main(["restore", name, f"20260101T000000Z-{name}-missing.dump", "--force"]) == 2
    assert f"no such backup on stack {name}'s volume {name}-backups; the newest: " in capsys.readouterr().err
    assert main(["restore", name, "../../etc/passwd", "--force"]) == 2
    assert "not a backup name" in capsys.readouterr().err
    assert sql(postgres, "select count(*) from t") == "2"
    assert names(client, name) == before  # not even a pre-restore backup was taken


def test_the_release_jobs_backup_keeps_the_newest_automatic_ones_only(stack):
    """The program's before-migrate command, with retention 2: older automatic ones go, the operator's stay."""
    name, _, client, postgres, _ = stack
    kept_manual = set(n for n in names(client, name) if not n.split(f"-{name}-", 1)[1].startswith("before-"))
    env = render.postgres_client_env(user="app", password=PASSWORD, db="app")
    outputs = []
    for n in range(4):
        outputs.append(
            client.containers.run(
                POSTGRES_IMAGE,
                render.backup_command(stack=name, label=f"before-{n}", retention=2),
                remove=True,
                environment=env,
                network=f"{name}-backend",
                volumes={f"{name}-backups": {"bind": render.BACKUP_DIR}},
            ).decode()
        )
        time.sleep(1.1)  # names carry the second they were taken
    automatic = [n for n in names(client, name) if "-before-" in n]
    assert [a.rsplit("-", 1)[1] for a in automatic] == ["2.dump", "3.dump"]
    assert kept_manual <= set(names(client, name))
    assert "removed" in outputs[-1] and "keeping the newest 2 automatic backups" in outputs[-1]
    assert PASSWORD not in "".join(outputs)
