"""A bounded load generator for nginx's published port on 127.0.0.1.

The release rehearsal runs it while it changes a running stack (new image, more replicas, a new
nginx config) and reports what a steady stream of clients saw:

    with Load("http://127.0.0.1:8080", host="localhost:8080") as load:
        ...                                   # change the stack
    print(load.report.line("dev", "new-image"))
    print(load.report.details())

It only ever sends traffic to loopback (or to networks the caller names), never follows
redirects or proxies, and always stops by itself at `max_seconds` or `max_requests`.
"""

from __future__ import annotations

import ipaddress
import math
import socket
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Callable, Iterable, cast
from urllib.parse import urlsplit

import requests

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
# Two maintenance answers further apart than this belong to two windows (the load sends one
# every 1/rate seconds: 0.05 s at the rehearsal's 20/s).
WINDOW_GAP = 1.0


@dataclass(frozen=True)
class Failure:
    at: float  # seconds from the start to when the request was sent
    status: int | None  # the unexpected status, or None when the request raised
    error: str | None  # exception class name when it raised

    @property
    def kind(self) -> str:
        return str(self.status) if self.status is not None else str(self.error)


@dataclass(frozen=True)
class Release:
    """One git_sha seen in /health/ bodies: how often, and from when to when it answered."""

    count: int
    first: float
    last: float


@dataclass(frozen=True)
class Report:
    requests: int  # completed (answered or raised); requests still in flight at stop are `unfinished`
    failed: int
    failed_seconds: int  # distinct whole seconds from the start in which a request failed
    longest_gap: float  # longest time without a successful response, start and stop included
    duration: float
    statuses: Counter = field(default_factory=Counter)
    errors: Counter = field(default_factory=Counter)
    releases: dict[str, Release] = field(default_factory=dict)
    failures: tuple[Failure, ...] = ()
    unfinished: int = 0
    collected: tuple = ()  # the `collect` key's value from each expected answer (e.g. the ids of acknowledged writes)
    maintenance_times: tuple[float, ...] = ()
    """When each answer that was nginx's maintenance page (503 with Retry-After) was sent, in
    seconds from the start: counted apart from `failed` when the load was told a maintenance
    window may come (Load(maintenance=True))."""
    retried: int = 0
    """Repeatable requests sent again, once, on a new connection because the server closed the
    kept-alive one as they went out (RETRY_ON); what came of the second attempt is counted."""

    @property
    def maintenance(self) -> int:
        return len(self.maintenance_times)

    @property
    def windows(self) -> list[tuple[float, float]]:
        """The maintenance windows as the clients saw them: runs of maintenance answers with no
        more than WINDOW_GAP seconds between two, (first, last) each."""
        out: list[tuple[float, float]] = []
        for at in sorted(self.maintenance_times):
            if out and at - out[-1][1] <= WINDOW_GAP:
                out[-1] = (out[-1][0], at)
            else:
                out.append((at, at))
        return out

    @property
    def window(self) -> float:
        """The first maintenance window's length (the release's), first to last answer."""
        windows = self.windows
        return windows[0][1] - windows[0][0] if windows else 0.0

    def line(self, stack: str, scenario: str) -> str:
        line = (
            f"release {stack} {scenario}: {self.requests} requests, {self.failed} failed, "
            f"longest gap {self.longest_gap:.1f}s"
        )
        if self.maintenance:
            line += f", {self.maintenance} maintenance 503, window {self.window:.1f}s"
        return line

    def details(self) -> str:
        kinds = Counter(f.kind for f in self.failures)
        failures = ", ".join(f"{kind} x{n}" for kind, n in kinds.most_common()) or "none"
        lines = [f"  failures: {failures}"]
        if self.failed_seconds:
            lines.append(
                f"  failed seconds: {self.failed_seconds} ({spans(sorted({int(f.at) for f in self.failures}))})"
            )
        if self.unfinished:
            lines.append(f"  unfinished at stop: {self.unfinished}")
        if self.retried:
            lines.append(
                f"  sent again on a new connection: {self.retried} (the server closed a kept-alive one as"
                " the request went out, as nginx's old workers do at a reload; a browser sends it again)"
            )
        by_first = sorted(self.releases.items(), key=lambda item: item[1].first)
        answered = ", ".join(f"{sha[:12]} {r.first:.1f}-{r.last:.1f}s ({r.count})" for sha, r in by_first)
        lines.append(f"  releases: {answered or 'no git_sha seen'}")
        if self.maintenance:
            spans_text = ", ".join(f"{a:.1f}-{b:.1f}s" for a, b in self.windows)
            lines.append(f"  maintenance page: {self.maintenance} answers, windows {spans_text}")
        return "\n".join(lines)


