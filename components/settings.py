"""Typed stack settings: the one place that reads `pulumi.Config` (and the git SHA).

`load()` reads every key declared in Pulumi.yaml once, validates it, and returns a frozen
`StackSettings`. A user's mistake raises `SettingsError` with one line that names the key and
says what is expected; `__main__.py` turns it into a clean exit before any resource exists.
Defaults live only in Pulumi.yaml (the Pulumi CLI applies them); nothing here repeats them.
"""

from __future__ import annotations

import ipaddress
import os
import re
import subprocess
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Optional

import pulumi
from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from docker.errors import DockerException
from docker.utils import parse_bytes

from components import render

PROJECT = "django-docker"
PROJECT_ROOT = Path(__file__).resolve().parent.parent

IMAGE_SOURCES = ("build", "stack", "pin")
RESTART_POLICIES = ("always", "unless-stopped", "on-failure")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
MAX_REPLICAS = 50

# Docker's reference grammar (distribution/reference), reduced to what a pinned reference needs.
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_DOMAIN = r"(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*(?::[0-9]+)?)"
_REPOSITORY = rf"(?:{_DOMAIN}/)?{_COMPONENT}(?:/{_COMPONENT})*"
_TAG = r"[\w][\w.-]{0,127}"
_REFERENCE_RE = re.compile(rf"^(?P<repo>{_REPOSITORY})(?::(?P<tag>{_TAG}))?(?:@(?P<digest>sha256:[0-9a-f]{{64}}))?$")
_DIGEST_REF_RE = re.compile(rf"^{_REPOSITORY}@sha256:[0-9a-f]{{64}}$")
_REGISTRY_RE = re.compile(rf"^{_DOMAIN}(?:/{_COMPONENT})*$")
_DURATION_RE = re.compile(r"^(?:[0-9]+(?:ms|s|m|h))+$")
# Every unit of Go's time.ParseDuration, as the provider parses a healthcheck duration.
_DURATION_PART_RE = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ns|us|µs|ms|s|m|h)")
_NS_PER_UNIT = {"ns": 1, "us": 10**3, "µs": 10**3, "ms": 10**6, "s": 10**9, "m": 60 * 10**9, "h": 3600 * 10**9}
_NGINX_SIZE_RE = re.compile(r"^[0-9]+[kKmMgG]?$")
_HOST_RE = re.compile(
    r"^(?:\.?[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*$"
)
_STACK_REF_RE = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")
_PG_NAME_RE = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
_SHA_RE = re.compile(r"^[0-9a-f]{40}(?:-dirty)?$")


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
    match = _REFERENCE_RE.match(text)
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
    parts = _DURATION_PART_RE.findall(text)
    if not parts or "".join(number + unit for number, unit in parts) != text:
        return None
    return sum(round(float(number) * _NS_PER_UNIT[unit]) for number, unit in parts)


