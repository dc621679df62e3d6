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
# distribution/reference (reference.go, NameTotalLengthMax): an image name is at most 255 characters.
REFERENCE_NAME_MAX = 255
DIGEST_REF_RE = re.compile(rf"^{REPOSITORY}@sha256:[0-9a-f]{{64}}$")
REGISTRY_RE = re.compile(rf"^{DOMAIN}(?:/{COMPONENT})*$")
DURATION_RE = re.compile(r"^(?:[0-9]+(?:ms|s|m|h))+$")
# Every unit of Go's time.ParseDuration, as the provider parses a healthcheck duration.
DURATION_PART_RE = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ns|us|µs|ms|s|m|h)")
NS_PER_UNIT = {"ns": 1, "us": 10**3, "µs": 10**3, "ms": 10**6, "s": 10**9, "m": 60 * 10**9, "h": 3600 * 10**9}
NGINX_SIZE_RE = re.compile(r"^([0-9]+)([kKmMgG]?)$")
# A memory size as the Docker SDK and CLI read one (docker-py 7.2.0 utils.parse_bytes: digits, an
# optional fraction, b/k/m/g with an optional trailing b). Parsed here, exactly, so that no value
# (NaN, inf, 1e400) can reach a float and end in a traceback.
MEMORY_SIZE_RE = re.compile(r"^([0-9]+)(?:\.([0-9]+))?([bkmg]b?)?$", re.IGNORECASE)
BYTES_PER_UNIT = {"": 1, "b": 1, "k": 1024, "m": 1024**2, "g": 1024**3}
HOST_RE = re.compile(
    r"^(?:\.?[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*$"
)
# Go's int64 (time.Duration is one; so are Docker's sizes and nginx's off_t): the largest number
# any of them holds. time.ParseDuration refuses a duration past it ("invalid duration").
INT64_MAX = 2**63 - 1
# DNS (RFC 1035 2.3.4): a label is at most 63 octets, a name at most 253 characters as written.
DNS_LABEL_MAX, DNS_NAME_MAX = 63, 253
STACK_REF_RE = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")
PG_NAME_RE = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
SHA_RE = re.compile(r"^[0-9a-f]{40}(?:-dirty)?$")


class SettingsError(Exception):
    """One or more stack settings are wrong: one line each, naming the key; str() is the lines."""

    def __init__(self, *problems: str):
        super().__init__("\n".join(problems))
        self.problems: tuple[str, ...] = problems


# What `make check` gives the program for a secret it cannot decrypt (no passphrase): the secret is
# present, its contents unknown, so the checks of its contents are skipped. A real `pulumi up`
# always decrypts (or fails first), so the program never meets this value there.
OPAQUE_SECRET = "\x00django-docker:encrypted-secret-not-decrypted\x00"


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
    if len(match["repo"]) > REFERENCE_NAME_MAX:
        raise SettingsError(
            f"{key}: the repository name is {len(match['repo'])} characters; at most {REFERENCE_NAME_MAX}"
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


def memory_bytes(text: str) -> Optional[int]:
    """A memory size (512M, 1g, 1.5G, 64mb, 1048576) in bytes; None when it is not one."""
    match = MEMORY_SIZE_RE.match(text.strip())
    if not match:
        return None
    whole, fraction, unit = match.group(1), match.group(2) or "", (match.group(3) or "").lower()
    scale = BYTES_PER_UNIT[unit[:1]]
    # whole.fraction * scale, rounded down as docker-py's int(float * unit) does, in integers.
    return (int(whole + fraction) * scale) // 10 ** len(fraction)


def nginx_size_bytes(text: str) -> Optional[int]:
    """An nginx size (10m, 512k, 1g, 0) in bytes, as ngx_parse_offset reads it; None when it is not
    one or is past what nginx holds (off_t: nginx -t refuses it as "invalid value")."""
    match = NGINX_SIZE_RE.match(text.strip())
    if not match:
        return None
    size = int(match.group(1)) * BYTES_PER_UNIT[match.group(2).lower()]
    return size if size <= INT64_MAX else None


def host_name_problem(name: str) -> Optional[str]:
    """Why `name` is not a DNS host name (a label over 63 octets, a name over 253), or None."""
    bare = name.lstrip(".")
    if not HOST_RE.match(name):
        return "is not a host name (letters, digits, - and . only)"
    if len(bare) > DNS_NAME_MAX:
        return f"is {len(bare)} characters; a host name has at most {DNS_NAME_MAX}"
    longest = max(bare.split("."), key=len)
    if len(longest) > DNS_LABEL_MAX:
        return f"has a label of {len(longest)} characters; a DNS label has at most {DNS_LABEL_MAX}"
    return None


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