def combined(reports: list[Report]) -> Report:
    """Several loads run side by side (the same start, give or take milliseconds) as one: the
    counts added, the longest gap the longest of any, the failures and maintenance answers of all."""
    if not reports:
        raise ValueError("combined: no report")
    failures = tuple(sorted((f for r in reports for f in r.failures), key=lambda f: f.at))
    releases: dict[str, Release] = {}
    for r in reports:
        for sha, seen in r.releases.items():
            old = releases.get(sha)
            releases[sha] = (
                seen
                if old is None
                else Release(old.count + seen.count, min(old.first, seen.first), max(old.last, seen.last))
            )
    return Report(
        requests=sum(r.requests for r in reports),
        failed=len(failures),
        failed_seconds=len({int(f.at) for f in failures}),
        longest_gap=max(r.longest_gap for r in reports),
        duration=max(r.duration for r in reports),
        statuses=sum((r.statuses for r in reports), Counter()),
        errors=sum((r.errors for r in reports), Counter()),
        releases=releases,
        failures=failures,
        unfinished=sum(r.unfinished for r in reports),
        collected=tuple(v for r in reports for v in r.collected),
        maintenance_times=tuple(sorted(t for r in reports for t in r.maintenance_times)),
        retried=sum(r.retried for r in reports),
    )


def is_maintenance_page(response: requests.Response) -> bool:
    """nginx's maintenance answer (render.nginx_conf with maintenance_retry_after): 503, a
    Retry-After, and its page; an app's own 503 (a health check failing) is none of these."""
    return (
        response.status_code == 503
        and bool(response.headers.get("Retry-After"))
        and "Down for maintenance" in response.text
    )


def spans(seconds: list[int]) -> str:
    """[3, 4, 5, 9] -> '3-5, 9'"""
    out: list[str] = []
    for s in seconds:
        if out and int(out[-1].split("-")[-1]) == s - 1:
            out[-1] = f"{out[-1].split('-')[0]}-{s}"
        else:
            out.append(str(s))
    return ", ".join(out)


def check_loopback(base_url: str, allowed_networks: Iterable[Network] = ()) -> None:
    """Raise ValueError unless base_url's host is a loopback address (or in allowed_networks).

    Names other than "localhost" are refused rather than resolved: a name may point anywhere.
    """
    parts = urlsplit(base_url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"load: {base_url!r} is not an http(s) URL with a host")
    host = parts.hostname
    if host == "localhost":
        # Whatever /etc/hosts says, every address it resolves to must be loopback too.
        try:
            # An IPv4/IPv6 sockaddr starts with the address text (typeshed also allows AF_PACKET's int).
            infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
            addresses = {cast(str, info[4][0]) for info in infos}
        except OSError as error:
            raise ValueError(f"load: refusing {base_url!r}: cannot resolve localhost ({error})") from None
    else:
        addresses = {host}
    for address in addresses:
        try:
            ip = ipaddress.ip_address(address.split("%")[0])
        except ValueError:
            raise ValueError(
                f"load: refusing {base_url!r}: host {host!r} is not loopback (only IP addresses "
                "and localhost are accepted)"
            ) from None
        if not (ip.is_loopback or any(ip in net for net in allowed_networks)):
            raise ValueError(f"load: refusing {base_url!r}: {ip} is not a loopback address")


# Requests a client may send again when the connection closed under them (RFC 9110 9.2.2).
REPEATABLE = frozenset({"GET", "HEAD", "OPTIONS"})
# The server closed the connection before answering (error_name of requests' ConnectionError).
RETRY_ON = frozenset(
    {
        "ConnectionError(RemoteDisconnected)",
        "ConnectionError(ConnectionResetError)",
        "ConnectionError(BrokenPipeError)",
    }
)