def _valid_ns(text: str) -> int:
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
    return bool(_DIGEST_REF_RE.match(text))


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
    def wait_seconds(self) -> int:
        """How long `pulumi up` waits for a new container to turn healthy before it fails.

        A container that has not passed one probe by the end of its start period plus two
        probe cycles is not coming up; the provider polls only for `healthy` and otherwise
        waits this long (terraform-provider-docker v4.5.0 resource_docker_container_funcs.go:590-625).
        """
        cycle = _valid_ns(self.interval) + _valid_ns(self.timeout)
        return -(-(_valid_ns(self.start_period) + 2 * cycle) // 10**9)  # whole seconds, rounded up


@dataclass(frozen=True, kw_only=True)
class ImageSettings:
    source: str
    """build, stack or pin."""
    repository: str
    """Repository without registry or tag."""
    registry: str
    """Registry server; empty: no push."""
    registry_username: str
    registry_password: Optional[pulumi.Output[str]]
    source_stack: str
    pin: str
    git_sha: str
    """Full git SHA of the checkout, with `-dirty` when the work tree has uncommitted changes."""

    @property
    def tag(self) -> str:
        """The image tag: 12 characters of the SHA, plus the dirty marker. Never `latest`."""
        return self.git_sha[:12] + ("-dirty" if self.git_sha.endswith("-dirty") else "")

    @property
    def push(self) -> bool:
        return bool(self.registry)


@dataclass(frozen=True, kw_only=True)
class StackSettings:
    """Everything a stack can set, validated."""

    project: str
    stack: str
    docker_host: str
    """`docker:host` (the provider's Docker host); empty: DOCKER_HOST or the local socket."""
    image: ImageSettings
    restart_policy: str
    protect_data: bool
    frontend_subnet: str
    web_replicas: int
    web_memory_mb: int
    web_concurrency: int
    web_timeout: int
    healthcheck: Healthcheck
    celery_concurrency: int
    celery_memory_mb: int
    celery_beat: bool
    postgres_image: ImageRef
    postgres_db: str
    postgres_user: str
    postgres_password: Optional[pulumi.Output[str]]
    postgres_memory_mb: int
    backup_before_migrate: bool
    backup_retention: int
    redis_image: ImageRef
    redis_memory_mb: int
    nginx_image: ImageRef
    nginx_memory_mb: int
    http_port: int
    https_port: int
    bind_address: str
    server_name: str
    client_max_body_size: str
    tls_certificate: Optional[pulumi.Output[str]]
    tls_key: Optional[pulumi.Output[str]]
    django_secret_key: Optional[pulumi.Output[str]]
    allowed_hosts: tuple[str, ...]
    django_hsts_seconds: int
    django_log_level: str

    @property
    def tls(self) -> bool:
        return self.tls_certificate is not None

    @property
    def public_port(self) -> int:
        """The host port people's browsers use."""
        return self.https_port if self.tls else self.http_port

    @property
    def url(self) -> str:
        """Where people reach the site (nginx's own output says the same)."""
        return render.public_url(server_name=self.server_name, tls=self.tls, port=self.public_port)


class _Reader:
    """Reads raw config values and turns them into typed ones, naming the key on failure."""

    def __init__(self, config: pulumi.Config):
        self._config = config

    def _raw(self, key: str) -> str:
        value = self._config.get(key)
        if value is None:
            # The CLI fills every declared default; a missing key means Pulumi.yaml lost it.
            raise SettingsError(f"{key}: not set and Pulumi.yaml declares no default for it")
        return value

    def string(
        self,
        key: str,
        *,
        allowed: tuple[str, ...] = (),
        pattern: Optional[re.Pattern] = None,
        expected: str = "",
        required: bool = False,
    ) -> str:
        value = self._raw(key).strip()
        if required and not value:
            raise SettingsError(f"{key}: empty; expected {expected}")
        if allowed and value not in allowed:
            raise SettingsError(f"{key}: '{value}' is not one of {', '.join(allowed)}")
        if pattern is not None and value and not pattern.match(value):
            raise SettingsError(f"{key}: '{value}' is not valid; expected {expected}")
        return value

    def integer(self, key: str, *, low: int, high: int) -> int:
        value = self._raw(key).strip()
        try:
            number = int(value)
        except ValueError:
            raise SettingsError(f"{key}: '{value}' is not a whole number; expected {low} to {high}") from None
        if not low <= number <= high:
            raise SettingsError(f"{key}: {number} is out of range; expected {low} to {high}")
        return number

    def boolean(self, key: str) -> bool:
        value = self._raw(key).strip().lower()
        if value not in ("true", "false"):
            raise SettingsError(f"{key}: '{value}' is not a boolean; expected true or false")
        return value == "true"

    def memory_mb(self, key: str) -> int:
        value = self._raw(key).strip()
        try:
            size = parse_bytes(value)
        except DockerException:
            size = -1
        if size < 6 * 1024 * 1024:  # Docker refuses limits under 6 MB.
            raise SettingsError(
                f"{key}: '{value}' is not a memory limit; expected a size like 512M or 1G (at least 6M)"
            )
        return size // (1024 * 1024)

    def duration(self, key: str) -> str:
        """A duration, in Go's canonical spelling (what the provider reads back)."""
        value = self.string(key, pattern=_DURATION_RE, expected="a duration like 30s or 1m30s", required=True)
        return go_duration(_valid_ns(value))

    def secret(self, key: str) -> Optional[pulumi.Output[str]]:
        """An optional secret: None when empty; refused when stored in plain text."""
        if not self._raw(key):
            return None
        full_key = f"{self._config.name}:{key}"
        if not pulumi.runtime.is_config_secret(full_key):
            raise SettingsError(f"{key}: stored in plain text; set it with `pulumi config set --secret {key}`")
        return self._config.require_secret(key)

    def secret_text(self, key: str) -> str:
        """A secret's plain value, only to validate it here before anything is registered.

        Never put it in a message, a resource input or an output: those get `secret()`'s Output.
        """
        return self._raw(key)


# What goes into the image: only changes here make a checkout's image `-dirty`. A stack file
# that `pulumi stack init` or `pulumi config set` just wrote (the passphrase provider's
# encryptionsalt, a registry) changes no byte of the image, and must not change its tag.
IMAGE_SOURCES_DIR = "django_app"


def resolve_git_sha(root: Path = PROJECT_ROOT) -> str:
    """The SHA the image is tagged with: CI's (GIT_SHA, then GITHUB_SHA) or the checkout's, with
    `-dirty` when the image's build context has uncommitted changes."""
    for variable in ("GIT_SHA", "GITHUB_SHA"):
        value = os.environ.get(variable, "").strip()
        if value:
            if not _SHA_RE.match(value):
                raise SettingsError(f"{variable}: '{value}' is not a 40-character git SHA")
            return value
    try:
        sha = _git(root, "rev-parse", "HEAD")
        dirty = _git(root, "status", "--porcelain", "--untracked-files=normal", "--", IMAGE_SOURCES_DIR)
    except (OSError, subprocess.CalledProcessError):
        raise SettingsError("git: cannot read the checkout's commit; run from a git clone or set GIT_SHA") from None
    return sha + ("-dirty" if dirty else "")


def _git(root: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(root), *args], check=True, capture_output=True, text=True).stdout.strip()


