"""restore-drill: `make restore-drill` as an operator runs it: the newest off-host backup
restored into a throwaway PostgreSQL (fetched, checked, decrypted), its tables and rows compared
with the backup's own manifest, the running release's `migrate --check` against it; everything
it made removed; its result recorded, in the volume and off-host, and shown by `make status`.
The stack serves throughout."""

import json
import time

from rehearsal.faults.actions import offsite, ops, ops_ok
from rehearsal.faults.fault import PAGES, Fault
from rehearsal.scenarios import ScenarioFailed

BOUND_SECONDS = 180


def inject(ctx, trial) -> None:
    store = offsite(ctx)
    api = ctx.session.client.api
    before = {c["Id"] for c in api.containers(all=True)}
    networks = {n["Id"] for n in api.networks()}
    volumes = {v["Name"] for v in api.volumes().get("Volumes") or []}
    started = time.monotonic()
    code, out, err = ops(ctx, "restore-drill", "--identity-file", store.identity_file)
    took = time.monotonic() - started
    line = next((x for x in out.splitlines() if x.startswith("drill: ")), "")
    if code != 0 or not line.startswith("drill: passed: "):
        raise ScenarioFailed(f"`ops restore-drill` exit {code}: {(line or (out + err).strip())[:240]}")
    trial.note(f"`ops restore-drill {ctx.stack}` exit 0 in {took:.1f}s: {line[len('drill: ') :][:200]}")
    left = (
        {c["Id"] for c in api.containers(all=True)} - before,
        {n["Id"] for n in api.networks()} - networks,
        {v["Name"] for v in api.volumes().get("Volumes") or []} - volumes,
    )
    if any(left):
        raise ScenarioFailed(f"the drill left containers, networks or volumes behind: {left}")
    status = ops_ok(ctx, "status")
    shown = next((x.strip() for x in status.splitlines() if x.strip().startswith("restore drill: ")), "")
    if "passed" not in shown:
        raise ScenarioFailed(f"`ops status` does not show the drill: {shown!r}")
    records = [k for k in store.server.objects(f"{store.prefix}/drills/")]
    if not records:
        raise ScenarioFailed("no drill record off-host")
    record = json.loads(store.server.read(sorted(records)[-1]))
    trial.note(
        f"`ops status`: {shown[:160]}; off-host record {sorted(records)[-1].rsplit('/', 1)[-1]}: ok={record['ok']}"
    )
    trial.recovery_seconds = took
    trial.lost = 0 if record["ok"] else 1
    trial.data["line"] = f"backup {ctx.stack} drill: {line[len('drill: ') :]}"[:300]


FAULT = Fault(
    "restore-drill",
    "`make restore-drill`: the newest off-host backup into a throwaway PostgreSQL, checked, removed",
    "passed: every table and row count as the backup's manifest says, migrate --check ok; nothing left behind; "
    "the result in `make status` and off-host; 0 failed page reads",
    inject,
    traffic=PAGES,
    max_failed_seconds=0,
    recovery_target=BOUND_SECONDS,
    summary=lambda stack, trial: trial.data.get("line"),
)
