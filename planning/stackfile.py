"""A stack file read as the Pulumi CLI reads it, before the program runs: what `make check` runs
the program with.

What the CLI does, and where (pulumi/pulumi):
- Pulumi.<stack>.yaml is YAML read with gopkg.in/yaml.v3 (sdk/go/common/encoding/marshal.go).
  Its implicit types are YAML 1.2's core schema plus a few of v3's own (resolve.go): `yes`/`on`
  stay strings, `010` is octal, `1_000` is 1000, `.nan`/`.inf` are floats, a date is a time.
- Each key is `<namespace>:<name>` (or the old `<namespace>:config:<name>`); any other key fails
  the whole file (sdk/go/common/resource/config/key.go, ParseKey).
- Each value becomes the string the program receives (config/object.go, MarshalString): a bool,
  a number in JSON's spelling (Go's: 3.0 is "3"), a time as Go prints it, a list or map as JSON;
  NaN and the infinities cannot be JSON, so a file holding them fails to load.
- `{secure: v1:...}` is a secret: decrypted with the stack's secrets provider. For the passphrase
  provider (`encryptionsalt: v1:<salt>:<check>`): AES-256-GCM with a key from PBKDF2-SHA256,
  1,000,000 iterations (config/crypt.go NewSymmetricCrypterFromPassphrase, DecryptValue;
  pkg/secrets/passphrase/manager.go: the salt's check value must decrypt to "pulumi").
- Pulumi.yaml's defaults fill what the stack does not set; a declared key with no default that
  the stack does not set, a value of the wrong declared type, and a declared secret stored in
  plain text fail the stack (pkg/workspace/config.go, mergeConfig, validateStackConfigValue).
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import json
import math
import os
import re
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, Optional

import yaml
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

# --- YAML as yaml.v3 resolves plain scalars -------------------------------------------------------


class GoYamlLoader(yaml.SafeLoader):
    """PyYAML's safe loader with yaml.v3's implicit types instead of YAML 1.1's."""


GoYamlLoader.yaml_implicit_resolvers = {}
_RESOLVERS = [
    ("tag:yaml.org,2002:bool", r"^(?:true|True|TRUE|false|False|FALSE)$", "tTfF"),
    ("tag:yaml.org,2002:null", r"^(?:~|null|Null|NULL|)$", ["~", "n", "N", ""]),
    ("tag:yaml.org,2002:merge", r"^<<$", "<"),
    (
        # Every number (yaml.v3 tries int, then float; `_number` below decides which)
        "tag:yaml.org,2002:float",
        r"^(?:\.nan|\.NaN|\.NAN|[-+]?\.(?:inf|Inf|INF)|[-+]?0b[01_]+|[-+]?0o[0-7_]+|[-+]?0x[0-9a-fA-F_]+"
        r"|[-+]?(?:\.[0-9_]+|[0-9][0-9_]*(?:\.[0-9_]*)?)(?:[eE][-+]?[0-9]+)?)$",
        "-+0123456789.",
    ),
    (
        "tag:yaml.org,2002:timestamp",
        r"^[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}(?:[Tt ][0-9:.]+(?:Z|[-+][0-9:]+)?)?$",
        "0123456789",
    ),
]
for _tag, _pattern, _first in _RESOLVERS:
    GoYamlLoader.add_implicit_resolver(_tag, re.compile(_pattern), list(_first))
INT_RE = re.compile(r"^[-+]?(?:0b[01_]+|0o[0-7_]+|0x[0-9a-fA-F_]+|0[0-7_]+|[0-9][0-9_]*)$")


def _number(loader: GoYamlLoader, node: yaml.ScalarNode) -> Any:
    """A plain number as yaml.v3 reads it: an int when it parses as one (base prefixes, legacy
    octal, underscores dropped), else a float (past int64: a float, as v3 falls back to)."""
    text = loader.construct_scalar(node)
    plain = str(text).replace("_", "")
    if INT_RE.match(str(text)):
        sign, digits = (-1, plain[1:]) if plain.startswith("-") else (1, plain.lstrip("+"))
        prefixes = {"0b": 2, "0o": 8, "0x": 16}
        if digits[:2] in prefixes:
            base, body = prefixes[digits[:2]], digits[2:]
        else:  # 0777 is octal still (v3 keeps YAML 1.1's spelling)
            base, body = (8 if len(digits) > 1 and digits.startswith("0") else 10), digits
        try:
            value = sign * int(body, base)
        except ValueError:
            value = None
        if value is not None and -(2**63) <= value < 2**64:
            return value
    if plain in (".nan", ".NaN", ".NAN"):
        return math.nan
    if plain.lstrip("+-") in (".inf", ".Inf", ".INF"):
        return -math.inf if plain.startswith("-") else math.inf
    try:
        number = float(plain)
    except ValueError:
        return text
    return text if math.isinf(number) else number  # 1e400: ParseFloat fails, v3 keeps the string


