"""`make benchmark-http STACK=...`: what nginx as a front door serves, measured on a rehearsal stack.

`python -m rehearsal benchmark-http STACK` boots the stack as `rehearse()` does (its smoke and
day-2 checks included), then measures three paths through nginx on 127.0.0.1: `/health/` (the
app, through the upstream), `/` (a page the app renders from the database, gzip-able HTML) and
the stylesheet under its fingerprinted name (a file nginx serves from the static volume).
Each is a closed loop: CONNECTIONS persistent HTTP/1.1 connections, each sending its next
request when the previous answer is read, for SECONDS or MAX_REQUESTS (bounded, loopback only:
rehearsal/checks/load.py check_loopback). Printed: requests/s, p50 and p99 latency, bytes per
answer, and what it said about caching and compression.

Then the same with each front-door change taken back, one at a time, in the same nginx
(through the NginxSite: written, `nginx -t`, reloaded, no restart): no keep-alive to the
upstream, no gzip. So each figure is the change's own effect, on this machine, in this run.
"""

from __future__ import annotations

import http.client
import re
import statistics
import threading
import time
from dataclasses import dataclass
from typing import Callable, Optional

from components.nginx_site import NginxSiteProvider
from planning.harness import NGINX_SITE
from rehearsal.checks.load import check_loopback
from rehearsal.checks.smoke import Check, front_door, run_checks
from rehearsal.emulation.engine import LOOPBACK

CONNECTIONS = 8
SECONDS = 8.0
MAX_REQUESTS = 50_000