def error_name(error: BaseException) -> str:
    """The exception's class name; a plain ConnectionError also names its root cause
    (ConnectionRefusedError: nothing listens; ConnectionResetError/RemoteDisconnected: dropped)."""
    name = type(error).__name__
    if type(error) is not requests.ConnectionError:
        return name
    root: BaseException = error
    seen: set[int] = set()
    while id(root) not in seen:
        seen.add(id(root))
        reason = getattr(root, "reason", None)  # urllib3's MaxRetryError keeps it here
        nxt = reason if isinstance(reason, BaseException) else root.__cause__ or root.__context__
        if nxt is None:
            nxt = next((a for a in root.args if isinstance(a, BaseException)), None)
        if nxt is None:
            break
        root = nxt
    return f"{name}({type(root).__name__})" if root is not error else name


class Load:
    """Steady GETs (or `method`) of base_url + path from `workers` threads, `rate` requests per
    second in total. With `collect`, the value of that JSON key in every answer with the
    expected status is kept (at most max_requests of them): what a writing load was told."""

    def __init__(
        self,
        base_url: str,
        *,
        host: str | None = None,
        path: str = "/health/",
        rate: float = 20.0,
        workers: int = 4,
        timeout: float = 5.0,
        max_seconds: float = 900.0,
        max_requests: int = 100_000,
        expect: int = 200,
        allowed_networks: Iterable[Network] = (),
        stop_grace: float = 1.0,
        method: str = "GET",
        collect: str | None = None,
        session: Callable[[], requests.Session] | None = None,
        maintenance: bool = False,
    ):
        check_loopback(base_url, tuple(allowed_networks))
        if rate <= 0 or workers < 1 or timeout <= 0 or max_seconds <= 0 or max_requests < 1:
            raise ValueError("load: rate, workers, timeout, max_seconds and max_requests must be positive")
        self.url = base_url.rstrip("/") + "/" + path.lstrip("/")
        self.host = host
        self.rate = float(rate)
        self.workers = workers
        self.timeout = timeout
        self.max_seconds = max_seconds
        self.max_requests = max_requests
        self.expect = expect
        self.stop_grace = stop_grace
        self.method = method.upper()
        self.collect = collect
        self.maintenance = maintenance
        """Count nginx's maintenance page (503 with Retry-After) apart instead of as a failure."""
        self.session = session
        """Makes each worker's session (HTTPS: its server name and CA, smoke.http_session); None: plain."""
        self.report: Report | None = None

        self._lock = threading.Lock()
        self._halt = threading.Event()  # stop() or a bound reached: workers leave
        self._done = threading.Event()  # every worker has left
        self._threads: list[threading.Thread] = []
        self._t0 = 0.0
        self._end: float | None = None  # offset at which the load ended (stop() or by itself)
        self._issued = 0
        self._alive = 0
        self._completed = 0
        self._statuses: Counter = Counter()
        self._errors: Counter = Counter()
        self._failures: list[Failure] = []
        self._releases: dict[str, list[float]] = {}  # sha -> [count, first, last]
        self._collected: list = []
        self._maintenance: list[float] = []  # when each maintenance answer was sent
        self._retried = 0
        self._kept_alive: dict[requests.Session, bool] = {}  # each worker's: its last answer kept the connection
        self._last_success = 0.0  # the start counts as the beginning of the first gap
        self._longest_gap = 0.0

    # -- lifecycle

    def __enter__(self) -> Load:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> Load:
        if self._threads:
            raise RuntimeError("load: already started")
        self._t0 = time.monotonic()
        self._alive = self.workers
        for index in range(self.workers):
            thread = threading.Thread(target=self._work, args=(index,), name=f"load-{index}", daemon=True)
            self._threads.append(thread)
            thread.start()
        return self

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the load stops by itself (a bound reached); True if it has."""
        return self._done.wait(timeout)

    def stop(self) -> Report:
        """Stop, wait at most stop_grace seconds for in-flight requests, and report."""
        if self.report is not None:
            return self.report
        if not self._threads:
            raise RuntimeError("load: not started")
        self._halt.set()
        deadline = time.monotonic() + self.stop_grace
        for thread in self._threads:
            # Daemon threads: one stuck in a hung request is abandoned, not waited for.
            thread.join(max(0.0, deadline - time.monotonic()))
        with self._lock:
            if self._end is None:
                self._end = self._now()
            end = self._end
            self.report = Report(
                requests=self._completed,
                failed=len(self._failures),
                failed_seconds=len({int(f.at) for f in self._failures}),
                longest_gap=max(self._longest_gap, end - self._last_success),
                duration=end,
                statuses=Counter(self._statuses),
                errors=Counter(self._errors),
                releases={sha: Release(int(n), first, last) for sha, (n, first, last) in self._releases.items()},
                failures=tuple(self._failures),
                unfinished=self._issued - self._completed,
                collected=tuple(self._collected),
                maintenance_times=tuple(self._maintenance),
                retried=self._retried,
            )
        return self.report

    # -- workers

    def _now(self) -> float:
        return time.monotonic() - self._t0

    def _work(self, index: int) -> None:
        # Each worker owns every workers-th slot of the total schedule, staggered by 1/rate, so the
        # sum is an even `rate` and no worker depends on another's progress.
        slot = index  # slot n is due at n / rate (from an integer: no drift from summing floats)
        try:
            with self.session() if self.session is not None else requests.Session() as session:
                session.trust_env = False  # no proxy from the environment: traffic stays on loopback
                if self.host:
                    session.headers["Host"] = self.host
                while True:
                    due = slot / self.rate
                    wait = min(due, self.max_seconds) - self._now()
                    if wait > 0 and self._halt.wait(wait):
                        break
                    if due >= self.max_seconds or self._halt.is_set() or not self._ticket():
                        break
                    self._request(session)
                    slot += self.workers
                    behind = self._now() * self.rate - slot  # in slots
                    if behind > 0:  # a slow response: skip the missed slots rather than burst to catch up
                        slot += math.ceil(behind / self.workers) * self.workers
        finally:
            with self._lock:
                self._alive -= 1
                if self._alive == 0:
                    if self._end is None:
                        self._end = self._now()
                    self._done.set()

    def _ticket(self) -> bool:
        with self._lock:
            if self._issued >= self.max_requests:
                self._halt.set()
                return False
            self._issued += 1
            return True

    def _request(self, session: requests.Session) -> None:
        sent = self._now()
        status: int | None = None
        error: str | None = None
        sha: str | None = None
        value = None
        paused = False
        # Whether this request goes out on a connection kept alive from the previous answer.
        reused = self._kept_alive.pop(session, False)
        try:
            try:
                response = session.request(self.method, self.url, timeout=self.timeout, allow_redirects=False)
            except requests.ConnectionError as exc:
                # A kept-alive connection the server closed as the request went out, before any
                # answer (nginx's old workers close their idle ones at a reload): a client may send
                # a repeatable request again on a new connection (RFC 9112 section 9.3.1), and
                # browsers do. So does this one, once, and says so (Report.retried).
                if not (reused and self.method in REPEATABLE and error_name(exc) in RETRY_ON):
                    raise
                with self._lock:
                    self._retried += 1
                response = session.request(self.method, self.url, timeout=self.timeout, allow_redirects=False)
            self._kept_alive[session] = response.headers.get("Connection", "").lower() != "close"
            status = response.status_code
            paused = self.maintenance and is_maintenance_page(response)
            sha = git_sha(response)
            if self.collect and status == self.expect:
                value = collected(response, self.collect)
        except Exception as exc:  # any failure is a data point; a dead worker would skew the rate
            error = error_name(exc)
        answered = self._now()
        with self._lock:  # (after stop() this only touches counters the report has copied)
            self._completed += 1
            if error is None:
                self._statuses[status] += 1
            else:
                self._errors[error] += 1
            if paused:
                self._maintenance.append(sent)
            elif status != self.expect:
                self._failures.append(Failure(sent, status, error))
            elif value is not None:
                self._collected.append(value)
            elif answered > self._last_success:  # threads may record out of order
                self._longest_gap = max(self._longest_gap, answered - self._last_success)
                self._last_success = answered
            if sha is not None:
                seen = self._releases.setdefault(sha, [0, answered, answered])
                seen[0] += 1
                seen[1] = min(seen[1], answered)
                seen[2] = max(seen[2], answered)


def collected(response: requests.Response, key: str):
    try:
        body = response.json()
    except ValueError:
        return None
    return body.get(key) if isinstance(body, dict) else None


def git_sha(response: requests.Response) -> str | None:
    try:
        body = response.json()
    except ValueError:
        return None
    sha = body.get("git_sha") if isinstance(body, dict) else None
    return str(sha) if sha is not None else None
