"""backend-network (swarm): a new backendSubnet replaces the backend network, and with it every
service on it. The new network is created beside the old one; postgres and redis are
delete-before-replace (components/swarm.py service_options: never two servers on one data
directory), the release jobs run again on the new network, web and the worker are replaced
beside their old services, and the old ones and the old network go at the end.

What it proves, under load: one postgres task at a time (the engine's own events: the old
task's container died before the new one started, never two running), the new one on the same
data volume, and the rows written just before the change there after it. The price is written
down too: while postgres is replaced and until the old web tasks (on the old network, where no
postgres answers any more) are gone, /health/ fails (it queries the database), so the scenario
allows the failed seconds it measures (docs/rehearsal.md).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Optional

from rehearsal.checks.smoke import http_session
from rehearsal.scenarios.scenario import Scenario, Up, expect

SERVICE_LABEL = "django-docker.service"
VISITS_BEFORE = 5
POLL_SECONDS = 0.2
# The rows of the app's table that must survive: how many, the last id, and a digest of them all.
ROWS_SQL = (
    "select count(*) || ' ' || coalesce(max(id), 0) || ' ' || "
    "md5(coalesce(string_agg(id::text || ':' || served_by, ',' order by id), '')) from visits_visit"
)


def new_subnet(ctx) -> str:
    """A range for the new backend inside the private swarm engine's own overlay pool (nothing
    else on this host routes it), far from the /24s swarm hands out from the pool's start."""
    from rehearsal.hosts.swarm_engine import layout_for

    return layout_for().pool.replace(".0.0/16", ".250.0/24")


@dataclass
class PostgresWatch:
    """Counts postgres's running task containers on the engine while `pulumi up` replaces it,
    and follows the engine's own start and die events of them as they happen (not read back
    afterwards: the engine keeps only its last 256 events, moby daemon/events/events.go
    eventsLimit, which a minute of healthchecks' exec events fills)."""

    api: object
    labels: list[str]
    before: set[str] = field(default_factory=set)
    most: int = 0
    stop: threading.Event = field(default_factory=threading.Event)
    thread: Optional[threading.Thread] = None
    volume: str = ""
    events: list[dict] = field(default_factory=list)
    stream: Optional[object] = None
    follower: Optional[threading.Thread] = None

    def running(self) -> list[dict]:
        return self.api.containers(filters={"label": self.labels, "status": "running"})  # type: ignore[attr-defined]

    def start(self) -> "PostgresWatch":
        now = self.running()
        self.before = {c["Id"] for c in now}
        self.volume = _volume_of(now[0]) if now else ""
        self.most = len(now)
        self.stream = self.api.events(  # type: ignore[attr-defined]
            filters={"type": "container", "event": ["start", "die"], "label": self.labels}, decode=True
        )
        self.follower = threading.Thread(target=self._follow, name="postgres-events", daemon=True)
        self.follower.start()
        self.thread = threading.Thread(target=self._poll, name="postgres-watch", daemon=True)
        self.thread.start()
        return self

    def _follow(self) -> None:
        try:
            for event in self.stream:  # type: ignore[attr-defined]
                self.events.append(event)
        except Exception:  # noqa: BLE001 - the stream closed (finish), or the engine went away
            pass

    def _poll(self) -> None:
        while not self.stop.wait(POLL_SECONDS):
            try:
                self.most = max(self.most, len(self.running()))
            except Exception:  # noqa: BLE001 - a poll that fails is a poll missed, not a failure
                pass

    def finish(self) -> str:
        self.stop.set()
        if self.thread is not None:
            self.thread.join(5)
        time.sleep(1)  # the last events on their way
        self.stream.close()  # type: ignore[attr-defined]
        if self.follower is not None:
            self.follower.join(5)
        events = sorted(self.events, key=lambda e: e.get("timeNano", 0))
        alive: set[str] = set(self.before)
        most = len(alive)
        first_new_start, last_old_die = None, None
        for event in events:
            cid = event.get("id") or event.get("Actor", {}).get("ID", "")
            if event.get("Action") == "start":
                alive.add(cid)
                if cid not in self.before and first_new_start is None:
                    first_new_start = event["timeNano"]
            elif event.get("Action") == "die":
                alive.discard(cid)
                if cid in self.before:
                    last_old_die = event["timeNano"]
            most = max(most, len(alive))
        now = self.running()
        expect(len(now) == 1, f"{len(now)} postgres tasks run after the update, expected 1")
        (new,) = now
        expect(new["Id"] not in self.before, "postgres was not replaced (the same task runs)")
        expect(self.before, "no postgres task ran before the update")
        expect(
            last_old_die is not None and first_new_start is not None,
            f"the engine's events show no die of the old task or no start of the new one ({len(events)} events)",
        )
        assert last_old_die is not None and first_new_start is not None
        expect(
            last_old_die < first_new_start,
            f"the new postgres started {(last_old_die - first_new_start) / 1e9:.1f}s before the old one died",
        )
        expect(most == 1 and self.most <= 1, f"{max(most, self.most)} postgres tasks ran at once")
        expect(_volume_of(new) == self.volume, f"the new postgres mounts {_volume_of(new)}, the old {self.volume}")
        gap = (first_new_start - last_old_die) / 1e9
        return (
            f"one postgres at a time: the old task's container died {gap:.1f}s before the new one started "
            f"(the engine's events; at most {max(most, self.most)} running in {POLL_SECONDS}s polls), "
            f"both on volume {self.volume}"
        )


def _volume_of(container: dict) -> str:
    return next((m.get("Name", "") for m in container.get("Mounts") or [] if m.get("Type") == "volume"), "")


def before(ctx) -> str:
    """Rows written through the app, their digest taken, then the watch on postgres started."""
    base, host = ctx.front()
    with http_session(base, host) as http:
        for _ in range(VISITS_BEFORE):
            response = http.post(base + "/visits/", timeout=10)
            expect(response.status_code == 201, f"POST /visits/ -> {response.status_code}")
    ctx.kept_rows = ctx.psql(ROWS_SQL)
    count, last, _ = ctx.kept_rows.split()
    # The program's labels (the real engine's tasks carry no rehearsal label); the private engine
    # runs this stack alone.
    labels = [f"{SERVICE_LABEL}=postgres", f"django-docker.stack={ctx.stack}"]
    ctx.watch = PostgresWatch(ctx.session.client.api, labels).start()
    return f"{VISITS_BEFORE} visits posted; {count} rows up to id {last} digested; watching postgres's tasks"


def check(ctx, result) -> str:
    watched = ctx.watch.finish()
    count, last, digest = ctx.kept_rows.split()
    now = ctx.psql(ROWS_SQL.replace("from visits_visit", f"from visits_visit where id <= {int(last)}"))
    expect(now == ctx.kept_rows, f"rows up to id {last} before: {ctx.kept_rows}; after: {now}")
    return f"{watched}; the {count} rows up to id {last} are there, digest {digest[:12]} unchanged"


SCENARIO = Scenario(
    "backend-network",
    (
        Up(
            "backendSubnet set: a new backend network, every service on it replaced",
            overrides=lambda ctx: {"backendSubnet": new_subnet(ctx)},
            before=before,
            check=check,
        ),
    ),
    # Measured, not wished for: from the old postgres's stop until the old web tasks are deleted
    # at the end of the update (docs/rehearsal.md, the swarm rehearsal).
    max_failed_seconds=60,
)
