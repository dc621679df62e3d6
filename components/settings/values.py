"""Values every part of the settings parses: image references, Go durations, healthcheck timing.

Pure: no config is read here, no Pulumi, so the day-2 commands and the rehearsal use these too.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Optional

# Docker's reference grammar (distribution/reference), reduced to what a pinned reference needs.
COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
DOMAIN = r"(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*(?::[0-9]+)?)"
REPOSITORY = rf"(?:{DOMAIN}/)?{COMPONENT}(?:/{COMPONENT})*"
TAG = r"[\w][\w.-]{0,127}"
REFERENCE_RE = re.compile(rf"^(?P<repo>{REPOSITORY})(?::(?P<tag>{TAG}))?(?:@(?P<digest>sha256:[0-9a-f]{{64}}))?$")
DIGEST_REF_RE = re.compile(rf"^{REPOSITORY}@sha256:[0-9a-f]{{64}}$")
REGISTRY_RE = re.compile(rf"^{DOMAIN}(?:/{COMPONENT})*$")
DURATION_RE = re.compile(r"^(?:[0-9]+(?:ms|s|m|h))+$")
# Every unit of Go's time.ParseDuration, as the provider parses a healthcheck duration.
DURATION_PART_RE = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ns|us|µs|ms|s|m|h)")
NS_PER_UNIT = {"ns": 1, "us": 10**3, "µs": 10**3, "ms": 10**6, "s": 10**9, "m": 60 * 10**9, "h": 3600 * 10**9}
NGINX_SIZE_RE = re.compile(r"^[0-9]+[kKmMgG]?$")
HOST_RE = re.compile(
    r"^(?:\.?[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*$"
)
STACK_REF_RE = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")
PG_NAME_RE = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
SHA_RE = re.compile(r"^[0-9a-f]{40}(?:-dirty)?$")


class SettingsError(Exception):
    """A stack setting is wrong. The message is one line that names the key."""


@dataclass(frozen=True, kw_only=True)
class ImageRef:
    """A parsed, pinned image reference."""

    text: str
    repository: str
    tag: Optional[str]
    digest: Optional[str]


def parse_image_ref(key: str, text: str) -> ImageRef:
    """Parse `text` as a pinned image reference; `latest`, or no tag and no digest, is refused."""
    match = REFERENCE_RE.match(text)
    if not match:
        raise SettingsError(
            f"{key}: '{text}' is not an image reference; expected repository:tag or repository@sha256:<64 hex>"
        )
    tag, digest = match["tag"], match["digest"]
    if tag is None and digest is None:
        raise SettingsError(f"{key}: '{text}' has no tag; pin a version, e.g. {match['repo']}:1.2.3")
    if tag == "latest":
        raise SettingsError(f"{key}: 'latest' is mutable; pin a version, e.g. {match['repo']}:1.2.3")
    return ImageRef(text=text, repository=match["repo"], tag=tag, digest=digest)


def duration_ns(text: str) -> Optional[int]:
    """A Go duration (1m30s, 500ms, 1.5s, 0) in nanoseconds; None when it is not one."""
    text = text.strip()
    if text == "0":
        return 0
    parts = DURATION_PART_RE.findall(text)
    if not parts or "".join(number + unit for number, unit in parts) != text:
        return None
    return sum(round(float(number) * NS_PER_UNIT[unit]) for number, unit in parts)


def valid_ns(text: str) -> int:
    """duration_ns of a duration already validated (load() refuses any other)."""
    ns = duration_ns(text)
    if ns is None:
        raise SettingsError(f"'{text}' is not a duration like 30s or 1m30s")
    return ns


def go_duration(ns: int) -> str:
    """Go's time.Duration.String(): 90s -> 1m30s, 1m -> 1m0s, 1500ms -> 1.5s, 0 -> 0s.

    The provider reads a container's healthcheck back in this form (terraform-provider-docker
    v4.5.0 resource_docker_container_funcs.go:960-969); any other spelling of the same
    duration would show as a change on every `pulumi up`, and replace the container.
    """
    if ns == 0:
        return "0s"
    sign, u = ("-" if ns < 0 else ""), abs(ns)

    def fraction(value: int, precision: int) -> tuple[str, int]:
        digits = f"{value % 10**precision:0{precision}d}".rstrip("0") if precision else ""
        return ("." + digits if digits else ""), value // 10**precision

    if u < 10**9:  # under a second: the largest unit that keeps a whole number in front
        unit, precision = ("ns", 0) if u < 10**3 else ("µs", 3) if u < 10**6 else ("ms", 6)
        frac, whole = fraction(u, precision)
        return f"{sign}{whole}{frac}{unit}"
    frac, seconds = fraction(u, 9)
    text = f"{seconds % 60}{frac}s"
    minutes = seconds // 60
    if minutes:
        text = f"{minutes % 60}m{text}"
        if minutes // 60:
            text = f"{minutes // 60}h{text}"
    return sign + text


def is_digest_ref(text: str) -> bool:
    """True for `repo@sha256:<64 hex>`: the only form an image can be promoted in."""
    return bool(DIGEST_REF_RE.match(text))


@dataclass(frozen=True, kw_only=True)
class Healthcheck:
    """Healthcheck timing shared by every app container (durations in Go's canonical form)."""

    interval: str
    """Go duration between checks."""
    timeout: str
    """Go duration after which one check fails."""
    retries: int
    """Consecutive failures that make the container unhealthy."""
    start_period: str
    """Go duration after start in which failures do not count."""

    @property
    def monitor(self) -> str:
        """How long a new task may still fail its healthcheck after it started: the start
        period and `retries` failed probes (Go duration)."""
        return go_duration(
            valid_ns(self.start_period) + self.retries * (valid_ns(self.interval) + valid_ns(self.timeout))
        )

    @property
    def wait_seconds(self) -> int:
        """How long `pulumi up` waits for a new container to turn healthy before it fails.

        A container that has not passed one probe by the end of its start period plus two
        probe cycles is not coming up; the provider polls only for `healthy` and otherwise
        waits this long (terraform-provider-docker v4.5.0 resource_docker_container_funcs.go:590-625).
        """
        cycle = valid_ns(self.interval) + valid_ns(self.timeout)
        return -(-(valid_ns(self.start_period) + 2 * cycle) // 10**9)  # whole seconds, rounded up