def check_tls(certificate_pem: str, key_pem: str, server_name: str, *, now: Optional[datetime] = None) -> None:
    """Refuse a certificate and key nginx could not serve, or no client would accept.

    Checked: both parse as PEM (the key unencrypted: nginx has no passphrase), the key is the
    certificate's (the first certificate in the chain, the one nginx presents), the certificate
    is valid now, and it covers serverName. The last is an error, not a warning: nginx would
    start and serve it, but every verifying client (browsers, curl, requests) would refuse the
    site; a stack that must serve another name sets serverName to it. Messages name the key and
    never quote the PEM text.
    """
    try:
        chain = x509.load_pem_x509_certificates(certificate_pem.encode())
    except ValueError:
        raise SettingsError(
            "tlsCertificate: not a PEM certificate; expected the server's certificate, then any "
            "intermediates, each between -----BEGIN CERTIFICATE----- lines"
        ) from None
    try:
        key = serialization.load_pem_private_key(key_pem.encode(), password=None)
    except TypeError:  # the key needs a password
        raise SettingsError("tlsKey: encrypted; nginx needs the private key without a passphrase") from None
    except (ValueError, UnsupportedAlgorithm):
        raise SettingsError(
            "tlsKey: not a PEM private key; expected -----BEGIN PRIVATE KEY----- (or RSA/EC PRIVATE KEY), unencrypted"
        ) from None
    leaf = chain[0]
    public = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    if key.public_key().public_bytes(*public) != leaf.public_key().public_bytes(*public):
        raise SettingsError("tlsKey: does not match tlsCertificate (the key's public key is not the certificate's)")
    now = now or datetime.now(timezone.utc)
    if now >= leaf.not_valid_after_utc:
        raise SettingsError(f"tlsCertificate: expired on {leaf.not_valid_after_utc:%Y-%m-%d %H:%M:%S} UTC")
    if now < leaf.not_valid_before_utc:
        raise SettingsError(f"tlsCertificate: not valid before {leaf.not_valid_before_utc:%Y-%m-%d %H:%M:%S} UTC")
    try:
        names = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(
            x509.DNSName
        )
    except x509.ExtensionNotFound:
        names = []  # clients ignore the subject's CN (RFC 6125 section 6.4.4; Chrome 58, Python 3.7)
    host = server_name.lstrip(".")  # nginx's `.example.com` is example.com and its subdomains
    if not any(_name_covers(name, host) for name in names):
        raise SettingsError(
            f"tlsCertificate: does not cover serverName '{host}'; it names "
            + (", ".join(names) if names else "no host (no subjectAltName DNS entry)")
        )


def _name_covers(pattern: str, host: str) -> bool:
    """RFC 6125 matching: exact, or a `*` as the whole leftmost label standing for one label."""
    pattern, host = pattern.lower().rstrip("."), host.lower().rstrip(".")
    if pattern.startswith("*."):
        first, _, rest = host.partition(".")
        return bool(first) and rest == pattern[2:]
    return pattern == host