GoYamlLoader.add_constructor("tag:yaml.org,2002:float", _number)


def _timestamp(loader: GoYamlLoader, node: yaml.ScalarNode) -> Any:
    return _GoTime(str(loader.construct_scalar(node)))


GoYamlLoader.add_constructor("tag:yaml.org,2002:timestamp", _timestamp)


@dataclass(frozen=True)
class _GoTime:
    text: str

    def go_string(self) -> Optional[str]:
        """time.Time.String() of a YAML date or time (what the program receives), or None."""
        text = self.text.replace("t", "T").replace(" ", "T", 1)
        try:
            if "T" not in text:
                when = datetime.datetime.fromisoformat(text + "T00:00:00+00:00")
            else:
                when = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=datetime.timezone.utc)
        zone = "UTC" if when.utcoffset() == datetime.timedelta(0) else ""
        offset = when.strftime("%z")
        return f"{when:%Y-%m-%d %H:%M:%S} {offset} {zone}".rstrip()


# --- values as the program receives them ----------------------------------------------------------


class StackFileError(Exception):
    """The CLI would refuse the stack file itself (one line)."""


def go_json_number(value: float) -> str:
    """encoding/json's spelling of a float64: shortest round trip, fixed notation from 1e-6 to 1e21."""
    if math.isnan(value) or math.isinf(value):
        raise StackFileError("json: unsupported value")
    if value == 0:
        return "0"
    if 1e-6 <= abs(value) < 1e21:
        text = format(Decimal(repr(value)), "f")
        return text.rstrip("0").rstrip(".") if "." in text else text
    mantissa, exponent = repr(value).split("e")
    return f"{mantissa}e{exponent[0]}{exponent[1:].lstrip('0') or '0'}"


