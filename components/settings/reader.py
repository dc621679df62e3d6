"""Reader: the raw config of the project's namespace, turned into typed values that name the key
when they are wrong. Every stack setting goes through one Reader, once (stack.load)."""

from __future__ import annotations

import ipaddress
import json
import re
from typing import Optional

import pulumi
from docker.errors import DockerException
from docker.utils import parse_bytes

from components.settings.values import DURATION_RE, SettingsError, go_duration, valid_ns


class Reader:
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

    def string_list(self, key: str) -> list[str]:
        """An array of strings (Pulumi.yaml `type: array`), as the CLI passes it: JSON."""
        raw = self._raw(key).strip()
        try:
            value = json.loads(raw) if raw else []
        except ValueError:
            value = None
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            raise SettingsError(f'{key}: not a list of strings; expected e.g. ["NAME=value"]')
        return value

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
        value = self.string(key, pattern=DURATION_RE, expected="a duration like 30s or 1m30s", required=True)
        return go_duration(valid_ns(value))

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


def subnet(read: Reader, key: str) -> str:
    value = read.string(key)
    try:
        return str(ipaddress.ip_network(value, strict=True))
    except ValueError:
        raise SettingsError(f"{key}: '{value}' is not a subnet; expected CIDR like 172.30.10.0/24") from None


def ip(read: Reader, key: str) -> str:
    value = read.string(key)
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        raise SettingsError(f"{key}: '{value}' is not an IP address; expected e.g. 127.0.0.1 or 0.0.0.0") from None
