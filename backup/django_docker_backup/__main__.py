"""python3 -m django_docker_backup COMMAND: the backup accessory and its one-offs.

  run                       the accessory: schedule, off-host copies, WAL archive (agent.py)
  health                    the container's healthcheck: the agent's loop is alive
  take --label LABEL        a backup now, into the volume (the release job, make backup)
  status                    what make status shows, as JSON (from the volume, no S3 call)
  list                      the backups in the volume and off-host, as JSON
  fetch [NAME]              an off-host backup (default: the newest) into the volume, checked
                            and decrypted (the age identity on standard input)
  drill [NAME]              restore the newest off-host backup into a throwaway PostgreSQL here,
                            check it against its manifest, print `DRILL <json>`, serve until stopped
  record-drill              keep a drill's result (JSON on standard input), in the volume and off-host
  pitr-info                 what a point-in-time restore can reach, as JSON
  pitr-restore TARGET       restore the data volume to TARGET (an ISO time, or `latest`)
  wait-offsite NAME         until NAME is verified off-host (or its copy failed), bounded
Output: one-line refusals (exit 2), a failed step (exit 1); never a credential.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from datetime import datetime, timezone

from django_docker_backup import agent, config, dump, names, offsite, report, restore, state, wal


def _config() -> config.Config:
    return config.load(os.environ)


def cmd_run(args) -> int:
    return agent.Agent(_config()).run()


def cmd_health(args) -> int:
    if agent.fresh():
        return 0
    age = agent.heartbeat_age()
    print(
        "backup agent: " + ("never started its loop" if age is None else f"no heartbeat for {age:.0f}s"),
        file=sys.stderr,
    )
    return 1


def cmd_take(args) -> int:
    c = _config()
    started = time.monotonic()
    manifest = dump.take(c.stack, c.directory, args.label, skip_empty=args.skip_empty)
    print(dump.line(manifest) + f"\nin {time.monotonic() - started:.1f}s", flush=True)
    return 0


def cmd_status(args) -> int:
    status = agent.status(_config())
    status["lines"] = report.lines(status, state.now())
    print(json.dumps(status))
    return 0


def cmd_list(args) -> int:
    c = _config()
    local: dict[str, dict] = {
        b.name: {"taken_at": state.stamp(b.taken), "label": b.label}
        for b in names.of_stack(dump.local_names(c.directory), c.stack)
    }
    for name, item in local.items():
        item["bytes"] = os.path.getsize(os.path.join(c.directory, name))
        item["offsite"] = state.read(state.offsite_path(c.directory, name))
    result: dict = {
        "local": local,
        "offsite": None,
        "offsite_error": None,
        "where": c.offsite.where if c.offsite else None,
    }
    if c.offsite is not None:
        try:
            result["offsite"] = {
                copy.name: {
                    "bytes": copy.bytes,
                    "key": copy.key,
                    "encrypted": copy.encrypted,
                    "complete": bool(copy.manifest_key),
                }
                for copy in offsite.listing(c.offsite, c.stack)
            }
        except Exception as error:
            result["offsite_error"] = str(error) if isinstance(error, offsite.OffsiteError) else offsite.describe(error)
    print(json.dumps(result))
    return 0


def cmd_fetch(args) -> int:
    c = _config()
    if c.offsite is None:
        raise offsite.OffsiteError("no off-host storage configured (backupS3Endpoint)")
    started = time.monotonic()
    manifest = offsite.fetch(c.offsite, c.directory, c.stack, args.name or "", restore.read_identity())
    print(
        f"fetched: {manifest['name']} ({manifest['bytes']} bytes, sha256 {manifest['sha256'][:16]} as its manifest says) "
        f"from {c.offsite.where} in {time.monotonic() - started:.1f}s",
        flush=True,
    )
    return 0


def cmd_drill(args) -> int:
    return restore.drill(_config(), args.name or "", restore.read_identity())


def cmd_record_drill(args) -> int:
    record = restore.record_drill(_config(), json.loads(sys.stdin.read()))
    print(f"drill recorded: {'passed' if record.get('ok') else 'FAILED'} at {record['at']}")
    return 0


def cmd_pitr_info(args) -> int:
    c = _config()
    rng = wal.range_of(wal.info(c), wal.read_archived(c))
    print(
        json.dumps(
            {
                "earliest": state.stamp(rng.earliest) if rng.earliest else None,
                "latest": state.stamp(rng.latest) if rng.latest else None,
                "backups": rng.backups,
            }
        )
    )
    return 0


def parse_target(text: str) -> datetime:
    """An ISO 8601 time; without a zone, UTC."""
    value = datetime.fromisoformat(text.strip().replace(" UTC", "").replace("Z", "+00:00"))
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


def cmd_pitr_restore(args) -> int:
    c = _config()
    target = None if args.target == "latest" else parse_target(args.target)
    rng = wal.range_of(wal.info(c), wal.read_archived(c))
    if target is not None:
        problem = rng.problem(target)
        if problem:
            print(f"AT={args.target}: {problem}", file=sys.stderr)
            return 2
    elif rng.earliest is None:
        print("AT=latest: nothing is archived yet", file=sys.stderr)
        return 2
    command = os.environ.get("BACKUP_ARCHIVE_COMMAND", "")
    if not command:
        raise config.ConfigError("BACKUP_ARCHIVE_COMMAND: not set (the stack's archive_command)")
    print("PITR " + json.dumps(restore.pitr(c, target, command)), flush=True)
    return 0


def cmd_wait_offsite(args) -> int:
    c = _config()
    deadline = time.monotonic() + args.timeout
    path = state.offsite_path(c.directory, args.name)
    before = (state.read(path) or {}).get("failed_at")
    while time.monotonic() < deadline:
        record = state.read(path) or {}
        if "verified_at" in record:
            print(json.dumps(record))
            return 0
        if record.get("error") and record.get("failed_at") != before:
            print(json.dumps(record))
            return 1
        time.sleep(0.5)
    print(json.dumps({"name": args.name, "error": f"not verified off-host within {args.timeout}s"}))
    return 1


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stdout)
    for chatty in ("botocore", "boto3", "s3transfer", "urllib3"):
        logging.getLogger(chatty).setLevel(logging.WARNING)
    parser = argparse.ArgumentParser(prog="python3 -m django_docker_backup", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("run").set_defaults(run=cmd_run)
    sub.add_parser("health").set_defaults(run=cmd_health)
    take = sub.add_parser("take")
    take.add_argument("--label", required=True)
    take.add_argument("--skip-empty", action="store_true", help="no backup while the database has no table")
    take.set_defaults(run=cmd_take)
    sub.add_parser("status").set_defaults(run=cmd_status)
    sub.add_parser("list").set_defaults(run=cmd_list)
    for command, run in (("fetch", cmd_fetch), ("drill", cmd_drill)):
        p = sub.add_parser(command)
        p.add_argument("name", nargs="?", default="")
        p.set_defaults(run=run)
    sub.add_parser("record-drill").set_defaults(run=cmd_record_drill)
    sub.add_parser("pitr-info").set_defaults(run=cmd_pitr_info)
    p = sub.add_parser("pitr-restore")
    p.add_argument("target")
    p.set_defaults(run=cmd_pitr_restore)
    p = sub.add_parser("wait-offsite")
    p.add_argument("name")
    p.add_argument("--timeout", type=float, default=600)
    p.set_defaults(run=cmd_wait_offsite)
    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except config.ConfigError as error:
        print(f"backup: {error}", file=sys.stderr)
        return 2
    except (dump.BackupFailed, offsite.OffsiteError, wal.WalError, restore.RestoreFailed) as error:
        print(f"backup: FAILED: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
