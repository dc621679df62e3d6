"""Which config keys exist: the project's (declared in Pulumi.yaml, the one list), the Docker
provider's (its SDK's own config module) and Pulumi's own (`pulumi:`). Any other key is refused
with the closest known one, before anything is created.

Why the program must do this itself: the Pulumi CLI checks the keys a project *declares* (their
type, whether they are missing; pulumi/pulumi pkg/workspace/config.go, validateStackConfigValues),
but passes any other key through untouched. `django-docker:webReplica: 5` would deploy the
default 2 replicas without a word.
"""

from __future__ import annotations

import difflib
import importlib.util
import json
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable, Mapping, Optional

import yaml

from components.settings.identity import PROJECT_ROOT

# Namespaces whose keys this project leaves to their owner: Pulumi's own settings (pulumi:tags,
# pulumi:template, pulumi:disable-default-providers, ...) are read by the CLI and engine.
OPEN_NAMESPACES = ("pulumi",)
# The provider whose config keys are checked against its SDK's list (pulumi_docker/config/vars.py).
DOCKER = "docker"


@dataclass(frozen=True)
class Declared:
    """One key Pulumi.yaml declares."""

    name: str
    type: str
    default: Any
    """As Pulumi.yaml writes it (None: no default)."""
    secret: bool = False

    @property
    def default_text(self) -> Optional[str]:
        """The default as the program receives it: a string (the CLI JSON-encodes non-strings)."""
        if self.default is None:
            return None
        return self.default if isinstance(self.default, str) else json.dumps(self.default)


@dataclass(frozen=True)
class Project:
    name: str
    keys: Mapping[str, Declared]
    """Bare key -> its declaration, in Pulumi.yaml's order."""


@lru_cache(maxsize=8)
def _project(path: Path, mtime_ns: int) -> Project:
    loaded = yaml.safe_load(path.read_text()) or {}
    keys: dict[str, Declared] = {}
    for key, declaration in (loaded.get("config") or {}).items():
        if not isinstance(declaration, dict):  # `key: value` is a value with no declared type
            declaration = {"value": declaration}
        bare = key.split(":", 1)[1] if key.startswith(f"{loaded['name']}:") else key
        keys[bare] = Declared(
            name=bare,
            type=str(declaration.get("type") or "string"),
            default=declaration.get("default", declaration.get("value")),
            secret=bool(declaration.get("secret")),
        )
    return Project(name=str(loaded["name"]), keys=keys)


def project(root: Path = PROJECT_ROOT) -> Project:
    """Pulumi.yaml's name and declared config keys (read again when the file changes)."""
    path = root / "Pulumi.yaml"
    return _project(path, path.stat().st_mtime_ns)


@lru_cache(maxsize=1)
def docker_provider_keys() -> tuple[str, ...]:
    """The Docker provider's config keys, as its installed SDK reads them (host, registryAuth, ...)."""
    spec = importlib.util.find_spec("pulumi_docker")
    if spec is None or spec.origin is None:  # not installed: nothing to compare against
        return ()
    text = (Path(spec.origin).parent / "config" / "vars.py").read_text()
    return tuple(sorted(set(re.findall(r"__config__\.get\w*\('(\w+)'\)", text))))


def current_keys() -> list[str]:
    """Every config key this run of the program was given.

    The language host passes the whole stack config as one JSON object in PULUMI_CONFIG
    (pulumi/pulumi sdk/python/cmd/pulumi-language-python/main.go, constructConfig); the SDK's
    mocks and `set_all_config` keep it in pulumi.runtime.config.CONFIG instead. Both are read.
    """
    from pulumi.runtime import config as runtime_config

    keys = dict.fromkeys(runtime_config.get_config_env())
    keys.update(dict.fromkeys(runtime_config.CONFIG.get()))
    return list(keys)


def closest(word: str, candidates: Iterable[str]) -> Optional[str]:
    """The candidate `word` most likely meant: same letters but for case, - and _, else difflib's best."""
    candidates = list(candidates)
    squashed = {re.sub(r"[-_.]", "", c).lower(): c for c in candidates}
    if re.sub(r"[-_.]", "", word).lower() in squashed:
        return squashed[re.sub(r"[-_.]", "", word).lower()]
    lowered = {c.lower(): c for c in candidates}
    found = difflib.get_close_matches(word.lower(), list(lowered), n=1, cutoff=0.6)
    return lowered[found[0]] if found else None


def unknown_key_problems(keys: Iterable[str], known: Project, docker_keys: Iterable[str]) -> list[str]:
    """One line for each key no one reads, with the key it most likely meant."""
    namespaces = {known.name: list(known.keys), DOCKER: list(docker_keys)}
    problems = []
    for key in keys:
        namespace, sep, name = key.partition(":")
        if name.startswith("config:"):  # the old `<namespace>:config:<name>` spelling (config/key.go)
            name = name[len("config:") :]
        if not sep or namespace in OPEN_NAMESPACES:
            continue
        if namespace in namespaces:
            if not namespaces[namespace] or name in namespaces[namespace]:
                continue
            meant = closest(name, namespaces[namespace])
            where = "Pulumi.yaml's config" if namespace == known.name else "the Docker provider's config"
            problems.append(
                f"{key}: unknown key; "
                + (f"did you mean {namespace}:{meant}?" if meant else f"not one of the keys {where} declares")
                + (" (docs/configuration.md lists every key)" if namespace == known.name else "")
            )
            continue
        meant_namespace = closest(namespace, [*namespaces, *OPEN_NAMESPACES])
        if meant_namespace is None:
            problems.append(
                f"{key}: unknown namespace '{namespace}'; this project reads {known.name}:, {DOCKER}: and pulumi: keys"
            )
            continue
        candidates = namespaces.get(meant_namespace) or []
        meant_name = name if name in candidates or not candidates else (closest(name, candidates) or name)
        problems.append(f"{key}: unknown namespace '{namespace}'; did you mean {meant_namespace}:{meant_name}?")
    return problems