def load(config: Optional[pulumi.Config] = None, *, git_sha: Optional[str] = None) -> StackSettings:
    """Read and validate every stack setting once."""
    read = _Reader(config or pulumi.Config(PROJECT))
    # The Docker provider's own setting, read here so every setting has one reader.
    docker_host = (pulumi.Config("docker").get("host") or "").strip()
    _check_registry_auth(pulumi.Config("docker"))

    image = _image(read, git_sha)
    server_name = read.string("serverName", pattern=_HOST_RE, expected="a host name, e.g. example.com", required=True)
    extra_hosts = tuple(h.strip() for h in read.string("djangoAllowedHosts").split(",") if h.strip())
    for host in extra_hosts:
        if not _HOST_RE.match(host):
            raise SettingsError(f"djangoAllowedHosts: '{host}' is not a host name")

    tls_certificate, tls_key = read.secret("tlsCertificate"), read.secret("tlsKey")
    if (tls_certificate is None) != (tls_key is None):
        raise SettingsError("tlsCertificate, tlsKey: set both (secrets) to serve HTTPS, or neither")
    if tls_certificate is not None:
        check_tls(read.secret_text("tlsCertificate"), read.secret_text("tlsKey"), server_name)

    http_port = read.integer("httpPort", low=1, high=65535)
    https_port = read.integer("httpsPort", low=1, high=65535)
    if tls_certificate is not None and https_port == http_port:
        raise SettingsError(f"httpsPort: {https_port} is also httpPort; expected another port")

    return StackSettings(
        project=PROJECT,
        stack=pulumi.get_stack(),
        docker_host=docker_host,
        image=image,
        restart_policy=read.string("restartPolicy", allowed=RESTART_POLICIES),
        protect_data=read.boolean("protectData"),
        frontend_subnet=_subnet(read, "frontendSubnet"),
        web_replicas=read.integer("webReplicas", low=1, high=MAX_REPLICAS),
        web_memory_mb=read.memory_mb("webMemory"),
        web_concurrency=read.integer("webConcurrency", low=1, high=64),
        web_timeout=read.integer("webTimeout", low=1, high=3600),
        healthcheck=Healthcheck(
            interval=read.duration("healthcheckInterval"),
            timeout=read.duration("healthcheckTimeout"),
            retries=read.integer("healthcheckRetries", low=1, high=100),
            start_period=read.duration("healthcheckStartPeriod"),
        ),
        celery_concurrency=read.integer("celeryConcurrency", low=1, high=64),
        celery_memory_mb=read.memory_mb("celeryMemory"),
        celery_beat=read.boolean("celeryBeat"),
        postgres_image=_accessory_image(read, "postgresImage", "postgres", "15", 2),
        postgres_db=read.string(
            "postgresDb", pattern=_PG_NAME_RE, expected="a database name (lowercase letters, digits, _)", required=True
        ),
        postgres_user=read.string(
            "postgresUser", pattern=_PG_NAME_RE, expected="a role name (lowercase letters, digits, _)", required=True
        ),
        postgres_password=read.secret("postgresPassword"),
        postgres_memory_mb=read.memory_mb("postgresMemory"),
        backup_before_migrate=read.boolean("backupBeforeMigrate"),
        backup_retention=read.integer("backupRetention", low=1, high=1000),
        redis_image=_accessory_image(read, "redisImage", "redis", "7", 3),
        redis_memory_mb=read.memory_mb("redisMemory"),
        nginx_image=_accessory_image(read, "nginxImage", "nginx", "", 3),
        nginx_memory_mb=read.memory_mb("nginxMemory"),
        http_port=http_port,
        https_port=https_port,
        bind_address=_ip(read, "bindAddress"),
        server_name=server_name,
        client_max_body_size=read.string(
            "clientMaxBodySize", pattern=_NGINX_SIZE_RE, expected="an nginx size like 10m", required=True
        ),
        tls_certificate=tls_certificate,
        tls_key=tls_key,
        django_secret_key=read.secret("djangoSecretKey"),
        allowed_hosts=(server_name, *[h for h in extra_hosts if h != server_name]),
        django_hsts_seconds=read.integer("djangoHstsSeconds", low=0, high=63072000),
        django_log_level=read.string("djangoLogLevel", allowed=LOG_LEVELS),
    )


