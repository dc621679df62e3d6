"""Reader: the raw config of the project's namespace, turned into typed values that name the key
when they are wrong. Every stack setting goes through one Reader, once (stack.load).

A wrong value does not stop the reading: the Reader notes its one line, marks the key failed and
goes on with the key's default from Pulumi.yaml (valid by construction: a test parses every
default), so one run reports every problem of a stack. Checks between keys skip a key that
already failed (`ok`), so a bad value is reported once, not again as a contradiction it caused.
`finish()` raises them all in one SettingsError, still before anything is created.
"""

from __future__ import annotations

import ipaddress
import json
import re
from typing import Callable, Mapping, Optional, TypeVar

import pulumi

from components.settings.keys import Declared
from components.settings.values import (
    DURATION_RE,
    INT64_MAX,
    OPAQUE_SECRET,
    SettingsError,
    duration_ns,
    go_duration,
    memory_bytes,
)

T = TypeVar("T")
INTEGER_RE = re.compile(r"^[+-]?[0-9]+$")  # what Go's strconv.Atoi takes (the CLI checks integers with it)
MIN_MEMORY = 6 * 1024 * 1024  # Docker refuses a memory limit under 6 MB
MIN_DURATION_NS = 10**6  # Docker refuses a non-zero healthcheck duration under 1ms


class Reader:
    """Reads raw config values and turns them into typed ones, naming the key on failure."""

    def __init__(self, config: pulumi.Config, declared: Optional[Mapping[str, Declared]] = None):
        self._config = config
        self._declared = dict(declared or {})
        self.problems: list[str] = []
        self.failed: set[str] = set()

    # --- collecting ---------------------------------------------------------------------

    def refuse(self, message: str, *keys: str) -> None:
        """Note one problem (one line) and mark the keys it names failed."""
        if message not in self.problems:
            self.problems.append(message)
        self.failed.update(keys)

    def ok(self, *keys: str) -> bool:
        """None of these keys failed: a check between them means something."""
        return not self.failed.intersection(keys)

    def attempt(self, check: Callable[[], T], *keys: str) -> Optional[T]:
        """Run a check that raises SettingsError; note its problem instead of stopping."""
        try:
            return check()
        except SettingsError as error:
            for problem in error.problems:
                self.refuse(problem, *keys)
            return None

    def finish(self) -> None:
        """Every problem noted so far, raised at once."""
        if self.problems:
            raise SettingsError(*self.problems)

    def is_default(self, key: str) -> bool:
        """The key has its Pulumi.yaml default (as far as the program can tell: not set, or set to it)."""
        declared = self._declared.get(key)
        return declared is None or (self._config.get(key) or "").strip() == (declared.default_text or "").strip()

    def _raw(self, key: str) -> str:
        value = self._config.get(key)
        if value is None:
            # The CLI fills every declared default; a missing key means Pulumi.yaml lost it.
            raise SettingsError(f"{key}: not set and Pulumi.yaml declares no default for it")
        return value

    def _typed(self, key: str, parse: Callable[[str], T]) -> T:
        """parse(the key's value); when it is refused, the refusal noted and parse(the default)."""
        try:
            return parse(self._raw(key))
        except SettingsError as error:
            declared = self._declared.get(key)
            if declared is None or declared.default_text is None:
                raise
            for problem in error.problems:
                self.refuse(problem, key)
            return parse(declared.default_text)

    # --- the kinds of value -------------------------------------------------------------

    def string(
        self,
        key: str,
        *,
        allowed: tuple[str, ...] = (),
        pattern: Optional[re.Pattern] = None,
        expected: str = "",
        required: bool = False,
    ) -> str:
        def parse(raw: str) -> str:
            value = raw.strip()
            if required and not value:
                raise SettingsError(f"{key}: empty; expected {expected}")
            if allowed and value not in allowed:
                shown = f"'{value}'" if value else "empty"
                raise SettingsError(f"{key}: {shown} is not one of {', '.join(allowed)}")
            if pattern is not None and value and not pattern.match(value):
                raise SettingsError(f"{key}: '{value}' is not valid; expected {expected}")
            return value

        return self._typed(key, parse)

    def integer(self, key: str, *, low: int, high: int) -> int:
        def parse(raw: str) -> int:
            value = raw.strip()
            # Digits only: Python's int() would also take 1_000 and other scripts' digits, which
            # the CLI's own check (strconv.Atoi) refuses.
            if not INTEGER_RE.match(value):
                shown = f"'{value}'" if value else "empty"
                raise SettingsError(f"{key}: {shown} is not a whole number; expected {low} to {high}")
            number = int(value)
            if not low <= number <= high:
                raise SettingsError(f"{key}: {number} is out of range; expected {low} to {high}")
            return number

        return self._typed(key, parse)

    def string_list(self, key: str) -> list[str]:
        """An array of strings (Pulumi.yaml `type: array`), as the CLI passes it: JSON."""

        def parse(raw: str) -> list[str]:
            try:
                value = json.loads(raw) if raw.strip() else []
            except ValueError:
                value = None
            if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
                raise SettingsError(f'{key}: not a list of strings; expected e.g. ["NAME=value"]')
            return value

        return self._typed(key, parse)

    def boolean(self, key: str) -> bool:
        def parse(raw: str) -> bool:
            value = raw.strip().lower()
            if value not in ("true", "false"):
                raise SettingsError(f"{key}: '{raw.strip()}' is not a boolean; expected true or false")
            return value == "true"

        return self._typed(key, parse)

    def memory_mb(self, key: str) -> int:
        def parse(raw: str) -> int:
            value = raw.strip()
            size = memory_bytes(value)
            if size is None or size < MIN_MEMORY:
                raise SettingsError(
                    f"{key}: '{value}' is not a memory limit; expected a size like 512M or 1G (at least 6M)"
                )
            if size > INT64_MAX:
                raise SettingsError(f"{key}: '{value}' is past the largest memory limit Docker takes (8E)")
            return size // (1024 * 1024)

        return self._typed(key, parse)

    def duration(self, key: str, *, zero: bool = False) -> str:
        """A duration, in Go's canonical spelling (what the provider reads back).

        zero: whether 0 is a value. Docker reads a zero healthcheck interval or timeout as "use the
        default" (30s), not as zero (moby api/types/container/config.go, HealthConfig), so for those
        it is refused rather than silently replaced.
        """

        def parse(raw: str) -> str:
            value = raw.strip()
            ns = duration_ns(value) if DURATION_RE.match(value) else None
            if ns is None:
                shown = f"'{value}'" if value else "empty"
                raise SettingsError(f"{key}: {shown} is not valid; expected a duration like 30s or 1m30s")
            if ns > INT64_MAX:
                raise SettingsError(f"{key}: '{value}' is past the longest duration Go holds (2562047h47m16s)")
            if ns == 0 and not zero:
                raise SettingsError(
                    f"{key}: '{value}' is zero, which Docker reads as its default (30s); expected 1ms or more"
                )
            if 0 < ns < MIN_DURATION_NS:
                raise SettingsError(f"{key}: '{value}' is under 1ms, which Docker refuses")
            return go_duration(ns)

        return self._typed(key, parse)

    def secret(self, key: str, *, token: bool = False) -> Optional[pulumi.Output[str]]:
        """An optional secret: None when empty; refused when stored in plain text or only
        whitespace. A token (a password, a key: one word) is also refused with whitespace around
        it: the app reads a secret file stripped, PostgreSQL and the environment do not, so the
        two would disagree. Never quoted in a message."""
        raw = self._raw(key)
        if not raw:
            return None
        full_key = f"{self._config.name}:{key}"
        if not pulumi.runtime.is_config_secret(full_key):
            self.refuse(f"{key}: stored in plain text; set it with `pulumi config set --secret {key}`", key)
            return None
        if raw == OPAQUE_SECRET:  # `make check` without the passphrase: present, contents unknown
            return self._config.require_secret(key)
        if not raw.strip():
            self.refuse(f"{key}: only whitespace; set the secret's value, or remove it (`pulumi config rm {key}`)", key)
            return None
        if token and raw != raw.strip():
            self.refuse(f"{key}: starts or ends with whitespace (a newline?); set it again without it", key)
            return None
        return self._config.require_secret(key)

    def secret_text(self, key: str) -> Optional[str]:
        """A secret's plain value, only to validate it here before anything is registered; None
        when `make check` could not decrypt it (then its contents are not checked).

        Never put it in a message, a resource input or an output: those get `secret()`'s Output.
        """
        raw = self._raw(key)
        return None if raw == OPAQUE_SECRET else raw


