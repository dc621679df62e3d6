"""scheduled-backup: the accessory's schedule fires (the run's `every 30s`) while pages are read:
the backup lands in the volume with its manifest, goes off-host, and what is there is checked
from this host, apart from the agent's own word: the object's bytes (SHA-256 and size) are the
ones the agent recorded, they are age-encrypted, and the identity decrypts them to the very dump
in the volume. No request fails: a backup never disturbs serving."""

import hashlib
import json
import time

import pyrage

from rehearsal.faults.actions import agent, agent_status, offsite, wait_for
from rehearsal.faults.fault import PAGES, Fault
from rehearsal.scenarios import ScenarioFailed

BOUND_SECONDS = 150  # the next run (at most one interval) + the dump, upload and read-back


def inject(ctx, trial) -> None:
    store = offsite(ctx)
    before = agent_status(ctx).get("last_scheduled") or {}
    started = time.monotonic()
    schedule = agent_status(ctx)["schedule"]
    trial.note(
        f"schedule `{schedule['text']}`, next run due {schedule.get('next')}; the last one: {before.get('name')}"
    )

    def fired() -> bool:
        last = agent_status(ctx).get("last_scheduled") or {}
        return bool(last.get("name")) and last.get("at") != before.get("at")

    wait_for("the next scheduled backup", fired, BOUND_SECONDS, 1)
    last = agent_status(ctx)["last_scheduled"]
    name = last["name"]
    trial.note(f"fired at {last['at']}: {name} taken in {last.get('seconds')}s")
    box = agent(ctx)

    def verified() -> dict:
        code, out, _ = box.run("wait-offsite", name, "--timeout", "1")
        return json.loads(out.strip().splitlines()[-1]) if code == 0 else {}

    wait_for("its off-host copy to be verified", lambda: bool(verified()), BOUND_SECONDS, 1)
    record = verified()
    trial.recovery_seconds = time.monotonic() - started
    # Checked from here, not taken on the agent's word.
    keys = store.dump_keys()
    there = keys.get(record["key"])
    if there is None:
        raise ScenarioFailed(f"{record['key']} is not in the bucket")
    body = store.server.read(record["key"])
    digest = hashlib.sha256(body).hexdigest()
    if (
        len(body) != record["bytes"]
        or digest != record["sha256"]
        or store.server.metadata(record["key"]).get("sha256") != digest
    ):
        raise ScenarioFailed(f"{record['key']}: the bucket's bytes are not the ones the agent verified")
    if not body.startswith(b"age-encryption.org/v1"):
        raise ScenarioFailed(f"{record['key']} is not age-encrypted")
    plain = pyrage.decrypt(body, [pyrage.x25519.Identity.from_str(store.identity)])
    local = hashlib.sha256(plain).hexdigest()
    manifest_key = record["manifest_key"]
    manifest = json.loads(
        pyrage.decrypt(store.server.read(manifest_key), [pyrage.x25519.Identity.from_str(store.identity)])
    )
    if local != manifest["sha256"]:
        raise ScenarioFailed(f"{name}: the decrypted copy is not the dump its manifest describes")
    visits = manifest["tables"].get("public.visits_visit")
    trial.note(
        f"off-host {record['key']}: {len(body)} bytes read back here, SHA-256 {digest[:16]} as recorded, age-encrypted; "
        f"the identity decrypts it to the dump its manifest describes ({manifest['bytes']} bytes, "
        f"{len(manifest['tables'])} tables, {manifest['rows']} rows, visits_visit {visits})"
    )
    trial.data["line"] = (
        f"backup {ctx.stack} scheduled: {name} fired on `{schedule['text']}`, off-host and verified "
        f"{trial.recovery_seconds:.1f}s after the wait began ({len(body)} bytes, sha256 {digest[:12]}, age)"
    )
    trial.lost = 0


FAULT = Fault(
    "scheduled-backup",
    "wait for the accessory's scheduled backup (the run's schedule: every 30s) under page reads",
    "it fires on schedule, lands in the volume with its manifest and off-host, where its bytes (read from this "
    "host) are the verified SHA-256 and size, age-encrypted, decrypting to the dump; 0 failed requests",
    inject,
    traffic=PAGES,
    max_failed_seconds=0,
    recovery_target=BOUND_SECONDS,
    summary=lambda stack, trial: trial.data.get("line"),
)
