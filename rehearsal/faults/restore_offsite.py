"""restore-offsite: a backup restored from its off-host copy alone. The operator backs up (the
copy is verified off-host), more rows are written, the volume's copy is removed (as if the disk
were lost), and `make restore FROM=offsite BACKUP=<name> ARGS=--stop-app` fetches it from the
bucket, checks it against its recorded SHA-256, decrypts it with backupEncryptionKey and
restores it: exactly the backed-up rows afterwards."""

import time

from rehearsal.faults.actions import agent_shell, offsite, ops, post_visits
from rehearsal.faults.fault import READS, Fault, parse_backup, parse_rows
from rehearsal.faults.restore import ROWS, TARGET_SECONDS, serves_restored
from rehearsal.scenarios import ScenarioFailed

MORE_ROWS = 10


def inject(ctx, trial) -> None:
    store = offsite(ctx)
    backed_up = parse_rows(ctx.psql(ROWS))
    code, out, err = ops(ctx, "backup")
    if code != 0:
        raise ScenarioFailed(f"`ops backup` exit {code}: {(out + err).strip().splitlines()[-2:]}")
    name, size = parse_backup(out)
    verified = [line for line in out.splitlines() if line.startswith("off-host: ")]
    trial.note(f"`ops backup`: {name} ({size} bytes), {len(backed_up)} rows; {verified[0][:140] if verified else ''}")
    ids = post_visits(ctx, MORE_ROWS)
    trial.note(f"{MORE_ROWS} more visits written after the backup (ids {ids[0]}-{ids[-1]})")
    agent_shell(ctx, f"rm -f /backups/{name} /backups/.meta/{name}.json")
    trial.note(f"removed {name} from the volume: only its off-host copy is left")
    started = time.monotonic()
    code, out, err = ops(
        ctx, "restore", name, "--from", "offsite", "--stop-app", "--identity-file", store.identity_file
    )
    if code != 0:
        raise ScenarioFailed(f"`ops restore --from offsite` exit {code}: {(out + err).strip().splitlines()[-2:]}")
    fetched = next((line for line in out.splitlines() if line.startswith("fetched: ")), "")
    trial.note(
        f"`ops restore {ctx.stack} {name} --from offsite --stop-app` exit 0 in {time.monotonic() - started:.1f}s"
    )
    trial.note(fetched[:160])
    restored, diff = serves_restored(ctx, trial, backed_up, started)
    trial.data["line"] = (
        f"backup {ctx.stack} restore-offsite: {name} from {store.server.endpoint.split('//')[1]} "
        f"(the volume's copy removed): {len(restored)} rows, {diff.count} differ, in {trial.recovery_seconds:.1f}s"
    )


FAULT = Fault(
    "restore-offsite",
    f"back up, write {MORE_ROWS} more rows, remove the volume's copy, restore from the off-host copy",
    "the off-host copy is fetched, checked and decrypted; exactly the backed-up rows afterwards; the site serves "
    f"again within {TARGET_SECONDS} s; requests may fail while `--stop-app` has the app stopped",
    inject,
    traffic=READS,
    max_failed_seconds=None,
    recovery_target=TARGET_SECONDS,
    summary=lambda stack, trial: trial.data.get("line"),
)