def subnet(read: Reader, key: str, *, optional: bool = False) -> str:
    """A private IPv4 subnet; `optional`: empty is allowed (and returned as "")."""

    def parse(raw: str) -> str:
        value = raw.strip()
        if optional and not value:
            return ""
        try:
            network = ipaddress.ip_network(value, strict=True)
        except ValueError:
            raise SettingsError(f"{key}: '{value}' is not a subnet; expected CIDR like 172.30.10.0/24") from None
        if network.version != 4:
            raise SettingsError(f"{key}: '{value}' is IPv6; expected an IPv4 subnet like 172.30.10.0/24")
        if not network.is_private or network.is_loopback or network.is_link_local or network.is_multicast:
            raise SettingsError(
                f"{key}: '{value}' is not a private range (it would hide those addresses from the host); "
                "expected one inside 10.0.0.0/8, 172.16.0.0/12 or 192.168.0.0/16"
            )
        return str(network)

    return read._typed(key, parse)


def ip(read: Reader, key: str) -> str:
    def parse(raw: str) -> str:
        value = raw.strip()
        try:
            return str(ipaddress.ip_address(value))
        except ValueError:
            raise SettingsError(f"{key}: '{value}' is not an IP address; expected e.g. 127.0.0.1 or 0.0.0.0") from None

    return read._typed(key, parse)