@dataclass
class Measure:
    path: str
    requests: int
    errors: int
    seconds: float
    latencies: list[float]
    bytes_per_answer: float
    headers: dict[str, str]

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def pct(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000 if ordered else float("nan")

    def line(self, label: str) -> str:
        extra = ", ".join(f"{k}: {v}" for k, v in self.headers.items())
        return (
            f"  {label:<34} {self.rate:8.0f} req/s  p50 {self.pct(0.50):6.2f} ms  p99 {self.pct(0.99):6.2f} ms  "
            f"{self.bytes_per_answer:7.0f} B/answer  {self.errors} errors" + (f"  ({extra})" if extra else "")
        )


def measure(
    base: str, host: str, path: str, *, gzip: bool = True, seconds: float = SECONDS, connections: int = CONNECTIONS
) -> Measure:
    """A closed loop of `connections` keep-alive connections on `path` for `seconds` (bounded)."""
    check_loopback(base)
    port = int(base.rsplit(":", 1)[1])
    lock = threading.Lock()
    latencies: list[float] = []
    sizes: list[int] = []
    errors = [0]
    headers: dict[str, str] = {}
    stop = time.monotonic() + seconds
    request_headers = {"Host": host, **({"Accept-Encoding": "gzip"} if gzip else {})}

    def worker() -> None:
        conn = http.client.HTTPConnection(LOOPBACK, port, timeout=10)
        own: list[float] = []
        own_sizes: list[int] = []
        while time.monotonic() < stop and len(own) < MAX_REQUESTS // connections:
            started = time.perf_counter()
            try:
                conn.request("GET", path, headers=request_headers)
                response = conn.getresponse()
                body = response.read()
                if response.status != 200:
                    raise http.client.HTTPException(f"status {response.status}")
            except (OSError, http.client.HTTPException):
                with lock:
                    errors[0] += 1
                conn.close()
                conn = http.client.HTTPConnection(LOOPBACK, port, timeout=10)
                continue
            own.append(time.perf_counter() - started)
            own_sizes.append(len(body))
            if not headers:
                with lock:
                    for name in ("Content-Encoding", "Cache-Control", "Vary"):
                        if response.getheader(name):
                            headers[name] = response.getheader(name) or ""
        conn.close()
        with lock:
            latencies.extend(own)
            sizes.extend(own_sizes)

    started = time.monotonic()
    threads = [threading.Thread(target=worker) for _ in range(connections)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - started
    return Measure(
        path, len(latencies), errors[0], elapsed, latencies, statistics.fmean(sizes) if sizes else 0, headers
    )


def variant(conf: str, change: str) -> str:
    """The rendered nginx.conf with one front-door change taken back."""
    if change == "no upstream keep-alive":
        # Every request asks for its connection to close (gunicorn then closes it): taking out
        # `keepalive 16` alone is not enough, nginx >= 1.29.7 (the stand-in's 1.30) keeps
        # connections to an upstream by default.
        conf = conf.replace("        keepalive 16;\n", "")
        return re.sub(r"proxy_set_header Connection [^;]*;", "proxy_set_header Connection close;", conf)
    if change == "no gzip":
        return re.sub(r"\n    gzip on;", "\n    gzip off;", conf)
    raise ValueError(change)


class HttpBenchmark:
    """`python -m rehearsal benchmark-http`: a hook of `rehearse()` (nothing before the boot)."""

    def __init__(self, stack: str):
        self.stack = stack
        self.checks: list[Check] = []
        self.results: list[str] = []

    def before_boot(self, ctx) -> None:
        return None

    def after_boot(self, ctx, phase) -> list[Check]:
        info: dict = {}
        with phase("benchmark-http", info):
            self.checks = run_checks([("front door", lambda: self.run(ctx))], ctx.say)
            info["text"] = "measured" if all(c.ok for c in self.checks) else "FAILED"
        return self.checks

    def summary(self, phase_failed: bool) -> tuple[str, int]:
        failed = sum(not c.ok for c in self.checks) + (1 if phase_failed else 0)
        return f"benchmark-http {self.stack}: {'done' if not failed else 'FAILED'}", failed

    def run(self, ctx) -> str:
        plan = ctx.current_plan().plan
        base, host, _ = front_door(plan)
        if not base.startswith("http://"):
            return "skipped: the stack serves HTTPS (measure a plain-HTTP stack)"
        static = _fingerprinted(ctx, plan)
        paths = {"/health/ (app)": "/health/", "/ (a page)": "/", f"{static} (static)": static}
        say: Callable[[str], None] = ctx.say
        say(f"  {CONNECTIONS} keep-alive connections per path, {SECONDS:g}s each, {base} (Host: {host})")
        for label, path in paths.items():
            say(measure(base, host, path).line(label))
        (site,) = plan.of_type(NGINX_SITE)
        inputs = ctx.session.engine.mapping(ctx.session.state)
        props = _site_props(site.inputs, inputs, ctx)
        conf = site.inputs["files"]["nginx.conf"]
        provider = NginxSiteProvider()
        try:
            for change in ("no upstream keep-alive", "no gzip"):
                changed = {**props, "files": {**props["files"], "nginx.conf": variant(conf, change)}}
                outs = provider.update("", {}, changed).outs or {}
                say(f"  with {change} (nginx reloaded to generation {outs['generation']}):")
                for label, path in paths.items():
                    if change == "no gzip" and "app" in label:
                        continue  # /health/ is JSON of a few bytes: under gzip_min_length either way
                    say(measure(base, host, path).line(label))
        finally:
            provider.update("", {}, props)  # back to what the plan says
        return "3 paths measured, then without upstream keep-alive and without gzip (figures above)"


def _site_props(inputs: dict, mapping: dict, ctx) -> dict:
    from rehearsal.emulation.translate import substitute

    props = {k: v for k, v in substitute(inputs, mapping).items() if k not in ("generation", "__provider")}
    props["labels"] = [*props.get("labels", []), *({"label": k, "value": v} for k, v in ctx.session.run_labels.items())]
    return props


def _fingerprinted(ctx, plan) -> str:
    """The stylesheet's fingerprinted URL, as the app's page names it."""
    base, host, _ = front_door(plan)
    conn = http.client.HTTPConnection(LOOPBACK, int(base.rsplit(":", 1)[1]), timeout=10)
    conn.request("GET", "/", headers={"Host": host})
    page = conn.getresponse().read().decode(errors="replace")
    conn.close()
    found: Optional[re.Match] = re.search(r'href="([^"]+\.[0-9a-f]{12}\.css)"', page)
    if found is None:
        raise AssertionError("the page names no fingerprinted stylesheet (ManifestStaticFilesStorage?)")
    return found.group(1)