def _check_registry_auth(docker_config: pulumi.Config) -> None:
    """The provider's own `docker:registryAuth`: what its image pulls authenticate with (prod pulls
    the promoted digest; a private registry needs it). The provider matches an entry to a pull by
    the registry's host name (terraform-provider-docker v4.5.0 provider.go:303-345,
    resource_docker_image_funcs.go:249-255). Refused: an entry without an address, and a
    password stored in plain text (the whole key is secret once any part of it was set --secret).
    """
    key = "docker:registryAuth"
    try:
        entries = docker_config.get_object("registryAuth")
    except (ValueError, TypeError):
        raise SettingsError(
            f"{key}: not a list of {{address, username, password}}; set it with "
            f"`pulumi config set --path '{key}[0].address' ghcr.io`"
        ) from None
    if entries is None:
        return
    if not isinstance(entries, list):
        raise SettingsError(f"{key}: not a list of {{address, username, password}}")
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict) or not str(entry.get("address") or "").strip():
            raise SettingsError(f"{key}[{index}].address: required, the registry host (e.g. ghcr.io)")
        if entry.get("password") and not pulumi.runtime.is_config_secret(key):
            raise SettingsError(
                f"{key}[{index}].password: stored in plain text; set it with "
                f"`pulumi config set --secret --path '{key}[{index}].password'`"
            )


def _image(read: _Reader, git_sha: Optional[str]) -> ImageSettings:
    source = read.string("imageSource", allowed=IMAGE_SOURCES)
    repository = read.string("imageRepository")
    if not re.fullmatch(rf"{_COMPONENT}(?:/{_COMPONENT})*", repository):
        raise SettingsError(
            f"imageRepository: '{repository}' is not a repository name; expected e.g. acme/web (no registry, no tag)"
        )
    registry = read.string("imageRegistry", pattern=_REGISTRY_RE, expected="a registry server, e.g. ghcr.io/acme")
    username = read.string("imageRegistryUsername")
    password = read.secret("imageRegistryPassword")
    if registry and source == "build" and (not username or password is None):
        raise SettingsError(
            "imageRegistryUsername, imageRegistryPassword: required (the password as a secret) to push to imageRegistry"
        )
    source_stack = read.string("imageSourceStack")
    pin = read.string("imagePin")
    if source == "stack" and not _STACK_REF_RE.match(source_stack):
        raise SettingsError(
            f"imageSourceStack: '{source_stack}' is not a stack; expected org/project/stack, e.g. organization/django-docker/dev"
        )
    if source == "pin" and not is_digest_ref(pin):
        raise SettingsError(f"imagePin: '{pin}' is not a digest reference; expected repo@sha256:<64 hex>")
    return ImageSettings(
        source=source,
        repository=repository,
        registry=registry,
        registry_username=username,
        registry_password=password,
        source_stack=source_stack,
        pin=pin,
        # Only a build needs the checkout's SHA; promoted images carry the SHA they were built from.
        git_sha=git_sha or (resolve_git_sha() if source == "build" else ""),
    )


def _accessory_image(read: _Reader, key: str, repository: str, major: str, parts: int) -> ImageRef:
    """A pinned accessory image: the right repository, the expected major, a full release tag.

    `parts` is how many numbers a release tag has for this image (postgres 15.14, redis 7.4.5).
    """
    ref = parse_image_ref(key, read.string(key))
    if ref.repository.rsplit("/", 1)[-1] != repository:
        raise SettingsError(f"{key}: '{ref.text}' is not a {repository} image")
    if ref.digest is None:
        version = re.match(r"^[0-9]+(?:\.[0-9]+)*", ref.tag or "")
        numbers = version.group(0).split(".") if version else []
        example = ".".join([major or "1"] + ["x"] * (parts - 1))
        if len(numbers) < parts:
            raise SettingsError(f"{key}: '{ref.tag}' is not a pinned release; expected {repository}:{example}")
        if major and numbers[0] != major:
            raise SettingsError(
                f"{key}: '{ref.tag}' is not {major}.x; this stack's data needs {repository} {major} (a major upgrade is a migration)"
            )
    return ref


def _subnet(read: _Reader, key: str) -> str:
    value = read.string(key)
    try:
        return str(ipaddress.ip_network(value, strict=True))
    except ValueError:
        raise SettingsError(f"{key}: '{value}' is not a subnet; expected CIDR like 172.30.10.0/24") from None


def _ip(read: _Reader, key: str) -> str:
    value = read.string(key)
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        raise SettingsError(f"{key}: '{value}' is not an IP address; expected e.g. 127.0.0.1 or 0.0.0.0") from None