def _json_value(value: Any, secrets: list[tuple[str, str]], path: str) -> Any:
    """A YAML value as the JSON the CLI marshals; secure leaves collected for decryption."""
    if isinstance(value, dict):
        if set(value) == {"secure"} and isinstance(value["secure"], str):
            secrets.append((path, value["secure"]))
            return _SecureLeaf(value["secure"])
        return {str(k): _json_value(v, secrets, f"{path}.{k}") for k, v in value.items()}
    if isinstance(value, list):
        return [_json_value(v, secrets, f"{path}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, _GoTime):
        return value.go_string() or value.text
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        raise StackFileError(f"{path}: {value} is not a value Pulumi can store (NaN and infinities are not JSON)")
    return value


def _is_secure(value: Any) -> bool:
    return isinstance(value, dict) and set(value) == {"secure"} and isinstance(value["secure"], str)


@dataclass(frozen=True)
class _SecureLeaf:
    ciphertext: str


def _marshal(value: Any, plain: dict[str, str]) -> str:
    """The string the program gets (config/object.go MarshalString)."""
    if isinstance(value, _SecureLeaf):
        return plain[value.ciphertext]
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return go_json_number(value)
    if isinstance(value, str):
        return value

    def encode(v: Any) -> Any:
        if isinstance(v, _SecureLeaf):
            return plain[v.ciphertext]
        if isinstance(v, dict):
            return {k: encode(v[k]) for k in sorted(v)}  # Go sorts a map's keys
        if isinstance(v, list):
            return [encode(x) for x in v]
        return v

    return json.dumps(encode(value), separators=(",", ":"), ensure_ascii=False, default=_go_default)


def _go_default(value: Any) -> Any:
    if isinstance(value, float):
        return float(go_json_number(value))
    raise TypeError(type(value).__name__)


# --- secrets ----------------------------------------------------------------------------------------

PBKDF2_ITERATIONS = 1_000_000


def passphrase_from_environment() -> Optional[str]:
    """PULUMI_CONFIG_PASSPHRASE, else PULUMI_CONFIG_PASSPHRASE_FILE's text (stripped), as the CLI reads them."""
    if "PULUMI_CONFIG_PASSPHRASE" in os.environ:
        return os.environ["PULUMI_CONFIG_PASSPHRASE"]
    path = os.environ.get("PULUMI_CONFIG_PASSPHRASE_FILE", "")
    if path:
        try:
            return Path(path).read_text().strip()
        except OSError as error:
            raise StackFileError(f"PULUMI_CONFIG_PASSPHRASE_FILE: cannot read {path} ({error.strerror})") from None
    return None


def passphrase_key(passphrase: str, state: str) -> bytes:
    """The AES key of a passphrase stack (`encryptionsalt: v1:<salt>:v1:<nonce>:<check>`), checked."""
    version, salt, check = (state.split(":", 2) + ["", ""])[:3]
    if version != "v1" or not salt or not check:
        raise StackFileError("encryptionsalt: not a v1 passphrase state")
    key = hashlib.pbkdf2_hmac("sha256", passphrase.encode(), base64.b64decode(salt), PBKDF2_ITERATIONS, 32)
    if decrypt(key, check) != "pulumi":
        raise StackFileError("incorrect passphrase")
    return key


def decrypt(key: bytes, ciphertext: str) -> Optional[str]:
    """One `v1:<nonce>:<ciphertext>` value; None when the key does not open it."""
    parts = ciphertext.split(":")
    if len(parts) != 3 or parts[0] != "v1":
        return None
    try:
        return AESGCM(key).decrypt(base64.b64decode(parts[1]), base64.b64decode(parts[2]), None).decode()
    except (InvalidTag, ValueError):
        return None


def encrypt(key: bytes, plaintext: str) -> str:
    """What `pulumi config set --secret` stores (for tests, and for a check of the round trip)."""
    nonce = os.urandom(12)
    sealed = AESGCM(key).encrypt(nonce, plaintext.encode(), None)
    return f"v1:{base64.b64encode(nonce).decode()}:{base64.b64encode(sealed).decode()}"


# --- the stack file -----------------------------------------------------------------------------------


@dataclass
class StackConfig:
    """The config a stack's program receives, and what reading it found."""

    namespace: str
    config: dict[str, str] = field(default_factory=dict)
    secret_keys: set[str] = field(default_factory=set)
    problems: list[str] = field(default_factory=list)
    """One line each: what the CLI would refuse before the program runs."""
    decrypted: int = 0
    opaque: list[str] = field(default_factory=list)
    """Secret keys present but not decrypted (no passphrase, or another secrets provider)."""
    opaque_reason: str = ""
    """Why they were not: no passphrase, another secrets provider."""
    objects: set[str] = field(default_factory=set)
    """Keys whose value is a list, a map or null (the CLI types-checks those as objects)."""


def read_stack(
    stack: str,
    root: Path,
    *,
    opaque: Optional[str] = None,
    passphrase: Optional[str] = None,
) -> StackConfig:
    """Pulumi.yaml's defaults, then Pulumi.<stack>.yaml, as the CLI hands them to the program.

    Secrets are decrypted with `passphrase` (passphrase stacks); without one, or for another
    secrets provider, each stands as `opaque` when given (the program is told it is present) and
    is otherwise refused. Problems the CLI would stop at are collected, one line each.
    """
    project = yaml.load((root / "Pulumi.yaml").read_text(), Loader=GoYamlLoader) or {}
    namespace = str(project["name"])
    result = StackConfig(namespace=namespace)
    stack_file = root / f"Pulumi.{stack}.yaml"
    if not stack_file.exists():
        raise StackFileError(f"{stack_file.name}: no such stack file")
    try:
        document = yaml.load(stack_file.read_text(), Loader=GoYamlLoader) or {}
    except yaml.YAMLError as error:
        where = getattr(error, "problem_mark", None)
        at = f" (line {where.line + 1})" if where is not None else ""
        raise StackFileError(f"{stack_file.name}: not YAML{at}: {getattr(error, 'problem', error)}") from None
    if not isinstance(document, dict):
        raise StackFileError(f"{stack_file.name}: not a mapping of settings")
    entries = document.get("config") or {}
    if not isinstance(entries, dict):
        raise StackFileError(f"{stack_file.name}: config: not a mapping of keys to values")

    values: dict[str, Any] = {}
    secure: list[tuple[str, str]] = []
    for key, value in entries.items():
        full = _parse_key(str(key), namespace)
        if full is None:
            meant = f"{namespace}:{key}" if ":" not in str(key) else None
            result.problems.append(
                f"{key}: not a configuration key; keys are written <namespace>:<name>"
                + (f", e.g. {meant}" if meant else "")
            )
            continue
        try:
            found: list[tuple[str, str]] = []
            values[full] = _json_value(value, found, full)
        except StackFileError as error:
            result.problems.append(str(error))
            continue
        secure.extend(found)
        if found:
            result.secret_keys.add(full)
        if value is None or (isinstance(value, (dict, list)) and not _is_secure(value)):
            result.objects.add(full)

    plain = _decrypt_all(stack_file.name, document, secure, passphrase, opaque, result)
    for full, value in values.items():
        try:
            result.config[full] = _marshal(value, plain)
        except KeyError:  # a secret that could not be decrypted and has no stand-in
            continue

    _apply_project(stack, project, namespace, result)
    return result


def _parse_key(key: str, namespace: str) -> Optional[str]:
    parts = key.split(":")
    if len(parts) == 2 and all(parts):
        return key
    if len(parts) == 3 and parts[1] == "config" and parts[0] and parts[2]:
        return f"{parts[0]}:{parts[2]}"
    return None


def _decrypt_all(
    file_name: str,
    document: dict,
    secure: list[tuple[str, str]],
    passphrase: Optional[str],
    opaque: Optional[str],
    result: StackConfig,
) -> dict[str, str]:
    if not secure:
        return {}
    provider = str(document.get("secretsprovider") or "passphrase")
    salt = document.get("encryptionsalt")
    key = None
    why = ""
    if provider != "passphrase" or not salt:
        why = f"secrets provider {provider.split('://')[0]}" if provider != "passphrase" else "no encryptionsalt"
    elif passphrase is None:
        why = "no PULUMI_CONFIG_PASSPHRASE"
    else:
        try:
            key = passphrase_key(passphrase, str(salt))
        except StackFileError as error:
            result.problems.append(f"PULUMI_CONFIG_PASSPHRASE: {error} for {file_name}'s secrets")
            why = "incorrect passphrase"
    plain: dict[str, str] = {}
    for path, ciphertext in secure:
        value = decrypt(key, ciphertext) if key is not None else None
        if value is not None:
            plain[ciphertext] = value
            result.decrypted += 1
            continue
        if key is not None:
            result.problems.append(f"{path}: cannot be decrypted with this passphrase (set again with --secret)")
        elif opaque is not None:
            plain[ciphertext] = opaque
        result.opaque.append(path)
    result.opaque_reason = why
    return plain


def _apply_project(stack: str, project: dict, namespace: str, result: StackConfig) -> None:
    """Pulumi.yaml's defaults where the stack sets nothing, and the CLI's checks of declared keys."""
    for key, declaration in (project.get("config") or {}).items():
        full = key if ":" in key else f"{namespace}:{key}"
        declared = declaration if isinstance(declaration, dict) else {"value": declaration}
        default = declared.get("default", declared.get("value"))
        if full not in result.config and full not in result.secret_keys:
            if default is None:
                result.problems.append(f"{full}: not set, and Pulumi.yaml declares no default; set it")
            else:
                result.config[full] = _marshal(_json_value(default, [], full), {})
            continue
        if declared.get("secret") and full not in result.secret_keys:
            result.problems.append(f"{full}: stored in plain text; Pulumi.yaml declares it secret (--secret)")
        kind = declared.get("type")
        value = result.config.get(full)
        if kind and value is not None and not _of_type(kind, value, full in result.objects):
            result.problems.append(
                f"{full}: '{value}' is not of type {kind}; the Pulumi CLI refuses Pulumi.{stack}.yaml"
                if full not in result.secret_keys
                else f"{full}: not of type {kind}; the Pulumi CLI refuses Pulumi.{stack}.yaml"
            )


def _of_type(kind: str, value: str, is_object: bool) -> bool:
    """sdk/go/common/workspace/project.go ValidateConfigValue, on what the CLI holds: the string,
    or for a list, map or null the value it parses from the JSON (never a string or an integer)."""
    if is_object:
        return kind not in ("string", "integer", "boolean")
    if kind == "integer":
        return bool(re.fullmatch(r"[+-]?[0-9]+", value)) and -(2**63) <= int(value) < 2**63
    if kind == "boolean":
        return value in ("true", "false")
    return True
